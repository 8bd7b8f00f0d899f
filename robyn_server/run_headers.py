"""`http.configurable_headers` in langgraph.json: request headers copied into a run's `config.configurable`.

Like the reference, nothing is copied unless `includes` names it (`*` wildcards), `excludes` wins over
`includes`, and `authorization`, `x-api-key`, `x-service-key` and `x-tenant-id` are never copied. A request hook
picks the headers of each request into a context variable that run creation reads (request-scoped, never global).
"""

from __future__ import annotations

import contextvars
import re
from typing import Any

from robyn import Request

from robyn_server.config import ConfigError

NEVER = frozenset({"authorization", "x-api-key", "x-service-key", "x-tenant-id"})
_selected: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "robyn_server_run_headers", default=None
)


def _pattern(raw: Any) -> re.Pattern[str]:
    if not isinstance(raw, str) or not raw:
        raise ConfigError("http.configurable_headers patterns must be non-empty strings")
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in raw.lower()) + r"\Z", re.S)


class HeaderSelector:
    """The request hook: which of the request's headers runs created by it receive."""

    def __init__(self, block: Any) -> None:
        if not isinstance(block, dict) or set(block) - {"includes", "excludes", "include", "exclude"}:
            raise ConfigError("http.configurable_headers must be an object with 'includes' and/or 'excludes'")
        includes = block.get("includes") or block.get("include") or []
        excludes = block.get("excludes") or block.get("exclude") or []
        if not isinstance(includes, list) or not isinstance(excludes, list):
            raise ConfigError("http.configurable_headers includes/excludes must be lists of header patterns")
        self.includes = [_pattern(p) for p in includes]
        self.excludes = [_pattern(p) for p in excludes]

    def wanted(self, name: str) -> bool:
        if name in NEVER or any(p.match(name) for p in self.excludes):
            return False
        return any(p.match(name) for p in self.includes)

    async def __call__(self, request: Request) -> None:
        selected = {k.lower(): v for k, v in request.headers.items() if self.wanted(k.lower())}
        _selected.set(selected)
        return None


def run_headers() -> dict[str, str]:
    """The configurable headers of the request being served (empty outside one, or when none are configured)."""
    return dict(_selected.get() or {})


def install(router: Any, http: dict[str, Any]) -> None:
    block = http.get("configurable_headers")
    if block is not None:
        router.request_hooks.insert(0, HeaderSelector(block))

"""The `http` block of langgraph.json beyond CORS: route-group switches, the user's `http.app`, and the
platform extras (`/mcp`, `/a2a`). One place that decides which route modules are served, so app.py stays small.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from robyn_server.config import ConfigError
from robyn_server.http import ApiRequest, Router

# `http` keys and what honours them (anything else stops the start: a silently ignored key is a lie)
ROUTE_SWITCHES = ("disable_assistants", "disable_threads", "disable_runs", "disable_store", "disable_meta")
EXTRA_SWITCHES = ("disable_mcp", "disable_a2a", "disable_ui", "disable_webhooks")
KNOWN_KEYS = frozenset(
    {
        *ROUTE_SWITCHES,
        *EXTRA_SWITCHES,
        "cors",
        "app",
        "middleware_order",
        "enable_custom_route_auth",
        "configurable_headers",
        "mount_prefix",
    }
)


def _fail(message: str) -> None:
    print(f"robyn-server: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def check_http_config(http: dict[str, Any]) -> None:
    """Refuse `http` keys this server does not honour, and switches that are not booleans."""
    if not isinstance(http, dict):
        raise ConfigError("'http' in langgraph.json must be an object")
    unknown = sorted(set(http) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"http.{unknown[0]} in langgraph.json is not supported by this server")
    order = http.get("middleware_order", "middleware_first")
    if order not in ("middleware_first", "auth_first"):
        raise ConfigError(f"http.middleware_order must be one of ['middleware_first', 'auth_first'], got {order!r}")
    prefix = http.get("mount_prefix")
    if prefix is not None and (
        not isinstance(prefix, str) or not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix
    ):
        raise ConfigError(
            f"http.mount_prefix {prefix!r}: must start with '/' and must not end with '/' (e.g. '/my-api')"
        )
    if http.get("configurable_headers") is not None:
        from robyn_server.run_headers import HeaderSelector

        HeaderSelector(http["configurable_headers"])  # raises ConfigError on a bad block
    for key in (*ROUTE_SWITCHES, *EXTRA_SWITCHES, "enable_custom_route_auth"):
        if key in http and not isinstance(http[key], bool):
            raise ConfigError(f"http.{key} must be true or false")


def served_modules(http: dict[str, Any], modules: Iterable[ModuleType]) -> list[ModuleType]:
    """The built-in route modules not switched off by `http.disable_<name>` (module names match)."""
    out = []
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        if not http.get(f"disable_{name}"):
            out.append(module)
    return out


def register_health_only(router: Router) -> None:
    """With `http.disable_meta`, `/ok` still answers (so operators see the server started), like the reference."""

    async def ok(req: ApiRequest) -> Any:
        """Health check."""
        return {"ok": True}

    router.add("GET", "/ok", ok, tags=["meta"])


def install_extras(router: Router, ctx: Any, gate: Any) -> Any:
    """The user's `http.app` (in front of the built-in routes), `/mcp` and `/a2a`; returns the custom app, if any."""
    from robyn_server import custom_app, run_headers

    run_headers.install(router, ctx.config.http or {})
    try:
        custom = custom_app.install(router, ctx, gate)
    except ConfigError as exc:
        _fail(str(exc))
        return None
    if not (ctx.config.http or {}).get("disable_mcp"):
        from robyn_server.routes import mcp

        mcp.register(router, ctx)
    if not (ctx.config.http or {}).get("disable_a2a"):
        from robyn_server.routes import a2a

        a2a.register(router, ctx)
    return custom


# Served at the root as well as under the prefix (health checks), and left at the root (the playground page).
ROOT_TOO = ("/", "/ok")
ROOT_ONLY = ("/playground", "/playground/static/:name")


def apply_mount_prefix(router: Router, ctx: Any, gate: Any) -> None:
    """`http.mount_prefix`: every route moves under the prefix, like the reference's mount; `/` and `/ok` also
    stay at the root. OpenAPI lists the paths without it and names the prefix in `servers`."""
    from robyn_server.http import _compile

    prefix = (ctx.config.http or {}).get("mount_prefix")
    if not prefix:
        return
    for route in list(router.routes):
        if route.path in ROOT_ONLY:
            continue
        moved = prefix + ("" if route.path == "/" else route.path)
        if route.path in ROOT_TOO:
            router.add(route.method, moved, route.handler, summary=route.summary, tags=route.tags,
                       body_model=route.body_model)  # fmt: skip
            continue
        route.path, route.regex = moved, _compile(moved)
    if gate is not None:
        gate.mount_prefix = prefix
    if ctx.custom_app is not None:
        ctx.custom_app.mount_prefix = prefix

    def unprefixed(document: dict[str, Any]) -> None:
        document["paths"] = {
            (path[len(prefix) :] or "/") if path.startswith(prefix + "/") or path == prefix else path: ops
            for path, ops in document["paths"].items()
        }
        document["servers"] = [{"url": prefix}]

    router.openapi_extensions.insert(0, unprefixed)

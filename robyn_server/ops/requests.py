"""The request being served: its id (from `X-Request-Id` or a new UUID), method, path, route and start time.

Held in a `ContextVar` set by the first request hook, so handlers, SSE bodies (they run with a copy of the
handler's context, see `auth.context.bind_iterator`), the run a request creates (its task starts from a copy of
the request's context) and every log line written meanwhile can read it. The same pattern as the identity.
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

REQUEST_ID_HEADER = "x-request-id"
# A client's id is kept when it is a sane token; anything else (too long, control characters) is replaced.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


@dataclass(eq=False)
class RequestInfo:
    """One request. `route` is the matched route template (set by the router), None for 404/405/401 answers."""

    request_id: str
    method: str
    path: str
    started: float
    route: str | None = None
    span: Any = None  # the OpenTelemetry server span, when tracing is on
    finished: bool = False


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("robyn_server_request", default=None)


def request_id_from(header: str | None) -> str:
    """The client's `X-Request-Id` when it is a usable token, else a new UUID."""
    if header and _VALID_ID.match(header):
        return header
    return str(uuid.uuid4())


def begin(method: str, path: str, header: str | None) -> RequestInfo:
    """Start a request in the current context (the router's first request hook calls this)."""
    info = RequestInfo(request_id_from(header), method, path, time.perf_counter())
    _current.set(info)
    return info


def current() -> RequestInfo | None:
    return _current.get()


def current_request_id() -> str | None:
    info = _current.get()
    return info.request_id if info is not None else None


def set_route(template: str) -> None:
    """Record the route template that serves the current request (for metrics labels and logs)."""
    info = _current.get()
    if info is not None:
        info.route = template

"""How a failed run is reported: `{"error": class name, "message": ...}` like the reference.

Messages of exception classes outside the reference's list are replaced, so internals do not leak.
"""

from __future__ import annotations

import asyncio

from langgraph.errors import GraphRecursionError, InvalidUpdateError

_SHOWN = (
    ValueError,
    TypeError,
    KeyError,
    RuntimeError,
    TimeoutError,
    asyncio.TimeoutError,
    RecursionError,
    NotImplementedError,
    GraphRecursionError,
    InvalidUpdateError,
)


def error_payload(exc: BaseException) -> dict[str, str]:
    shown = isinstance(exc, _SHOWN) or type(exc).__module__.startswith(("langgraph", "robyn_server"))
    message = str(exc) if shown else "An internal error occurred"
    return {"error": type(exc).__name__, "message": message}

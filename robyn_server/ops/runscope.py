"""The run being executed in this context: its ids, for log lines and spans written while it runs.

Set at the start of a run's task (its context is the run's own copy), so it never leaks into other runs or
requests. The request id, the caller and the trace parent come from the run's stored record, so a run executed
by a process other than the one that received the request still reports them.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class RunScope:
    run_id: str
    thread_id: str
    graph_id: str | None
    assistant_id: str | None
    request_id: str | None
    user: str | None
    attempt: int = 1
    trace_context: dict[str, str] | None = None  # the creating request's W3C traceparent, when it was traced


_current: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar("robyn_server_run", default=None)


def scope_of(run: dict[str, Any]) -> RunScope:
    """The scope of a stored run record."""
    config = (run.get("kwargs") or {}).get("config") or {}
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    return RunScope(
        run_id=run["run_id"],
        thread_id=run["thread_id"],
        graph_id=configurable.get("graph_id"),
        assistant_id=run.get("assistant_id"),
        request_id=configurable.get("langgraph_request_id"),
        user=configurable.get("langgraph_auth_user_id") or None,
        attempt=int(metadata.get("run_attempt") or 1),
        trace_context=(run.get("kwargs") or {}).get("trace_context"),
    )


def enter(scope: RunScope) -> None:
    _current.set(scope)


def current() -> RunScope | None:
    return _current.get()

"""Graph factories of every signature the reference server accepts; each graph reports what its factory saw.

`CALLS` records every factory entry and exit (graph, access context) so tests can check when the server enters
them; the custom app (`custom_app.py`) serves it at GET /custom/factory-calls.
"""

from __future__ import annotations

import contextlib
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph_sdk.runtime import ServerRuntime
from typing_extensions import TypedDict

CALLS: list[dict[str, Any]] = []


class State(TypedDict, total=False):
    question: str
    seen: dict[str, Any]


def _build(name: str, config: RunnableConfig | None, runtime: Any) -> Any:
    """A one-node graph whose node reports the factory's view of the call."""
    seen: dict[str, Any] = {"factory": name}
    if runtime is not None:
        seen["access_context"] = runtime.access_context
        seen["user"] = runtime.user.identity if runtime.user is not None else None
        seen["has_store"] = runtime.store is not None
        ert = runtime.execution_runtime
        seen["context"] = ert.context if ert is not None else None
    if config is not None:
        configurable = config.get("configurable") or {}
        seen["model"] = configurable.get("model")
        sent = ("x-custom-flavour", "x-custom-secret", "x-api-key", "x-other", "authorization")
        seen["headers"] = {k: v for k, v in configurable.items() if k in sent}  # what the header test sends

    def answer(state: State) -> dict[str, Any]:
        return {"seen": seen}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile()


def _record(name: str, runtime: Any, event: str = "enter") -> None:
    CALLS.append(
        {
            "graph": name,
            "event": event,
            "access_context": getattr(runtime, "access_context", None),
            "execution": runtime is not None and runtime.execution_runtime is not None,
        }
    )


def no_args() -> Any:
    _record("no_args", None)
    return _build("no_args", None, None)


def config_only(config: RunnableConfig) -> Any:
    _record("config_only", None)
    return _build("config_only", config, None)


async def runtime_only(runtime: ServerRuntime) -> Any:
    _record("runtime_only", runtime)
    return _build("runtime_only", None, runtime)


@contextlib.asynccontextmanager
async def config_and_runtime(config: RunnableConfig, runtime: ServerRuntime):
    """The issue's case: an async context manager reading runtime.user and the execution context."""
    _record("config_and_runtime", runtime)
    try:
        yield _build("config_and_runtime", config, runtime)
    finally:
        _record("config_and_runtime", runtime, "exit")


@contextlib.contextmanager
def sync_cm_runtime_first(runtime: ServerRuntime, config: RunnableConfig):
    _record("sync_cm_runtime_first", runtime)
    try:
        yield _build("sync_cm_runtime_first", config, runtime)
    finally:
        _record("sync_cm_runtime_first", runtime, "exit")

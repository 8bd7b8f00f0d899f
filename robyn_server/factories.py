"""Graph factories with every signature the reference server accepts, and the `ServerRuntime` they receive.

A factory takes nothing, a config, a `langgraph_sdk.runtime.ServerRuntime`, or both (told apart by the
`ServerRuntime` annotation, passed by keyword so the order does not matter). It may be sync or async and may
return a graph, a StateGraph, or a (sync or async) context manager yielding one. The server enters it for each
use: once per run (`threads.create_run`, with the run's context), and for state reads (`threads.read`), state
updates (`threads.update`) and schema/graph reads (`assistants.read`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal, get_args, get_origin

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph_sdk.runtime import ServerRuntime, _ExecutionRuntime, _ReadRuntime

from robyn_server.auth.context import get_current_user, user_config
from robyn_server.auth.users import normalize_user

AccessContext = Literal["threads.create_run", "threads.update", "threads.read", "assistants.read"]
# Builds the keyword arguments of one factory call from (config, runtime).
FactoryCall = Callable[[RunnableConfig, Any], dict[str, Any]]

_RUNTIME_TYPES = (_ExecutionRuntime, _ReadRuntime)
# Lets `from __future__ import annotations` factories (or ones importing ServerRuntime under TYPE_CHECKING)
# be classified.
_ANNOTATION_NAMES = {"ServerRuntime": ServerRuntime, "RunnableConfig": RunnableConfig}


def _is_runtime(annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty:
        return False
    if annotation is ServerRuntime:
        return True
    if isinstance(annotation, str):
        return annotation.split("[", 1)[0].strip() in ("ServerRuntime", "langgraph_sdk.runtime.ServerRuntime")
    if isinstance(annotation, type):
        return issubclass(annotation, _RUNTIME_TYPES)
    origin = get_origin(annotation)
    if origin is ServerRuntime:
        return True
    args = get_args(annotation)
    return origin is not None and bool(args) and _is_runtime(args[0])  # Annotated[ServerRuntime, ...]


def classify_factory(factory: Callable[..., Any]) -> FactoryCall:
    """How to call `factory`; ValueError for a signature the reference refuses too."""
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return lambda config, runtime: {}
    try:
        hints = typing.get_type_hints(factory, localns=_ANNOTATION_NAMES)
    except Exception:
        hints = {}
    runtime_flags = [_is_runtime(hints.get(p.name, p.annotation)) for p in params]
    names = [p.name for p in params]
    if not params:
        return lambda config, runtime: {}
    if len(params) == 1:
        name = names[0]
        if runtime_flags[0]:
            return lambda config, runtime: {name: runtime}
        return lambda config, runtime: {name: config}
    if len(params) == 2:
        if runtime_flags.count(True) != 1:
            raise ValueError(
                f"graph factory {getattr(factory, '__name__', factory)} takes two arguments: one must be annotated "
                "ServerRuntime, the other is the config"
            )
        runtime_name = names[runtime_flags.index(True)]
        config_name = names[runtime_flags.index(False)]
        return lambda config, runtime: {runtime_name: runtime, config_name: config}
    raise ValueError(
        f"graph factory {getattr(factory, '__name__', factory)} must take 0, 1 or 2 arguments (config and/or "
        f"runtime: ServerRuntime), got {names}"
    )


def _caller(config: RunnableConfig) -> Any:
    """The user object of the caller: the request's, else (a recovered run) the one stored in the run config."""
    user = get_current_user()
    if user is not None:
        return user.user if user.user is not None else normalize_user(user.identity)
    stored = (config.get("configurable") or {}).get("langgraph_auth_user")
    if stored:
        try:
            return normalize_user(stored)
        except ValueError:
            return None
    return None


def build_runtime(access: AccessContext, store: BaseStore, config: RunnableConfig, context: Any = None) -> Any:
    user = _caller(config)
    if access == "threads.create_run":
        return _ExecutionRuntime(
            access_context=access, user=user, store=store, context=copy.copy(context) if context is not None else None
        )
    return _ReadRuntime(access_context=access, user=user, store=store)


@contextlib.asynccontextmanager
async def enter_factory(
    factory: Callable[..., Any],
    call: FactoryCall,
    config: RunnableConfig,
    access: AccessContext,
    store: BaseStore,
    context: Any = None,
) -> AsyncIterator[Any]:
    """Call the factory and hold whatever it returned (graph, awaitable, context manager) open for one use."""
    configurable = dict(config.get("configurable") or {})
    for key, value in user_config(get_current_user()).items():
        configurable.setdefault(key, value)  # like the reference's merge_auth, for reads made outside a run
    config = {**config, "configurable": configurable}
    runtime = build_runtime(access, store, config, context)
    produced = factory(**call(config, runtime))
    if inspect.isawaitable(produced) and not hasattr(produced, "__aenter__"):
        produced = await produced
    if isinstance(produced, (Pregel, StateGraph)):
        yield produced
    elif hasattr(produced, "__aenter__") and hasattr(produced, "__aexit__"):
        async with produced as graph:
            yield graph
    elif hasattr(produced, "__enter__") and hasattr(produced, "__exit__"):
        with produced as graph:
            yield graph
    else:
        yield produced

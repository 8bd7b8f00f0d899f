"""Loading the graphs named in `langgraph.json` and handing out runnable copies bound to our persistence.

A graph entry may be a compiled graph, an uncompiled StateGraph, or a factory (see factories.py for the
signatures and the `ServerRuntime` it may receive). Static graphs are bound once; factories run per use.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from robyn_server.config import ConfigError, GraphSpec
from robyn_server.factories import AccessContext, FactoryCall, classify_factory, enter_factory

# The reference server derives system assistant ids from this namespace (clients hard-code the results).
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


class Persistence(Protocol):
    checkpointer: BaseCheckpointSaver
    store: BaseStore


@functools.cache
def system_assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id))


@dataclass
class LoadedGraph:
    """A graph as imported: either a static graph or a factory."""

    spec: GraphSpec
    value: Any
    call: FactoryCall | None = None  # how to call `value` when it is a factory

    @property
    def is_factory(self) -> bool:
        return not isinstance(self.value, (Pregel, StateGraph))


def import_target(target: str, base_dir: Path) -> Any:
    """Import `./file.py:var` (relative to the config) or `package.module:var`."""
    module_ref, _, var = target.rpartition(":")
    if not module_ref or not var:
        raise ConfigError(f"invalid graph target {target!r}")
    if module_ref.endswith(".py") or "/" in module_ref:
        path = (base_dir / module_ref).resolve()
        if not path.is_file():
            raise ConfigError(f"graph file not found: {path}")
        module_name = f"_robyn_graph_{path.stem}_{abs(hash(str(path)))}"
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"cannot import graph file {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[module_name]
                raise ConfigError(f"import of {path} failed: {type(exc).__name__}: {exc}") from exc
        where = str(path)
    else:
        try:
            module = importlib.import_module(module_ref)
        except Exception as exc:
            raise ConfigError(f"import of module {module_ref} failed: {type(exc).__name__}: {exc}") from exc
        where = module_ref
    if not hasattr(module, var):
        raise ConfigError(f"variable {var!r} not found in {where}")
    return getattr(module, var)


class GraphRegistry:
    """The graphs this server serves, keyed by graph id."""

    def __init__(self, persistence: Persistence) -> None:
        # Read at bind time: backends open their checkpointer and store in `setup()`, on the serving loop.
        self.persistence = persistence
        self._graphs: dict[str, LoadedGraph] = {}
        self._bound: dict[tuple[str, bool], Pregel] = {}

    def load(self, specs: list[GraphSpec], base_dir: Path) -> None:
        for spec in specs:
            try:
                value = import_target(spec.target, base_dir)
            except ConfigError as exc:
                raise ConfigError(f"graph '{spec.graph_id}': {exc}") from exc
            if not isinstance(value, (Pregel, StateGraph)) and not callable(value):
                raise ConfigError(
                    f"graph '{spec.graph_id}': {spec.target} is a {type(value).__name__}, "
                    "expected a graph, a StateGraph or a factory function"
                )
            loaded = LoadedGraph(spec, value)
            if loaded.is_factory:
                try:
                    loaded.call = classify_factory(value)
                except ValueError as exc:
                    raise ConfigError(f"graph '{spec.graph_id}': {exc}") from exc
            self._graphs[spec.graph_id] = loaded

    @property
    def graph_ids(self) -> list[str]:
        return list(self._graphs)

    def __contains__(self, graph_id: str) -> bool:
        return graph_id in self._graphs

    def get(self, graph_id: str) -> LoadedGraph:
        return self._graphs[graph_id]

    def default_name(self, graph_id: str) -> str:
        """The system assistant's name: the compiled graph's own name unless it is the default."""
        value = self._graphs[graph_id].value
        name = getattr(value, "name", None) if isinstance(value, Pregel) else None
        return name if name and name != "LangGraph" else graph_id

    def _bind(self, graph: Any, checkpointed: bool = True) -> Pregel:
        checkpointer = self.persistence.checkpointer if checkpointed else None
        if isinstance(graph, StateGraph):
            return graph.compile(checkpointer=checkpointer, store=self.persistence.store)
        if isinstance(graph, Pregel):
            return graph.copy(update={"checkpointer": checkpointer, "store": self.persistence.store})
        raise TypeError(f"graph factory returned {type(graph).__name__}, expected a graph")

    @contextlib.asynccontextmanager
    async def graph(
        self,
        graph_id: str,
        config: RunnableConfig | None = None,
        *,
        access: AccessContext = "threads.read",
        context: Any = None,
        checkpointed: bool = True,
    ) -> AsyncIterator[Pregel]:
        """A runnable graph bound to the server's checkpointer and store (`checkpointed=False`: no checkpointer,
        for a run whose thread is deleted when it ends, as the reference runs them).

        A factory is entered for this one use; `access` says why (the reference's `ServerRuntime.access_context`)
        and `context` is the run's context, handed to the factory when it executes a run."""
        loaded = self._graphs[graph_id]
        if not loaded.is_factory:
            bound = self._bound.get((graph_id, checkpointed))
            if bound is None:
                bound = self._bound[(graph_id, checkpointed)] = self._bind(loaded.value, checkpointed)
            yield bound
            return
        assert loaded.call is not None
        store = self.persistence.store
        async with enter_factory(loaded.value, loaded.call, config or {}, access, store, context) as graph:
            yield self._bind(graph, checkpointed)

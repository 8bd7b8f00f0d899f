"""Driving one graph run and turning its output into SSE events.

Plain `astream` is used unless the `events` mode is requested, in which case `astream_events(version="v2")`
runs with the same stream modes and the root graph's chunks are unpacked into identical frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import Command, Send

from robyn_server.protocol_v2.runner import is_protocol_run, stream_protocol
from robyn_server.streaming.modes import Event, StreamMapper


def build_input(kwargs: dict[str, Any]) -> Any:
    """The graph input: a `Command` when one was sent, else the input (None continues from a checkpoint)."""
    command = kwargs.get("command")
    if not command:
        return kwargs.get("input")
    goto = command.get("goto")
    if goto is not None:
        targets = goto if isinstance(goto, list) else [goto]
        goto = [Send(g["node"], g.get("input")) if isinstance(g, dict) else g for g in targets]
        if len(goto) == 1:
            goto = goto[0]
    return Command(update=command.get("update"), resume=command.get("resume"), goto=goto or ())


async def stream_graph(
    graph: Pregel,
    graph_input: Any,
    config: RunnableConfig,
    kwargs: dict[str, Any],
    mapper: StreamMapper,
) -> AsyncIterator[Event]:
    options: dict[str, Any] = {
        "stream_mode": mapper.langgraph_modes(),
        "subgraphs": mapper.subgraphs,
        "interrupt_before": kwargs.get("interrupt_before"),
        "interrupt_after": kwargs.get("interrupt_after"),
    }
    if kwargs.get("durability"):
        options["durability"] = kwargs["durability"]
    if kwargs.get("context"):
        options["context"] = kwargs["context"]
    if is_protocol_run(config):  # a protocol-v2 run (`run.start`): LangGraph's own protocol events
        async for shaped in stream_protocol(graph, graph_input, config, options, mapper):
            yield shaped
        return
    if mapper.wants_events:
        async for event in graph.astream_events(graph_input, config, version="v2", **options):
            for mapped in mapper.map_langgraph_event(event):
                yield mapped
        return
    async for part in graph.astream(graph_input, config, **options):
        if mapper.subgraphs:
            namespace, mode, chunk = part
        else:
            namespace, (mode, chunk) = (), part
        for mapped in mapper.map(namespace, mode, chunk):
            yield mapped

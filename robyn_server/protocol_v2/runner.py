"""Driving a protocol-v2 run with LangGraph's own protocol stream (`astream_events(version="v3")`).

LangGraph emits the protocol's event envelopes itself (content-block `messages`, subgraph `lifecycle`, ...);
this module only reshapes them the way the reference server puts them on the wire: message events without
their metadata, subgraph lifecycle events moved into the subgraph's namespace, interrupts surfaced as
`input.requested`. Each event leaves as `(name, body)`: `name` is `method` plus `|`-joined namespace (so
readers filter without parsing JSON), `body` the JSON of `{"method", "params"}`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.stream._types import StreamTransformer

from robyn_server import serde
from robyn_server.protocol_v2.state import checkpoint, state_payload
from robyn_server.streaming.modes import StreamMapper

PROTOCOL_V2_KEY = "__event_streaming_v2"  # the reference's configurable marker for a protocol-v2 run


def is_protocol_run(config: RunnableConfig) -> bool:
    return bool((config.get("configurable") or {}).get(PROTOCOL_V2_KEY))


class ChannelModes(StreamTransformer):
    """Asks the graph for the modes behind the `updates`, `custom`, `checkpoints` and `tools` channels, which
    LangGraph's built-in transformers do not request; it passes every event through untouched."""

    required_stream_modes: ClassVar[tuple[str, ...]] = ("updates", "custom", "checkpoints", "tools")

    def init(self) -> dict[str, Any]:
        return {}

    def process(self, event: Any) -> bool:
        return True


class ProtocolModes(ChannelModes):
    """For the lean stream: also the modes LangGraph's values and messages transformers would have asked for."""

    required_stream_modes: ClassVar[tuple[str, ...]] = ("values", "messages", *ChannelModes.required_stream_modes)


def _body(method: str, namespace: list[str], timestamp: int, data: Any) -> bytes:
    return serde.dumps({"method": method, "params": {"namespace": namespace, "timestamp": timestamp, "data": data}})


def _name(method: str, namespace: list[str]) -> str:
    return "|".join((method, *namespace)) if namespace else method


class ProtocolShaper:
    """Per-run state: subgraph names (for their `completed` events) and interrupts already announced."""

    def __init__(self, mapper: StreamMapper) -> None:
        self.mapper = mapper
        self.graph_names: dict[tuple[str, ...], str] = {}
        self.announced: set[str] = set()

    def shape(self, event: dict[str, Any]) -> list[tuple[str, bytes]]:
        method = event["method"]
        params = event["params"]
        namespace = list(params.get("namespace") or ())
        timestamp = params.get("timestamp") or int(time.time() * 1000)
        data = params.get("data")
        if method == "messages":
            if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], dict):
                data = data[0]
            if not isinstance(data, dict) or not isinstance(data.get("event"), str):
                return []  # a whole-message fallback; the content-block events already carried it
        elif method == "lifecycle" and isinstance(data, dict) and data.get("namespace"):
            namespace = list(data["namespace"])
            key = tuple(namespace)
            if data.get("event") == "started":
                self.graph_names[key] = data.get("graph_name") or ""
            else:
                data = {k: v for k, v in data.items() if k != "namespace"}
                data.setdefault("graph_name", self.graph_names.get(key, ""))
        elif method in ("values", "updates", "tools"):
            raw = data
            data = state_payload(data)
            if method == "updates" and not data:
                return []  # it only held `__interrupt__`, which leaves as `input.requested`
            if method == "values" and not namespace:
                self.mapper.last_values = raw
                self.mapper.saw_values = True
        elif method == "checkpoints":
            data = checkpoint(data)
            if data is None:
                return []
        elif method == "custom" and not (isinstance(data, dict) and "payload" in data):
            data = {"payload": data}
        events = [(_name(method, namespace), _body(method, namespace, timestamp, data))]
        if method == "values":
            # Like the reference, a new interrupt is announced before the values that carry it.
            for interrupt in reversed(params.get("interrupts") or ()):
                interrupt_id = getattr(interrupt, "id", None)
                if interrupt_id is None or interrupt_id in self.announced:
                    continue
                self.announced.add(interrupt_id)
                payload = {"interrupt_id": interrupt_id, "payload": getattr(interrupt, "value", None)}
                events.insert(
                    0, (_name("input.requested", namespace), _body("input.requested", namespace, timestamp, payload))
                )
        return events


def _lean_run_stream(graph: Pregel, graph_input: Any, config: RunnableConfig, options: dict[str, Any]) -> Any:
    """What `astream_events(version="v3")` builds, with only the lifecycle transformer: the values, messages and
    subgraph projections it adds are never read here and cost about 40% of a long run's time. None when this
    LangGraph lacks the pieces (then the public API is used)."""
    try:
        from langgraph._internal._config import patch_configurable
        from langgraph._internal._constants import CONFIG_KEY_STREAM_MESSAGES_V2
        from langgraph.pregel.main import _collect_stream_modes
        from langgraph.stream._mux import StreamMux
        from langgraph.stream.run_stream import AsyncGraphRunStream
        from langgraph.stream.transformers import LifecycleTransformer
    except ImportError:
        return None
    mux = StreamMux(factories=[LifecycleTransformer, ProtocolModes], scope=(), is_async=True)
    events = graph.astream(
        graph_input,
        patch_configurable(config, {CONFIG_KEY_STREAM_MESSAGES_V2: True}),
        stream_mode=_collect_stream_modes(mux),
        subgraphs=True,
        version="v2",
        **options,
    )
    return AsyncGraphRunStream(events.__aiter__(), mux)


async def stream_protocol(
    graph: Pregel, graph_input: Any, config: RunnableConfig, options: dict[str, Any], mapper: StreamMapper
) -> AsyncIterator[tuple[str, bytes]]:
    """The run's protocol events; `options` are the driver's `astream` options minus the ones v3 owns."""
    options = {k: v for k, v in options.items() if k not in ("stream_mode", "subgraphs") and v is not None}
    shaper = ProtocolShaper(mapper)
    run_stream = _lean_run_stream(graph, graph_input, config, options)
    if run_stream is None:
        run_stream = await graph.astream_events(
            graph_input, config, version="v3", transformers=[ChannelModes], **options
        )
    async with run_stream:
        async for event in run_stream:
            for shaped in shaper.shape(event):
                yield shaped

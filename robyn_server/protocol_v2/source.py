"""Where protocol-v2 streams get their events: the event bus's per-thread protocol log, fed by the run manager.

The transports use `reader(thread_id)` (replayable history plus live events) and `last_seq(thread_id)`; where the
log lives (in memory, or a Redis stream every process follows) is the bus's (`EventBus.protocol_reader`). It is fed
through the run manager's observer hook (`RunManager.observers`): for every protocol-v2 run the manager asks
`run_started(handle)` for a sink, hands it each `(name, body)` event, and calls `finished(status, result)`
once the run's outcome is stored. Root `lifecycle` events (`running`, then `completed`, `failed`, or
`interrupted` right after the first `input.requested`) are made here, like the reference's synthetic ones.
"""

from __future__ import annotations

import time
from typing import Any

from robyn_server import serde
from robyn_server.protocol_v2.log import ThreadEventLog
from robyn_server.protocol_v2.runner import is_protocol_run
from robyn_server.streaming.bus import EventBus, ProtocolWriter


def lifecycle_body(event: str, graph_name: str, error: str | None = None) -> bytes:
    data: dict[str, Any] = {"event": event, "graph_name": graph_name}
    if error is not None:
        data["error"] = error
    return serde.dumps(
        {"method": "lifecycle", "params": {"namespace": [], "timestamp": int(time.time() * 1000), "data": data}}
    )


class RunSink:
    """One protocol run's path into its thread's log."""

    __slots__ = ("writer", "graph_name", "interrupted")

    def __init__(self, writer: ProtocolWriter, graph_name: str) -> None:
        self.writer = writer
        self.graph_name = graph_name
        self.interrupted = False
        writer.append("lifecycle", lifecycle_body("running", graph_name))

    def event(self, name: str, body: bytes) -> None:
        self.writer.append(name, body)
        if name.startswith("input.requested") and not self.interrupted:
            # The reference announces the pause as soon as the run asks for input, before its last events.
            self.interrupted = True
            self.writer.append("lifecycle", lifecycle_body("interrupted", self.graph_name))

    def finished(self, status: str, result: Any) -> None:
        """The run's outcome is stored; `pending` means it was handed back (its next attempt says `running`)."""
        try:
            if status == "pending" or (status == "success" and self.interrupted):
                return  # `interrupted` was sent with the first `input.requested`
            if status == "success":
                event, error = "completed", None
            elif status == "interrupted":
                event, error = "failed", "Run was cancelled"
            else:
                failure = result.get("__error__") if isinstance(result, dict) else None
                error = (failure or {}).get("message") or status
                event = "failed"
            self.writer.append("lifecycle", lifecycle_body(event, self.graph_name, error))
        finally:
            self.writer.release()


class ThreadEvents:
    """The protocol-v2 view of the bus: every thread's event log, and the run manager's observer that fills it."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def reader(self, thread_id: str) -> ThreadEventLog:
        return await self.bus.protocol_reader(thread_id)

    async def last_seq(self, thread_id: str) -> int:
        return await self.bus.protocol_last_seq(thread_id)

    # -------------------------------------------------------------- RunManager observer hook
    def run_started(self, handle: Any) -> RunSink | None:
        config = handle.run["kwargs"]["config"]
        if not is_protocol_run(config):
            return None
        return RunSink(self.bus.protocol_writer(handle.thread_id), config["configurable"].get("graph_id", ""))

"""Where protocol-v2 streams get their events: one `ThreadEventLog` per thread, fed by the run manager.

The interface the transports use is small: `log(thread_id)` (replayable history plus live events). It is fed
through the run manager's observer hook (`RunManager.observers`): for every protocol-v2 run the manager asks
`run_started(handle)` for a sink, hands it each `(name, body)` event, and calls `finished(status, result)`
once the run's outcome is stored. Root `lifecycle` events (`running`, then `completed`, `failed`, or
`interrupted` right after the first `input.requested`) are made here, like the reference's synthetic ones.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from robyn_server import serde
from robyn_server.protocol_v2.log import ThreadEventLog
from robyn_server.protocol_v2.runner import is_protocol_run

MAX_IDLE_LOGS = 1000  # thread logs kept in memory; beyond it the least recently used idle ones go


def lifecycle_body(event: str, graph_name: str, error: str | None = None) -> bytes:
    data: dict[str, Any] = {"event": event, "graph_name": graph_name}
    if error is not None:
        data["error"] = error
    return serde.dumps(
        {"method": "lifecycle", "params": {"namespace": [], "timestamp": int(time.time() * 1000), "data": data}}
    )


class RunSink:
    """One protocol run's path into its thread's log."""

    __slots__ = ("log", "graph_name", "interrupted")

    def __init__(self, log: ThreadEventLog, graph_name: str) -> None:
        self.log = log
        self.graph_name = graph_name
        self.interrupted = False
        log.users += 1
        log.append("lifecycle", lifecycle_body("running", graph_name))

    def event(self, name: str, body: bytes) -> None:
        self.log.append(name, body)
        if name.startswith("input.requested") and not self.interrupted:
            # The reference announces the pause as soon as the run asks for input, before its last events.
            self.interrupted = True
            self.log.append("lifecycle", lifecycle_body("interrupted", self.graph_name))

    def finished(self, status: str, result: Any) -> None:
        self.log.users -= 1
        if status == "success":
            if self.interrupted:
                return  # `interrupted` was sent with the first `input.requested`
            event, error = "completed", None
        elif status == "interrupted":
            event, error = "failed", "Run was cancelled"
        else:
            failure = result.get("__error__") if isinstance(result, dict) else None
            error = (failure or {}).get("message") or status
            event = "failed"
        self.log.append("lifecycle", lifecycle_body(event, self.graph_name, error))


class ThreadEvents:
    """Every thread's protocol event log, created on first use by a run or a reader."""

    def __init__(self, max_logs: int = MAX_IDLE_LOGS) -> None:
        self._logs: OrderedDict[str, ThreadEventLog] = OrderedDict()
        self._lock = threading.Lock()
        self.max_logs = max_logs

    def log(self, thread_id: str) -> ThreadEventLog:
        with self._lock:
            log = self._logs.get(thread_id)
            if log is None:
                log = self._logs[thread_id] = ThreadEventLog()
                if len(self._logs) > self.max_logs:
                    idle = [key for key, old in self._logs.items() if old.users == 0 and key != thread_id]
                    for key in idle[: len(self._logs) - self.max_logs]:
                        del self._logs[key]
            else:
                self._logs.move_to_end(thread_id)
            return log

    def forget(self, thread_id: str) -> None:
        """End the streams of a deleted thread."""
        with self._lock:
            log = self._logs.pop(thread_id, None)
        if log is not None:
            log.close()

    # -------------------------------------------------------------- RunManager observer hook
    def run_started(self, handle: Any) -> RunSink | None:
        config = handle.run["kwargs"]["config"]
        if not is_protocol_run(config):
            return None
        return RunSink(self.log(handle.thread_id), config["configurable"].get("graph_id", ""))

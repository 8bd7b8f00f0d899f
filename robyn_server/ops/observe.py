"""The run hooks the run manager calls: start (ids into the log context, metrics, a span), the first token,
and the end (status, duration, attempt). One log line at each end of a run."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from robyn_server.ops import metrics, runscope, tracing
from robyn_server.ops.logs import RUNS

MESSAGE_EVENT = "messages"


class RunObservation:
    """One run's execution, from `run_started` to `run_finished`."""

    __slots__ = ("scope", "started", "awaiting_token", "span")

    def __init__(self, scope: runscope.RunScope) -> None:
        self.scope = scope
        self.started = time.perf_counter()
        self.awaiting_token = True
        self.span: Any = None

    def saw(self, event: str) -> None:
        """Called for each event the run emits; the first `messages*` one is the first token."""
        if self.awaiting_token and event.startswith(MESSAGE_EVENT):
            self.awaiting_token = False
            metrics.run_first_token(time.perf_counter() - self.started)

    def config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The config to run the graph with: with tracing on, plus the span callbacks (the stored one is kept)."""
        if self.span is None:
            return config
        handler = tracing.callbacks(self.span, self.scope)
        existing = config.get("callbacks")
        callbacks = [*existing, handler] if isinstance(existing, list) else [handler]
        return {**config, "callbacks": callbacks}


def run_started(run: dict[str, Any]) -> RunObservation:
    """The run is about to execute, in its own task: set its log context, count it, start its span."""
    scope = runscope.scope_of(run)
    runscope.enter(scope)
    observation = RunObservation(scope)
    created = run.get("created_at")
    wait = (datetime.now(UTC) - created).total_seconds() if isinstance(created, datetime) else None
    metrics.run_started(wait)
    if tracing.ENABLED:
        observation.span = tracing.start_run_span(scope)
    if RUNS.isEnabledFor(logging.INFO):
        extra: dict[str, Any] = {"attempt": scope.attempt, "event": "run_started"}
        if wait is not None:
            extra["queue_wait_ms"] = round(wait * 1000, 3)
        RUNS.info("run %s started", scope.run_id, extra=extra)
    return observation


def run_finished(observation: RunObservation | None, status: str) -> None:
    if observation is None:
        return
    seconds = time.perf_counter() - observation.started
    metrics.run_finished(status, seconds)
    if observation.span is not None:
        tracing.end_run_span(observation.span, status)
        observation.span = None
    if RUNS.isEnabledFor(logging.INFO):
        scope = observation.scope
        RUNS.info(
            "run %s finished: %s",
            scope.run_id,
            status,
            extra={"status": status, "duration_ms": round(seconds * 1000, 3), "attempt": scope.attempt,
                   "event": "run_finished"},
        )  # fmt: skip

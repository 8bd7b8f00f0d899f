"""Spans kept as plain ids, times and attributes and handed to the export processors finished when they end.

The SDK's live span guards every change with a lock, keeps its attributes and events in bounded containers and
copies them into a `ReadableSpan` at the end: about a third of what tracing costs a run, for spans whose only
writers are this server's hooks (the request's and the run's) or LangChain's callbacks (node, model and tool
spans). A `RecordedSpan` is a full `opentelemetry.trace.Span`, so it can be made current: code in the run (user
graphs, the httpx instrumentation) reads its context and starts SDK spans under it, or sets attributes and
events on it. Sampling is the provider's sampler, as the SDK's tracer decides it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

UNSET = Status(StatusCode.UNSET)


def exception_event(error: BaseException, timestamp: int | None = None, escaped: bool = False,
                    attributes: Mapping[str, Any] | None = None) -> Event:  # fmt: skip
    """The `exception` event the SDK's `Span.record_exception` adds."""
    module, qualname = type(error).__module__, type(error).__qualname__
    values: dict[str, Any] = {
        "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
        "exception.message": str(error),
        "exception.stacktrace": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "exception.escaped": str(escaped),
    }
    if attributes:
        values.update(attributes)
    return Event("exception", attributes=values, timestamp=timestamp or time.time_ns())


class RecordedSpan(trace.Span):
    """A recording span without the SDK's live-span machinery; `end` exports it as a `ReadableSpan`."""

    __slots__ = ("name", "context", "parent", "kind", "attributes", "events", "status", "start", "ended",
                 "resource", "instrumentation_scope", "processors")  # fmt: skip

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
                 attributes: dict[str, Any], resource: Any, scope: Any, processors: Sequence[Any]) -> None:  # fmt: skip
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.events: list[Event] = []
        self.status = UNSET
        self.start = time.time_ns()
        self.ended = False
        self.resource = resource
        self.instrumentation_scope = scope
        self.processors = processors

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return not self.ended

    def set_attribute(self, key: str, value: Any) -> None:
        if not self.ended:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self.ended:
            self.attributes.update(attributes)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None,
                  timestamp: int | None = None) -> None:  # fmt: skip
        if not self.ended:
            self.events.append(Event(name, attributes=dict(attributes or {}), timestamp=timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        if not self.ended:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.ended or self.status.status_code is StatusCode.OK:  # OK is final, as in the SDK
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(self, exception: BaseException, attributes: Mapping[str, Any] | None = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:  # fmt: skip
        if not self.ended:
            self.events.append(exception_event(exception, timestamp, escaped, attributes))

    def end(self, end_time: int | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        finished = ReadableSpan(name=self.name, context=self.context, parent=self.parent, resource=self.resource,
                                attributes=self.attributes, events=tuple(self.events), kind=self.kind,
                                status=self.status, start_time=self.start, end_time=end_time or time.time_ns(),
                                instrumentation_scope=self.instrumentation_scope)  # fmt: skip
        for processor in self.processors:
            processor.on_end(finished)


def start(provider: Any, scope: Any, processors: Sequence[Any], name: str, parent: Any, kind: SpanKind,
          attributes: dict[str, Any]) -> trace.Span:  # fmt: skip
    """A span under `parent` (a context, or None for the current one), sampled by the provider's sampler as the
    SDK's tracer does: a `RecordedSpan` when recorded, else a non-recording span that carries the ids on."""
    parent_context = trace.get_current_span(parent).get_span_context()
    if not parent_context.is_valid:
        parent_context = None
        trace_id = provider.id_generator.generate_trace_id()
        random_trace_id = provider.id_generator.is_trace_id_random()
    else:
        trace_id = parent_context.trace_id
        random_trace_id = parent_context.trace_flags.random_trace_id
    sampled = provider.sampler.should_sample(parent, trace_id, name, kind, attributes)
    flags = TraceFlags.SAMPLED if sampled.decision.is_sampled() else TraceFlags.DEFAULT
    if random_trace_id:
        flags |= TraceFlags.RANDOM_TRACE_ID
    context = SpanContext(trace_id, provider.id_generator.generate_span_id(), False, TraceFlags(flags),
                          sampled.trace_state)  # fmt: skip
    if not sampled.decision.is_recording():
        return trace.NonRecordingSpan(context)
    if sampled.attributes:
        attributes = {**sampled.attributes, **attributes}
    return RecordedSpan(name, context, parent_context, kind, attributes, provider.resource, scope, processors)

"""The in-place OTLP span encoding (`robyn_server/ops/otlp_encoding.py`) gives the SDK encoder's bytes: for SDK
live spans (for the spans of a graph run through the ops hooks see `test_ops_tracing_sdk.py`), for random plain
attributes, kinds, statuses, events and parents; batches it does not cover (links, array and map values) go to
the SDK whole."""

from __future__ import annotations

import random
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from robyn_server.ops import otlp_encoding

RESOURCE = Resource.create({"service.name": "robyn-server", "service.version": "test", "host.cores": 2})


def same_bytes(spans: list[Any]) -> None:
    ours = otlp_encoding.encode(spans).SerializePartialToString()
    assert ours == encode_spans(spans).SerializePartialToString()
    assert len(ExportTraceServiceRequest.FromString(ours).resource_spans) >= (1 if spans else 0)


def test_the_sample_the_server_checks_at_start() -> None:
    same_bytes(otlp_encoding.sample_spans(RESOURCE))


def test_sdk_live_spans_and_the_batches_left_to_the_sdk() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests", "1.0", schema_url="https://opentelemetry.io/schemas/1.21.0")
    with tracer.start_as_current_span("outer", kind=SpanKind.CONSUMER, attributes={"n": 1}) as outer:
        outer.add_event("mark", {"where": "outer", "count": 2})
        outer.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("inner") as inner:
            inner.record_exception(KeyError("k"))
    plain = list(memory.get_finished_spans())
    same_bytes(plain)
    with tracer.start_as_current_span("listed", attributes={"tags": ["a", "b"]}):
        pass
    with tracer.start_as_current_span("linked", links=[Link(outer.get_span_context(), {"why": "retry"})]):
        pass
    for extra in memory.get_finished_spans()[len(plain) :]:
        assert not isinstance(otlp_encoding.encode([*plain, extra]), otlp_encoding.Encoded)  # the SDK's message
        same_bytes([*plain, extra])


def test_random_plain_spans() -> None:
    rng = random.Random(20261201)

    def text() -> str:
        return "".join(rng.choice("abcé✓ ") for _ in range(rng.randint(0, 12)))

    values = [lambda: rng.choice([True, False]), lambda: rng.randint(-(2**63), 2**63 - 1), lambda: rng.random() * 1e6,
              text, lambda: rng.randbytes(5)]  # fmt: skip
    scopes = [None, InstrumentationScope("robyn_server"), InstrumentationScope("x", "2", "https://schema", {"k": "v"})]
    resources = [RESOURCE, Resource.create({"service.name": "other"}, schema_url="https://r")]

    def attributes() -> dict[str, Any]:
        return {f"k{i}": rng.choice(values)() for i in range(rng.randint(0, 6))}

    for _ in range(40):
        spans = []
        for _ in range(rng.randint(1, 12)):
            trace_id, span_id = rng.getrandbits(128) or 1, rng.getrandbits(64) or 1
            state = TraceState([("v", "1")]) if rng.random() < 0.3 else None
            context = SpanContext(trace_id, span_id, False, TraceFlags(rng.choice([0, 1, 3])), state)
            parent = None
            if rng.random() < 0.7:
                parent = SpanContext(trace_id, rng.getrandbits(64) or 1, rng.random() < 0.5, TraceFlags(1))
            events = tuple(
                Event(f"e{i}", attributes(), timestamp=rng.getrandbits(62)) for i in range(rng.randint(0, 2))
            )
            status = rng.choice([Status(StatusCode.UNSET), Status(StatusCode.OK), Status(StatusCode.ERROR, "boom"),
                                 Status(StatusCode.ERROR)])  # fmt: skip
            start = rng.getrandbits(62)
            end = start + rng.randint(0, 10**9)
            name, resource = f"span {rng.randint(0, 9)}", rng.choice(resources)
            span = ReadableSpan(name, context, parent, resource, attributes(), events,
                                kind=rng.choice(list(SpanKind)), status=status, start_time=start, end_time=end,
                                instrumentation_scope=rng.choice(scopes))  # fmt: skip
            spans.append(span)
        same_bytes(spans)


def test_installed_in_the_otlp_http_exporter_only_when_it_matches() -> None:
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    original = trace_exporter.encode_spans
    try:
        trace_exporter.encode_spans = encode_spans
        broken = otlp_encoding.sample_spans(RESOURCE)
        real_encode = otlp_encoding.encode
        otlp_encoding.encode = lambda spans: otlp_encoding.Encoded(b"different")  # type: ignore[assignment]
        try:
            assert not otlp_encoding.install(broken) and trace_exporter.encode_spans is encode_spans
        finally:
            otlp_encoding.encode = real_encode  # type: ignore[assignment]
        assert otlp_encoding.install(otlp_encoding.sample_spans(RESOURCE))
        assert trace_exporter.encode_spans is otlp_encoding.encode
    finally:
        trace_exporter.encode_spans = original

"""OpenTelemetry traces, opt-in with the standard `OTEL_*` variables; nothing is imported or created when off.

On when `OTEL_TRACES_EXPORTER` includes `otlp` or `console`, or when `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not true). Spans: one server span per
request (continuing an incoming W3C `traceparent`), one per run (a child of the request that created it), one
per graph node, model call and tool call (LangChain callbacks), and httpx client spans for the outgoing calls
of the run (model endpoint, MCP, RAG), which carry `traceparent` on.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from robyn_server.ops import requests, runscope

logger = logging.getLogger("robyn_server.tracing")

ENABLED = False
# the tracer, the provider and the processors that export spans (node, model and tool spans go to them directly)
# and, bound to them, `start` (this server's own spans: request, run) and `callbacks` (a run's span callbacks)
_state: dict[str, Any] = {"tracer": None, "provider": None, "exporting": [], "start": None, "callbacks": None}
# OpenTelemetry's API, bound by `configure` (never imported while tracing is off): the request and run hooks
# use these names, with no import statement run per request
context: Any = None
propagate: Any = None
trace: Any = None
Status: Any = None
StatusCode: Any = None
_traceparent: Any = None  # a W3C TraceContext propagator


def wanted(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in (env.get("OTEL_TRACES_EXPORTER") or "").split(",") if e.strip()}
    if exporters:
        return bool(exporters & {"otlp", "console"})
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(processor: Any = None) -> bool:
    """Set up the tracer provider from the environment (or with `processor`, for tests). Returns ENABLED."""
    global ENABLED, context, propagate, trace, Status, StatusCode, _traceparent
    if processor is None and not wanted():
        return False
    from opentelemetry import context, propagate, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from robyn_server import __version__

    _traceparent = TraceContextTextMapPropagator()
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "robyn-server",
                                "service.version": __version__})  # fmt: skip
    provider = TracerProvider(resource=_hashed(resource))
    provider.add_span_processor(_RequestIdProcessor())
    exporting: list[Any] = []
    if processor is not None:
        exporting.append(processor)
    else:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporters = {e.strip().lower() for e in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")}
        if "console" in exporters:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporting.append(BatchSpanProcessor(ConsoleSpanExporter()))
        if "otlp" in exporters:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            from robyn_server.ops import otlp_encoding

            otlp_encoding.install(otlp_encoding.sample_spans(provider.resource))
            exporting.append(BatchSpanProcessor(OTLPSpanExporter()))
    for each in exporting:
        provider.add_span_processor(each)
    trace.set_tracer_provider(provider)
    from functools import partial

    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from robyn_server.ops import recorded_span
    from robyn_server.ops.trace_callbacks import SpanCallbacks

    start = partial(recorded_span.start, provider, InstrumentationScope("robyn_server"), exporting)
    span_callbacks = partial(SpanCallbacks, id_generator=provider.id_generator, processors=exporting)
    _state.update(provider=provider, tracer=trace.get_tracer("robyn_server"), exporting=exporting, start=start,
                  callbacks=span_callbacks)  # fmt: skip
    _instrument_httpx()
    ENABLED = True
    return True


def _hashed(resource: Any) -> Any:
    """The resource, hashed once: the OTLP encoder groups a batch's spans by resource, hashing it for every span
    (a JSON dump of its attributes, 3.6 us of the 33 us it takes to encode one of our spans)."""
    from opentelemetry.sdk.resources import Resource

    class HashedResource(Resource):
        def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
            super().__init__(attributes, schema_url)
            self._hash = super().__hash__()

        def __hash__(self) -> int:
            return self._hash

    return HashedResource(resource.attributes, resource.schema_url)


def _instrument_httpx() -> None:
    """Client spans and `traceparent` on every httpx call (MCP, RAG) and httpx2 call (the openai SDK's client)."""
    try:
        from opentelemetry.instrumentation import httpx as instrumentation
    except ImportError:  # pragma: no cover - a declared dependency
        logger.warning("opentelemetry-instrumentation-httpx is not installed: outgoing calls carry no traceparent")
        return
    for name in ("HTTPXClientInstrumentor", "HTTPX2ClientInstrumentor"):
        cls = getattr(instrumentation, name, None)
        if cls is None:
            continue
        try:
            instrumentor = cls()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()
        except Exception as exc:  # httpx2 not installed: nothing to instrument
            logger.debug("%s not applied: %s", name, exc)


def uninstrument_httpx() -> None:
    from opentelemetry.instrumentation import httpx as instrumentation

    for name in ("HTTPXClientInstrumentor", "HTTPX2ClientInstrumentor"):
        cls = getattr(instrumentation, name, None)
        if cls is not None and cls().is_instrumented_by_opentelemetry:
            cls().uninstrument()


def shutdown() -> None:
    """Flush spans still queued for export (called at server shutdown)."""
    provider = _state.get("provider")
    if provider is not None:
        provider.force_flush(5000)


class _RequestIdProcessor:
    """Stamps every span started in a request or run with its request id (httpx client spans too)."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.attributes and "langgraph.request_id" in span.attributes:
            return  # our own spans are created with their ids
        run = runscope.current()
        request_id = (run.request_id if run is not None else None) or requests.current_request_id()
        if request_id:
            span.set_attribute("langgraph.request_id", request_id)
        if run is not None:
            span.set_attribute("langgraph.run_id", run.run_id)
            span.set_attribute("langgraph.thread_id", run.thread_id)

    def on_end(self, span: Any) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# ---------------------------------------------------------------------------- requests
def _start(name: str, parent: Any, kind: Any, attributes: dict[str, Any]) -> Any:
    """One of this server's own spans (request, run): recorded without the SDK's live span, as node spans are."""
    return _state["start"](name, parent, kind, attributes)


def start_server_span(info: Any, headers: Any) -> None:
    """Start the request's server span, continuing the caller's `traceparent`, and make it current."""
    carrier = {}
    for name in ("traceparent", "tracestate"):
        value = headers.get(name)
        if value:
            carrier[name] = value
    parent = propagate.extract(carrier) if carrier else None
    attributes = {"http.request.method": info.method, "url.path": info.path, "langgraph.request_id": info.request_id}
    span = _start(f"{info.method} {info.path}", parent, trace.SpanKind.SERVER, attributes)
    info.span = span
    context.attach(trace.set_span_in_context(span))  # the request's context only: runs it creates inherit it


def end_server_span(info: Any, status: int) -> None:
    span = info.span
    info.span = None
    if info.route:
        span.update_name(f"{info.method} {info.route}")
        span.set_attribute("http.route", info.route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


# ---------------------------------------------------------------------------- runs
def creation_context() -> dict[str, str]:
    """The W3C `traceparent` (and `tracestate`) of the current span, stored with a run when it is created so
    the process that executes it, this one or another, starts the run's span under the creating request."""
    carrier: dict[str, str] = {}
    _traceparent.inject(carrier)
    return carrier


def _stored_parent(carrier: Any) -> Any:
    """The context a run's stored `trace_context` names, or None (not stored, or not a W3C traceparent)."""
    if not isinstance(carrier, dict) or not isinstance(carrier.get("traceparent"), str):
        return None
    wanted = {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate") and isinstance(v, str)}
    parent = _traceparent.extract(wanted)
    return parent if trace.get_current_span(parent).get_span_context().is_valid else None


def start_run_span(scope: Any) -> Any:
    """The run's span, a child of the request that created the run (its stored `trace_context`, else the
    current context), made current for the run's task so node, model, tool and httpx spans nest under it."""
    attributes = {"langgraph.run_id": scope.run_id, "langgraph.thread_id": scope.thread_id,
                  "langgraph.run_attempt": scope.attempt}  # fmt: skip
    if scope.graph_id:
        attributes["langgraph.graph_id"] = scope.graph_id
    if scope.assistant_id:
        attributes["langgraph.assistant_id"] = scope.assistant_id
    if scope.request_id:
        attributes["langgraph.request_id"] = scope.request_id
    parent = _stored_parent(scope.trace_context)
    span = _start(f"run {scope.graph_id or ''}".strip(), parent, trace.SpanKind.INTERNAL, attributes)
    context.attach(trace.set_span_in_context(span))
    return span


def end_run_span(span: Any, status: str) -> None:
    span.set_attribute("langgraph.run_status", status)
    if status in ("error", "timeout"):
        span.set_status(Status(StatusCode.ERROR, status))
    span.end()


def callbacks(run_span: Any, scope: Any) -> Any:
    """A LangChain callback handler making node, model and tool spans under `run_span`."""
    return _state["callbacks"](run_span, scope)

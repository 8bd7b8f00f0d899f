"""A local OTLP/HTTP trace receiver (decodes the protobuf with opentelemetry-proto) and an OpenAI-compatible
model stub that records the headers of each call, both stdlib HTTP servers in threads."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class _Threaded:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> _Threaded:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OtlpReceiver(_Threaded):
    """Collects every span exported to `POST /v1/traces` as a dict (hex ids, decoded attributes)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                found = []
                for resource_spans in request.resource_spans:
                    service = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            found.append(
                                {
                                    "name": span.name,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent_span_id": span.parent_span_id.hex(),
                                    "kind": span.kind,
                                    "attributes": {a.key: _value(a.value) for a in span.attributes},
                                    "service": service.get("service.name"),
                                }
                            )
                with receiver.lock:
                    receiver.spans.extend(found)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        super().__init__(Handler)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


class ModelStub(_Threaded):
    """`POST /v1/chat/completions` answering "stub answer"; `calls` holds each call's headers. With `tool_calls`
    set (`[{"name": ..., "arguments": {...}}]`), a call offering tools whose last message is the user's is
    answered with those calls instead (the tools agent then calls its MCP and RAG tools)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.tool_calls: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                stub.calls.append({k.lower(): v for k, v in self.headers.items()})
                message: dict[str, Any] = {"role": "assistant", "content": "stub answer"}
                last = (body.get("messages") or [{}])[-1]
                if stub.tool_calls and body.get("tools") and last.get("role") == "user":
                    calls = [
                        {"index": i, "id": f"call_{i}", "type": "function",
                         "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                        for i, c in enumerate(stub.tool_calls)
                    ]  # fmt: skip
                    message = {"role": "assistant", "content": "", "tool_calls": calls}
                finish = "tool_calls" if "tool_calls" in message else "stop"
                usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
                base = {"id": "c1", "created": int(time.time()), "model": "stub"}
                if body.get("stream"):
                    choice = {"index": 0, "delta": message, "finish_reason": finish}
                    chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
                    data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
                    content_type = "text/event-stream"
                else:
                    choice = {"index": 0, "message": message, "finish_reason": finish}
                    data = json.dumps(
                        {**base, "object": "chat.completion", "usage": usage, "choices": [choice]}
                    ).encode()
                    content_type = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)

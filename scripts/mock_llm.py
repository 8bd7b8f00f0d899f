#!/usr/bin/env python
"""A deterministic, OpenAI-compatible Chat Completions server, so the agent runs offline through the real
`ChatOpenAI` client over real HTTP (tests, demos, benchmarks).

    python scripts/mock_llm.py --port 8765 [--api-key KEY] [--script rules.json]

Then point the agent at `http://127.0.0.1:8765/v1` (configurable.base_url).

Endpoints: `POST /v1/chat/completions` (streaming SSE ending in `data: [DONE]`, or one JSON body; tool calls;
usage), `GET /v1/models`, and for tests `GET|DELETE /mock/requests` (the request bodies received) and
`PUT /mock/rules` (replace the script).

Answers, first match wins:
1. Script rules: `{"match": "substring of the last user message", "after_tool": true|false,
   "reply": "text with {user} {tool_result} {model}", "tool_calls": [{"name": ..., "arguments": {...}}],
   "status": 500, "times": 1}`; `match`, `after_tool` and `times` (use at most n times) are optional.
2. After a tool result: "The tool returned: <result>".
3. If a tool the request offers is named in the user's message (whole word): a call to it, with numbers from
   the message for numeric parameters and the message for string ones.
4. Otherwise: "You said: <message>".
Streaming splits the reply into word tokens. With `--api-key`, other keys get an OpenAI-style 401.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Rule = dict[str, Any]


def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _last(messages: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    return next((m for m in reversed(messages) if m.get("role") == role), None)


def _tool_args(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments for a tool, taken deterministically from the user's message."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
    args: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type")
        if kind in ("integer", "number"):
            value = numbers.pop(0) if numbers else 0
            args[name] = int(value) if kind == "integer" else value
        elif kind == "boolean":
            args[name] = False
        elif kind == "string":
            args[name] = text
    return args


class Brain:
    """Decides each answer from the script and the request, without randomness."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self.rules = list(rules or [])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"content": str, "tool_calls": [...]}` or `{"status": int}`."""
        messages = body.get("messages") or []
        user = _text((_last(messages, "user") or {}).get("content"))
        after_tool = bool(messages) and messages[-1].get("role") == "tool"
        tool_result = _text(messages[-1].get("content")) if after_tool else ""
        values = {"user": user, "tool_result": tool_result, "model": body.get("model", "")}
        for rule in self.rules:
            if "match" in rule and str(rule["match"]).lower() not in user.lower():
                continue
            if "after_tool" in rule and bool(rule["after_tool"]) != after_tool:
                continue
            if "times" in rule:
                if int(rule["times"]) <= 0:
                    continue
                rule["times"] = int(rule["times"]) - 1
            if "status" in rule:
                return {"status": int(rule["status"])}
            return {"content": str(rule.get("reply", "")).format(**values), "tool_calls": rule.get("tool_calls") or []}
        if after_tool:
            return {"content": f"The tool returned: {tool_result}", "tool_calls": []}
        for tool in body.get("tools") or []:
            fn = tool.get("function") or {}
            if fn.get("name") and re.search(rf"(?<![\w-]){re.escape(fn['name'])}(?![\w-])", user, re.I):
                args = _tool_args(fn.get("parameters") or {}, user)
                return {"content": "", "tool_calls": [{"name": fn["name"], "arguments": args}]}
        return {"content": f"You said: {user}", "tool_calls": []}


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _usage(body: dict[str, Any], content: str) -> dict[str, int]:
    prompt = sum(len(_text(m.get("content")).split()) for m in body.get("messages") or []) + 1
    completion = len(_tokens(content)) + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _tool_calls(calls: list[dict[str, Any]], seed: str) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls):
        call_id = "call_" + hashlib.sha1(f"{seed}:{i}".encode()).hexdigest()[:16]
        arguments = call.get("arguments", {})
        out.append(
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return out


class Handler(BaseHTTPRequestHandler):
    brain: Brain
    api_key: str | None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "mock"}]})
        elif self.path == "/mock/requests":
            with self.brain.lock:
                self._json(200, list(self.brain.requests))
        else:
            self._error(404, f"Unknown path {self.path}")

    def do_DELETE(self) -> None:
        if self.path == "/mock/requests":
            with self.brain.lock:
                self.brain.requests.clear()
            self._json(200, {"ok": True})
        else:
            self._error(404, f"Unknown path {self.path}")

    def do_PUT(self) -> None:
        try:
            rules = self._body()
        except ValueError:
            return self._error(400, "The request body is not valid JSON.")
        if self.path != "/mock/rules":
            return self._error(404, f"Unknown path {self.path}")
        if not isinstance(rules, list):
            return self._error(400, "expected a JSON list of rules")
        with self.brain.lock:
            self.brain.rules = rules
        self._json(200, {"rules": len(rules)})

    def do_POST(self) -> None:
        try:
            body = self._body()  # read first: an unread body would corrupt the next request on this connection
        except ValueError:
            return self._error(400, "The request body is not valid JSON.")
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self._error(404, f"Unknown path {self.path}")
        if self.api_key is not None and self.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_api_key")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(400, "'messages' is a required property")
        with self.brain.lock:
            self.brain.requests.append(body)
            answer = self.brain.answer(body)
        if "status" in answer:
            return self._error(answer["status"], f"Scripted failure with HTTP {answer['status']}")
        seed = hashlib.sha1(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
        completion_id = f"chatcmpl-mock-{seed[:12]}"
        calls = _tool_calls(answer["tool_calls"], seed)
        model = body.get("model") or "mock-model"
        if body.get("stream"):
            self._stream(body, completion_id, model, answer["content"], calls)
        else:
            self._complete(body, completion_id, model, answer["content"], calls)

    def _complete(self, body: dict[str, Any], cid: str, model: str, content: str, calls: list[dict]) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
        self._json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if calls else "stop",
                        "logprobs": None,
                    }
                ],
                "usage": _usage(body, content),
            },
        )

    def _stream(self, body: dict[str, Any], cid: str, model: str, content: str, calls: list[dict]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": token}) for token in _tokens(content)]
        for i, call in enumerate(calls):
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            head = {"index": i, "id": call["id"], "type": "function", "function": {"name": name, "arguments": ""}}
            events.append(chunk({"tool_calls": [head]}))
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments}}]}))
        events.append(chunk({}, "tool_calls" if calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [],
                           "usage": _usage(body, content)})  # fmt: skip
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def make_server(
    host: str, port: int, rules: list[Rule] | None = None, api_key: str | None = None
) -> ThreadingHTTPServer:
    """A ready-to-serve mock; `serve_forever()` it (or run it in a thread)."""
    handler = type("MockHandler", (Handler,), {"brain": Brain(rules), "api_key": api_key})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", help="require this bearer key (others get HTTP 401)")
    parser.add_argument("--script", help="JSON file with a list of rules (see the module docstring)")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    rules: list[Rule] = []
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            loaded = json.load(f)
        rules = loaded.get("rules", []) if isinstance(loaded, dict) else loaded
    server = make_server(args.host, args.port, rules, args.api_key)
    server.verbose = args.verbose  # type: ignore[attr-defined]
    host, port = server.server_address[:2]
    print(f"mock LLM listening on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real local services the tools agent talks to in tests: the mock LLM, MCP servers and a LangConnect-like RAG.

MCP servers run in a subprocess (`python -m tests.agent_services mcp --port P [--token T]`) so their event loop
is independent of the test's; the RAG service is a stdlib HTTP server in a thread.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.server import ROOT, free_port

MOCK_LLM = ROOT / "scripts" / "mock_llm.py"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{url} did not start in {timeout}s: {log.read_text()[-2000:]}")


class _Child:
    """A helper service as a child process, logged under test-artifacts/."""

    def __init__(self, name: str, args: list[str], probe_path: str) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.log = ROOT / "test-artifacts" / f"{name}-{self.port}.log"
        self.args = [a.replace("{port}", str(self.port)) for a in args]
        self.probe = self.root + probe_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> _Child:
        self.log.parent.mkdir(exist_ok=True)
        out = self.log.open("wb")
        self.proc = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _wait_http(self.probe, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MockLLM(_Child):
    """`scripts/mock_llm.py`, started with its one command on a free port."""

    def __init__(self, api_key: str | None = None) -> None:
        extra = ["--api-key", api_key] if api_key else []
        super().__init__("mock-llm", [str(MOCK_LLM), "--port", "{port}", *extra], "/v1/models")
        self.base_url = f"{self.root}/v1"

    def requests(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.root}/mock/requests", timeout=5).json()

    def clear(self) -> None:
        httpx.delete(f"{self.root}/mock/requests", timeout=5).raise_for_status()

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        httpx.put(f"{self.root}/mock/rules", json=rules, timeout=5).raise_for_status()


class McpServer(_Child):
    """A FastMCP streamable-HTTP server from the `mcp` package; with `token` it requires that bearer token."""

    def __init__(self, token: str | None = None) -> None:
        extra = ["--token", token] if token else []
        super().__init__("mcp", ["-m", "tests.agent_services", "mcp", "--port", "{port}", *extra], "/health")
        self.url = self.root  # what Open Agent Platform stores; the agent appends /mcp

    def seen_tokens(self) -> list[str]:
        return httpx.get(f"{self.root}/seen", timeout=5).json()

    def seen_traceparents(self) -> list[str]:
        """The W3C `traceparent` header of each MCP request that carried one."""
        return httpx.get(f"{self.root}/traceparents", timeout=5).json()


def serve_mcp(port: int, token: str | None) -> None:
    """Run the test MCP server (blocking)."""
    import uvicorn
    from mcp.server.fastmcp import FastMCP
    from starlette.responses import JSONResponse

    mcp = FastMCP("test-tools", host="127.0.0.1", port=port, stateless_http=True, json_response=True)

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    def shout(text: str) -> str:
        """Return the text in upper case."""
        return text.upper()

    @mcp.tool()
    def fail(reason: str) -> str:
        """Always fails, to test tool errors."""
        raise RuntimeError(f"failing on purpose: {reason}")

    app = mcp.streamable_http_app()
    seen: list[str] = []
    traceparents: list[str] = []

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode()
            if path in ("/health", "/seen", "/traceparents"):
                body = {"/health": {"ok": True}, "/seen": seen, "/traceparents": traceparents}[path]
                return await JSONResponse(body)(scope, receive, send)
            if auth:
                seen.append(auth.removeprefix("Bearer "))
            if b"traceparent" in headers:
                traceparents.append(headers[b"traceparent"].decode())
            if token is not None and auth != f"Bearer {token}":
                return await JSONResponse({"error": "invalid_token"}, status_code=401)(scope, receive, send)
        await app(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


class RagService:
    """A LangConnect-compatible collection/search API in a thread, checking the bearer token."""

    def __init__(self, token: str, collections: dict[str, dict[str, Any]]) -> None:
        self.token = token
        self.collections = collections
        self.searches: list[dict[str, Any]] = []
        self.traceparents: list[str] = []  # the W3C `traceparent` of each request that carried one
        self.fail_search = False
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("traceparent"):
                    service.traceparents.append(self.headers["traceparent"])
                if self.headers.get("Authorization") == f"Bearer {service.token}":
                    return True
                self._send(401, {"detail": "Invalid token"})
                return False

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if not self._authorized():
                    return
                if len(parts) == 2 and parts[0] == "collections" and parts[1] in service.collections:
                    c = service.collections[parts[1]]
                    return self._send(200, {"uuid": parts[1], "name": c["name"], "metadata": c.get("metadata", {})})
                self._send(404, {"detail": "Collection not found"})

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorized():
                    return
                if parts[-2:] != ["documents", "search"] or parts[1] not in service.collections:
                    return self._send(404, {"detail": "Not found"})
                service.searches.append({"collection": parts[1], **body})
                if service.fail_search:
                    return self._send(500, {"detail": "search index is offline"})
                docs = service.collections[parts[1]].get("documents", [])
                words = str(body.get("query", "")).lower().split()
                hits = [d for d in docs if any(w in d["page_content"].lower() for w in words)]
                self._send(200, [{**d, "metadata": {}, "score": 0.9} for d in hits[: body.get("limit", 10)]])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RagService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def silent_port() -> Iterator[str]:
    """A URL whose port accepts TCP connections and never answers: a hung service."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def agent_config(directory: Path) -> Path:
    """A langgraph.json serving the default tools agent as `agent` (like the bundled default config), kept
    outside the `robyn_server` package so its directory on sys.path cannot shadow stdlib modules."""
    path = directory / "langgraph.json"
    path.write_text(json.dumps({"dependencies": [str(ROOT)], "graphs": {"agent": "tools_agent.agent:graph"}}))
    return path


def closed_port_url() -> str:
    """A URL nothing listens on: connection refused."""
    return f"http://127.0.0.1:{free_port()}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("service", choices=["mcp"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    cli = parser.parse_args()
    serve_mcp(cli.port, cli.token)

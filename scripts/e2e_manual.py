#!/usr/bin/env python
"""Check a running server end to end in one command: assistant, thread, a streamed run, state, history.

    python scripts/e2e_manual.py --url http://127.0.0.1:2024 [--mock]

Each step prints one summary line; the first failing step is named and the script exits 1.

`--mock` runs offline with no keys: it starts `scripts/mock_llm.py` and a small demo MCP server (tool `add`)
on this machine and points the assistant at them, so the run streams an answer that uses a tool. The server
must be able to reach them (`--mock-host`, default 127.0.0.1). Without `--mock` the assistant uses the
server's model settings (OPENAI_API_KEY on the server) or `--base-url`/`--model`/`--api-key`.

Auth: with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SERVICE_KEY) a test user is created and
signed in with the `supabase` client (SUPABASE_ANON_KEY if set) for a real JWT; else with SUPABASE_JWT_SECRET
an HS256 token is minted; else the requests are unauthenticated.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
MOCK_PROMPT = "What is 2 plus 3? Use the add tool."
REAL_PROMPT = "In one short sentence, say hello and name one use of a ReAct agent."


class StepFailed(Exception):
    """A step failed; carries its name for the summary."""

    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step


def step(name: str, fn: Callable[[], tuple[Any, str]]) -> Any:
    """Run one step, print `[ok] name: detail`, or raise StepFailed naming it."""
    try:
        result, detail = fn()
    except StepFailed:
        raise
    except Exception as exc:
        raise StepFailed(name, f"{type(exc).__name__}: {exc}") from exc
    print(f"[ok] {name}: {detail}", flush=True)
    return result


def quietly(what: str, fn: Callable[[], Any]) -> Callable[[], None]:
    """A cleanup that warns instead of masking the run's outcome with a traceback."""

    def run() -> None:
        try:
            fn()
        except Exception as exc:
            print(f"[warn] could not {what}: {type(exc).__name__}: {exc}", flush=True)

    return run


# ------------------------------------------------------------------------------------------ auth
def supabase_token() -> tuple[str | None, str, Callable[[], None]]:
    """A bearer token for the server, how it was obtained, and a cleanup callback."""
    url = os.environ.get("SUPABASE_URL")
    service_key = os.environ.get("SUPABASE_SERVICE_ROLE_KEY") or os.environ.get("SUPABASE_SERVICE_KEY")
    if url and service_key:
        from supabase import create_client

        email, password = f"e2e-{uuid.uuid4().hex[:10]}@example.com", secrets.token_urlsafe(16)
        admin = create_client(url, service_key)
        user = admin.auth.admin.create_user({"email": email, "password": password, "email_confirm": True}).user
        signer = create_client(url, os.environ.get("SUPABASE_ANON_KEY") or service_key)
        session = signer.auth.sign_in_with_password({"email": email, "password": password}).session
        if session is None:
            raise RuntimeError("sign-in returned no session")
        return session.access_token, f"signed in as test user {email}", lambda: admin.auth.admin.delete_user(user.id)
    secret = os.environ.get("SUPABASE_JWT_SECRET")
    if secret:
        import jwt

        now = int(time.time())
        sub = str(uuid.uuid4())
        claims = {"sub": sub, "email": f"e2e-{sub[:8]}@example.com", "aud": "authenticated",
                  "role": "authenticated", "iat": now, "exp": now + 3600}  # fmt: skip
        return jwt.encode(claims, secret, algorithm="HS256"), f"minted HS256 token for {sub}", lambda: None
    return None, "unauthenticated (no SUPABASE_URL/service key or SUPABASE_JWT_SECRET)", lambda: None


# ------------------------------------------------------------------------------------------ offline services
def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:g}s")


def start_mock_llm(stack: ExitStack, bind: str, host: str) -> str:
    """`scripts/mock_llm.py` as a child process; returns the base URL the server should use."""
    port = _free_port(bind)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "mock_llm.py"), "--host", bind, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(lambda: (proc.terminate(), proc.wait(10)))
    _wait(f"http://127.0.0.1:{port}/v1/models")
    return f"http://{host}:{port}/v1"


def start_demo_mcp(stack: ExitStack, bind: str, host: str) -> str:
    """A FastMCP streamable-HTTP server with an `add` tool, in a thread; returns its base URL."""
    import uvicorn
    from mcp.server.fastmcp import FastMCP
    from mcp.server.transport_security import TransportSecuritySettings

    port = _free_port(bind)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp = FastMCP("e2e-demo", stateless_http=True, json_response=True, transport_security=security, log_level="WARNING")

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    server = uvicorn.Server(uvicorn.Config(mcp.streamable_http_app(), host=bind, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    stack.callback(stop)
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo MCP server did not start")
        time.sleep(0.05)
    return f"http://{host}:{port}"


# ------------------------------------------------------------------------------------------ the run
def _text(content: Any) -> str:
    """Message content as text (tool results may be a list of content blocks)."""
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def stream_run(client: Any, thread_id: str, assistant_id: str, text: str) -> tuple[dict[str, Any], str]:
    """Stream one run, printing tokens as they arrive; fail on an `error` event."""
    tokens = tool_calls = 0
    run_id = None
    print("    ", end="", flush=True)
    for part in client.runs.stream(
        thread_id,
        assistant_id,
        input={"messages": [{"role": "user", "content": text}]},
        stream_mode=["messages-tuple", "values"],
    ):
        if part.event == "metadata":
            run_id = part.data.get("run_id")
        elif part.event == "error":
            print(flush=True)
            data = part.data if isinstance(part.data, dict) else {"message": part.data}
            raise RuntimeError(f"run {run_id} failed: {data.get('error', 'error')}: {data.get('message')}")
        elif part.event == "messages":
            message = part.data[0]
            if message.get("type") == "AIMessageChunk":
                for chunk in message.get("tool_call_chunks") or []:
                    if chunk.get("name"):
                        tool_calls += 1
                        print(f"[tool call: {chunk['name']}] ", end="", flush=True)
                if isinstance(message.get("content"), str) and message["content"]:
                    tokens += 1
                    print(message["content"], end="", flush=True)
            elif message.get("type") == "tool":
                print(f"[tool result: {_text(message.get('content'))}] ", end="", flush=True)
    print(flush=True)
    if tokens == 0:
        raise RuntimeError(f"run {run_id} streamed no tokens")
    return {"run_id": run_id, "tool_calls": tool_calls}, f"run {run_id}: {tokens} tokens, {tool_calls} tool call(s)"


def check_state(client: Any, thread_id: str, need_tool: bool) -> tuple[list[dict[str, Any]], str]:
    state = client.threads.get_state(thread_id)
    messages = (state.get("values") or {}).get("messages") or []
    if not messages or messages[-1].get("type") != "ai" or not messages[-1].get("content"):
        raise RuntimeError(f"expected the thread to end with an AI answer, got {[m.get('type') for m in messages]}")
    types = [m.get("type") for m in messages]
    if need_tool and "tool" not in types:
        raise RuntimeError(f"expected a tool call in the run, got messages {types}")
    return messages, f"{len(messages)} messages ({', '.join(types)}); answer: {messages[-1]['content'][:80]!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="End-to-end check of a running server.")
    parser.add_argument("--url", default=os.environ.get("SERVER_URL", "http://127.0.0.1:2024"))
    parser.add_argument("--mock", action="store_true", help="offline: mock LLM and a demo MCP server")
    parser.add_argument("--mock-host", default="127.0.0.1", help="address the server uses to reach the mocks")
    parser.add_argument("--graph", default="agent")
    parser.add_argument("--message", help="the user message to send")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint for the assistant (e.g. vLLM)")
    parser.add_argument("--model", help="model name at --base-url, or openai:<name>")
    parser.add_argument("--api-key", help="API key for --base-url")
    parser.add_argument("--keep", action="store_true", help="keep the assistant and thread")
    args = parser.parse_args(argv)

    from langgraph_sdk import get_sync_client

    with ExitStack() as stack:
        try:

            def auth() -> tuple[str | None, str]:
                bearer, how, cleanup_user = supabase_token()
                stack.callback(quietly("delete the test user", cleanup_user))
                return bearer, how

            bearer = step("auth", auth)
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}

            def health() -> tuple[None, str]:
                resp = httpx.get(f"{args.url}/ok", timeout=10)
                resp.raise_for_status()
                return None, f"{args.url} answered {resp.status_code}"

            step("health", health)
            configurable: dict[str, Any] = {}
            if args.mock:
                bind = "127.0.0.1" if args.mock_host in ("127.0.0.1", "localhost") else "0.0.0.0"

                def mocks() -> tuple[None, str]:
                    llm = start_mock_llm(stack, bind, args.mock_host)
                    mcp = start_demo_mcp(stack, bind, args.mock_host)
                    configurable.update(
                        base_url=llm, custom_model_name="mock-model",
                        mcp_config={"url": mcp, "tools": ["add"], "auth_required": False},
                    )  # fmt: skip
                    return None, f"mock LLM at {llm}, demo MCP server at {mcp}/mcp"

                step("mock services", mocks)
            else:
                if args.base_url:
                    configurable["base_url"] = args.base_url
                if args.model:
                    configurable["custom_model_name" if args.base_url else "model_name"] = args.model
                if args.api_key:
                    configurable["custom_api_key"] = args.api_key
            client = get_sync_client(url=args.url, api_key=None, headers=headers)
            stack.callback(client.http.client.close)

            def assistant() -> tuple[dict[str, Any], str]:
                created = client.assistants.create(
                    args.graph, config={"configurable": configurable}, name=f"e2e-{uuid.uuid4().hex[:6]}"
                )
                if not args.keep:
                    stack.callback(
                        quietly("delete the assistant", lambda: client.assistants.delete(created["assistant_id"]))
                    )
                return created, f"{created['assistant_id']} (graph {args.graph})"

            created = step("assistant", assistant)

            def thread() -> tuple[dict[str, Any], str]:
                made = client.threads.create(metadata={"e2e": True})
                if not args.keep:
                    stack.callback(quietly("delete the thread", lambda: client.threads.delete(made["thread_id"])))
                return made, made["thread_id"]

            thread_id = step("thread", thread)["thread_id"]
            text = args.message or (MOCK_PROMPT if args.mock else REAL_PROMPT)
            step("stream", lambda: stream_run(client, thread_id, created["assistant_id"], text))
            step("state", lambda: check_state(client, thread_id, need_tool=args.mock))

            def history() -> tuple[None, str]:
                items = client.threads.get_history(thread_id, limit=50)
                if len(items) < 2:
                    raise RuntimeError(f"expected at least 2 checkpoints, got {len(items)}")
                return None, f"{len(items)} checkpoints"

            step("history", history)
        except StepFailed as failed:
            print(f"[FAIL] {failed}", flush=True)
            print(f"e2e failed at step '{failed.step}'", file=sys.stderr)
            return 1
    print("[ok] all steps passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

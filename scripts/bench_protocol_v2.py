"""Protocol v2 beside the classic run stream: one 2,000-token run, events per second and time to the first token.

    .venv/bin/python scripts/bench_protocol_v2.py [--tokens 2000] [--reps 5] [--url http://...]

Without `--url` it starts this server on `benchmarks/langgraph.json` (graph `tokens`, in-memory storage).
classic = `POST /threads/{id}/runs/stream` with `stream_mode: ["messages-tuple", "values"]`, read to its end;
v2 sse = the thread's `POST /threads/{id}/stream/events` (`messages`, `values`, `lifecycle`) opened first, then the
`run.start` command, read to the root `completed` event; v2 websocket = the same over one WebSocket on
`/threads/{id}/stream/events` (a `subscription.subscribe`, then `run.start` sent on the socket, as the JS SDK does).
Events are counted from the raw bytes (no JSON parsing in the client); `ttft` is from sending the request (classic)
or the command (v2) to the first token event.
Each repetition runs both, alternating which goes first; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import ServerProcess  # noqa: E402

TOKEN_CLASSIC = b"event: messages\r\n"
TOKEN_V2 = b'"text-delta"'
DONE_V2 = b'"event":"completed"'


def frames(buffer: bytearray) -> list[bytes]:
    """Complete SSE frames taken off the front of `buffer`."""
    out = []
    while (end := buffer.find(b"\r\n\r\n")) >= 0:
        out.append(bytes(buffer[:end]))
        del buffer[: end + 4]
    return out


async def classic(http: httpx.AsyncClient, tokens: int) -> dict[str, float]:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "tokens", "input": {"messages": [{"role": "user", "content": "go"}], "n_tokens": tokens},
            "stream_mode": ["messages-tuple", "values"]}  # fmt: skip
    events = token_events = 0
    first = None
    buffer = bytearray()
    began = time.perf_counter()
    async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        async for chunk in response.aiter_raw():
            buffer += chunk
            for frame in frames(buffer):
                if frame.startswith(b":"):
                    continue
                events += 1
                if frame.startswith(TOKEN_CLASSIC) and b'"content":"tok' in frame:
                    token_events += 1
                    first = first or time.perf_counter()
    ended = time.perf_counter()
    return {"events": events, "tokens": token_events, "seconds": ended - began, "ttft": (first or ended) - began}


async def protocol_v2(http: httpx.AsyncClient, tokens: int) -> dict[str, float]:
    thread_id = str(uuid.uuid4())
    events = token_events = 0
    first = None
    began = 0.0
    buffer = bytearray()
    opened = asyncio.Event()
    finished = 0.0

    async def read() -> None:
        nonlocal events, token_events, first, finished
        body = {"channels": ["messages", "values", "lifecycle"]}
        async with http.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as response:
            opened.set()
            async for chunk in response.aiter_raw():
                buffer.extend(chunk)
                for frame in frames(buffer):
                    if frame.startswith(b":"):
                        continue
                    events += 1
                    if TOKEN_V2 in frame:
                        token_events += 1
                        first = first or time.perf_counter()
                    elif DONE_V2 in frame and b'"namespace":[]' in frame:
                        finished = time.perf_counter()
                        return

    reader = asyncio.create_task(read())
    await opened.wait()
    began = time.perf_counter()
    command = {"id": 1, "method": "run.start", "params": {"assistant_id": "tokens", "input": {
        "messages": [{"role": "user", "content": "go"}], "n_tokens": tokens}}}  # fmt: skip
    answer = await http.post(f"/threads/{thread_id}/commands", json=command)
    assert answer.json()["type"] == "success", answer.text
    await reader
    return {"events": events, "tokens": token_events, "seconds": finished - began, "ttft": (first or finished) - began}


async def protocol_v2_websocket(url: str, tokens: int) -> dict[str, float]:
    thread_id = str(uuid.uuid4())
    events = token_events = 0
    first = None
    socket_url = url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    async with websockets.connect(socket_url, max_size=None) as socket:
        subscribe = {"id": 1, "method": "subscription.subscribe",
                     "params": {"channels": ["messages", "values", "lifecycle"]}}  # fmt: skip
        await socket.send(orjson.dumps(subscribe).decode())
        assert b'"type":"success"' in await socket.recv(decode=False)
        command = {"id": 2, "method": "run.start", "params": {"assistant_id": "tokens", "input": {
            "messages": [{"role": "user", "content": "go"}], "n_tokens": tokens}}}  # fmt: skip
        began = time.perf_counter()
        await socket.send(orjson.dumps(command).decode())
        while True:
            frame = await socket.recv(decode=False)
            if not frame.startswith(b'{"type":"event"'):
                assert b'"type":"success"' in frame, frame
                continue
            events += 1
            if TOKEN_V2 in frame:
                token_events += 1
                first = first or time.perf_counter()
            elif DONE_V2 in frame and b'"namespace":[]' in frame:
                break
        finished = time.perf_counter()
    return {"events": events, "tokens": token_events, "seconds": finished - began, "ttft": (first or finished) - began}


def report(name: str, results: list[dict[str, float]]) -> dict[str, float]:
    median = {k: statistics.median(r[k] for r in results) for k in results[0]}
    events_per_s = statistics.median(r["events"] / r["seconds"] for r in results)
    tokens_per_s = statistics.median(r["tokens"] / r["seconds"] for r in results)
    print(f"{name:8} events {median['events']:.0f} (tokens {median['tokens']:.0f}) in "
          f"{median['seconds'] * 1000:.0f} ms: {events_per_s:,.0f} events/s, {tokens_per_s:,.0f} tokens/s, "
          f"ttft {median['ttft'] * 1000:.1f} ms")  # fmt: skip
    return {"events_per_s": events_per_s, "tokens_per_s": tokens_per_s, **median}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--url")
    args = parser.parse_args()
    server = None
    if args.url is None:
        server = ServerProcess(config=ROOT / "benchmarks" / "langgraph.json").start()
    url = args.url or server.url
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            await classic(http, 50)  # warm up both paths (graph import, first run)
            await protocol_v2(http, 50)
            await protocol_v2_websocket(url, 50)
            benches = {
                "classic": lambda: classic(http, args.tokens),
                "v2 sse": lambda: protocol_v2(http, args.tokens),
                "v2 ws": lambda: protocol_v2_websocket(url, args.tokens),
            }
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in benches}
            for rep in range(args.reps):
                order = list(benches) if rep % 2 == 0 else list(benches)[::-1]
                for name in order:
                    runs[name].append(await benches[name]())
            base = report("classic", runs["classic"])
            for name in ("v2 sse", "v2 ws"):
                v2 = report(name, runs[name])
                print(
                    f"{name} / classic: {v2['tokens_per_s'] / base['tokens_per_s']:.2f}x tokens/s, "
                    f"{v2['events_per_s'] / base['events_per_s']:.2f}x events/s, ttft {v2['ttft'] / base['ttft']:.2f}x"
                )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""Cross-process event latency: a run executes on replica A; the same events are read on A and on replica B.

Both replicas share a fresh Postgres database and Redis. For each run the client opens the run's own stream on
A (the worker's local log) and joins it on B (through Redis) before the first token; events carry the same ids
on both sides, so the arrival time on B minus the arrival time on A is what crossing processes adds. The paced
graph streams `--tokens` tokens `--token-ms` apart after a 300 ms wait.

    .venv/bin/python benchmarks/cross_process.py --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import ServerProcess, create_database, drop_database  # noqa: E402

CONFIG = ROOT / "benchmarks" / "langgraph.json"


async def read_ids(response: httpx.Response, arrivals: dict[str, float]) -> None:
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            arrivals.setdefault(line[4:], time.perf_counter())


async def one_run(a: httpx.AsyncClient, b: httpx.AsyncClient, tokens: int, token_ms: float) -> list[float]:
    tid = (await a.post("/threads", json={})).json()["thread_id"]
    body = {
        "assistant_id": "paced",
        "input": {"messages": [{"role": "user", "content": "hi"}], "n_tokens": tokens, "ttft_ms": 300,
                  "token_ms": token_ms},
        "stream_mode": ["messages-tuple"],
        "stream_resumable": True,
    }  # fmt: skip
    on_a: dict[str, float] = {}
    on_b: dict[str, float] = {}
    async with a.stream("POST", f"/threads/{tid}/runs/stream", json=body) as resp_a:
        run_path = resp_a.headers["content-location"]
        async with b.stream("GET", f"{run_path}/stream", headers={"Last-Event-ID": "-"}) as resp_b:
            await asyncio.gather(read_ids(resp_a, on_a), read_ids(resp_b, on_b))
    return [(on_b[i] - on_a[i]) * 1000 for i in on_a if i in on_b]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--token-ms", type=float, default=20.0)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    dsn = create_database("robyn_bench_xp")
    env = {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": dsn, "REDIS_URL": args.redis_url,
           "ROBYN_SERVER_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    a = ServerProcess(config=CONFIG, env=env).start(timeout=90)
    b = ServerProcess(config=CONFIG, env=env).start(timeout=90)
    try:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=60) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=60) as cb,
        ):
            await one_run(ca, cb, 3, 1.0)  # warm-up
            deltas: list[float] = []
            firsts: list[float] = []
            for _ in range(args.runs):
                run_deltas = await one_run(ca, cb, args.tokens, args.token_ms)
                deltas.extend(run_deltas)
                firsts.append(run_deltas[1] if len(run_deltas) > 1 else run_deltas[0])  # [0] is `metadata`
        deltas.sort()
        print(f"events compared: {len(deltas)} over {args.runs} runs")
        print(f"B minus A, every event: p50 {statistics.median(deltas):.2f} ms, "
              f"p99 {deltas[int(len(deltas) * 0.99) - 1]:.2f} ms")  # fmt: skip
        print(f"B minus A, first token: p50 {statistics.median(firsts):.2f} ms, max {max(firsts):.2f} ms")
    finally:
        a.stop()
        b.stop()
        drop_database(dsn)


if __name__ == "__main__":
    asyncio.run(main())

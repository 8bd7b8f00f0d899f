"""Per-request overhead of each storage backend over HTTP: p50/p99 of create-thread and get-state.

    .venv/bin/python scripts/bench_storage.py [--requests 500] [--backends memory,sqlite,postgres]

Starts the real server once per backend (SQLite in a temporary file, Postgres in a fresh database on
POSTGRES_ADMIN_DSN, dropped afterwards; skipped when unreachable), sends sequential requests from one
keep-alive client, and prints one table. Numbers depend on the machine; compare backends within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server import ServerProcess, create_database, drop_database, postgres_unreachable  # noqa: E402

AGENT_RUN = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather?"}]}}


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def measure(n: int, call: Callable[[], httpx.Response]) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        resp = call()
        times.append((time.perf_counter() - start) * 1000)
        resp.raise_for_status()
    return times


def bench(url: str, n: int) -> dict[str, list[float]]:
    with httpx.Client(base_url=url, timeout=60) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN).raise_for_status()
        for _ in range(50):  # warm-up: connections, pools, caches
            http.post("/threads", json={}).raise_for_status()
            http.get(f"/threads/{tid}/state").raise_for_status()
        return {
            "create-thread": measure(n, lambda: http.post("/threads", json={"metadata": {"bench": True}})),
            "get-state": measure(n, lambda: http.get(f"/threads/{tid}/state")),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--backends", default="memory,sqlite,postgres")
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        env: dict[str, str | None] = {"ROBYN_SERVER_STORAGE": backend}
        dsn = None
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                env["ROBYN_SERVER_SQLITE_PATH"] = str(Path(tmp) / "bench.sqlite")
            elif backend == "postgres":
                reason = postgres_unreachable()
                if reason:
                    print(f"skipping postgres: {reason}", file=sys.stderr)
                    continue
                dsn = create_database("robyn_bench")
                env["DATABASE_URL"] = dsn
            server = ServerProcess(env=env).start()
            try:
                results = bench(server.url, args.requests)
            finally:
                server.stop()
                if dsn:
                    drop_database(dsn)
        for name, samples in results.items():
            rows.append((backend, name, percentile(samples, 50), percentile(samples, 99), statistics.mean(samples)))
    print(f"{'backend':<10} {'request':<14} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}   (n={args.requests})")
    for backend, name, p50, p99, mean in rows:
        print(f"{backend:<10} {name:<14} {p50:>8.2f} {p99:>8.2f} {mean:>8.2f}")


if __name__ == "__main__":
    main()

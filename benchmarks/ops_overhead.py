"""Server CPU per run with the operations features on, beside all off.

    .venv/bin/python benchmarks/ops_overhead.py [--runs 400] [--clients 8] [--repeats 3]

Starts this server on `benchmarks/langgraph.json` (memory storage) once per configuration, sends `--runs`
streamed 50-token runs (`messages-tuple`) from `--clients` concurrent httpx clients, and reads the server
process's CPU time (psutil, user + system) before and after. Configurations: everything off (text logs at
WARNING, no tracing, `ROBYN_SERVER_METRICS=false`), JSON logs at INFO (access and run lines written), tracing on
(OTLP/HTTP to a local receiver in this process, which decodes every span), metrics on, and all three. The
minimum and the median of `--repeats` measurements are printed per configuration (the minimum is the least
disturbed by other load on a shared machine), with the change against all off.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

CONFIG = ROOT / "benchmarks" / "langgraph.json"
OFF = {"LOG_FORMAT": "text", "LOG_LEVEL": "WARNING", "ROBYN_SERVER_METRICS": "false", "OTEL_TRACES_EXPORTER": None,
       "OTEL_EXPORTER_OTLP_ENDPOINT": None}  # fmt: skip


def configurations(receiver_url: str) -> dict[str, dict[str, str | None]]:
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver_url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    return {
        "all off": OFF,
        "json logs": {**OFF, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"},
        "tracing": {**OFF, **tracing},
        "metrics": {**OFF, "ROBYN_SERVER_METRICS": "true"},
        "all three": {**OFF, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "ROBYN_SERVER_METRICS": "true", **tracing},
    }


async def drive(url: str, runs: int, clients: int) -> int:
    body = {"assistant_id": "tokens", "input": {"messages": [{"role": "user", "content": "go"}]},
            "stream_mode": "messages-tuple"}  # fmt: skip
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(runs):
        queue.put_nowait(i)
    done = 0

    async def client() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                async with http.stream("POST", "/runs/stream", json=body) as resp:
                    async for _ in resp.aiter_bytes():
                        pass
                    if resp.status_code == 200:
                        done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def cpu_seconds(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.cpu_times()
    return total.user + total.system


def measure(env: dict[str, str | None], runs: int, clients: int) -> tuple[float, float]:
    """(server CPU ms per run, runs/s) for one fresh server."""
    proc = ServerProcess(config=CONFIG, env=env).start()
    try:
        asyncio.run(drive(proc.url, 40, clients))  # warm-up: imports, first-run caches
        assert proc.proc is not None
        before, start = cpu_seconds(proc.proc.pid), time.perf_counter()
        done = asyncio.run(drive(proc.url, runs, clients))
        elapsed = time.perf_counter() - start
        time.sleep(0.5)  # let the span exporter's last batch go out, so its CPU is counted
        used = cpu_seconds(proc.proc.pid) - before
        return used * 1000 / max(done, 1), done / elapsed
    finally:
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    receiver = OtlpReceiver().start()
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        configs = configurations(receiver.url)
        for _ in range(args.repeats):  # interleaved, so drift of a shared machine hits every configuration
            for name, env in configs.items():
                results.setdefault(name, []).append(measure(env, args.runs, args.clients))
    finally:
        receiver.stop()
    base_min = min(cpu for cpu, _ in results["all off"])
    base_median = statistics.median(cpu for cpu, _ in results["all off"])
    print(f"{args.runs} streamed 50-token runs x {args.repeats}, {args.clients} clients; spans received: "
          f"{len(receiver.spans)}")  # fmt: skip
    print(f"{'configuration':<12} {'min ms/run':>10} {'vs off':>7} {'median':>7} {'vs off':>7} {'runs/s':>7}  samples")
    for name, samples in results.items():
        low, mid = min(c for c, _ in samples), statistics.median(c for c, _ in samples)
        rate = statistics.median(r for _, r in samples)
        listed = ", ".join(f"{c:.2f}" for c, _ in samples)
        print(f"{name:<12} {low:>10.2f} {100 * (low - base_min) / base_min:>+6.1f}% {mid:>7.2f} "
              f"{100 * (mid - base_median) / base_median:>+6.1f}% {rate:>7.0f}  {listed}")  # fmt: skip


if __name__ == "__main__":
    main()

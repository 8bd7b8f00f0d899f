"""Server CPU per run with the operations features on, beside all off.

    .venv/bin/python benchmarks/ops_overhead.py [--runs 400] [--clients 8] [--repeats 3] [--storage sqlite]
    .venv/bin/python benchmarks/ops_overhead.py --in-process
    valgrind --tool=callgrind .venv/bin/python benchmarks/ops_overhead.py --in-process --count on --runs 100
    .venv/bin/python benchmarks/ops_overhead.py --profile --configs "all off,all three"
    .venv/bin/python benchmarks/ops_overhead.py --callgrind --runs 200

`--callgrind` starts each configuration's server under valgrind's callgrind and counts the instructions of two
windows of `--runs` runs (counters zeroed and dumped around each window): a server-level cost that repeats to
about 0.3% (1.3% with tracing) however busy the machine is, where CPU time varies by 10% from one server to the
next. `--profile` records the server with py-spy and prints the share of its CPU samples in the logging, span and
metrics code (and the libraries they call). `--in-process` measures the same hooks without a server, where other
load on the machine disturbs less: the `tokens` graph run by the run manager's hooks (`observe.run_started` ...
`run_finished`) with a request span, tracing off, on (spans batch-encoded to OTLP protobuf, not sent) and with the
request and run spans only (no span callbacks), and the per-run cost of the JSON log lines and of the metrics.
Process CPU: 40 rounds of 30 runs per mode, the modes in turn, each round after a full garbage collection (else
the collections due every few rounds fall on the same mode) and flushing its spans (so their encoding counts in
the round that made them); a mode's cost is the median of its rounds' differences from the off round before them.
`--count` runs only one round of one of those modes (off, spans, on) for an instruction counter: two modes' counts
differ by `--runs` times the cost (the young generations' collections included, deterministic as the allocations
are); `--tokens` sets how many tokens the model streams (50).

Starts this server on `benchmarks/langgraph.json` (`--storage`: SQLite, the durable default, in a fresh file per
server, or memory) once per configuration, sends `--runs` streamed 50-token runs (`messages-tuple`) from
`--clients` keep-alive connections (the raw-socket client of `run.py`), and reads the server process's CPU time
(psutil, user + system) before and after. Configurations (`--configs` picks some): everything off (text logs at
WARNING, no tracing, `ROBYN_SERVER_METRICS=false`), JSON logs at INFO (access and run lines written), tracing on
(OTLP/HTTP to a local receiver in this process, which decodes every span; batches sent as the SDK does by default,
every 5 s or per 512 spans, `--schedule-ms` to change), metrics on, and all three. The minimum and the median of
`--repeats` measurements are printed per configuration (the minimum is the least disturbed by other load on a
shared machine), with the change against all off, and `paired`: the median of each round's difference from that
round's all-off server, against all off's median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

CONFIG = ROOT / "benchmarks" / "langgraph.json"
OFF = {"LOG_FORMAT": "text", "LOG_LEVEL": "WARNING", "ROBYN_SERVER_METRICS": "false", "OTEL_TRACES_EXPORTER": None,
       "OTEL_EXPORTER_OTLP_ENDPOINT": None}  # fmt: skip


def configurations(receiver_url: str, schedule_ms: int) -> dict[str, dict[str, str | None]]:
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver_url, "OTEL_BSP_SCHEDULE_DELAY": str(schedule_ms)}
    return {
        "all off": OFF,
        "json logs": {**OFF, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"},
        "tracing": {**OFF, **tracing},
        "metrics": {**OFF, "ROBYN_SERVER_METRICS": "true"},
        "all three": {**OFF, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "ROBYN_SERVER_METRICS": "true", **tracing},
    }


async def drive(url: str, runs: int, clients: int) -> int:
    """`runs` streamed runs from `clients` keep-alive connections of the benchmark's raw-socket client (far
    cheaper than httpx, so the client takes less of the machine from the server it measures)."""
    from run import SSEConnection

    body = orjson.dumps({"assistant_id": "tokens", "input": {"messages": [{"role": "user", "content": "go"}]},
                         "stream_mode": "messages-tuple"})  # fmt: skip
    port = int(url.rsplit(":", 1)[1])
    remaining = runs
    done = 0

    async def client() -> None:
        nonlocal remaining, done
        connection = SSEConnection(port)
        try:
            while remaining > 0:
                remaining -= 1
                result = await connection.post_stream("/runs/stream", body, 60.0, 1)
                done += result.ok
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def cpu_seconds(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.cpu_times()
    return total.user + total.system


def storage_env(storage: str) -> dict[str, str | None]:
    if storage == "memory":
        return {"ROBYN_SERVER_STORAGE": "memory"}
    folder = tempfile.mkdtemp(prefix="ops-overhead-")
    return {"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(Path(folder) / "bench.sqlite")}


def measure(env: dict[str, str | None], runs: int, clients: int, storage: str, settle: float) -> tuple[float, float]:
    """(server CPU ms per run, runs/s) for one fresh server (and a fresh SQLite file). `settle` seconds after the
    runs (the same for every configuration) let the span exporter's last batch go out, so its CPU is counted."""
    proc = ServerProcess(config=CONFIG, env={**env, **storage_env(storage)}).start()
    try:
        asyncio.run(drive(proc.url, 40, clients))  # warm-up: imports, first-run caches
        assert proc.proc is not None
        before, start = cpu_seconds(proc.proc.pid), time.perf_counter()
        done = asyncio.run(drive(proc.url, runs, clients))
        elapsed = time.perf_counter() - start
        time.sleep(settle)
        used = cpu_seconds(proc.proc.pid) - before
        return used * 1000 / max(done, 1), done / elapsed
    finally:
        proc.stop()


# Frames of the operations code and the libraries it calls (py-spy's shortened file names).
OPS_FRAMES = ("(logging/__init__.py", "(pythonjsonlogger/", "(http/trace_exporter/", "trace_encoder/",
              "(trace/__init__.py", "(trace/sampling.py", "(trace/propagation", "trace_callbacks.py",
              "(prometheus_client/", "(robyn_server/ops/metrics.py", "(robyn_server/ops/logs.py",
              "(requests/")  # fmt: skip


def profile(env: dict[str, str | None], runs: int, clients: int, storage: str, settle: float) -> float:
    """The share of the server's CPU samples (py-spy) whose stack is in the operations code."""
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(tempfile.mkdtemp(prefix="ops-profile-")) / "stacks.txt"
    proc = ServerProcess(config=CONFIG, env={**env, **storage_env(storage)}).start()
    try:
        asyncio.run(drive(proc.url, 40, clients))
        assert proc.proc is not None
        args = [spy, "record", "--pid", str(proc.proc.pid), "--format", "raw", "-o", str(out), "--rate", "250"]
        recorder = subprocess.Popen([*args, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attached
        asyncio.run(drive(proc.url, runs, clients))
        time.sleep(settle)
        recorder.send_signal(2)
        recorder.wait(60)
    finally:
        proc.stop()
    total = ops = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        ops += int(count) if any(frame in stack for frame in OPS_FRAMES) else 0
    return 100 * ops / max(total, 1)


def in_process(count: str | None = None, runs: int = 100, n_tokens: int = 50) -> None:
    """Print the in-process costs; with `count` (a mode: off, spans, on), only run `runs` runs of that mode after
    the warm-up, for an instruction counter (callgrind) to read."""
    import contextvars
    import gc
    import logging
    import os
    from datetime import UTC, datetime

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from graphs import tokens

    from robyn_server.ops import http_hooks, logs, metrics, observe, requests, tracing

    class EncodeOnly(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            encode_spans(spans).SerializeToString()
            return SpanExportResult.SUCCESS

    batches = BatchSpanProcessor(EncodeOnly())  # the SDK's batching: 5 s or 512 spans
    tracing.configure(processor=batches)
    graph_input = {"messages": [{"role": "user", "content": "go"}], "n_tokens": n_tokens}

    OFF, SPANS, TRACED = "off", "spans", "on"  # SPANS: tracing on, the request and run spans, no span callbacks

    async def one(mode: str) -> None:
        info = requests.begin("POST", "/runs/stream", None)
        tracing.ENABLED = mode != OFF
        if tracing.ENABLED:
            tracing.start_server_span(info, {})
        configurable = {"graph_id": "tokens", "langgraph_request_id": info.request_id}
        run = {"run_id": "r", "thread_id": "t", "assistant_id": "a", "created_at": datetime.now(UTC),
               "kwargs": {"config": {"configurable": configurable}}}  # fmt: skip
        observed = observe.run_started(run)
        config = observed.config({}) if mode != SPANS else {}
        async for event in tokens.astream(graph_input, config, stream_mode=["messages", "values"]):
            observed.saw(event[0])
        observe.run_finished(observed, "success")
        if tracing.ENABLED:
            info.route = "/runs/stream"
            tracing.end_server_span(info, 200)

    async def rounds(mode: str, n: int) -> float:
        gc.collect()  # else the full collections (60 ms here), due every few rounds, fall on the same mode's rounds
        start = time.process_time()
        for _ in range(n):
            await asyncio.get_running_loop().create_task(one(mode), context=contextvars.copy_context())
        batches.force_flush()  # this round's spans are encoded in this round, not by the timer during another
        return (time.process_time() - start) / n * 1000

    async def graphs() -> dict[str, float]:
        modes = (OFF, SPANS, TRACED)
        for mode in modes:
            await rounds(mode, 10)
        if count is not None:
            await rounds(count, runs)  # after a full collection, as every round: none is due in a few hundred runs
            return {}
        # rounds of the three modes in turn; a mode's cost is the median of its rounds' differences from the off
        # round just before, so a slower stretch of the shared machine weighs on both sides of a difference
        found: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(40):
            for mode in modes:
                found[mode].append(await rounds(mode, 30))
        off = found[OFF]
        cost = {mode: statistics.median(t - o for t, o in zip(found[mode], off, strict=True)) for mode in modes}
        return {**cost, OFF: min(off)}

    metrics.ENABLED = False
    cost = asyncio.run(graphs())
    if count is not None:
        return
    tracing.ENABLED = False

    def per_run(fn: Any, n: int = 20000) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            for _ in range(n):
                fn()
            best = min(best, (time.process_time() - start) / n * 1000)
        return best

    logs.configure("INFO", "json")
    logging.getLogger().handlers[0].stream = open(os.devnull, "w")  # noqa: SIM115
    info = requests.begin("POST", "/runs/stream", None)
    info.route = "/runs/stream"

    def log_lines() -> None:  # one access line, the run's start and end lines
        http_hooks.finished(info, 200, 0.001, "user-1")
        logs.RUNS.info("run %s started", "r", extra={"attempt": 1, "event": "run_started", "queue_wait_ms": 0.2})
        logs.RUNS.info("run %s finished: %s", "r", "success", extra={"status": "success", "duration_ms": 5.0})

    def metric_updates() -> None:  # what one streamed run records
        metrics.http_observed("POST", "/runs/stream", 200, 0.001)
        metrics.stream_opened()
        metrics.run_started(0.001)
        metrics.run_first_token(0.002)
        metrics.run_finished("success", 0.005)
        metrics.stream_closed()

    log_ms = per_run(log_lines)
    metrics.ENABLED = True
    metric_ms = per_run(metric_updates)
    base, traced = cost[OFF], cost[TRACED]
    print(f"tokens graph ({n_tokens} tokens) + hooks, tracing off: {base:.3f} ms CPU/run")
    print(f"tracing on: {traced:+.3f} ms ({100 * traced / base:+.1f}%): the request and run spans "
          f"{cost[SPANS]:+.3f} ms, the span callbacks (LangChain calling them for each event and token, the node and "
          f"model spans) {traced - cost[SPANS]:+.3f} ms")  # fmt: skip
    print(f"JSON log lines per run: {log_ms:.3f} ms ({100 * log_ms / base:+.1f}%)")
    print(f"metrics per run: {metric_ms:.3f} ms ({100 * metric_ms / base:+.1f}%)")
    total = traced + log_ms + metric_ms
    print(f"all three: {total:+.3f} ms per run ({100 * total / base:+.1f}% of this graph's run)")


def callgrind_instructions(env: dict[str, str | None], runs: int, clients: int, storage: str,
                           windows: int, keep: Path | None = None) -> list[float]:  # fmt: skip
    """Instructions per run of a server under callgrind, in `windows` windows of `runs` runs after a warm-up: the
    counters are zeroed before each window and dumped after it (`callgrind_control`), so start-up, warm-up and
    exit are not counted. Counts repeat to about 0.3% (1.3% with tracing) whatever else the machine does
    (valgrind runs the server's threads one at a time, 50 times slower). Spans are exported per 512, as the
    native server does at this load (a 5 s timer would fire 50 times as often under valgrind). With `keep`, the
    dumps stay there (for `callgrind_annotate`)."""
    import shutil
    import subprocess

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="ops-callgrind-", dir=keep))
    env = {**env, **storage_env(storage)}
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        env["OTEL_BSP_SCHEDULE_DELAY"] = "3600000"
    valgrind = [shutil.which("valgrind") or "valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/cg.%p.out"]
    proc = ServerProcess(config=CONFIG, env=env, wrapper=valgrind).start(timeout=900)
    assert proc.proc is not None
    pid = proc.proc.pid  # valgrind runs the server in its own process
    control = shutil.which("callgrind_control") or "callgrind_control"
    try:
        asyncio.run(drive(proc.url, 20, clients))
        counts = []
        for window in range(1, windows + 1):
            subprocess.run([control, "-z", str(pid)], check=True, capture_output=True)
            done = asyncio.run(drive(proc.url, runs, clients))
            subprocess.run([control, "-d", str(pid)], check=True, capture_output=True)
            dump = folder / f"cg.{pid}.out.{window}"
            total = next(int(line.split()[1]) for line in dump.read_text().splitlines() if line.startswith("summary:"))
            counts.append(total / max(done, 1))
        return counts
    finally:
        proc.stop(timeout=60)
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def callgrind_report(configs: dict[str, dict[str, str | None]], runs: int, clients: int, storage: str,
                     keep: Path | None = None) -> None:  # fmt: skip
    """Every configuration's server under callgrind, two at a time (valgrind uses one core per server)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(callgrind_instructions, env, runs, clients, storage, 2, keep)
                   for name, env in configs.items()}  # fmt: skip
        counts = {name: future.result() for name, future in futures.items()}
    base = statistics.mean(counts["all off"])
    print(f"instructions per streamed 50-token run ({storage}, {clients} clients, 2 windows of {runs} runs each)")
    for name, windows in counts.items():
        mean = statistics.mean(windows)
        listed = ", ".join(f"{c / 1e6:.3f}" for c in windows)
        print(f"{name:<12} {mean / 1e6:8.3f} M {100 * (mean - base) / base:+6.1f}%  ({listed})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storage", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--schedule-ms", type=int, default=5000,
                        help="OTEL_BSP_SCHEDULE_DELAY of the traced servers (the SDK's default: 5000)")  # fmt: skip
    parser.add_argument("--configs", default="", help="comma-separated subset, e.g. 'all off,all three'")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--count", choices=["off", "spans", "on"],
                        help="with --in-process: only --runs runs of this mode, e.g. under valgrind "
                        "--tool=callgrind: the instruction counts of two modes differ by their cost")  # fmt: skip
    parser.add_argument("--tokens", type=int, default=50, help="with --in-process: tokens the model streams")
    parser.add_argument("--profile", action="store_true", help="py-spy share of the operations code, per config")
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per run of each configuration's server, counted by callgrind")  # fmt: skip
    parser.add_argument("--keep-dumps", type=Path, default=None,
                        help="with --callgrind: keep each server's dumps in a folder under this one")  # fmt: skip
    args = parser.parse_args()
    if args.in_process:
        in_process(args.count, args.runs, args.tokens)
        return
    receiver = OtlpReceiver().start()
    if args.callgrind:
        try:
            configs = configurations(receiver.url, args.schedule_ms)
            if args.configs:
                configs = {name: configs[name] for name in args.configs.split(",")}
            callgrind_report(configs, args.runs, args.clients, args.storage, args.keep_dumps)
        finally:
            receiver.stop()
        return
    if args.profile:
        try:
            configs = configurations(receiver.url, args.schedule_ms)
            for name in args.configs.split(",") if args.configs else configs:
                share = profile(configs[name], args.runs, args.clients, args.storage, args.schedule_ms / 1000 + 0.5)
                print(f"{name:<12} {share:5.1f}% of the server's CPU samples in logging, span and metrics code")
        finally:
            receiver.stop()
        return
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        configs = configurations(receiver.url, args.schedule_ms)
        if args.configs:
            configs = {name: configs[name] for name in args.configs.split(",")}
        settle = args.schedule_ms / 1000 + 0.5
        for _ in range(args.repeats):  # interleaved, so drift of a shared machine hits every configuration
            for name, env in configs.items():
                results.setdefault(name, []).append(measure(env, args.runs, args.clients, args.storage, settle))
    finally:
        receiver.stop()
    base_min = min(cpu for cpu, _ in results["all off"])
    base_median = statistics.median(cpu for cpu, _ in results["all off"])
    print(f"{args.runs} streamed 50-token runs x {args.repeats}, {args.clients} clients, {args.storage}, spans sent "
          f"every {args.schedule_ms} ms (or per 512); spans received: {len(receiver.spans)}")  # fmt: skip
    print(f"{'configuration':<12} {'min ms/run':>10} {'vs off':>7} {'median':>7} {'vs off':>7} {'paired':>7} "
          f"{'runs/s':>7}  samples")  # fmt: skip
    for name, samples in results.items():
        low, mid = min(c for c, _ in samples), statistics.median(c for c, _ in samples)
        rate = statistics.median(r for _, r in samples)
        # the median of its differences from the all-off server of the same round (measured just before it)
        paired = statistics.median(c - o for (c, _), (o, _) in zip(samples, results["all off"], strict=True))
        listed = ", ".join(f"{c:.2f}" for c, _ in samples)
        print(f"{name:<12} {low:>10.2f} {100 * (low - base_min) / base_min:>+6.1f}% {mid:>7.2f} "
              f"{100 * (mid - base_median) / base_median:>+6.1f}% {100 * paired / base_median:>+6.1f}% "
              f"{rate:>7.0f}  {listed}")  # fmt: skip


if __name__ == "__main__":
    main()

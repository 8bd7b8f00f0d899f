"""Benchmark this Robyn server against the official `langgraph dev` server and the in-process limit.

One command (from the repository root):

    .venv/bin/python benchmarks/run.py [--quick] [--only TARGET,...] [--scenarios NAME,...] [--json out.json]
                                       [--profile DIR] [--robyn-env KEY=VALUE ...]

Both servers serve `benchmarks/langgraph.json` (deterministic graphs, no network) and are driven by the same
load client: raw asyncio sockets speaking HTTP/1.1 with keep-alive and chunked decoding, so the client stays
far cheaper than either server (its own CPU time is reported per scenario). The in-process target runs the
same graphs with `astream` and frames every event as SSE bytes with orjson: the limit no server can beat.

Targets: `inprocess`, `robyn` (this server, in-memory storage), its storage variants `robyn_sqlite` (a fresh
SQLite file), `robyn_pg` (a fresh Postgres database at POSTGRES_ADMIN_DSN, dropped afterwards),
`robyn_pg_redis` (plus `REDIS_URL`, BENCH_REDIS_URL) and `robyn_pg_redis_2p` (plus `--processes 2`), and
`reference`. A variant the server cannot run yet (a CLI flag it rejects, a Redis it never talks to) is skipped
with a message. Storage variants run `c50` and `rss` unless `--scenarios` names others; `rss` (server RSS after
1,000 and 10,000 runs, bounded in time) runs on this server only. `cpu/run` counts the server's process tree
plus, for Postgres, the backends serving its database and the Redis server (`db/run` is that share).

The reference server is installed from PyPI into `.bench/refenv` when missing; set `BENCH_REFENV=/path/to/venv`
to reuse an existing install (one that has `bin/langgraph`). It runs with `--n-jobs-per-worker` at the dev
default (1, see `langgraph_api/cli.py`), and that value is reported. Every loop is bounded in count and time and
all traffic goes to 127.0.0.1. `--profile DIR` attaches py-spy to this server during the 50-client, 2,000-token
and open-streams scenarios and prints the functions and modules that dominate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
WORK_DIR = ROOT / ".bench"
CONFIG = BENCH_DIR / "langgraph.json"
DEV_DEFAULT_JOBS = 1  # langgraph_api/cli.py: n_jobs_per_worker if not None else 1
MODES = ["messages-tuple", "values"]
PACED = {"n_tokens": 20, "ttft_ms": 1000.0, "token_ms": 250.0}  # ~5.75 s per run, like a slow LLM
OPEN_RAMP = {"seconds": 1.0}  # open streams start spread over this (`--open-ramp`); each lasts longer


def ensure_psutil() -> Any:
    """psutil is a dev extra; install it on first use so the benchmark stays one command."""
    try:
        import psutil
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "psutil"], check=True)
        import psutil
    return psutil


psutil = ensure_psutil()


# --------------------------------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """One run as the client saw it; times in seconds from sending the request."""

    ok: bool
    events: int = 0
    messages: int = 0
    ttft: float | None = None
    first_event: float | None = None  # the `metadata` event: the run started
    latency: float = 0.0
    error: str | None = None


@dataclass
class Scenario:
    """A load shape: `clients` concurrent loops sharing a budget of `runs` runs and `time_limit` seconds."""

    name: str
    graph: str
    clients: int
    runs: int
    time_limit: float
    input: dict[str, Any] = field(default_factory=dict)
    expect_messages: int = 50
    on_disconnect: str | None = None
    open_streams: bool = False  # every client opens its own connection and does one run
    ramp_s: float = 0.0  # client i starts at i * ramp_s / clients
    rss_marks: tuple[int, ...] = ()  # record the server's RSS when this many runs have finished

    def body(self) -> bytes:
        payload: dict[str, Any] = {
            "assistant_id": self.graph,
            "input": {"messages": [{"role": "user", "content": "hi"}], **self.input},
            "stream_mode": MODES,
        }
        if self.on_disconnect:
            payload["on_disconnect"] = self.on_disconnect
        return json.dumps(payload).encode()


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile in ms (None when nothing was measured)."""
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[idx] * 1000, 2)


# --------------------------------------------------------------------------------------------------- client


class SSEConnection:
    """A minimal HTTP/1.1 keep-alive client for POST + chunked SSE: cheap per event, no parsing of JSON.

    Events are counted by frame (`\\r\\n\\r\\n`), named by their `event:` line; heartbeat comments are skipped.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post_stream(self, path: str, body: bytes, limit_s: float, expect_messages: int) -> RunResult:
        start = time.perf_counter()
        result = RunResult(ok=False)
        try:
            async with asyncio.timeout(limit_s):
                await self._post_stream(path, body, start, result)
            if result.error is None and result.messages < expect_messages:
                result.error = f"only {result.messages} message events"
            result.ok = result.error is None
        except TimeoutError:
            result.error = "timeout"
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:120]
        result.latency = time.perf_counter() - start
        if not result.ok:
            await self.close()
        return result

    async def _post_stream(self, path: str, body: bytes, start: float, result: RunResult) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)
        reader, writer = self.reader, self.writer
        assert reader is not None
        writer.write(
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), self.port, len(body), body)
        )
        status = await reader.readline()
        if not status:
            raise ConnectionResetError("connection closed before the status line")
        code = int(status.split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get(b"connection", b"keep-alive").lower() != b"close"
        buf = b""
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                data = await reader.readexactly(size + 2)
                buf = self._feed(buf + data[:-2], start, result)
        elif b"content-length" in headers:
            buf = self._feed(await reader.readexactly(int(headers[b"content-length"])), start, result)
        else:
            buf = self._feed(await reader.read(), start, result)
            keep_alive = False
        if code != 200:
            result.error = f"HTTP {code}: {buf[:80]!r}"
        if not keep_alive:
            await self.close()

    @staticmethod
    def _feed(buf: bytes, start: float, result: RunResult) -> bytes:
        """Consume complete SSE frames from `buf`; return the incomplete tail."""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return buf
            frame, buf = buf[:end], buf[end + 4 :]
            if frame.startswith(b":") or not frame:
                continue
            result.events += 1
            if result.first_event is None:
                result.first_event = time.perf_counter() - start
            name = frame[7 : frame.find(b"\r\n")] if frame.startswith(b"event: ") else b""
            if name == b"messages":
                result.messages += 1
                if result.ttft is None:
                    result.ttft = time.perf_counter() - start
            elif name == b"error" and result.error is None:
                result.error = "event: error " + frame[frame.find(b"data: ") + 6 :][:80].decode(errors="replace")


async def http_get_ok(port: int, path: str = "/ok") -> bool:
    """True when the server answers 200 on `path` within 2 s."""
    try:
        async with asyncio.timeout(2.0):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
            status = await reader.readline()
            writer.close()
            return b" 200 " in status
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False


# --------------------------------------------------------------------------------------------------- targets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """Something that executes one run of a scenario and can be measured (CPU, RSS) around it."""

    name = ""
    info: dict[str, Any]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def processes(self) -> list[Any]:
        return []

    def backend_processes(self) -> list[Any]:
        """Processes outside the target's tree that work for it (database servers): counted in its CPU."""
        return []

    def runner(self, scenario: Scenario) -> Callable[[], Awaitable[tuple[Callable[[], Awaitable[RunResult]], Any]]]:
        raise NotImplementedError


class ServerTarget(Target):
    """A server subprocess in its own session (so it and its children can be stopped as one group)."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.cmd, self.cwd, self.env, self.port, self.log = name, cmd, cwd, env, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.info = {"command": " ".join(cmd), "port": port}

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as logf:
            return subprocess.Popen(
                self.cmd, cwd=self.cwd, env={**os.environ, **self.env}, stdout=logf, stderr=logf, start_new_session=True
            )

    async def start(self, ready_timeout: float = 120.0) -> None:
        self.proc = self._spawn()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            if await http_get_ok(self.port):
                return
            await asyncio.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {ready_timeout:.0f}s; see {self.log}")

    async def stop(self) -> None:
        """SIGTERM the group we started, SIGKILL it after 5 s (Robyn may not exit on signals: robyn.md)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session=True: the group id is our child's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        for _ in range(50):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=5)

    def processes(self) -> list[Any]:
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def runner(self, scenario: Scenario) -> Any:
        body = scenario.body()
        timeout = scenario.time_limit + 5

        async def make() -> tuple[Callable[[], Awaitable[RunResult]], Any]:
            conn = SSEConnection(self.port)

            async def one() -> RunResult:
                return await conn.post_stream("/runs/stream", body, timeout, scenario.expect_messages)

            return one, conn.close

        return make


class InProcessTarget(Target):
    """The graphs in this process via `astream`, each event framed as SSE bytes with orjson (the floor)."""

    name = "inprocess"

    def __init__(self) -> None:
        sys.path.insert(0, str(BENCH_DIR))
        import graphs
        import orjson

        self.graphs = {"tokens": graphs.tokens, "react": graphs.react, "paced": graphs.paced}
        self.orjson = orjson
        self.info = {"command": "graph.astream(stream_mode=['messages', 'values']) + orjson SSE framing"}

    def processes(self) -> list[Any]:
        return [psutil.Process()]

    @staticmethod
    def _default(obj: Any) -> Any:
        if hasattr(obj, "model_dump"):
            return obj.model_dump()
        raise TypeError(type(obj).__name__)

    def runner(self, scenario: Scenario) -> Any:
        graph = self.graphs[scenario.graph]
        dumps, default = self.orjson.dumps, self._default
        inp = {"messages": [{"role": "user", "content": "hi"}], **scenario.input}
        timeout = scenario.time_limit + 5

        async def one() -> RunResult:
            start = time.perf_counter()
            res = RunResult(ok=False)
            try:
                async with asyncio.timeout(timeout):
                    async for mode, chunk in graph.astream(inp, stream_mode=["messages", "values"]):
                        name = b"messages" if mode == "messages" else b"values"
                        frame = b"event: " + name + b"\r\ndata: " + dumps(chunk, default=default) + b"\r\n\r\n"
                        res.events += frame.count(b"\r\n\r\n")
                        if mode == "messages":
                            res.messages += 1
                            if res.ttft is None:
                                res.ttft = time.perf_counter() - start
                res.events += 1  # the metadata event a server sends first
                res.ok = res.messages >= scenario.expect_messages
                if not res.ok:
                    res.error = f"only {res.messages} message events"
            except Exception as exc:  # a benchmark reports errors instead of stopping
                res.error = f"{type(exc).__name__}: {exc}"[:120]
            res.latency = time.perf_counter() - start
            return res

        async def make() -> tuple[Callable[[], Awaitable[RunResult]], Any]:
            async def close() -> None:
                return None

            return one, close

        return make


def reference_env() -> Path:
    """The venv with the official dev server: $BENCH_REFENV, else `.bench/refenv` (installed from PyPI once)."""
    env = Path(os.environ.get("BENCH_REFENV", WORK_DIR / "refenv"))
    if (env / "bin" / "langgraph").exists():
        return env
    print(f"installing langgraph-cli[inmem] into {env} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(env / "bin" / "pip"), "install", "-q", "langgraph-cli[inmem]"], check=True)
    return env


def reference_versions(env: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import importlib.metadata as m;"
         "print(*[p+'='+m.version(p) for p in ('langgraph-api','langgraph-runtime-inmem','langgraph')])"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return dict(item.split("=", 1) for item in out.stdout.split())


ONLY_SCENARIOS: set[str] = set()  # --scenarios c50,long_2000,open: run only these
ROBYN_ENV: dict[str, str] = {}  # --robyn-env KEY=VALUE: settings for this server only (e.g. N_JOBS_PER_WORKER)


ADMIN_DSN = os.environ.get("POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Variant:
    """One way of running this server: its storage, extra CLI flags and environment."""

    storage: str
    args: tuple[str, ...] = ()
    redis: bool = False
    note: str = ""


# `robyn` is the in-memory server of earlier results; the others are the durable storage variants.
# Redis is passed as `REDIS_URL`; the run checks Redis saw traffic (else the row is skipped),
# and flags the server does not know yet (`--processes`) make the variant skip with a message.
VARIANTS: dict[str, Variant] = {
    "robyn": Variant("memory"),
    "robyn_sqlite": Variant("sqlite"),
    "robyn_pg": Variant("postgres"),
    "robyn_pg_redis": Variant("postgres", redis=True),
    "robyn_pg_redis_2p": Variant("postgres", ("--processes", "2"), redis=True),
}
# scenarios a storage variant runs unless --scenarios names others (all of them take minutes on SQL storage)
VARIANT_SCENARIOS = {"c50", "rss"}


class SkipTarget(RuntimeError):
    """The target cannot run here (a flag the server rejects, Redis unused): reported, not an error."""


def _postgres_admin_execute(statement: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def redis_commands() -> int | None:
    """Commands the Redis server has processed so far (None when Redis is unreachable)."""
    try:
        import redis

        return int(redis.Redis.from_url(REDIS_URL, socket_timeout=3).info("stats")["total_commands_processed"])
    except Exception:
        return None


class RobynTarget(ServerTarget):
    """This server on one storage variant; SQL storage gets a fresh database, removed when it stops."""

    def __init__(self, name: str, variant: Variant) -> None:
        import uuid

        self.variant = variant
        port = free_port()
        cmd = [sys.executable, "-m", "robyn_server", "--config", str(CONFIG), "--port", str(port)]
        cmd += ["--storage", variant.storage, *variant.args]
        env = dict(ROBYN_ENV)
        self.sqlite_path: Path | None = None
        self.dbname: str | None = None
        if variant.storage == "sqlite":
            self.sqlite_path = WORK_DIR / f"bench-{uuid.uuid4().hex[:8]}.sqlite"
            env["ROBYN_SERVER_SQLITE_PATH"] = str(self.sqlite_path)
        elif variant.storage == "postgres":
            import psycopg

            self.dbname = f"bench_{uuid.uuid4().hex[:12]}"
            env["DATABASE_URL"] = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=self.dbname)
        if variant.redis:
            env["REDIS_URL"] = REDIS_URL
        super().__init__(name, cmd, ROOT, env, port, WORK_DIR / "logs" / f"{name}.log")
        self.info["env"] = {k: v for k, v in env.items() if k != "DATABASE_URL"}
        self.info["storage"] = variant.storage
        self.redis0: int | None = None

    async def start(self, ready_timeout: float = 120.0) -> None:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        if self.dbname:
            await asyncio.to_thread(_postgres_admin_execute, f'CREATE DATABASE "{self.dbname}"')
        log_start = self.log.stat().st_size if self.log.exists() else 0
        try:
            await super().start(ready_timeout)
        except RuntimeError as exc:
            await self.cleanup()
            tail = self.log.read_bytes()[log_start:].decode(errors="replace").strip().splitlines()
            last = tail[-1] if tail else str(exc)
            if self.variant.args and any(m in last for m in ("unrecognized arguments", "invalid choice", "usage:")):
                raise SkipTarget(f"the server rejects {' '.join(self.variant.args)}: {last}") from exc
            raise RuntimeError(f"{exc}: {last}") from exc
        self.redis0 = redis_commands() if self.variant.redis else None

    def check_redis_used(self) -> None:
        """After warm-up: a Redis variant whose server sent Redis nothing is not measuring Redis."""
        if not self.variant.redis:
            return
        now_ = redis_commands()
        if now_ is None:
            raise SkipTarget(f"Redis unreachable at {REDIS_URL}")
        if self.redis0 is not None and now_ - self.redis0 < 5:
            raise SkipTarget("the server sent Redis no commands during warm-up (REDIS_URL not used)")

    async def stop(self) -> None:
        await super().stop()
        await self.cleanup()

    async def cleanup(self) -> None:
        await asyncio.to_thread(self._remove_database)

    def _remove_database(self) -> None:
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    Path(f"{self.sqlite_path}{suffix}").unlink()
        if self.dbname:
            with contextlib.suppress(Exception):
                _postgres_admin_execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def backend_processes(self) -> list[Any]:
        """Postgres backends serving this server's database, and the Redis server (their CPU is the server's)."""
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            name = proc.info.get("name") or ""
            cmdline = " ".join(proc.info.get("cmdline") or ())
            if self.dbname and name == "postgres" and f" {self.dbname} " in f"{cmdline} ":
                found.append(proc)
            elif self.variant.redis and name == "redis-server":
                found.append(proc)
        return found


def make_robyn(name: str = "robyn") -> ServerTarget:
    return RobynTarget(name, VARIANTS[name])


def make_reference() -> ServerTarget:
    env = reference_env()
    shutil.rmtree(BENCH_DIR / ".langgraph_api", ignore_errors=True)  # it pickles state here and reloads it
    port = free_port()
    cmd = [
        str(env / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload",
        "--host", "127.0.0.1", "--port", str(port), "--config", "langgraph.json",
    ]  # fmt: skip
    flags = {"LANGGRAPH_NO_VERSION_CHECK": "true", "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    target = ServerTarget("reference", cmd, BENCH_DIR, flags, port, WORK_DIR / "logs" / "reference.log")
    target.info["n_jobs_per_worker"] = f"{DEV_DEFAULT_JOBS} (dev default, flag not passed)"
    target.info["versions"] = reference_versions(env)
    return target


# --------------------------------------------------------------------------------------------------- measuring


class Sampler:
    """Samples the target's process tree every 100 ms for peak RSS and thread count, in a thread of its own."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.peak_rss = 0
        self.peak_threads = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds so far of the target's processes and of the database processes working for it."""
        out: dict[int, float] = {}
        for proc in [*self.target.processes(), *self.target.backend_processes()]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
        return out

    def rss(self) -> int:
        total = 0
        for proc in self.target.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def snapshot(self) -> tuple[int, int, float]:
        rss = threads = 0
        cpu = 0.0
        for proc in self.target.processes():
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
                threads += proc.num_threads()
                t = proc.cpu_times()
                cpu += t.user + t.system
        return rss, threads, cpu

    async def _loop(self) -> None:
        while not self._stop.is_set():
            rss, threads, _ = await asyncio.to_thread(self.snapshot)
            self.peak_rss, self.peak_threads = max(self.peak_rss, rss), max(self.peak_threads, threads)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def finish(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def system_busy() -> float:
    """Machine-wide busy CPU seconds, to tell how much other processes competed during a scenario."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


async def run_scenario(target: Target, scenario: Scenario) -> dict[str, Any]:
    """Drive one scenario within its count and time budget and summarise it."""
    make = target.runner(scenario)
    sampler = Sampler(target)
    base_rss, _, _ = await asyncio.to_thread(sampler.snapshot)
    cpu0 = await asyncio.to_thread(sampler.cpu_by_pid)
    backend0 = {p.pid for p in await asyncio.to_thread(target.backend_processes)}
    client0 = time.process_time()
    busy0 = system_busy()
    results: list[RunResult] = []
    started = 0
    wall0 = time.perf_counter()
    deadline = wall0 + scenario.time_limit

    open_now = peak_open = 0
    rss_at: dict[str, float] = {}
    marks = set(scenario.rss_marks)

    async def client(i: int) -> None:
        nonlocal started, open_now, peak_open
        if scenario.ramp_s:
            await asyncio.sleep(i * scenario.ramp_s / scenario.clients)
        one, close = await make()
        try:
            while started < scenario.runs and time.perf_counter() < deadline:
                started += 1
                open_now += 1
                peak_open = max(peak_open, open_now)
                try:
                    results.append(await one())
                finally:
                    open_now -= 1
                if len(results) in marks:
                    marks.discard(len(results))
                    rss_at[str(len(results))] = round(sampler.rss() / 2**20, 1)
                if scenario.open_streams:
                    break
        finally:
            await close()

    sampler.start()
    tasks = [asyncio.create_task(client(i)) for i in range(scenario.clients)]
    _, pending = await asyncio.wait(tasks, timeout=scenario.time_limit + 15)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall = time.perf_counter() - wall0
    await sampler.finish()
    client_cpu = time.process_time() - client0
    busy = system_busy() - busy0
    cpu1 = await asyncio.to_thread(sampler.cpu_by_pid)
    backend_pids = backend0 | {p.pid for p in await asyncio.to_thread(target.backend_processes)}

    ok = [r for r in results if r.ok]
    errors = Counter(r.error for r in results if not r.ok)
    lost = len(pending)
    if lost:
        errors["hard timeout (client cancelled)"] += lost
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    deltas = {pid: cpu - cpu0.get(pid, 0.0) for pid, cpu in cpu1.items()}
    server_cpu = sum(deltas.values())
    backend_cpu = sum(d for pid, d in deltas.items() if pid in backend_pids)
    summary: dict[str, Any] = {
        "target": target.name,
        "scenario": scenario.name,
        "graph": scenario.graph,
        "clients": scenario.clients,
        "runs_ok": len(ok),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors.most_common(5)),
        "wall_s": round(wall, 3),
        "runs_per_s": round(len(ok) / wall, 2),
        "events_per_s": round(sum(r.events for r in ok) / wall, 1),
        "events_per_run": round(sum(r.events for r in ok) / len(ok), 1) if ok else None,
        "ttft_p50_ms": pct(ttfts, 50),
        "ttft_p99_ms": pct(ttfts, 99),
        "latency_p50_ms": pct([r.latency for r in ok], 50),
        "latency_p99_ms": pct([r.latency for r in ok], 99),
        "server_cpu_ms_per_run": round(server_cpu * 1000 / len(ok), 2) if ok else None,
        "server_cpu_s": round(server_cpu, 2),
        # of server_cpu: the Postgres backends of its database and the Redis server
        "db_cpu_ms_per_run": round(backend_cpu * 1000 / len(ok), 2) if ok and backend_pids else None,
        "server_cpu_util": round(server_cpu / wall, 2),
        "base_rss_mb": round(base_rss / 2**20, 1),
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "peak_threads": sampler.peak_threads,
        "client_cpu_ms": round(client_cpu * 1000, 1),
        "client_cpu_util": round(client_cpu / wall, 2),
        # cores used by everything else on the machine meanwhile: >0.2 means the numbers are noisy
        "other_cpu_util": round(
            max(0.0, busy - server_cpu - (0 if target.name == "inprocess" else client_cpu)) / wall, 2
        ),
    }
    if scenario.rss_marks:
        rss_at[f"end ({len(results)})"] = round(await asyncio.to_thread(sampler.rss) / 2**20, 1)
        summary["rss_mb_after_runs"] = rss_at
    if scenario.open_streams:
        limit = 2 * scenario.input.get("ttft_ms", PACED["ttft_ms"]) / 1000
        summary["peak_open_streams"] = peak_open
        summary["ttft_within_2x_delay"] = f"{sum(1 for t in ttfts if t <= limit)}/{scenario.runs}"
        starts = [r.first_event for r in ok if r.first_event is not None]
        summary["first_event_p50_ms"] = pct(starts, 50)  # the run started (metadata): queueing before the graph
        summary["first_event_p99_ms"] = pct(starts, 99)
        summary["rss_per_stream_kb"] = round((sampler.peak_rss - base_rss) / 1024 / scenario.runs, 1)
    return summary


def scenarios(quick: bool) -> list[Scenario]:
    """The scenario list; `--quick` shrinks counts and time budgets so the whole thing takes ~1-2 minutes."""
    q = quick
    return [
        Scenario("seq_1", "tokens", 1, 30 if q else 300, 5 if q else 20),
        Scenario("c10", "tokens", 10, 200 if q else 1000, 6 if q else 25),
        Scenario("c50", "tokens", 50, 400 if q else 2500, 8 if q else 30),
        Scenario("react_c10", "react", 10, 100 if q else 500, 4 if q else 15, expect_messages=52),
        Scenario("long_2000", "tokens", 1, 1 if q else 3, 20 if q else 45, {"n_tokens": 2000}, 2000),
        # server RSS after 1,000 and 10,000 runs (quick: 1,000 and 2,000), 50 clients, bounded in time
        Scenario("rss", "tokens", 50, 2000 if q else 10000, 40 if q else 180, rss_marks=(1000, 2000 if q else 10000)),
    ]


def open_scenario(n: int, quick: bool) -> Scenario:
    ramp = OPEN_RAMP["seconds"]
    return Scenario(
        f"open_{n}", "paced", n, n, 20 if quick else 40, dict(PACED), PACED["n_tokens"], "cancel", True, ramp
    )


def open_levels(quick: bool, done: dict[int, int]) -> int | None:
    """The next open-streams level after `done` (level: errors, in order): 1,000 first; in full mode 2,000 if
    1,000 had no error, else 250 and then 100 while there are errors."""
    if not done:
        return 1000
    if quick:
        return None
    last, errors = next(reversed(done.items()))
    if last == 1000:
        return 250 if errors else 2000
    return 100 if last == 250 and errors else None


# --------------------------------------------------------------------------------------------------- profiling


class Profiler:
    """py-spy attached to a server pid for one scenario, plus per-thread CPU from /proc.

    `--gil` samples only the thread holding the GIL, so waiting threads (Robyn's blocking iterator threads)
    do not count; the per-thread CPU shows what the Rust side (actix workers) costs, which py-spy cannot see.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        self.pid = 0
        self.threads0: dict[int, tuple[str, float]] = {}
        exe = Path(sys.executable).parent / "py-spy"
        self.exe = str(exe) if exe.exists() else shutil.which("py-spy")

    def thread_cpu(self) -> dict[int, tuple[str, float]]:
        out: dict[int, tuple[str, float]] = {}
        with contextlib.suppress(psutil.Error):
            for t in psutil.Process(self.pid).threads():
                try:
                    name = Path(f"/proc/{self.pid}/task/{t.id}/comm").read_text().strip()
                except OSError:
                    name = "?"
                out[t.id] = (name, t.user_time + t.system_time)
        return out

    def start(self, pid: int, label: str) -> None:
        self.pid = pid
        self.threads0 = self.thread_cpu()
        if not self.exe:
            print("py-spy not found: pip install py-spy", file=sys.stderr)
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / f"{label}.txt"
        cmd = [self.exe, "record", "--pid", str(pid), "--rate", "500", "--nonblocking", "--gil", "--full-filenames"]
        cmd += ["--format", "raw", "-o", str(self.path)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let it attach before the load starts

    def stop(self) -> str:
        threads1 = self.thread_cpu()
        by_name: Counter[str] = Counter()
        for tid, (name, cpu) in threads1.items():
            by_name[name if tid != self.pid else f"{name} (main: Python event loop)"] += (
                cpu - self.threads0.get(tid, (name, 0.0))[1]
            )
        total_cpu = sum(by_name.values()) or 1.0
        lines = [f"server thread CPU during the scenario: {total_cpu:.2f} s"]
        lines += [f"  {100 * c / total_cpu:5.1f}%  {n}" for n, c in by_name.most_common(6) if c > 0]
        if self.proc is not None and self.path is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
            lines.append(summarize_profile(self.path))
        return "\n".join(lines)


ROOT_FRAMES = ("runpy", "robyn_server/__main__.py", "robyn_server/cli.py", "robyn/__init__.py", "robyn/processpool.py")


def short_file(path: str) -> tuple[str, str]:
    """(short path, top-level module) of a frame's file: site-packages and stdlib prefixes removed."""
    for marker in ("site-packages/", "/lib/python3.11/", "/lib/python3.12/", f"{ROOT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return path, path.split("/")[0].removesuffix(".py")


def summarize_profile(path: Path, top: int = 15) -> str:
    """Self and inclusive sample shares per function and per module from py-spy's collapsed stacks.

    Frames of the start-up chain (runpy -> cli -> Robyn.start -> processpool) are dropped; samples whose
    innermost frame is one of them are time spent in uvloop / Robyn native code while holding the GIL.
    """
    if not path.exists():
        return f"(no profile written at {path})"
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    incl_mod: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names: list[tuple[str, str]] = []
        for frame in stack.split(";"):
            func, _, loc = frame.partition(" (")
            file, module = short_file(loc.rsplit(":", 1)[0])
            if not names and any(root in file for root in ROOT_FRAMES):
                continue
            names.append((f"{func} ({file})", module))
        if not names:
            names = [("<uvloop / Robyn native code, GIL held>", "<native>")]
        self_fn[names[-1][0]] += n
        for name in {nm for nm, _ in names}:
            incl_fn[name] += n
        for mod in {md for _, md in names}:
            incl_mod[mod] += n
    if not total:
        return f"(empty profile {path})"

    def block(title: str, counter: Counter[str]) -> list[str]:
        return [title, *(f"  {100 * c / total:5.1f}%  {k}" for k, c in counter.most_common(top))]

    lines = [f"{path.name}: {total} GIL-holding samples"]
    lines += block("self time by function:", self_fn)
    lines += block("inclusive by top-level module:", incl_mod)
    lines += block("inclusive by function:", incl_fn)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- report

COLUMNS = [
    ("target", "target", 17),
    ("scenario", "scenario", 10),
    ("runs_ok", "ok", 5),
    ("errors", "err", 5),
    ("runs_per_s", "runs/s", 8),
    ("events_per_s", "events/s", 9),
    ("ttft_p50_ms", "ttft50", 8),
    ("ttft_p99_ms", "ttft99", 8),
    ("latency_p50_ms", "lat50", 8),
    ("latency_p99_ms", "lat99", 8),
    ("server_cpu_ms_per_run", "cpu/run", 8),
    ("db_cpu_ms_per_run", "db/run", 7),
    ("peak_rss_mb", "rssMB", 7),
    ("peak_threads", "thr", 5),
    ("client_cpu_util", "cliCPU", 6),
    ("other_cpu_util", "other", 6),
]


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """robyn / reference and robyn / inprocess per scenario (higher is better for rates, lower for times)."""
    by = {(r["target"], r["scenario"]): r for r in results}
    out = []
    for (target, scen), row in by.items():
        if target != "robyn":
            continue
        entry: dict[str, Any] = {"scenario": scen}
        for other in ("reference", "inprocess"):
            base = by.get((other, scen))
            if base is None:
                continue
            for key in ("runs_per_s", "events_per_s", "ttft_p50_ms", "latency_p50_ms", "server_cpu_ms_per_run"):
                a, b = row.get(key), base.get(key)
                entry[f"{key}_vs_{other}"] = round(a / b, 2) if a and b else None
        out.append(entry)
    return out


def storage_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each storage variant against the in-memory server measured in the same run."""
    by = {(r["target"], r["scenario"]): r for r in results}
    out = []
    for (target, scen), row in by.items():
        base = by.get(("robyn", scen))
        if target not in VARIANTS or target == "robyn" or base is None:
            continue
        entry: dict[str, Any] = {"target": target, "scenario": scen}
        for key in ("runs_per_s", "ttft_p50_ms", "server_cpu_ms_per_run"):
            a, b = row.get(key), base.get(key)
            entry[f"{key}_vs_memory"] = round(a / b, 2) if a and b else None
        out.append(entry)
    return out


def print_table(results: list[dict[str, Any]], ratio_rows: list[dict[str, Any]]) -> None:
    print("\n" + " ".join(f"{title:>{w}}" for _, title, w in COLUMNS))
    for row in results:
        print(" ".join(f"{fmt(row.get(key)):>{w}}" for key, _, w in COLUMNS))
        keys = (
            "peak_open_streams",
            "ttft_within_2x_delay",
            "first_event_p50_ms",
            "first_event_p99_ms",
            "rss_per_stream_kb",
            "rss_mb_after_runs",
        )
        extra = {k: row[k] for k in keys if k in row}
        if row["error_kinds"] or extra:
            print(f"{'':>28} {extra or ''} {row['error_kinds'] or ''}")
    if any(len(entry) > 1 for entry in ratio_rows):
        print("\nrobyn ratios (x): runs/s and events/s higher is better; ttft, latency, cpu/run lower is better")
        keys = ["runs_per_s", "events_per_s", "ttft_p50_ms", "latency_p50_ms", "server_cpu_ms_per_run"]
        short = ["runs/s", "ev/s", "ttft50", "lat50", "cpu/run"]
        heads = [f"{s + ' /' + o[:3]:>12}" for o in ("reference", "inprocess") for s in short]
        print(f"{'scenario':>10} " + " ".join(heads))
        for entry in ratio_rows:
            cells = [fmt(entry.get(f"{k}_vs_{o}")) for o in ("reference", "inprocess") for k in keys]
            print(f"{entry['scenario']:>10} " + " ".join(f"{c:>12}" for c in cells))
    variant_rows = storage_ratios(results)
    if variant_rows:
        print("\nstorage variants / in-memory server, same run (x)")
        print(f"{'target':>17} {'scenario':>10} {'runs/s':>8} {'ttft50':>8} {'cpu/run':>8}")
        for entry in variant_rows:
            cells = [fmt(entry.get(f"{k}_vs_memory")) for k in ("runs_per_s", "ttft_p50_ms", "server_cpu_ms_per_run")]
            print(f"{entry['target']:>17} {entry['scenario']:>10} " + " ".join(f"{c:>8}" for c in cells))


# --------------------------------------------------------------------------------------------------- main


async def warm_up(target: Target) -> None:
    """A few untimed runs of every graph so imports and caches are not measured."""
    for scen in (
        Scenario("warm", "tokens", 1, 3, 30),
        Scenario("warm", "react", 1, 2, 30, expect_messages=0),
        Scenario("warm", "paced", 1, 1, 30, {"n_tokens": 2, "ttft_ms": 10, "token_ms": 1}, 2),
    ):
        make = target.runner(scen)
        one, close = await make()
        for _ in range(scen.runs):
            res = await one()
            if not res.ok:
                print(f"  warm-up {target.name}/{scen.graph}: {res.error}", file=sys.stderr)
        await close()


def wanted(name: str, scen: Scenario) -> bool:
    """--scenarios, else each target's default set: storage variants run c50 and rss; rss is for this server only."""
    if scen.name == "rss" and name not in VARIANTS:
        return False
    if ONLY_SCENARIOS:
        return scen.name in ONLY_SCENARIOS
    if name in VARIANTS and name != "robyn":
        return scen.name in VARIANT_SCENARIOS
    return True


def make_target(name: str) -> Target:
    if name in VARIANTS:
        return make_robyn(name)
    target = make_reference() if name == "reference" else InProcessTarget()
    target.name = name
    return target


async def bench_target(
    name: str, quick: bool, profile_dir: Path | None, log: Callable[[dict[str, Any]], None]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    results: list[dict[str, Any]] = []
    target = make_target(name)
    await target.start()
    try:
        await warm_up(target)
        if isinstance(target, RobynTarget):
            target.check_redis_used()
        for scen in scenarios(quick):
            if not wanted(name, scen):
                continue
            profiler = None
            if profile_dir and name in VARIANTS and scen.name in ("c50", "long_2000"):
                if scen.name == "long_2000":  # one 2,000-token run is too short to sample well
                    scen.runs, scen.time_limit = 10, 60
                profiler = Profiler(profile_dir)
                profiler.start(target.processes()[0].pid, f"{name}_{scen.name}")
            row = await run_scenario(target, scen)
            if profiler:
                row["profile"] = profiler.stop()
                print(row["profile"], file=sys.stderr)
            results.append(row)
            log(row)
        run_open = "open" in ONLY_SCENARIOS if ONLY_SCENARIOS else name in ("robyn", "reference", "inprocess")
        errors_at: dict[int, int] = {}
        while run_open and (n := open_levels(quick, errors_at)) is not None:
            if errors_at:  # a fresh server: runs left over from the level before do not count against this one
                await target.stop()
                target = make_target(name)
                await target.start()
                await warm_up(target)
            profiler = None
            if profile_dir and name in VARIANTS:
                profiler = Profiler(profile_dir)
                profiler.start(target.processes()[0].pid, f"{name}_open_{n}")
            row = await run_scenario(target, open_scenario(n, quick))
            if profiler:
                row["profile"] = profiler.stop()
                print(row["profile"], file=sys.stderr)
            results.append(row)
            log(row)
            errors_at[n] = row["errors"]
    finally:
        await target.stop()
    return results, target.info


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    targets = args.only.split(",") if args.only else ["inprocess", *VARIANTS, "reference"]
    unknown = [t for t in targets if t not in ALL_TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(ALL_TARGETS)}")
    all_results: list[dict[str, Any]] = []
    infos: dict[str, Any] = {}

    def log(row: dict[str, Any]) -> None:
        print(
            f"  {row['target']:>9} {row['scenario']:>10}: {row['runs_ok']} ok, {row['errors']} err, "
            f"{row['runs_per_s']} runs/s, ttft p50 {row['ttft_p50_ms']} ms, client CPU {row['client_cpu_util']}",
            file=sys.stderr,
            flush=True,
        )

    for name in targets:
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            rows, info = await bench_target(name, args.quick, args.profile, log)
        except SkipTarget as exc:
            print(f"  {name} skipped: {exc}", file=sys.stderr)
            infos[name] = {"skipped": str(exc)}
            continue
        except RuntimeError as exc:
            print(f"  {name} failed: {exc}", file=sys.stderr)
            infos[name] = {"error": str(exc)}
            continue
        all_results += rows
        infos[name] = info
    ratio_rows = ratios(all_results)
    print_table(all_results, ratio_rows)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "loadavg_at_end": [round(x, 2) for x in psutil.getloadavg()],
        },
        "quick": args.quick,
        "git": git_state(),
        "scenarios": {s.name: asdict(s) for s in [*scenarios(args.quick), open_scenario(1000, args.quick)]},
        "targets": infos,
        "results": all_results,
        "ratios": ratio_rows,
        "storage_ratios": storage_ratios(all_results),
    }
    return report


ALL_TARGETS = ["inprocess", *VARIANTS, "reference"]


def git_state() -> str:
    """The commit measured, and whether the working tree had uncommitted edits (they are measured too)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" (uncommitted edits)" if dirty.stdout.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts and time budgets (~1-2 minutes)")
    parser.add_argument("--only", help=f"comma-separated targets (default all): {', '.join(ALL_TARGETS)}")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--profile", type=Path, help="py-spy this server during c50, long_2000 and open_N into DIR")
    parser.add_argument(
        "--robyn-env", action="append", default=[], metavar="KEY=VALUE", help="environment for this server only"
    )
    parser.add_argument("--scenarios", help="comma-separated names to run: seq_1,c10,c50,react_c10,long_2000,rss,open")
    parser.add_argument(
        "--open-ramp", type=float, default=1.0, help="seconds over which the open-streams scenario opens its streams"
    )
    args = parser.parse_args()
    OPEN_RAMP["seconds"] = args.open_ramp
    ONLY_SCENARIOS.update(s for s in (args.scenarios or "").split(",") if s)
    ROBYN_ENV.update(item.split("=", 1) for item in args.robyn_env)
    try:
        import uvloop
    except ImportError:
        report = asyncio.run(main_async(args))
    else:
        report = uvloop.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nJSON written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m robyn_server` / `robyn-server`: read langgraph.json, load the graphs, serve them on Robyn.

Robyn reads `sys.argv` when it is imported, so this module parses its own flags first and imports the app
afterwards. Start-up failures end the process with one line naming the file, graph or port.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STORAGE_KINDS = ("memory", "sqlite", "postgres")
ROLES = ("all", "api", "worker")


def default_storage(environ: Mapping[str, str]) -> str:
    """The backend when `--storage` is not given: ROBYN_SERVER_STORAGE, else Postgres for a Postgres
    DATABASE_URL, else the embedded SQLite file."""
    explicit = (environ.get("ROBYN_SERVER_STORAGE") or "").strip().lower()
    if explicit:
        return explicit
    if (environ.get("DATABASE_URL") or "").startswith(("postgres://", "postgresql://")):
        return "postgres"
    return "sqlite"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="robyn-server", description="LangGraph-compatible agent server on Robyn")
    parser.add_argument("--config", help="path to langgraph.json (default: ./langgraph.json, else the bundled agent)")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8081")))
    parser.add_argument(
        "--storage",
        choices=STORAGE_KINDS,
        default=None,
        help="where assistants, threads, runs and checkpoints live (default: ROBYN_SERVER_STORAGE, else postgres "
        "when DATABASE_URL=postgresql://..., else sqlite); postgres reads DATABASE_URL",
    )
    parser.add_argument(
        "--sqlite-path",
        default=os.environ.get("ROBYN_SERVER_SQLITE_PATH", "data/robyn_server.sqlite"),
        help="database file for --storage sqlite",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("ROBYN_SERVER_WORKERS", "4")),
        help="Robyn worker threads; each can hold about 256 waiting streams (env ROBYN_SERVER_WORKERS)",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "WARNING"))
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("ROBYN_SERVER_PROCESSES", "1")),
        help="server processes on one port, each serving HTTP and executing runs; more than 1 needs "
        "DATABASE_URL (Postgres) and REDIS_URL (env ROBYN_SERVER_PROCESSES)",
    )
    parser.add_argument(
        "--role",
        choices=ROLES,
        default=os.environ.get("ROBYN_SERVER_ROLE", "all"),
        help="all: serve HTTP and execute runs; api: serve HTTP only; worker: execute runs only, no HTTP "
        "(api and worker need DATABASE_URL and REDIS_URL; env ROBYN_SERVER_ROLE)",
    )
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"robyn-server: error: {message}", file=sys.stderr)
    sys.exit(1)


def ensure_port_free(host: str, port: int) -> None:
    """Robyn's own busy-port prompt loops forever without a terminal, so check first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


class ShutdownWatcher:
    """Stops the server on SIGINT/SIGTERM: Robyn's own shutdown handler never fires (robyn.md).

    The signals are blocked in every thread and taken by one waiting thread, which cancels the running runs
    on the event loop, records them, and ends the process.
    """

    def __init__(self, grace_seconds: float = 4.0) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.grace_seconds = grace_seconds
        self.on_shutdown: list = []

    def install(self) -> None:
        signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        threading.Thread(target=self._wait, args=(signals,), name="shutdown-watcher", daemon=True).start()

    def _wait(self, signals: set[signal.Signals]) -> None:
        signum = signal.sigwait(signals)
        logging.getLogger("robyn_server").warning("received %s, shutting down", signal.Signals(signum).name)
        if self.loop is not None and self.loop.is_running():
            for hook in self.on_shutdown:
                future = asyncio.run_coroutine_threadsafe(hook(), self.loop)
                try:
                    future.result(timeout=self.grace_seconds)
                except Exception:
                    pass
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def check_sqlite(storage: Any) -> None:
    """Open the file once before serving, so a corrupt or locked database is one clear line, not a hang."""
    import sqlite3

    from robyn_server.storage.errors import describe_startup_error

    try:
        conn = sqlite3.connect(storage.path, timeout=storage.busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        fail(describe_startup_error(storage, exc))


def make_storage(args: argparse.Namespace) -> Any:
    """The storage backend named on the command line; unreachable databases stop the server here."""
    from robyn_server.config import env_float, env_int

    if args.storage is None:
        args.storage = default_storage(os.environ)
    if args.storage not in STORAGE_KINDS:
        fail(f"unknown storage {args.storage!r} (ROBYN_SERVER_STORAGE): expected one of {', '.join(STORAGE_KINDS)}")
    if args.storage == "sqlite":
        from robyn_server.storage.sqlite import SqliteStorage

        path = Path(args.sqlite_path).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create the folder for {path}: {exc.strerror}")
        busy_ms = env_int("ROBYN_SERVER_SQLITE_BUSY_TIMEOUT_MS", 10000)
        storage = SqliteStorage(str(path), busy_timeout_ms=busy_ms)
        check_sqlite(storage)
        return storage
    if args.storage == "postgres":
        import psycopg

        from robyn_server.storage.postgres import PostgresStorage

        dsn = os.environ.get("DATABASE_URL")
        if not dsn:
            fail("--storage postgres needs DATABASE_URL=postgresql://...")
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
        except psycopg.Error as exc:
            host = psycopg.conninfo.conninfo_to_dict(dsn).get("host", "?")
            fail(f"cannot connect to Postgres at {host}: {str(exc).strip().splitlines()[0]}")
        return PostgresStorage(
            dsn,
            max_size=env_int("ROBYN_SERVER_DB_POOL_SIZE", 10),
            pool_timeout=env_float("ROBYN_SERVER_DB_POOL_TIMEOUT_SECONDS", 10.0),
        )
    from robyn_server.storage.memory import MemoryStorage

    return MemoryStorage()


def check_shared_setup(args: argparse.Namespace) -> None:
    """Several processes, or split roles, share runs only through Postgres and Redis: say what is missing."""
    if args.processes < 1:
        fail("--processes must be at least 1")
    if args.processes == 1 and args.role == "all":
        return
    what = f"--processes {args.processes}" if args.processes > 1 else f"--role {args.role}"
    missing = []
    storage = args.storage or default_storage(os.environ)
    if storage != "postgres" or not (os.environ.get("DATABASE_URL") or "").strip():
        missing.append("DATABASE_URL=postgresql://... (Postgres storage)")
    if not (os.environ.get("REDIS_URL") or "").strip():
        missing.append("REDIS_URL=redis://...")
    if missing:
        fail(f"{what} needs {' and '.join(missing)}: processes share runs only through Postgres and Redis")


def check_redis(url: str) -> None:
    """An unreachable Redis stops the start with one line naming REDIS_URL."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError) as exc:
        fail(f"cannot connect to Redis at REDIS_URL: {str(exc).strip().splitlines()[0] if str(exc) else exc}")


def main(argv: list[str] | None = None) -> None:
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from robyn_server.ops import logs, tracing

    try:
        logs.configure(args.log_level)  # LOG_FORMAT=json: one JSON object per line
    except ValueError as exc:
        fail(str(exc))
    # Robyn parses sys.argv on import: hide our flags from it.
    sys.argv = sys.argv[:1]

    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env")

    from robyn_server.config import ConfigError, Settings, apply_config_environment, load_config, resolve_config_path

    try:
        config_path = resolve_config_path(args.config)
        config = load_config(config_path)
        apply_config_environment(config)
        settings = Settings.from_env()
    except ConfigError as exc:
        fail(str(exc))
        return

    check_shared_setup(args)
    from robyn_server.supervisor import CHILD_ENV, supervise

    if os.environ.get(CHILD_ENV) != "1" and args.role != "worker":
        ensure_port_free(args.host, args.port)  # children bind the port their parent checked
    if args.processes > 1:
        supervise(raw_argv, args.processes)
    if settings.redis_url:
        check_redis(settings.redis_url)

    from robyn.argument_parser import Config as RobynConfig

    from robyn_server.app import build_app, build_context
    from robyn_server.runs.recovery import Upkeep

    try:
        Upkeep()  # read (and so check) the upkeep timings now, not inside the startup handler
        storage = make_storage(args)
        ctx = build_context(config, settings, storage, api_url=f"http://{args.host}:{args.port}", role=args.role)
    except ConfigError as exc:
        fail(str(exc))
        return

    if args.role == "worker":
        from robyn_server.worker import run_worker

        print(f"robyn-server: worker for {', '.join(ctx.registry.graph_ids)} (storage: {args.storage})",
              file=sys.stderr, flush=True)  # fmt: skip
        asyncio.run(run_worker(ctx, settings.shutdown_grace_seconds))
        return

    robyn_config = RobynConfig()
    robyn_config.workers = args.workers
    robyn_config.processes = 1
    robyn_config.log_level = "WARN"
    robyn_config.disable_openapi = True

    grace = settings.shutdown_grace_seconds
    watcher = ShutdownWatcher(grace_seconds=grace + 15.0)
    from robyn_server.crons import scheduler

    async def drain_runs() -> None:
        await ctx.runs.shutdown(grace)

    watcher.on_shutdown.append(scheduler.stop)  # no cron fires while runs are being drained
    watcher.on_shutdown.append(drain_runs)

    async def forget_instance() -> None:
        from robyn_server.runs.recovery import forget_this_instance

        await forget_this_instance(ctx)

    watcher.on_shutdown.append(forget_instance)

    async def flush_traces() -> None:
        tracing.shutdown()

    watcher.on_shutdown.append(flush_traces)
    app = build_app(ctx, robyn_config, on_loop=lambda loop: setattr(watcher, "loop", loop))
    watcher.install()
    # after the watcher blocked SIGINT/SIGTERM: the span exporter's thread must inherit that mask
    tracing.configure()  # only with OTEL_* settings; nothing is set up otherwise
    print(
        f"robyn-server: serving {', '.join(ctx.registry.graph_ids)} from {config.path} "
        f"on http://{args.host}:{args.port} (storage: {args.storage})",
        file=sys.stderr,
        flush=True,
    )
    host, port = args.host, args.port
    if os.environ.get("ROBYN_SERVER_REQUEST_GUARD", "1").strip().lower() not in ("0", "false", "no", "off"):
        from robyn_server.guard import GuardLimits, RequestGuard
        from robyn_server.protocol_v2.websocket import thread_stream_matcher

        router = app.api_router
        limits = GuardLimits.from_env(settings.max_body_bytes)
        guard = RequestGuard(limits, router.allowed_methods, thread_stream_matcher(router.template))
        host, port = "127.0.0.1", guard.bind(args.host, args.port)  # Robyn listens behind the guard
        ctx.startup_hooks.append(guard.start)  # on Robyn's loop, after storage and recovery are ready
    app.start(host=host, port=port, _check_port=False)

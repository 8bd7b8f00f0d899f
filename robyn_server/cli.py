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
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="robyn-server", description="LangGraph-compatible agent server on Robyn")
    parser.add_argument("--config", help="path to langgraph.json (default: ./langgraph.json, else the bundled agent)")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8081")))
    parser.add_argument(
        "--storage",
        choices=["memory", "sqlite", "postgres"],
        default=os.environ.get("ROBYN_SERVER_STORAGE", "memory"),
        help="where assistants, threads, runs and checkpoints live (postgres reads DATABASE_URL)",
    )
    parser.add_argument(
        "--sqlite-path",
        default=os.environ.get("ROBYN_SERVER_SQLITE_PATH", "data/robyn_server.sqlite"),
        help="database file for --storage sqlite",
    )
    parser.add_argument("--workers", type=int, default=1, help="Robyn worker threads")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "WARNING"))
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


def make_storage(args: argparse.Namespace) -> Any:
    """The storage backend named on the command line; unreachable databases stop the server here."""
    if args.storage == "sqlite":
        from robyn_server.storage.sqlite import SqliteStorage

        path = Path(args.sqlite_path).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create the folder for {path}: {exc.strerror}")
        return SqliteStorage(str(path))
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
        return PostgresStorage(dsn)
    from robyn_server.storage.memory import MemoryStorage

    return MemoryStorage()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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

    ensure_port_free(args.host, args.port)

    from robyn.argument_parser import Config as RobynConfig

    from robyn_server.app import build_app, build_context

    storage = make_storage(args)
    try:
        ctx = build_context(config, settings, storage, api_url=f"http://{args.host}:{args.port}")
    except ConfigError as exc:
        fail(str(exc))
        return

    robyn_config = RobynConfig()
    robyn_config.workers = args.workers
    robyn_config.processes = 1
    robyn_config.log_level = "WARN"
    robyn_config.disable_openapi = True

    watcher = ShutdownWatcher()
    watcher.on_shutdown.append(ctx.runs.shutdown)
    app = build_app(ctx, robyn_config, on_loop=lambda loop: setattr(watcher, "loop", loop))
    watcher.install()
    print(
        f"robyn-server: serving {', '.join(ctx.registry.graph_ids)} from {config.path} "
        f"on http://{args.host}:{args.port} (storage: {args.storage})",
        file=sys.stderr,
        flush=True,
    )
    app.start(host=args.host, port=args.port, _check_port=False)

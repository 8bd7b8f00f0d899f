"""Starting the real server as a subprocess on a free port, for tests and scripts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "tests" / "graphs" / "langgraph.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ok(proc: Any, url: str, timeout: float, name: str, log_tail: Callable[[], str]) -> None:
    """Wait until the process at `url` answers `/ok` (RuntimeError with its log when it exits or is too slow)."""
    from tests.waiting import wait_for

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log_tail()}")
        try:
            return httpx.get(f"{url}/ok", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, f"{name} to answer /ok", timeout=timeout)
    except AssertionError:
        raise RuntimeError(f"{name} did not start in {timeout}s: {log_tail()}") from None


def forking_by_default() -> bool:
    """Under pytest, servers are forked from a parent that imported LangGraph once (tests/forkserver.py), unless
    TEST_SERVER_FORK=0; scripts and benchmarks always start a fresh interpreter."""
    return "pytest" in sys.modules and os.environ.get("TEST_SERVER_FORK", "1") != "0"


class ServerProcess:
    """A `python -m robyn_server` process; `url` once it answers `/ok`.

    Storage is in memory unless `env` says otherwise (ROBYN_SERVER_STORAGE, DATABASE_URL, ...), so tests never
    write to the project's default SQLite file; an `env` value of None removes that variable. `fork` (default:
    under pytest) forks it from tests/forkserver.py instead of starting a new interpreter.
    """

    def __init__(
        self,
        config: Path = TEST_CONFIG,
        env: dict[str, str | None] | None = None,
        port: int | None = None,
        cwd: Path = ROOT,
        wrapper: list[str] | None = None,
        fork: bool | None = None,
    ) -> None:
        self.port = port or free_port()
        self.wrapper = wrapper or []  # a command the server runs under, e.g. valgrind (benchmarks)
        self.cwd = cwd
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        merged: dict[str, str | None] = {**os.environ, "ROBYN_SERVER_STORAGE": "memory", **(env or {})}
        self.env = {k: v for k, v in merged.items() if v is not None}
        self.proc: Any = None  # a subprocess.Popen, or a ForkedProcess with the same methods
        self.log_path = ROOT / "test-artifacts" / f"server-{self.port}.log"
        self.fork = forking_by_default() if fork is None else fork
        if self.wrapper:
            self.fork = False

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.log_path.parent.mkdir(exist_ok=True)
        args = ["--config", str(self.config), "--port", str(self.port)]
        if self.fork:
            from tests.forkserver import ForkedProcess, ForkServer

            server = ForkServer.get(str(ROOT))
            self.proc = ForkedProcess(server, args, self.env, str(self.cwd), str(self.log_path))
        else:
            log = self.log_path.open("wb")
            self.proc = subprocess.Popen(
                [*self.wrapper, sys.executable, "-m", "robyn_server", *args],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_ok(self.proc, self.url, timeout, "server", lambda: self.log_path.read_text()[-2000:])
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self, sig: int | None = None, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        if sig is None:
            self.proc.terminate()
        else:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def refuses_to_start(proc: ServerProcess, match: str) -> None:
    """Assert the server exits at start-up with an error matching `match`; a server that starts anyway is
    stopped, so a regression never leaves a process behind."""
    import pytest

    try:
        with pytest.raises(RuntimeError, match=match):
            proc.start()
    finally:
        proc.stop()


# ------------------------------------------------------------------------------ throwaway Postgres databases
ADMIN_DSN = os.environ.get("POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_unreachable() -> str | None:
    """Why Postgres cannot be used for tests (None when it can)."""
    import psycopg

    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"Postgres not reachable at {ADMIN_DSN}: {str(exc).strip().splitlines()[0] if str(exc) else exc}"
    return None


def create_database(prefix: str = "robyn_test") -> str:
    """A new empty database on the admin server; returns its DSN."""
    import uuid

    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"  # a postgresql:// URL, as users set DATABASE_URL


def postgres_admin(statement: Any, params: tuple = ()) -> None:
    """Run one statement on the admin connection (autocommit)."""
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(statement, params)


def allow_connections(dbname: str, allow: bool) -> None:
    """Let a test database accept new connections again, or refuse them (a database outage)."""
    from psycopg import sql

    postgres_admin(
        sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(sql.Identifier(dbname), sql.SQL(str(allow)))
    )


def terminate_connections(dbname: str) -> None:
    """Kill every open connection to a test database (its pools see dead connections), and return once those
    backends have exited: `pg_terminate_backend` only signals them, and a connection used before its backend
    has gone fails in the middle of a request instead of being found dead at checkout."""
    import psycopg

    from tests.waiting import wait_for

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        killed = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
            ).fetchall()
        ]
        for pid in killed:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(
            lambda: not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (killed,)).fetchone(),
            "the terminated backends to exit",
        )


def drop_database(dsn: str) -> None:
    import psycopg
    from psycopg import sql

    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

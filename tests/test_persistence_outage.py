"""The database going away while the server runs: 503 `{"detail": ...}` meanwhile, normal answers once it is
back, without restarting the server. Each test uses its own database (Postgres) or file (SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.server import ServerProcess, allow_connections, terminate_connections
from tests.waiting import wait_for

AGENT_RUN = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather?"}]}}


def test_postgres_dropped_connections_are_replaced(postgres_dsn: str) -> None:
    dbname = postgres_dsn.rsplit("/", 1)[-1]
    env = {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": postgres_dsn}
    proc = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            terminate_connections(dbname)
            # every pooled connection is dead; requests still succeed on fresh ones
            for _ in range(5):
                assert http.get(f"/threads/{tid}").status_code == 200
            assert http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN).status_code == 200
            assert http.get(f"/threads/{tid}/state").json()["values"]["messages"][-1]["content"].endswith("sunny.")
    finally:
        proc.stop()


def test_postgres_outage_is_503_and_the_server_recovers(postgres_dsn: str) -> None:
    dbname = postgres_dsn.rsplit("/", 1)[-1]
    env = {
        "ROBYN_SERVER_STORAGE": "postgres",
        "DATABASE_URL": postgres_dsn,
        "ROBYN_SERVER_DB_POOL_TIMEOUT_SECONDS": "1",
    }
    proc = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            tid = http.post("/threads", json={"metadata": {"before": "outage"}}).json()["thread_id"]
            allow_connections(dbname, False)
            terminate_connections(dbname)
            for resp in (
                http.get(f"/threads/{tid}"),
                http.post("/threads", json={}),
                http.post("/threads/search", json={}),
                http.get("/ok", params={"check_db": "1"}),
            ):
                assert resp.status_code == 503, resp.text
                assert resp.headers["content-type"].startswith("application/json")
                assert resp.json()["detail"].startswith("Database unavailable")
            assert http.get("/ok").status_code == 200  # liveness does not need the database
            allow_connections(dbname, True)
            back = wait_for(lambda: (r := http.get(f"/threads/{tid}")).status_code == 200 and r, "the thread again")
            assert back.status_code == 200 and back.json()["metadata"] == {"before": "outage"}
            assert http.get("/ok", params={"check_db": "1"}).json()["database"]["ok"] is True
            assert http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN).status_code == 200
            assert http.get(f"/threads/{tid}").json()["status"] == "idle"
    finally:
        allow_connections(dbname, True)
        proc.stop()
    assert proc.proc is not None and "Traceback" not in proc.log_path.read_text()


def test_sqlite_locked_mid_operation_is_503_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    env = {
        "ROBYN_SERVER_STORAGE": "sqlite",
        "ROBYN_SERVER_SQLITE_PATH": str(path),
        "ROBYN_SERVER_SQLITE_BUSY_TIMEOUT_MS": "300",
    }
    proc = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            holder = sqlite3.connect(path, isolation_level=None, timeout=10)
            try:
                holder.execute("BEGIN EXCLUSIVE")
                resp = http.post("/threads", json={})
                assert resp.status_code == 503, resp.text
                assert resp.json()["detail"].startswith("Database unavailable")
                assert "locked" in resp.json()["detail"]
                patched = http.patch(f"/threads/{tid}", json={"metadata": {"x": 1}})
                assert patched.status_code == 503
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert http.post("/threads", json={}).status_code == 200
            assert http.patch(f"/threads/{tid}", json={"metadata": {"x": 2}}).json()["metadata"] == {"x": 2}
    finally:
        proc.stop()


def test_run_end_is_recorded_after_the_database_comes_back(postgres_dsn: str) -> None:
    """The database drops every connection while a run works and refuses new ones: the run cannot record its
    end, retries until the database is back, and then ends with a final status on an idle (not busy) thread."""
    dbname = postgres_dsn.rsplit("/", 1)[-1]
    env = {
        "ROBYN_SERVER_STORAGE": "postgres",
        "DATABASE_URL": postgres_dsn,
        "ROBYN_SERVER_DB_POOL_TIMEOUT_SECONDS": "1",
    }
    proc = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            body = {"assistant_id": "slow", "input": {"delay": 1.0, "count": 0}}
            rid = http.post(f"/threads/{tid}/runs", json=body).json()["run_id"]
            wait_for(lambda: http.get(f"/threads/{tid}/runs/{rid}").json()["status"] == "running", "the run to start")
            allow_connections(dbname, False)
            terminate_connections(dbname)
            try:
                wait_for(lambda: "could not record the end of run" in proc.log_path.read_text(),
                         "the end-of-run write to fail")  # fmt: skip
            finally:
                allow_connections(dbname, True)

            def ended() -> httpx.Response | None:
                run = http.get(f"/threads/{tid}/runs/{rid}")
                if run.status_code != 200 or run.json()["status"] in ("pending", "running"):
                    return None
                return run if http.get(f"/threads/{tid}").json()["status"] != "busy" else None

            run = wait_for(ended, "the run to end and its thread to leave busy")
            assert run.json()["status"] in ("error", "success")
    finally:
        allow_connections(dbname, True)
        proc.stop()


async def test_the_pool_check_works_on_descriptors_above_1023(postgres_dsn: str) -> None:
    """A server holding 1,000 streams has descriptors above 1023, where `select.select` refuses to look: the
    check must pass a live connection there and refuse one the server dropped."""
    import os
    import resource

    import psycopg

    from robyn_server.storage.postgres import check_pooled_connection
    from tests.waiting import wait_for_async

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1200, hard), hard))
    spare = [os.dup(0) for _ in range(1100)]  # the next descriptors opened are above 1023
    try:
        conn = await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True)
        admin = await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True)
    finally:
        for fd in spare:
            os.close(fd)
    try:
        assert conn.fileno() > 1023
        await check_pooled_connection(conn)  # alive, nothing waiting: no error, no round trip
        await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

        async def refused() -> bool:
            try:
                await check_pooled_connection(conn)
            except psycopg.OperationalError:
                return True
            return False

        assert await wait_for_async(refused, "the check to refuse the dropped connection")
    finally:
        await conn.close()
        await admin.close()

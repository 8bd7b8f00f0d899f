"""The real server on SQLite and on Postgres keeps threads, state, runs and the store across a restart."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.server import ServerProcess

ADMIN_DSN = os.environ.get("POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"Postgres not reachable at {ADMIN_DSN}: {exc}")


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    _postgres_or_skip()
    name = f"robyn_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _write_and_read(env: dict[str, str]) -> None:
    first = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as http:
            thread = http.post("/threads", json={"metadata": {"case": "restart"}}).json()
            tid = thread["thread_id"]
            result = http.post(
                f"/threads/{tid}/runs/wait",
                json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather?"}]}},
            ).json()
            assert result["messages"][-1]["content"] == "The weather in sf is sunny."
            assert (
                http.put(
                    "/store/items", json={"namespace": ["u1"], "key": "prefs", "value": {"theme": "dark"}}
                ).status_code
                == 204
            )
            history_before = http.post(f"/threads/{tid}/history", json={"limit": 10}).json()
    finally:
        first.stop()
    second = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            again = http.get(f"/threads/{tid}").json()
            assert again["metadata"]["case"] == "restart"
            assert again["status"] == "idle"
            state = http.get(f"/threads/{tid}/state").json()
            assert state["values"]["messages"][-1]["content"] == "The weather in sf is sunny."
            history_after = http.post(f"/threads/{tid}/history", json={"limit": 10}).json()
            assert [h["checkpoint_id"] for h in history_after] == [h["checkpoint_id"] for h in history_before]
            runs = http.get(f"/threads/{tid}/runs").json()
            assert [r["status"] for r in runs] == ["success"]
            item = http.get("/store/items", params={"namespace": "u1", "key": "prefs"}).json()
            assert item["value"] == {"theme": "dark"}
            # the thread keeps working after the restart
            more = http.post(
                f"/threads/{tid}/runs/wait",
                json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "again?"}]}},
            ).json()
            assert len(more["messages"]) == len(result["messages"]) + 2  # new question, direct answer
    finally:
        second.stop()


def test_sqlite_restart_keeps_everything(tmp_path: Path) -> None:
    _write_and_read({"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(tmp_path / "db.sqlite")})


def test_postgres_restart_keeps_everything(postgres_dsn: str) -> None:
    _write_and_read({"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": postgres_dsn})


def test_postgres_unreachable_is_one_line(tmp_path: Path) -> None:
    proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": "postgresql://x@127.0.0.1:1/db"})
    with pytest.raises(RuntimeError) as failed:
        proc.start(timeout=20)
    lines = [line for line in proc.log_path.read_text().splitlines() if line.strip()]
    assert lines == [lines[-1]] and "cannot connect to Postgres at 127.0.0.1" in lines[-1]
    assert "exited with 1" in str(failed.value)

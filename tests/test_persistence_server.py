"""The real server on SQLite and on Postgres keeps threads, state, runs and the store across a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.server import ServerProcess


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


def _one_error_line(proc: ServerProcess) -> str:
    lines = [line for line in proc.log_path.read_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("robyn-server: error: ")
    return lines[0]


def test_default_storage_is_sqlite_in_project_data_folder(tmp_path: Path) -> None:
    env = {"ROBYN_SERVER_STORAGE": None, "DATABASE_URL": None, "ROBYN_SERVER_SQLITE_PATH": None}
    first = ServerProcess(env=env, cwd=tmp_path).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as http:
            db = http.get("/ok", params={"check_db": "1"}).json()["database"]
            assert db["backend"] == "sqlite" and db["ok"] is True
            assert db["path"] == str(tmp_path / "data" / "robyn_server.sqlite")
            tid = http.post("/threads", json={"metadata": {"kept": True}}).json()["thread_id"]
    finally:
        first.stop()
    assert (tmp_path / "data" / "robyn_server.sqlite").is_file()
    second = ServerProcess(env=env, cwd=tmp_path).start()
    try:
        assert httpx.get(f"{second.url}/threads/{tid}").json()["metadata"] == {"kept": True}
    finally:
        second.stop()


def test_database_url_switches_to_postgres(postgres_dsn: str, tmp_path: Path) -> None:
    proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": None, "DATABASE_URL": postgres_dsn}, cwd=tmp_path).start()
    try:
        db = httpx.get(f"{proc.url}/ok", params={"check_db": "true"}).json()["database"]
        assert db["backend"] == "postgres" and db["ok"] is True
        assert db["database"] == postgres_dsn.rsplit("/", 1)[-1]
        assert db["schema_version"] >= 2
    finally:
        proc.stop()
    assert not (tmp_path / "data").exists()


def test_memory_stays_an_explicit_choice() -> None:
    env = {"ROBYN_SERVER_STORAGE": "memory", "DATABASE_URL": "postgresql://x@127.0.0.1:1/db"}
    proc = ServerProcess(env=env).start()
    try:
        assert httpx.get(f"{proc.url}/ok", params={"check_db": "1"}).json()["database"] == {
            "ok": True,
            "backend": "memory",
        }
        assert httpx.get(f"{proc.url}/ok").json() == {"ok": True, "services": {}}
    finally:
        proc.stop()


def test_storage_choice_rules() -> None:
    from robyn_server.cli import default_storage, parse_args

    assert default_storage({}) == "sqlite"
    assert default_storage({"DATABASE_URL": "postgresql://u@h/db"}) == "postgres"
    assert default_storage({"DATABASE_URL": "postgres://u@h/db"}) == "postgres"
    assert default_storage({"DATABASE_URL": "mysql://u@h/db"}) == "sqlite"
    assert default_storage({"ROBYN_SERVER_STORAGE": "memory", "DATABASE_URL": "postgresql://u@h/db"}) == "memory"
    assert parse_args(["--storage", "memory"]).storage == "memory"
    assert parse_args([]).storage is None  # decided after .env and langgraph.json env are loaded


def test_unknown_storage_is_one_line() -> None:
    proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": "mongo"})
    with pytest.raises(RuntimeError, match="exited with 1"):
        proc.start(timeout=20)
    assert "unknown storage 'mongo'" in _one_error_line(proc)


def test_corrupt_sqlite_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a database, just some text that is long enough " * 50)
    proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(path)})
    with pytest.raises(RuntimeError, match="exited with 1"):
        proc.start(timeout=20)
    line = _one_error_line(proc)
    assert f"SQLite database {path} is corrupt or not a SQLite file" in line


def test_locked_sqlite_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    try:
        proc = ServerProcess(
            env={
                "ROBYN_SERVER_STORAGE": "sqlite",
                "ROBYN_SERVER_SQLITE_PATH": str(path),
                "ROBYN_SERVER_SQLITE_BUSY_TIMEOUT_MS": "300",
            }
        )
        with pytest.raises(RuntimeError, match="exited with 1"):
            proc.start(timeout=20)
        assert f"SQLite database {path} is locked by another process" in _one_error_line(proc)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # once the other process lets go, the same file serves
    proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(path)}).start()
    try:
        assert httpx.post(f"{proc.url}/threads", json={}).status_code == 200
    finally:
        proc.stop()

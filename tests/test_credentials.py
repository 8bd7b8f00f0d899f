"""With auth on, the caller's raw bearer token reaches the graph but never a response body or a stored row."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from robyn_server.storage import postgres as postgres_module
from robyn_server.storage import sqlite as sqlite_module
from tests.server import ROOT, ServerProcess
from tests.test_auth_support import JWT_ENV, bearer, hs256

CONFIG = ROOT / "tests" / "graphs" / "langgraph.auth_identity.json"
ALL_MODES = ["values", "updates", "messages", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints"]
KEY = "x-supabase-access-token"


def _sqlite_rows_with(path: str, needle: str) -> list[str]:
    found = []
    with sqlite3.connect(path) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    if needle in text:
                        found.append(table)
    return found


def _postgres_rows_with(dsn: str, needle: str) -> list[str]:
    found = []
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            found += [table for (text,) in rows if needle in text]
            for (column,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND data_type = 'bytea'",
                (table,),
            ).fetchall():
                rows = conn.execute(f'SELECT "{column}" FROM "{table}"').fetchall()
                found += [table for (blob,) in rows if blob is not None and needle.encode() in bytes(blob)]
    return found


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "creds.sqlite")
    else:
        yield "postgres", request.getfixturevalue("postgres_dsn")


def test_token_reaches_the_graph_but_no_response_or_row(backend: tuple[str, str]) -> None:
    kind, where = backend
    env = dict(JWT_ENV)
    env |= {"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": where} if kind == "sqlite" else {
        "DATABASE_URL": where, "ROBYN_SERVER_STORAGE": "postgres"}  # fmt: skip
    token = hs256(f"alice-{uuid.uuid4().hex[:6]}")
    proc = ServerProcess(config=CONFIG, env=env).start()
    bodies: list[str] = []
    try:
        with httpx.Client(base_url=proc.url, timeout=30, headers=bearer(token)) as c:
            tid = c.post("/threads", json={}).json()["thread_id"]
            stream = c.post(f"/threads/{tid}/runs/stream", json={
                "assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather?"}]},
                "stream_mode": ALL_MODES, "config": {"configurable": {KEY: "client-sent"}}})  # fmt: skip
            assert stream.status_code == 200 and "event: error" not in stream.text
            bodies.append(stream.text)
            whoami = c.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "whoami", "input": {"messages": []}})
            assert whoami.json()["seen"]["config_token_matches"] is True  # the graph got the caller's token
            bodies.append(whoami.text)
            runs = c.get(f"/threads/{tid}/runs")
            bodies.append(runs.text)
            for run in runs.json():
                bodies.append(c.get(f"/threads/{tid}/runs/{run['run_id']}").text)
                bodies.append(c.get(f"/threads/{tid}/runs/{run['run_id']}/join").text)
            for path in (f"/threads/{tid}", f"/threads/{tid}/state", f"/threads/{tid}/history?limit=100"):
                bodies.append(c.get(path).text)
            bodies.append(c.post(f"/threads/{tid}/history", json={"limit": 100}).text)
            bodies.append(c.post("/threads/search", json={}).text)
            stateless = c.post("/runs/wait", json={"assistant_id": "agent", "input": {"messages": []}})
            bodies.append(stateless.text)
    finally:
        proc.stop()
    assert len(bodies) > 10
    assert [b for b in bodies if token in b or "client-sent" in b] == []
    for needle in (token, "client-sent"):
        rows = _sqlite_rows_with(where, needle) if kind == "sqlite" else _postgres_rows_with(where, needle)
        assert rows == [], f"{needle[:12]}... stored in {rows}"


def test_migration_removes_stored_tokens_sqlite(tmp_path: Path) -> None:
    assert sqlite_module.REMOVE_STORED_TOKENS in sqlite_module.MIGRATIONS
    path = str(tmp_path / "old.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (run_id TEXT, doc TEXT)")
        conn.execute("CREATE TABLE checkpoints (checkpoint_id TEXT, metadata BLOB)")
        doc = '{"keys":["run_id"],"rest":{"kwargs":{"config":{"configurable":{"a":1,"KEY":"old-secret"}}}}}'
        doc = doc.replace("KEY", KEY)
        conn.execute("INSERT INTO runs VALUES ('r1', ?), ('r2', '{\"rest\":{}}')", (doc,))
        conn.execute("INSERT INTO checkpoints VALUES ('c1', ?)", (f'{{"step":1,"{KEY}":"old-secret"}}'.encode(),))
        for statement in sqlite_module.REMOVE_STORED_TOKENS:
            conn.execute(statement)
        docs = [r[0] for r in conn.execute("SELECT doc FROM runs ORDER BY run_id")]
        metadata = conn.execute("SELECT metadata FROM checkpoints").fetchone()[0]
    assert docs == ['{"keys":["run_id"],"rest":{"kwargs":{"config":{"configurable":{"a":1}}}}}', '{"rest":{}}']
    assert isinstance(metadata, bytes) and metadata == b'{"step":1}'


def test_migration_removes_stored_tokens_postgres(postgres_dsn: str) -> None:
    assert postgres_module.REMOVE_STORED_TOKENS in postgres_module.MIGRATIONS
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (run_id TEXT, doc JSON)")
        for statement in postgres_module.REMOVE_STORED_TOKENS:  # no checkpoint table yet: nothing to clean
            conn.execute(statement)
        conn.execute("CREATE TABLE checkpoints (checkpoint_id TEXT, metadata JSONB)")
        doc = '{"rest":{"kwargs":{"config":{"configurable":{"a":1,"KEY":"old-secret"}}}}}'.replace("KEY", KEY)
        conn.execute("INSERT INTO runs VALUES ('r1', %s)", (doc,))
        conn.execute("INSERT INTO checkpoints VALUES ('c1', %s)", (f'{{"step":1,"{KEY}":"old-secret"}}',))
        for statement in postgres_module.REMOVE_STORED_TOKENS:
            conn.execute(statement)
        stored = conn.execute("SELECT doc::text FROM runs").fetchone()[0]
        metadata = conn.execute("SELECT metadata FROM checkpoints").fetchone()[0]
    assert "old-secret" not in stored and '"a": 1' in stored
    assert metadata == {"step": 1}

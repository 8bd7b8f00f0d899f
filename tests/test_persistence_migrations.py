"""Schema migrations are transactional: a migration that fails leaves the schema (and data) as it was."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from robyn_server.storage import postgres as postgres_module
from robyn_server.storage import sqlite as sqlite_module
from robyn_server.storage.base import Storage
from robyn_server.storage.errors import MigrationError, describe_startup_error
from robyn_server.storage.postgres import PostgresStorage
from robyn_server.storage.sqlite import SqliteStorage

THREAD = {
    "thread_id": "00000000-0000-4000-8000-000000000001",
    "created_at": datetime(2024, 1, 1, tzinfo=UTC),
    "updated_at": datetime(2024, 1, 1, tzinfo=UTC),
    "state_updated_at": None,
    "metadata": {"kept": True},
    "status": "idle",
    "config": {},
    "values": None,
}


def sqlite_schema(path: str) -> tuple[list[tuple], int]:
    with sqlite3.connect(path) as conn:
        objects = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    return objects, version


def postgres_schema(dsn: str) -> tuple[list[tuple], int]:
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, column_name"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
        ).fetchall()
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    return columns + indexes, version


class Case:
    def __init__(self, name: str, factory: Callable[[], Storage], schema: Callable[[], tuple], module: object):
        self.name, self.factory, self.schema, self.module = name, factory, schema, module


@pytest.fixture(params=["sqlite", "postgres"])
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Case]:
    if request.param == "sqlite":
        path = str(tmp_path / "db.sqlite")
        yield Case("sqlite", lambda: SqliteStorage(path), lambda: sqlite_schema(path), sqlite_module)
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        yield Case("postgres", lambda: PostgresStorage(dsn), lambda: postgres_schema(dsn), postgres_module)


BROKEN = [
    "CREATE TABLE added_by_broken (x INTEGER)",
    "ALTER TABLE threads ADD COLUMN added_by_broken TEXT",
    "CREATE INDEX added_by_broken_idx ON runs (status, thread_id)",
    "THIS IS NOT SQL",
]


async def test_failed_migration_leaves_schema_and_data_untouched(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = case.factory()
    await storage.setup()
    await storage.thread_put(THREAD)
    await storage.close()
    before = case.schema()
    assert before[1] == len(case.module.MIGRATIONS)

    monkeypatch.setattr(case.module, "MIGRATIONS", [*case.module.MIGRATIONS, BROKEN])
    broken = case.factory()
    with pytest.raises(MigrationError) as failed:
        await broken.setup()
    await broken.close()
    assert f"migration {before[1] + 1} failed" in str(failed.value)
    line = describe_startup_error(broken, failed.value)
    assert line.startswith(f"{case.name} schema migration failed, schema left unchanged") and "\n" not in line

    after = case.schema()
    assert after == before
    assert "added_by_broken" not in repr(after)
    monkeypatch.undo()
    again = case.factory()
    await again.setup()
    try:
        assert (await again.thread_get(THREAD["thread_id"])) == THREAD
    finally:
        await again.close()


async def test_failed_first_migration_creates_nothing(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case.module, "MIGRATIONS", [["CREATE TABLE first_table (x INTEGER)", "NOT SQL EITHER"]])
    storage = case.factory()
    with pytest.raises(MigrationError):
        await storage.setup()
    await storage.close()
    if case.name == "sqlite":
        with sqlite3.connect(storage.path) as conn:  # type: ignore[attr-defined]
            names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
        # LangGraph's saver tables are set up before our migrations (one of them cleans checkpoint metadata)
        assert [n for n in names if not n.startswith(("checkpoints", "writes", "sqlite_autoindex_"))] == []
    else:
        with psycopg.connect(storage.dsn) as conn:  # type: ignore[attr-defined]
            tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert tables == []


async def test_migrations_upgrade_a_version_one_database(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database made by the first release (schema version 1) is upgraded in place, data kept."""
    monkeypatch.setattr(case.module, "MIGRATIONS", case.module.MIGRATIONS[:1])
    old = case.factory()
    await old.setup()
    await old.thread_put(THREAD)
    await old.close()
    monkeypatch.undo()
    new = case.factory()
    await new.setup()
    try:
        assert case.schema()[1] == len(case.module.MIGRATIONS) >= 2
        assert await new.thread_get(THREAD["thread_id"]) == THREAD
        await new.thread_set_ttl(
            THREAD["thread_id"], {"strategy": "delete", "ttl_minutes": 1.0, "expires_at": THREAD["created_at"]}
        )
        assert await new.thread_expired(datetime.now(UTC)) == [(THREAD["thread_id"], "delete")]
    finally:
        await new.close()

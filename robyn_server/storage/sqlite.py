"""SQLite storage: one database file for assistants, threads, runs, checkpoints and the store.

Meant for single-process deployments that must survive restarts without running a database server.
The file is in WAL mode with `synchronous=NORMAL`: a committed transaction survives a crash of the process
(only a power loss may drop the last ones), and commits do not wait for fsync. SQLite itself serialises
writers (also those of other processes) and gives every read a committed snapshot, so there is no lock over
all tables. Every statement and every multi-statement transaction (`_atomic`: run creation, start and end,
read-modify-write updates, cron claims) runs inline on a connection with `busy_timeout=0`: no thread hand-off,
and the write lock is never held across an event-loop turn. When another connection holds the lock, the call
pauses on the event loop and retries (`sqlite_saver.inline_first`), then goes to the writer's or reader's
aiosqlite thread, which waits with `busy_timeout`. Updates of typed columns, existing keys and metadata keys are
one `UPDATE ... RETURNING` (`sqlite_update.py`). LangGraph's saver (`sqlite_saver.py`, inline the same way) and
store get their own connections to the same file. JSON containment and name matching run as Python SQL
functions, so filtering, sorting and paging all happen in SQL with exactly MemoryStorage's semantics.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiosqlite
from langgraph.store.sqlite.aio import AsyncSqliteStore

from robyn_server import serde
from robyn_server.storage.base import (
    RUN_CREATOR_PATH,
    Record,
    RunLimitReached,
    Storage,
    patched_assistant,
    pick_next_run,
    run_creator,
    start_at_creation,
    thread_for_run,
)
from robyn_server.storage.crons_sql import SQLITE_MIGRATION, SqliteCrons
from robyn_server.storage.errors import MigrationError
from robyn_server.storage.filters import contains, sort_and_page
from robyn_server.storage.records import (
    ASSISTANTS,
    RUNS,
    THREADS,
    Layout,
    json_text,
    parse_time_text,
    time_text,
)
from robyn_server.storage.sqlite_saver import SqliteCheckpointer, WalCheckpoints, inline_first
from robyn_server.storage.sqlite_update import in_place_update

T = TypeVar("T")

INFLIGHT_OF_THREAD = (
    "SELECT * FROM runs WHERE thread_id = ? AND status IN ('pending', 'running') ORDER BY created_at, seq"
)
OTHER_INFLIGHT = "SELECT 1 FROM runs WHERE thread_id = ? AND run_id <> ? AND status IN ('pending', 'running') LIMIT 1"

_COMMON = "seq INTEGER PRIMARY KEY AUTOINCREMENT"

# Earlier versions stored the caller's bearer token in each run's config and LangGraph copied it into checkpoint
# metadata; it is now held in memory for the run only (robyn_server.runs.credentials). The checkpoint table
# exists here because LangGraph's saver is set up before the migrations run.
REMOVE_STORED_TOKENS = [
    """UPDATE runs SET doc = json_remove(doc, '$.rest.kwargs.config.configurable."x-supabase-access-token"')
        WHERE instr(doc, 'x-supabase-access-token') > 0""",
    """UPDATE checkpoints
        SET metadata = CAST(json_remove(CAST(metadata AS TEXT), '$."x-supabase-access-token"') AS BLOB)
        WHERE instr(CAST(metadata AS TEXT), 'x-supabase-access-token') > 0""",
]

# Each entry is one schema version; never edit an applied entry, append a new one instead.
MIGRATIONS: list[list[str]] = [
    [
        f"""CREATE TABLE assistants (
            {_COMMON}, assistant_id TEXT NOT NULL UNIQUE, graph_id TEXT, name TEXT, version INTEGER,
            created_at TEXT, updated_at TEXT, metadata TEXT, doc TEXT NOT NULL)""",
        "CREATE INDEX assistants_graph_id ON assistants (graph_id)",
        f"""CREATE TABLE assistant_versions (
            {_COMMON}, assistant_id TEXT NOT NULL, graph_id TEXT, name TEXT, version INTEGER,
            created_at TEXT, updated_at TEXT, metadata TEXT, doc TEXT NOT NULL)""",
        "CREATE INDEX assistant_versions_id ON assistant_versions (assistant_id, version)",
        f"""CREATE TABLE threads (
            {_COMMON}, thread_id TEXT NOT NULL UNIQUE, status TEXT, created_at TEXT, updated_at TEXT,
            state_updated_at TEXT, metadata TEXT, "values" TEXT, doc TEXT NOT NULL)""",
        "CREATE INDEX threads_status ON threads (status)",
        "CREATE INDEX threads_created_at ON threads (created_at)",
        f"""CREATE TABLE runs (
            {_COMMON}, run_id TEXT NOT NULL UNIQUE, thread_id TEXT, assistant_id TEXT, status TEXT,
            created_at TEXT, updated_at TEXT, metadata TEXT, doc TEXT NOT NULL)""",
        "CREATE INDEX runs_thread ON runs (thread_id, created_at)",
        "CREATE INDEX runs_status ON runs (status)",
    ],
    [
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        """CREATE TABLE thread_ttl (
            thread_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, ttl_minutes REAL NOT NULL, expires_at TEXT NOT NULL)""",
        "CREATE INDEX thread_ttl_expires_at ON thread_ttl (expires_at)",
        """CREATE TABLE server_instances (
            instance_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat_at TEXT NOT NULL)""",
    ],
    SQLITE_MIGRATION,
    REMOVE_STORED_TOKENS,
]


def _json_contains(document: str | None, query: str) -> bool:
    """SQL function `json_contains(doc, query)`: MemoryStorage's containment on JSON text."""
    return contains(serde.loads(document) if document else {}, serde.loads(query))


def _icontains(haystack: str | None, needle: str) -> bool:
    """SQL function `icontains(name, needle)`: Python's Unicode-aware case-insensitive substring test."""
    return needle.lower() in (haystack or "").lower()


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(conn)` between `BEGIN IMMEDIATE` and `COMMIT`, rolled back on any error (none is left open)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _quoted(name: str) -> str:
    return f'"{name}"'


class SqliteStorage(SqliteCrons, Storage):
    """Everything in one SQLite file at `path`."""

    kind = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = 10000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._saver_conn: aiosqlite.Connection | None = None
        self._store_conn: aiosqlite.Connection | None = None
        self._inline: sqlite3.Connection | None = None  # the event loop's own, for statements that never wait
        self._wal: WalCheckpoints | None = None
        self._lock = asyncio.Lock()  # the writer connection's: one transaction at a time

    # lifecycle ----------------------------------------------------------------------------
    async def _connect(self, *, isolation_level: str | None = None, ours: bool = False) -> aiosqlite.Connection:
        """A connection with the server's pragmas; `ours` adds the row factory and SQL functions our tables use."""
        conn = await aiosqlite.connect(self.path, isolation_level=isolation_level)
        await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        await conn.execute("PRAGMA synchronous=NORMAL")  # per connection; with WAL, still crash-safe
        if ours:
            conn.row_factory = aiosqlite.Row
            await conn.create_function("json_contains", 2, _json_contains, deterministic=True)
            await conn.create_function("icontains", 2, _icontains, deterministic=True)
        return conn

    def _inline_connection(self) -> sqlite3.Connection:
        """A connection used on the event loop itself that never waits: `busy_timeout=0` (a taken write lock fails
        at once, and the statement goes to the writer's thread instead) and no WAL checkpoints (no fsync)."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.row_factory = sqlite3.Row
        conn.create_function("json_contains", 2, _json_contains, deterministic=True)
        conn.create_function("icontains", 2, _icontains, deterministic=True)
        return conn

    async def _stmt(self, query: str, params: Sequence[Any] = (), *, write: bool) -> list[Any]:
        """One statement's rows: inline when SQLite can answer without waiting (tens of microseconds, no thread
        hand-off), else on the writer's thread (`write`, under its lock) or the reader's."""
        inline = self._inline
        if inline is None:
            return await self._stmt_on_thread(query, params, write=write)

        def attempt() -> list[Any]:
            rows = inline.execute(query, params).fetchall()
            if write and self._wal is not None:
                self._wal.wrote()
            return rows

        return await inline_first(attempt, lambda: self._stmt_on_thread(query, params, write=write))

    async def _stmt_on_thread(self, query: str, params: Sequence[Any], *, write: bool) -> list[Any]:
        if write:
            async with self._lock:
                return list(await self._db.execute_fetchall(query, params))
        return list(await self._rdb.execute_fetchall(query, params))

    async def setup(self) -> None:
        """Open connections, migrate our schema, and set up LangGraph's saver and store tables."""
        self._conn = await self._connect(ours=True)
        async with self._conn.execute("PRAGMA journal_mode=WAL"):
            pass  # a cursor left open would hold the file's lock against the next connections
        self._wal = WalCheckpoints(self._conn, self._lock)
        self._saver_conn = await self._connect(isolation_level="")  # the saver commits its own transactions
        self.checkpointer = SqliteCheckpointer(self._saver_conn, path=self.path, wal=self._wal)
        await self.checkpointer.setup()  # before our migrations: one of them cleans checkpoint metadata
        await self._migrate()
        self._reader = await self._connect(ours=True)
        self._inline = self._inline_connection()
        self._store_conn = await self._connect()
        self.store = AsyncSqliteStore(self._store_conn, **self.store_options)
        await self.store.setup()

    async def _migrate(self) -> None:
        """Apply pending MIGRATIONS in one write transaction, recording each in `schema_version`."""
        conn = self._db
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cur:
                row = await cur.fetchone()
            current = int(row[0]) if row else 0
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                try:
                    for statement in statements:
                        await conn.execute(statement)
                except sqlite3.Error as exc:
                    raise MigrationError(f"migration {version} failed: {exc}") from exc
                await conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, datetime('now'))", (version,)
                )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise

    async def ping(self) -> dict[str, Any]:
        rows = await self._stmt("SELECT COALESCE(MAX(version), 0) FROM schema_version", write=False)
        row = next(iter(rows), None)
        return {"backend": self.kind, "path": self.path, "schema_version": int(row[0]) if row else 0}

    async def close(self) -> None:
        """Close all connections."""
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if isinstance(getattr(self, "checkpointer", None), SqliteCheckpointer):
            self.checkpointer.close_inline()
        for conn in (self._conn, self._reader, self._saver_conn, self._store_conn):
            if conn is not None:
                await conn.close()
        self._conn = self._reader = self._saver_conn = self._store_conn = None

    async def _atomic(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` in one write transaction, holding SQLite's write lock for the statements only, never
        across event-loop turns: inline when the lock is free (no thread hand-off: with 50 clients the hand-offs
        and the GIL waits they caused cost more CPU than the SQL), else on the writer's thread in a single hop."""
        inline = self._inline
        if inline is None:
            return await self._atomic_on_thread(fn)

        def attempt() -> T:
            result = _in_transaction(inline, fn)  # busy: rolled back, inline_first retries
            if self._wal is not None:
                self._wal.wrote()
            return result

        return await inline_first(attempt, lambda: self._atomic_on_thread(fn))

    async def _atomic_on_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        async with self._lock:
            return await db._execute(_in_transaction, db._conn, fn)

    @property
    def _db(self) -> aiosqlite.Connection:
        """The writer connection (use it under `_lock`, or through `_atomic()`)."""
        if self._conn is None:
            raise RuntimeError("SqliteStorage.setup() has not been called")
        return self._conn

    @property
    def _rdb(self) -> aiosqlite.Connection:
        """The reader connection: single statements need no lock, each reads the latest committed state."""
        if self._reader is None:
            raise RuntimeError("SqliteStorage.setup() has not been called")
        return self._reader

    # row codec ----------------------------------------------------------------------------
    @staticmethod
    def _params(layout: Layout, record: Record) -> list[Any]:
        cols, doc = layout.split(record)
        params: list[Any] = [cols[layout.key]]
        for name, kind in layout.columns.items():
            value = cols[name]
            if value is None:
                params.append(None)
            elif kind == "time":
                params.append(time_text(value))
            elif kind == "json":
                params.append(json_text(value))
            else:
                params.append(value)
        params.append(json_text(doc))
        return params

    @staticmethod
    def _record(layout: Layout, row: aiosqlite.Row) -> Record:
        cols: dict[str, Any] = {layout.key: row[layout.key]}
        for name, kind in layout.columns.items():
            value = row[name]
            if value is not None and kind == "time":
                value = parse_time_text(value)
            elif value is not None and kind == "json":
                value = serde.loads(value)
            cols[name] = value
        return layout.join(cols, serde.loads(row["doc"]))

    def _fetch(self, db: sqlite3.Connection, layout: Layout, query: str, params: Sequence[Any] = ()) -> list[Record]:
        """Rows as records, read on `db` (inside an `_atomic` transaction)."""
        return [self._record(layout, row) for row in db.execute(query, params)]

    async def _read(self, layout: Layout, query: str, params: Sequence[Any] = ()) -> list[Record]:
        return [self._record(layout, row) for row in await self._stmt(query, params, write=False)]

    async def _lookup(self, table: str, layout: Layout, key: str) -> Record | None:
        found = await self._read(layout, f"SELECT * FROM {table} WHERE {layout.key} = ?", (key,))
        return found[0] if found else None

    def _upsert_statement(self, table: str, layout: Layout, record: Record) -> tuple[str, list[Any]]:
        names = layout.names
        updates = ", ".join(f"{_quoted(n)} = excluded.{_quoted(n)}" for n in names[1:])
        return (
            f"INSERT INTO {table} ({', '.join(map(_quoted, names))}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT ({layout.key}) DO UPDATE SET {updates}",
            self._params(layout, record),
        )

    def _upsert(self, db: sqlite3.Connection, table: str, layout: Layout, record: Record) -> None:
        """Insert or replace by key, keeping the row's `seq` (its original insertion position)."""
        db.execute(*self._upsert_statement(table, layout, record))

    def _insert_statement(
        self, table: str, layout: Layout, record: Record, verb: str = "INSERT"
    ) -> tuple[str, list[Any]]:
        names = layout.names
        return (
            f"{verb} INTO {table} ({', '.join(map(_quoted, names))}) VALUES ({', '.join('?' * len(names))})",
            self._params(layout, record),
        )

    def _insert(self, db: sqlite3.Connection, table: str, layout: Layout, record: Record) -> None:
        db.execute(*self._insert_statement(table, layout, record))

    def _get(self, db: sqlite3.Connection, table: str, layout: Layout, key: str) -> Record | None:
        found = self._fetch(db, layout, f"SELECT * FROM {table} WHERE {layout.key} = ?", (key,))
        return found[0] if found else None

    async def _merge(
        self, table: str, layout: Layout, key: str, fields: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> Record | None:
        """Read-modify-write in one locked write transaction; `metadata` is merged into the stored metadata.
        When only typed columns, keys the stored record already has and metadata keys change, one UPDATE."""
        statement = in_place_update(table, layout, key, fields, metadata)
        if statement is not None:
            rows = await self._stmt(*statement, write=True)
            if rows:
                return self._record(layout, rows[0])

        def merge(db: sqlite3.Connection) -> Record | None:
            found = self._get(db, table, layout, key)
            if found is None:
                return None
            found.update(fields)
            if metadata is not None:
                found["metadata"] = {**(found.get("metadata") or {}), **metadata}
            self._upsert(db, table, layout, found)
            return found

        return await self._atomic(merge)

    async def _search(
        self,
        table: str,
        layout: Layout,
        where: list[str],
        params: list[Any],
        *,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        """Filter in SQL; order like `sort_and_page` (None last, ties by insertion order) and page."""
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        if not layout.sortable(sort_by):
            items = await self._read(layout, f"SELECT * FROM {table}{clause} ORDER BY seq", params)
            return sort_and_page(items, sort_by, sort_order, limit, offset)
        direction = "ASC" if sort_order.lower() == "asc" else "DESC"
        column = _quoted(sort_by)
        # page and total in one statement, so both come from one snapshot
        rows = await self._stmt(
            f"SELECT *, (SELECT COUNT(*) FROM {table}{clause}) AS total_count FROM {table}{clause} "
            f"ORDER BY {column} IS NULL, {column} {direction}, seq LIMIT ? OFFSET ?",
            [*params, *params, limit, offset],
            write=False,
        )
        if rows:
            return [self._record(layout, r) for r in rows], int(rows[0]["total_count"])
        rows = await self._stmt(f"SELECT COUNT(*) FROM {table}{clause}", params, write=False)
        row = next(iter(rows), None)
        return [], int(row[0]) if row else 0

    # assistants ---------------------------------------------------------------------------
    async def assistant_put(self, assistant: Record) -> None:
        def put(db: sqlite3.Connection) -> None:
            self._upsert(db, "assistants", ASSISTANTS, assistant)
            db.execute("DELETE FROM assistant_versions WHERE assistant_id = ?", (assistant["assistant_id"],))
            self._insert(db, "assistant_versions", ASSISTANTS, assistant)

        await self._atomic(put)

    async def assistant_get(self, assistant_id: str) -> Record | None:
        return await self._lookup("assistants", ASSISTANTS, assistant_id)

    async def assistant_add_version(self, assistant: Record) -> None:
        def add(db: sqlite3.Connection) -> None:
            self._upsert(db, "assistants", ASSISTANTS, assistant)
            self._insert(db, "assistant_versions", ASSISTANTS, assistant)

        await self._atomic(add)

    async def assistant_patch(
        self, assistant_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:

        def patch(db: sqlite3.Connection) -> Record | None:
            found = self._get(db, "assistants", ASSISTANTS, assistant_id)
            if found is None:
                return None
            row = db.execute(
                "SELECT MAX(version) FROM assistant_versions WHERE assistant_id = ?", (assistant_id,)
            ).fetchone()
            latest = max(int(row[0]) if row and row[0] is not None else 0, found.get("version") or 0)
            updated = patched_assistant(found, fields, metadata_patch, latest + 1)
            self._upsert(db, "assistants", ASSISTANTS, updated)
            self._insert(db, "assistant_versions", ASSISTANTS, updated)
            return updated

        return await self._atomic(patch)

    async def assistant_delete(self, assistant_id: str) -> bool:

        def delete(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM assistant_versions WHERE assistant_id = ?", (assistant_id,))
            return db.execute("DELETE FROM assistants WHERE assistant_id = ?", (assistant_id,)).rowcount > 0

        return await self._atomic(delete)

    async def assistant_search(
        self,
        *,
        graph_id: str | None,
        name: str | None,
        metadata: dict[str, Any] | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        where: list[str] = []
        params: list[Any] = []
        if graph_id is not None:
            where.append("graph_id = ?")
            params.append(graph_id)
        if name is not None:
            where.append("icontains(name, ?)")
            params.append(name)
        if metadata:
            where.append("json_contains(metadata, ?)")
            params.append(json_text(metadata))
        return await self._search(
            "assistants", ASSISTANTS, where, params, limit=limit, offset=offset, sort_by=sort_by, sort_order=sort_order
        )

    async def assistant_versions(
        self, assistant_id: str, metadata: dict[str, Any] | None, limit: int, offset: int
    ) -> list[Record]:
        where = "assistant_id = ?"
        params: list[Any] = [assistant_id]
        if metadata:
            where += " AND json_contains(metadata, ?)"
            params.append(json_text(metadata))
        return await self._read(
            ASSISTANTS,
            f"SELECT * FROM assistant_versions WHERE {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    async def assistant_set_latest(self, assistant_id: str, version: int) -> Record | None:

        def set_latest(db: sqlite3.Connection) -> Record | None:
            found = self._fetch(
                db,
                ASSISTANTS,
                "SELECT * FROM assistant_versions WHERE assistant_id = ? AND version = ? ORDER BY seq LIMIT 1",
                (assistant_id, version),
            )
            if not found:
                return None
            self._upsert(db, "assistants", ASSISTANTS, found[0])
            return found[0]

        return await self._atomic(set_latest)

    # threads ------------------------------------------------------------------------------
    async def thread_put(self, thread: Record) -> None:
        await self._stmt(*self._upsert_statement("threads", THREADS, thread), write=True)

    async def thread_get(self, thread_id: str) -> Record | None:
        return await self._lookup("threads", THREADS, thread_id)

    async def thread_update(self, thread_id: str, fields: dict[str, Any]) -> Record | None:
        return await self._merge("threads", THREADS, thread_id, fields)

    async def thread_merge_metadata(
        self, thread_id: str, patch: dict[str, Any], fields: dict[str, Any] | None = None
    ) -> Record | None:
        fields = {k: v for k, v in (fields or {}).items() if k != "metadata"}
        return await self._merge("threads", THREADS, thread_id, fields, metadata=patch)

    async def thread_delete(self, thread_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM runs WHERE thread_id = ?", (thread_id,))
            db.execute("DELETE FROM thread_ttl WHERE thread_id = ?", (thread_id,))
            db.execute("DELETE FROM crons WHERE thread_id = ?", (thread_id,))
            return db.execute("DELETE FROM threads WHERE thread_id = ?", (thread_id,)).rowcount > 0

        existed = await self._atomic(delete)
        await self.checkpointer.adelete_thread(thread_id)
        return existed

    async def thread_search(
        self,
        *,
        ids: list[str] | None,
        metadata: dict[str, Any] | None,
        values: dict[str, Any] | None,
        status: str | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        where: list[str] = []
        params: list[Any] = []
        if ids:
            unique = list(dict.fromkeys(ids))
            where.append(f"thread_id IN ({', '.join('?' * len(unique))})")
            params.extend(unique)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if metadata:
            where.append("json_contains(metadata, ?)")
            params.append(json_text(metadata))
        if values:
            where.append('json_contains("values", ?)')
            params.append(json_text(values))
        return await self._search(
            "threads", THREADS, where, params, limit=limit, offset=offset, sort_by=sort_by, sort_order=sort_order
        )

    # runs ---------------------------------------------------------------------------------
    async def run_put(self, run: Record) -> None:
        """One upsert that also makes this process the owner of a run nobody owns yet."""
        names = RUNS.names
        updates = ", ".join(f"{_quoted(n)} = excluded.{_quoted(n)}" for n in names[1:])
        await self._stmt(
            f"INSERT INTO runs ({', '.join(map(_quoted, names))}, owner) VALUES ({', '.join('?' * len(names))}, ?) "
            f"ON CONFLICT (run_id) DO UPDATE SET {updates}, owner = COALESCE(runs.owner, excluded.owner)",
            [*self._params(RUNS, run), self.instance_id],
            write=True,
        )

    async def run_get(self, run_id: str) -> Record | None:
        return await self._lookup("runs", RUNS, run_id)

    async def run_update(self, run_id: str, fields: dict[str, Any]) -> Record | None:
        return await self._merge("runs", RUNS, run_id, fields)

    async def run_delete(self, run_id: str) -> bool:
        return bool(await self._stmt("DELETE FROM runs WHERE run_id = ? RETURNING run_id", (run_id,), write=True))

    async def run_list(self, thread_id: str, *, limit: int, offset: int, status: str | None = None) -> list[Record]:
        where = "thread_id = ?"
        params: list[Any] = [thread_id]
        if status is not None:
            where += " AND status = ?"
            params.append(status)
        return await self._read(
            RUNS,
            f"SELECT * FROM runs WHERE {where} ORDER BY created_at DESC, seq LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    async def run_list_by_status(self, statuses: list[str]) -> list[Record]:
        if not statuses:
            return []
        return await self._read(
            RUNS, f"SELECT * FROM runs WHERE status IN ({', '.join('?' * len(statuses))}) ORDER BY seq", statuses
        )

    # run engine ---------------------------------------------------------------------------
    # Each step is one BEGIN IMMEDIATE transaction, done on the writer's thread in one hop (`_atomic`): SQLite
    # serialises it against every other writer, in this process and in any other process on the same file.
    def _inflight_runs(self, db: sqlite3.Connection, thread_id: str) -> list[Record]:
        """The thread's pending and running runs, oldest first (inside a write transaction on `db`)."""
        return [self._record(RUNS, row) for row in db.execute(INFLIGHT_OF_THREAD, (thread_id,))]

    async def run_create(
        self,
        run: Record,
        thread_metadata: dict[str, Any],
        thread_fields: dict[str, Any],
        *,
        reject: bool,
        max_creator_runs: int = 0,
        start_at: datetime | None = None,
        new_thread: Record | None = None,
    ) -> list[Record] | None:
        creator = run_creator(run) if max_creator_runs > 0 else None
        created = None if new_thread is None else thread_for_run(new_thread, thread_fields, thread_metadata)

        def create(db: sqlite3.Connection) -> list[Record] | None:
            # a thread inserted here is new: nothing can be in flight on it
            fresh = created is not None and (
                db.execute(*self._insert_statement("threads", THREADS, created, "INSERT OR IGNORE")).rowcount == 1
            )
            inflight = [] if fresh else self._inflight_runs(db, run["thread_id"])
            if reject and inflight:
                return None
            if creator is not None:
                mine = db.execute(
                    "SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running') AND json_extract(doc, ?) = ?",
                    ("$." + ".".join(RUN_CREATOR_PATH), creator),
                ).fetchone()[0]
                if mine >= max_creator_runs:
                    raise RunLimitReached(creator)
            start_at_creation(run, inflight, start_at)
            db.execute(*self._insert_statement("runs", RUNS, run))
            db.execute("UPDATE runs SET owner = ? WHERE run_id = ?", (self.instance_id, run["run_id"]))
            if fresh:
                return inflight
            row = db.execute("SELECT * FROM threads WHERE thread_id = ?", (run["thread_id"],)).fetchone()
            if row is not None:
                thread = thread_for_run(self._record(THREADS, row), thread_fields, thread_metadata)
                db.execute(*self._upsert_statement("threads", THREADS, thread))
            return inflight

        return await self._atomic(create)  # BEGIN IMMEDIATE: the only writer of the file, in every process

    async def run_start_next(self, thread_id: str, owner: str, at: datetime) -> tuple[Record | None, datetime | None]:
        def start(db: sqlite3.Connection) -> tuple[Record | None, datetime | None]:
            run, wake = pick_next_run(self._inflight_runs(db, thread_id), at)
            if run is None:
                return None, wake
            run.update({"status": "running", "updated_at": at})
            db.execute(*self._upsert_statement("runs", RUNS, run))
            db.execute("UPDATE runs SET owner = ? WHERE run_id = ?", (owner, run["run_id"]))
            return run, None

        return await self._atomic(start)

    async def run_cancel_pending(self, run_id: str, fields: dict[str, Any] | None) -> Record | None:

        def cancel(db: sqlite3.Connection) -> Record | None:
            found = self._get(db, "runs", RUNS, run_id)
            if found is None or found["status"] != "pending":
                return None
            if fields is None:
                db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            else:
                found.update(fields)
                self._upsert(db, "runs", RUNS, found)
            return found

        return await self._atomic(cancel)

    async def run_inflight(self, thread_id: str) -> list[Record]:
        return await self._read(RUNS, INFLIGHT_OF_THREAD, (thread_id,))

    async def run_finish(
        self, thread_id: str, run_id: str, thread_fields: dict[str, Any], run_fields: dict[str, Any] | None
    ) -> None:
        def finish(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT * FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
            if row is not None:
                thread = {**self._record(THREADS, row), **thread_fields}
                if db.execute(OTHER_INFLIGHT, (thread_id, run_id)).fetchone() is not None:
                    thread["status"] = "busy"
                db.execute(*self._upsert_statement("threads", THREADS, thread))
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and run_fields is not None:
                db.execute(*self._upsert_statement("runs", RUNS, {**self._record(RUNS, row), **run_fields}))

        await self._atomic(finish)

    # run ownership ------------------------------------------------------------------------
    async def run_list_inflight(self) -> list[tuple[Record, str | None]]:
        rows = await self._stmt(
            "SELECT * FROM runs WHERE status IN ('pending', 'running') ORDER BY created_at, seq", write=False
        )
        return [(self._record(RUNS, row), row["owner"]) for row in rows]

    async def run_owner(self, run_id: str) -> str | None:
        rows = await self._stmt("SELECT owner FROM runs WHERE run_id = ?", (run_id,), write=False)
        return rows[0]["owner"] if rows else None

    async def run_claim(self, run_id: str, owner: str | None, new_owner: str) -> bool:
        claimed = await self._stmt(
            "UPDATE runs SET owner = ? WHERE run_id = ? AND owner IS ? RETURNING run_id",
            (new_owner, run_id, owner),
            write=True,
        )
        return bool(claimed)

    async def instance_beat(self, instance_id: str, host: str, pid: int, at: datetime) -> None:
        await self._stmt(
            "INSERT INTO server_instances (instance_id, host, pid, heartbeat_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (instance_id, host, pid, time_text(at)),
            write=True,
        )

    async def instance_forget(self, instance_id: str) -> None:
        await self._stmt("DELETE FROM server_instances WHERE instance_id = ?", (instance_id,), write=True)

    async def instance_list(self) -> list[Record]:
        rows = await self._stmt("SELECT * FROM server_instances", write=False)
        return [
            {"instance_id": r["instance_id"], "host": r["host"], "pid": r["pid"],
             "heartbeat_at": parse_time_text(r["heartbeat_at"])}
            for r in rows
        ]  # fmt: skip

    # thread TTL ---------------------------------------------------------------------------
    async def thread_set_ttl(self, thread_id: str, ttl: Record | None) -> None:
        if ttl is None:
            await self._stmt("DELETE FROM thread_ttl WHERE thread_id = ?", (thread_id,), write=True)
            return
        await self._stmt(
            "INSERT INTO thread_ttl (thread_id, strategy, ttl_minutes, expires_at) "
            "SELECT thread_id, ?, ?, ? FROM threads WHERE thread_id = ? "
            "ON CONFLICT (thread_id) DO UPDATE SET strategy = excluded.strategy, "
            "ttl_minutes = excluded.ttl_minutes, expires_at = excluded.expires_at",
            (ttl["strategy"], ttl["ttl_minutes"], time_text(ttl["expires_at"]), thread_id),
            write=True,
        )

    async def thread_get_ttl(self, thread_id: str) -> Record | None:
        rows = await self._stmt(
            "SELECT strategy, ttl_minutes, expires_at FROM thread_ttl WHERE thread_id = ?", (thread_id,), write=False
        )
        row = next(iter(rows), None)
        if row is None:
            return None
        return {"strategy": row[0], "ttl_minutes": row[1], "expires_at": parse_time_text(row[2])}

    async def thread_expired(self, at: datetime, limit: int = 100) -> list[tuple[str, str]]:
        rows = await self._stmt(
            "SELECT thread_id, strategy FROM thread_ttl WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
            (time_text(at), limit),
            write=False,
        )
        return [(row[0], row[1]) for row in rows]

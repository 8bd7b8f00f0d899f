"""PostgreSQL storage: assistants, threads and runs in JSONB tables next to LangGraph's Postgres saver/store.

For multi-process or multi-host deployments. One psycopg 3 pool serves everything; its connections are
autocommit (LangGraph's savers need that, and our writes open explicit transactions) and never prepare
statements (`prepare_threshold=None`), so the pool also works behind PgBouncer in transaction mode.
Metadata and values filters run as JSONB containment (`@>`) backed by GIN indexes. JSONB keeps no key
order, so nested objects in `metadata`/`values` may read back with keys reordered (equal as JSON).
"""

from __future__ import annotations

import asyncio
import functools
import select
from datetime import datetime
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import AsyncConnectionPool

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
from robyn_server.storage.crons_sql import POSTGRES_MIGRATION, PostgresCrons
from robyn_server.storage.errors import MigrationError, first_line
from robyn_server.storage.filters import sort_and_page
from robyn_server.storage.postgres_saver import SAVER_THREAD_TABLES, PostgresCheckpointer
from robyn_server.storage.records import ASSISTANTS, RUNS, THREADS, Layout, json_text, to_utc

# Serializes concurrent migrations from several server processes (an arbitrary constant key).
_MIGRATION_LOCK = 7_316_402_118
# Serializes LangGraph's saver and store set-up across processes (a different key: see `setup`).
_SAVER_SETUP_LOCK = 7_316_402_119

_COMMON = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

# Earlier versions stored the caller's bearer token in each run's config and LangGraph copied it into checkpoint
# metadata; it is now held in memory for the run only (robyn_server.runs.credentials). LangGraph's checkpoint
# table may not exist yet (a fresh database: its saver is set up after the migrations).
REMOVE_STORED_TOKENS = [
    """UPDATE runs SET doc = (doc::jsonb #- '{rest,kwargs,config,configurable,x-supabase-access-token}')::json
        WHERE strpos(doc::text, 'x-supabase-access-token') > 0""",
    """DO $$ BEGIN
        IF to_regclass('checkpoints') IS NOT NULL THEN
            UPDATE checkpoints SET metadata = metadata - 'x-supabase-access-token'
                WHERE metadata ? 'x-supabase-access-token';
        END IF;
    END $$""",
]

# Each entry is one schema version; never edit an applied entry, append a new one instead.
MIGRATIONS: list[list[str]] = [
    [
        f"""CREATE TABLE assistants (
            {_COMMON}, assistant_id TEXT NOT NULL UNIQUE, graph_id TEXT, name TEXT, version INTEGER,
            created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, metadata JSONB, doc JSON NOT NULL)""",
        "CREATE INDEX assistants_graph_id ON assistants (graph_id)",
        "CREATE INDEX assistants_metadata ON assistants USING GIN (metadata jsonb_path_ops)",
        f"""CREATE TABLE assistant_versions (
            {_COMMON}, assistant_id TEXT NOT NULL, graph_id TEXT, name TEXT, version INTEGER,
            created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, metadata JSONB, doc JSON NOT NULL)""",
        "CREATE INDEX assistant_versions_id ON assistant_versions (assistant_id, version)",
        f"""CREATE TABLE threads (
            {_COMMON}, thread_id TEXT NOT NULL UNIQUE, status TEXT, created_at TIMESTAMPTZ,
            updated_at TIMESTAMPTZ, state_updated_at TIMESTAMPTZ, metadata JSONB, "values" JSONB,
            doc JSON NOT NULL)""",
        "CREATE INDEX threads_status ON threads (status)",
        "CREATE INDEX threads_created_at ON threads (created_at)",
        "CREATE INDEX threads_metadata ON threads USING GIN (metadata jsonb_path_ops)",
        'CREATE INDEX threads_values ON threads USING GIN ("values" jsonb_path_ops)',
        f"""CREATE TABLE runs (
            {_COMMON}, run_id TEXT NOT NULL UNIQUE, thread_id TEXT, assistant_id TEXT, status TEXT,
            created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, metadata JSONB, doc JSON NOT NULL)""",
        "CREATE INDEX runs_thread ON runs (thread_id, created_at DESC)",
        "CREATE INDEX runs_status ON runs (status)",
    ],
    [
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        """CREATE TABLE thread_ttl (
            thread_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, ttl_minutes DOUBLE PRECISION NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL)""",
        "CREATE INDEX thread_ttl_expires_at ON thread_ttl (expires_at)",
        """CREATE TABLE server_instances (
            instance_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
            heartbeat_at TIMESTAMPTZ NOT NULL)""",
    ],
    POSTGRES_MIGRATION,
    REMOVE_STORED_TOKENS,
]

Conn = AsyncConnection[DictRow]

# A run with its owner (`rendered` with cols=RUN_COLUMNS): created, started (the starter owns it), or put (the
# owner kept when it has one).
RUN_COLUMNS = tuple(RUNS.names)
RUN_INSERT = "INSERT INTO runs ({cols}, owner) VALUES ({cols_params}, %s)"
RUN_START = RUN_INSERT + " ON CONFLICT (run_id) DO UPDATE SET {cols_sets}, owner = EXCLUDED.owner"
RUN_PUT = RUN_INSERT + " ON CONFLICT (run_id) DO UPDATE SET {cols_sets}, owner = COALESCE(runs.owner, EXCLUDED.owner)"
# A new thread and its first run in one statement: the run is inserted only if the thread was (a thread that
# exists already takes the locking path of `run_create`). `{t}` are the threads' columns.
THREAD_INSERT_IF_NEW = "INSERT INTO threads ({t}) VALUES ({t_params}) ON CONFLICT (thread_id) DO NOTHING"
RUN_INSERT_WITH_THREAD = (
    f"WITH t AS ({THREAD_INSERT_IF_NEW} RETURNING 1) "
    "INSERT INTO runs ({cols}, owner) SELECT {cols_params}, %s WHERE EXISTS (SELECT 1 FROM t)"
)


@functools.cache
def rendered(template: str, **identifiers: str | tuple[str, ...]) -> sql.SQL:
    """`template` with `{name}` filled by quoted identifiers (a tuple: a comma-separated list), `{name_params}` by
    as many `%s` and `{name_sets}` by `c = EXCLUDED.c` for each but the first, rendered once: composing a
    statement's identifiers with `psycopg.sql` on every execution cost ~170 us for an upsert of the runs table."""
    parts: dict[str, str] = {}
    for name, value in identifiers.items():
        names = value if isinstance(value, tuple) else (value,)
        quoted = [sql.Identifier(n).as_string() for n in names]
        parts[name] = ", ".join(quoted)
        parts[f"{name}_sets"] = ", ".join(f"{q} = EXCLUDED.{q}" for q in quoted[1:])
        parts[f"{name}_params"] = ", ".join(["%s"] * len(names))
    return sql.SQL(template.format(**parts))


@functools.cache
def thread_delete_statement(tables: tuple[str, ...]) -> str:
    """`WITH t0 AS (DELETE FROM <table> WHERE thread_id = %s), ... DELETE FROM threads WHERE thread_id = %s`."""
    parts = ", ".join(f"t{i} AS (DELETE FROM {table} WHERE thread_id = %s)" for i, table in enumerate(tables))
    return f"WITH {parts} DELETE FROM threads WHERE thread_id = %s"


async def check_pooled_connection(conn: AsyncConnection[Any]) -> None:
    """The pool's check before each use, without a round trip while nothing came in since the last use: a
    connection the server dropped (restart, failover, `pg_terminate_backend`) has its notice and end of stream
    waiting on the socket, and only then does the query-based check run (and the pool replace the connection).
    Checking every checkout with a query cost 13 round trips per streamed run, a third of them all."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()  # not select.select: a server with 1,000 open streams has descriptors above 1023
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(conn)


def _dumps(value: Any) -> str:
    return json_text(value)


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=_dumps)


class PostgresStorage(PostgresCrons, Storage):
    """Everything in the PostgreSQL database at `dsn`.

    Pooled connections are checked before each use (`check_pooled_connection`), so connections the server dropped
    (a restart, a failover, `pg_terminate_backend`) are replaced instead of failing a request; while the database
    is down, a request waits at most `pool_timeout` seconds for a connection and then fails with `PoolTimeout`.
    """

    kind = "postgres"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, pool_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._min_size = min_size
        self._max_size = max_size
        self._pool_timeout = pool_timeout

    # lifecycle ----------------------------------------------------------------------------
    async def setup(self) -> None:
        """Open the pool, migrate our schema, and set up LangGraph's saver and store tables."""
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
            check=check_pooled_connection,
            timeout=self._pool_timeout,
            open=False,
        )
        await pool.open(wait=True)
        self._pool = pool
        await self._migrate()
        self.checkpointer = PostgresCheckpointer(pool)
        self.store = AsyncPostgresStore(pool, **self.store_options)
        # LangGraph's own migrations are not safe to run from two processes at once, so one process runs them at
        # a time. The others wait *between* statements (try-lock, then sleep): a backend blocked inside
        # `pg_advisory_lock` would hold a snapshot that the saver's CREATE INDEX CONCURRENTLY waits for, a
        # deadlock Postgres cannot see.
        async with pool.connection() as lock_conn:
            while True:
                cur = await lock_conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (_SAVER_SETUP_LOCK,))
                row = await cur.fetchone()
                if row and row["got"]:
                    break
                await asyncio.sleep(0.05)
            try:
                await self.checkpointer.setup()
                await self.store.setup()
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_SAVER_SETUP_LOCK,))

    async def _migrate(self) -> None:
        """Apply pending MIGRATIONS in one transaction, recording each in `schema_version`."""
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
            row = await cur.fetchone()
            current = int(row["v"]) if row else 0
            for version, statements in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                try:
                    for statement in statements:
                        await conn.execute(sql.SQL(statement))  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    if isinstance(exc, psycopg.OperationalError):
                        raise
                    raise MigrationError(f"migration {version} failed: {first_line(exc)}") from exc
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    async def ping(self) -> dict[str, Any]:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
            row = await cur.fetchone()
            info = conn.info
            where = {"host": info.host, "port": info.port, "database": info.dbname}
        return {"backend": self.kind, **where, "schema_version": int(row["v"]) if row else 0}

    async def close(self) -> None:
        """Close the pool (the saver and store share it)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def _pool_or_fail(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise RuntimeError("PostgresStorage.setup() has not been called")
        return self._pool

    # row codec ----------------------------------------------------------------------------
    @staticmethod
    def _params(layout: Layout, record: Record) -> list[Any]:
        cols, doc = layout.split(record)
        params: list[Any] = [cols[layout.key]]
        for name, kind in layout.columns.items():
            value = cols[name]
            params.append(_jsonb(value) if kind == "json" and value is not None else value)
        params.append(Json(doc, dumps=_dumps))
        return params

    @staticmethod
    def _record(layout: Layout, row: DictRow) -> Record:
        cols: dict[str, Any] = {layout.key: row[layout.key]}
        for name in layout.columns:
            value = row[name]
            cols[name] = to_utc(value) if isinstance(value, datetime) else value
        return layout.join(cols, row["doc"])

    async def _fetch(self, conn: Conn, layout: Layout, query: sql.Composable, params: list[Any]) -> list[Record]:
        cur = await conn.execute(query, params)
        return [self._record(layout, row) for row in await cur.fetchall()]

    async def _upsert(self, conn: Conn, table: str, layout: Layout, record: Record) -> None:
        """Insert or replace by key, keeping the row's `seq` (its original insertion position)."""
        query = rendered(
            "INSERT INTO {t} ({cols}) VALUES ({cols_params}) ON CONFLICT ({key}) DO UPDATE SET {cols_sets}",
            t=table, cols=tuple(layout.names), key=layout.key,
        )  # fmt: skip
        await conn.execute(query, self._params(layout, record))

    async def _insert(self, conn: Conn, table: str, layout: Layout, record: Record) -> None:
        query = rendered("INSERT INTO {t} ({cols}) VALUES ({cols_params})", t=table, cols=tuple(layout.names))
        await conn.execute(query, self._params(layout, record))

    async def _get(self, table: str, layout: Layout, key: str) -> Record | None:
        query = rendered("SELECT * FROM {t} WHERE {k} = %s", t=table, k=layout.key)
        async with self._pool_or_fail.connection() as conn:
            found = await self._fetch(conn, layout, query, [key])
        return found[0] if found else None

    async def _merge(
        self, table: str, layout: Layout, key: str, fields: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> Record | None:
        """Read-modify-write under a row lock, so concurrent updates of one record never lose fields;
        `metadata` is merged into the stored metadata."""
        query = rendered("SELECT * FROM {t} WHERE {k} = %s FOR UPDATE", t=table, k=layout.key)
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            found = await self._fetch(conn, layout, query, [key])
            if not found:
                return None
            record = found[0]
            record.update(fields)
            if metadata is not None:
                record["metadata"] = {**(record.get("metadata") or {}), **metadata}
            await self._upsert(conn, table, layout, record)
        return record

    async def _delete(self, table: str, column: str, key: str) -> bool:
        query = sql.SQL("DELETE FROM {t} WHERE {c} = %s").format(t=sql.Identifier(table), c=sql.Identifier(column))
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute(query, [key])
            return cur.rowcount > 0

    async def _search(
        self,
        table: str,
        layout: Layout,
        where: list[sql.Composable],
        params: list[Any],
        *,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        """Filter in SQL; order like `sort_and_page` (None last, ties by insertion order) and page."""
        t = sql.Identifier(table)
        clause = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            if not layout.sortable(sort_by):
                query = sql.SQL("SELECT * FROM {t}{w} ORDER BY seq").format(t=t, w=clause)
                items = await self._fetch(conn, layout, query, params)
                return sort_and_page(items, sort_by, sort_order, limit, offset)
            column = sql.Identifier(sort_by)
            if sort_by == layout.key or layout.columns[sort_by] == "text":
                column = sql.SQL('{c} COLLATE "C"').format(c=column)  # code point order, like Python
            direction = sql.SQL("ASC" if sort_order.lower() == "asc" else "DESC")
            query = sql.SQL("SELECT * FROM {t}{w} ORDER BY {c} {d} NULLS LAST, seq LIMIT %s OFFSET %s").format(
                t=t, w=clause, c=column, d=direction
            )
            items = await self._fetch(conn, layout, query, [*params, limit, offset])
            cur = await conn.execute(sql.SQL("SELECT COUNT(*) AS n FROM {t}{w}").format(t=t, w=clause), params)
            row = await cur.fetchone()
        return items, int(row["n"]) if row else 0

    # assistants ---------------------------------------------------------------------------
    async def assistant_put(self, assistant: Record) -> None:
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            await self._upsert(conn, "assistants", ASSISTANTS, assistant)
            await conn.execute("DELETE FROM assistant_versions WHERE assistant_id = %s", (assistant["assistant_id"],))
            await self._insert(conn, "assistant_versions", ASSISTANTS, assistant)

    async def assistant_get(self, assistant_id: str) -> Record | None:
        return await self._get("assistants", ASSISTANTS, assistant_id)

    async def assistant_add_version(self, assistant: Record) -> None:
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            await self._upsert(conn, "assistants", ASSISTANTS, assistant)
            await self._insert(conn, "assistant_versions", ASSISTANTS, assistant)

    async def assistant_patch(
        self, assistant_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        """Read-modify-write under the assistant row's lock, so concurrent patches (from any process) run one
        after another: each sees the previous one's metadata and the highest version so far."""
        query = sql.SQL("SELECT * FROM assistants WHERE assistant_id = %s FOR UPDATE")
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            found = await self._fetch(conn, ASSISTANTS, query, [assistant_id])
            if not found:
                return None
            cur = await conn.execute(
                "SELECT MAX(version) AS v FROM assistant_versions WHERE assistant_id = %s", (assistant_id,)
            )
            row = await cur.fetchone()
            latest = max(int(row["v"]) if row and row["v"] is not None else 0, found[0].get("version") or 0)
            updated = patched_assistant(found[0], fields, metadata_patch, latest + 1)
            await self._upsert(conn, "assistants", ASSISTANTS, updated)
            await self._insert(conn, "assistant_versions", ASSISTANTS, updated)
        return updated

    async def assistant_delete(self, assistant_id: str) -> bool:
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM assistant_versions WHERE assistant_id = %s", (assistant_id,))
            cur = await conn.execute("DELETE FROM assistants WHERE assistant_id = %s", (assistant_id,))
            return cur.rowcount > 0

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
        where: list[sql.Composable] = []
        params: list[Any] = []
        if graph_id is not None:
            where.append(sql.SQL("graph_id = %s"))
            params.append(graph_id)
        if name is not None:
            where.append(sql.SQL("strpos(lower(COALESCE(name, '')), lower(%s)) > 0"))
            params.append(name)
        if metadata:
            where.append(sql.SQL("metadata @> %s"))
            params.append(_jsonb(metadata))
        return await self._search(
            "assistants", ASSISTANTS, where, params, limit=limit, offset=offset, sort_by=sort_by, sort_order=sort_order
        )

    async def assistant_versions(
        self, assistant_id: str, metadata: dict[str, Any] | None, limit: int, offset: int
    ) -> list[Record]:
        where = sql.SQL("assistant_id = %s")
        params: list[Any] = [assistant_id]
        if metadata:
            where = sql.SQL("{w} AND metadata @> %s").format(w=where)
            params.append(_jsonb(metadata))
        query = sql.SQL("SELECT * FROM assistant_versions WHERE {w} ORDER BY seq DESC LIMIT %s OFFSET %s").format(
            w=where
        )
        async with self._pool_or_fail.connection() as conn:
            return await self._fetch(conn, ASSISTANTS, query, [*params, limit, offset])

    async def assistant_set_latest(self, assistant_id: str, version: int) -> Record | None:
        query = sql.SQL(
            "SELECT * FROM assistant_versions WHERE assistant_id = %s AND version = %s ORDER BY seq LIMIT 1"
        )
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            found = await self._fetch(conn, ASSISTANTS, query, [assistant_id, version])
            if not found:
                return None
            await self._upsert(conn, "assistants", ASSISTANTS, found[0])
        return found[0]

    # threads ------------------------------------------------------------------------------
    async def thread_put(self, thread: Record) -> None:
        async with self._pool_or_fail.connection() as conn:
            await self._upsert(conn, "threads", THREADS, thread)

    async def thread_get(self, thread_id: str) -> Record | None:
        return await self._get("threads", THREADS, thread_id)

    async def thread_update(self, thread_id: str, fields: dict[str, Any]) -> Record | None:
        return await self._merge("threads", THREADS, thread_id, fields)

    async def thread_merge_metadata(
        self, thread_id: str, patch: dict[str, Any], fields: dict[str, Any] | None = None
    ) -> Record | None:
        """One `UPDATE ... SET metadata = metadata || patch` when every field lives in a typed column and the
        row's doc already lists those keys; otherwise (a field kept in the doc) the row-locked read-modify-write."""
        fields = {k: v for k, v in (fields or {}).items() if k != "metadata"}
        cols, doc = THREADS.split({"thread_id": thread_id, **fields})
        if not doc["rest"]:
            sets = [sql.SQL("metadata = COALESCE(metadata, '{}'::jsonb) || %s")]
            params: list[Any] = [_jsonb(patch)]
            for name in fields:
                value = cols[name]
                sets.append(sql.SQL("{c} = %s").format(c=sql.Identifier(name)))
                params.append(_jsonb(value) if THREADS.columns[name] == "json" and value is not None else value)
            query = sql.SQL(
                "UPDATE threads SET {sets} WHERE thread_id = %s AND (doc::jsonb -> 'keys') @> %s RETURNING *"
            ).format(sets=sql.SQL(", ").join(sets))
            params += [thread_id, Jsonb(["metadata", *fields])]
            async with self._pool_or_fail.connection() as conn:
                found = await self._fetch(conn, THREADS, query, params)
            if found:
                return found[0]
        return await self._merge("threads", THREADS, thread_id, fields, metadata=patch)

    async def thread_delete(self, thread_id: str) -> bool:
        """One statement (atomic, one round trip) that also deletes the thread's checkpoints when the saver is
        LangGraph's own, whose `adelete_thread` deletes from exactly `SAVER_THREAD_TABLES`; any other saver's
        `adelete_thread` is called after it."""
        ours = type(self.checkpointer).adelete_thread is AsyncPostgresSaver.adelete_thread
        tables = ("runs", "thread_ttl", "crons", *(SAVER_THREAD_TABLES if ours else ()))
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute(thread_delete_statement(tables), (thread_id,) * (len(tables) + 1))
            existed = cur.rowcount > 0
        if not ours:
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
        where: list[sql.Composable] = []
        params: list[Any] = []
        if ids:
            where.append(sql.SQL("thread_id = ANY(%s)"))
            params.append(list(ids))
        if status is not None:
            where.append(sql.SQL("status = %s"))
            params.append(status)
        if metadata:
            where.append(sql.SQL("metadata @> %s"))
            params.append(_jsonb(metadata))
        if values:
            where.append(sql.SQL('"values" @> %s'))
            params.append(_jsonb(values))
        return await self._search(
            "threads", THREADS, where, params, limit=limit, offset=offset, sort_by=sort_by, sort_order=sort_order
        )

    # runs ---------------------------------------------------------------------------------
    async def run_put(self, run: Record) -> None:
        """One upsert that also makes this process the owner of a run nobody owns yet."""
        query = rendered(RUN_PUT, cols=RUN_COLUMNS)
        async with self._pool_or_fail.connection() as conn:
            await conn.execute(query, [*self._params(RUNS, run), self.instance_id])

    async def run_get(self, run_id: str) -> Record | None:
        return await self._get("runs", RUNS, run_id)

    async def run_update(self, run_id: str, fields: dict[str, Any]) -> Record | None:
        """One UPDATE when every field is a typed column the run already has (status, updated_at), else the
        row-locked read-modify-write."""
        cols, doc = RUNS.split({"run_id": run_id, **fields})
        if fields and not doc["rest"] and "run_id" not in fields:
            sets = [sql.SQL("{c} = %s").format(c=sql.Identifier(name)) for name in fields]
            params: list[Any] = [
                _jsonb(cols[n]) if RUNS.columns[n] == "json" and cols[n] is not None else cols[n] for n in fields
            ]
            query = sql.SQL(
                "UPDATE runs SET {sets} WHERE run_id = %s AND (doc::jsonb -> 'keys') @> %s "
                "AND NOT ((doc::jsonb -> 'rest') ?| %s) RETURNING *"
            ).format(sets=sql.SQL(", ").join(sets))
            params += [run_id, Jsonb(list(fields)), list(fields)]
            async with self._pool_or_fail.connection() as conn:
                found = await self._fetch(conn, RUNS, query, params)
            if found:
                return found[0]
        return await self._merge("runs", RUNS, run_id, fields)

    async def run_delete(self, run_id: str) -> bool:
        return await self._delete("runs", "run_id", run_id)

    async def run_list(self, thread_id: str, *, limit: int, offset: int, status: str | None = None) -> list[Record]:
        where = sql.SQL("thread_id = %s")
        params: list[Any] = [thread_id]
        if status is not None:
            where = sql.SQL("{w} AND status = %s").format(w=where)
            params.append(status)
        query = sql.SQL(
            "SELECT * FROM runs WHERE {w} ORDER BY created_at DESC NULLS LAST, seq LIMIT %s OFFSET %s"
        ).format(w=where)
        async with self._pool_or_fail.connection() as conn:
            return await self._fetch(conn, RUNS, query, [*params, limit, offset])

    async def run_list_by_status(self, statuses: list[str]) -> list[Record]:
        if not statuses:
            return []
        query = sql.SQL("SELECT * FROM runs WHERE status = ANY(%s) ORDER BY seq")
        async with self._pool_or_fail.connection() as conn:
            return await self._fetch(conn, RUNS, query, [list(statuses)])

    # run engine ---------------------------------------------------------------------------
    # Each step is one transaction that first locks the thread's row, so steps on one thread are serialised
    # across every process and host on the database (runs of a missing thread lock nothing and need nothing).
    async def _lock_thread(self, conn: Conn, thread_id: str) -> Record | None:
        found = await self._fetch(conn, THREADS, sql.SQL("SELECT * FROM threads WHERE thread_id = %s FOR UPDATE"),
                                  [thread_id])  # fmt: skip
        return found[0] if found else None

    async def _inflight_runs(self, conn: Conn, thread_id: str) -> list[Record]:
        query = sql.SQL(
            "SELECT * FROM runs WHERE thread_id = %s AND status IN ('pending', 'running') ORDER BY created_at, seq"
        )
        return await self._fetch(conn, RUNS, query, [thread_id])

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
        if created is not None and creator is None:
            # the common stateless run: one statement, no lock to take (nothing else knows the thread yet)
            started = dict(run)
            start_at_creation(started, [], start_at)
            async with self._pool_or_fail.connection() as conn:
                cur = await conn.execute(
                    rendered(RUN_INSERT_WITH_THREAD, t=tuple(THREADS.names), cols=RUN_COLUMNS),
                    [*self._params(THREADS, created), *self._params(RUNS, started), self.instance_id],
                )
            if cur.rowcount == 1:
                run.update(started)
                return []
            created = None  # it exists: the locking path, as without it
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            if creator is not None:
                # the creator's lock first, then the thread's (no other transaction takes creator locks), held
                # to commit: creations by one user are counted one at a time across every process
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                   (f"robyn_server.run_creator:{creator}",))  # fmt: skip
                cur = await conn.execute(
                    "SELECT COUNT(*) AS n FROM runs WHERE status IN ('pending', 'running') AND doc #>> %s = %s",
                    (list(RUN_CREATOR_PATH), creator),
                )
                row = await cur.fetchone()
                if row is not None and row["n"] >= max_creator_runs:
                    raise RunLimitReached(creator)
            fresh = False  # a thread inserted here is new: nothing to lock or read, nothing in flight on it
            if created is not None:
                cur = await conn.execute(
                    rendered(THREAD_INSERT_IF_NEW, t=tuple(THREADS.names)), self._params(THREADS, created)
                )
                fresh = cur.rowcount == 1
            thread = None if fresh else await self._lock_thread(conn, run["thread_id"])
            inflight = [] if fresh else await self._inflight_runs(conn, run["thread_id"])
            if reject and inflight:
                return None
            start_at_creation(run, inflight, start_at)
            await conn.execute(rendered(RUN_INSERT, cols=RUN_COLUMNS), [*self._params(RUNS, run), self.instance_id])
            if thread is not None:
                await self._upsert(conn, "threads", THREADS, thread_for_run(thread, thread_fields, thread_metadata))
            return inflight

    async def run_start_next(self, thread_id: str, owner: str, at: datetime) -> tuple[Record | None, datetime | None]:
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            await self._lock_thread(conn, thread_id)
            run, wake = pick_next_run(await self._inflight_runs(conn, thread_id), at)
            if run is None:
                return None, wake
            run.update({"status": "running", "updated_at": at})
            await conn.execute(rendered(RUN_START, cols=RUN_COLUMNS), [*self._params(RUNS, run), owner])
            return run, None

    async def run_cancel_pending(self, run_id: str, fields: dict[str, Any] | None) -> Record | None:
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT thread_id FROM runs WHERE run_id = %s", (run_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            await self._lock_thread(conn, row["thread_id"])  # the same order as run_start_next: thread, then run
            found = await self._fetch(conn, RUNS, sql.SQL("SELECT * FROM runs WHERE run_id = %s FOR UPDATE"), [run_id])
            if not found or found[0]["status"] != "pending":
                return None
            if fields is None:
                await conn.execute("DELETE FROM runs WHERE run_id = %s", (run_id,))
            else:
                found[0].update(fields)
                await self._upsert(conn, "runs", RUNS, found[0])
            return found[0]

    async def run_inflight(self, thread_id: str) -> list[Record]:
        async with self._pool_or_fail.connection() as conn:
            return await self._inflight_runs(conn, thread_id)

    async def run_finish(
        self, thread_id: str, run_id: str, thread_fields: dict[str, Any], run_fields: dict[str, Any] | None
    ) -> None:
        async with self._pool_or_fail.connection() as conn, conn.transaction():
            thread = await self._lock_thread(conn, thread_id)
            if thread is not None:
                thread.update(thread_fields)
                cur = await conn.execute(
                    "SELECT 1 FROM runs WHERE thread_id = %s AND run_id <> %s AND status IN ('pending', 'running') "
                    "LIMIT 1",
                    (thread_id, run_id),
                )
                if await cur.fetchone() is not None:
                    thread["status"] = "busy"
                await self._upsert(conn, "threads", THREADS, thread)
            if run_fields is not None:
                found = await self._fetch(conn, RUNS, sql.SQL("SELECT * FROM runs WHERE run_id = %s FOR UPDATE"),
                                          [run_id])  # fmt: skip
                if found:
                    await self._upsert(conn, "runs", RUNS, {**found[0], **run_fields})

    # run ownership ------------------------------------------------------------------------
    async def run_list_inflight(self) -> list[tuple[Record, str | None]]:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM runs WHERE status IN ('pending', 'running') ORDER BY created_at NULLS FIRST, seq"
            )
            rows = await cur.fetchall()
        return [(self._record(RUNS, row), row["owner"]) for row in rows]

    async def run_owner(self, run_id: str) -> str | None:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute("SELECT owner FROM runs WHERE run_id = %s", (run_id,))
            row = await cur.fetchone()
        return row["owner"] if row else None

    async def run_claim(self, run_id: str, owner: str | None, new_owner: str) -> bool:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET owner = %s WHERE run_id = %s AND owner IS NOT DISTINCT FROM %s",
                (new_owner, run_id, owner),
            )
            return cur.rowcount > 0

    async def instance_beat(self, instance_id: str, host: str, pid: int, at: datetime) -> None:
        async with self._pool_or_fail.connection() as conn:
            await conn.execute(
                "INSERT INTO server_instances (instance_id, host, pid, heartbeat_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
                (instance_id, host, pid, at),
            )

    async def instance_forget(self, instance_id: str) -> None:
        async with self._pool_or_fail.connection() as conn:
            await conn.execute("DELETE FROM server_instances WHERE instance_id = %s", (instance_id,))

    async def instance_list(self) -> list[Record]:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute("SELECT instance_id, host, pid, heartbeat_at FROM server_instances")
            rows = await cur.fetchall()
        return [{**row, "heartbeat_at": to_utc(row["heartbeat_at"])} for row in rows]

    # thread TTL ---------------------------------------------------------------------------
    async def thread_set_ttl(self, thread_id: str, ttl: Record | None) -> None:
        async with self._pool_or_fail.connection() as conn:
            if ttl is None:
                await conn.execute("DELETE FROM thread_ttl WHERE thread_id = %s", (thread_id,))
                return
            await conn.execute(
                "INSERT INTO thread_ttl (thread_id, strategy, ttl_minutes, expires_at) "
                "SELECT thread_id, %s, %s, %s FROM threads WHERE thread_id = %s "
                "ON CONFLICT (thread_id) DO UPDATE SET strategy = EXCLUDED.strategy, "
                "ttl_minutes = EXCLUDED.ttl_minutes, expires_at = EXCLUDED.expires_at",
                (ttl["strategy"], ttl["ttl_minutes"], ttl["expires_at"], thread_id),
            )

    async def thread_get_ttl(self, thread_id: str) -> Record | None:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute(
                "SELECT strategy, ttl_minutes, expires_at FROM thread_ttl WHERE thread_id = %s", (thread_id,)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return {"strategy": row["strategy"], "ttl_minutes": row["ttl_minutes"], "expires_at": to_utc(row["expires_at"])}

    async def thread_expired(self, at: datetime, limit: int = 100) -> list[tuple[str, str]]:
        async with self._pool_or_fail.connection() as conn:
            cur = await conn.execute(
                "SELECT thread_id, strategy FROM thread_ttl WHERE expires_at <= %s ORDER BY expires_at LIMIT %s",
                (at, limit),
            )
            rows = await cur.fetchall()
        return [(row["thread_id"], row["strategy"]) for row in rows]

"""The cron methods of the SQLite and Postgres backends (mixed into SqliteStorage and PostgresStorage).

The claim selects the due rows and advances their `next_run_date` in one write transaction: SQLite's
`BEGIN IMMEDIATE` holds the database's write lock across processes, Postgres locks the rows with
`FOR UPDATE SKIP LOCKED` (another process skips them, and re-checks the new date once the lock is gone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from robyn_server.storage.base import NextRun, Record
from robyn_server.storage.crons import _FIXED, CRONS
from robyn_server.storage.records import json_text, parse_time_text, time_text

SQLITE_MIGRATION = [
    """CREATE TABLE crons (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, cron_id TEXT NOT NULL UNIQUE, assistant_id TEXT, thread_id TEXT,
        user_id TEXT, enabled TEXT, next_run_date TEXT, end_time TEXT, created_at TEXT, updated_at TEXT,
        metadata TEXT, doc TEXT NOT NULL)""",
    "CREATE INDEX crons_next_run_date ON crons (next_run_date)",
    "CREATE INDEX crons_thread_id ON crons (thread_id)",
]
POSTGRES_MIGRATION = [
    """CREATE TABLE crons (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, cron_id TEXT NOT NULL UNIQUE, assistant_id TEXT,
        thread_id TEXT, user_id TEXT, enabled JSONB, next_run_date TIMESTAMPTZ, end_time TIMESTAMPTZ,
        created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, metadata JSONB, doc JSON NOT NULL)""",
    "CREATE INDEX crons_next_run_date ON crons (next_run_date)",
    "CREATE INDEX crons_thread_id ON crons (thread_id)",
    "CREATE INDEX crons_metadata ON crons USING GIN (metadata jsonb_path_ops)",
]

_SQLITE_PENDING = (
    "enabled = 'true' AND next_run_date IS NOT NULL "
    "AND (end_time IS NULL OR (end_time >= ? AND next_run_date <= end_time))"
)
_PG_PENDING = (
    "enabled = 'true'::jsonb AND next_run_date IS NOT NULL "
    "AND (end_time IS NULL OR (end_time >= %s AND next_run_date <= end_time))"
)


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in _FIXED}


class SqliteCrons:
    """Cron methods over SqliteStorage's statements, transactions and row codec."""

    async def cron_put(self, cron: Record) -> None:
        await self._stmt(*self._upsert_statement("crons", CRONS, cron), write=True)  # type: ignore[attr-defined]

    async def cron_get(self, cron_id: str) -> Record | None:
        return await self._lookup("crons", CRONS, cron_id)  # type: ignore[attr-defined]

    async def cron_update(
        self, cron_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        return await self._merge("crons", CRONS, cron_id, _fields(fields), metadata=metadata_patch)  # type: ignore[attr-defined]

    async def cron_delete(self, cron_id: str) -> bool:
        query = "DELETE FROM crons WHERE cron_id = ? RETURNING cron_id"
        return bool(await self._stmt(query, (cron_id,), write=True))  # type: ignore[attr-defined]

    async def cron_search(
        self,
        *,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: dict[str, Any] | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("assistant_id", assistant_id), ("thread_id", thread_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if enabled is not None:
            where.append("enabled = ?")
            params.append(json_text(enabled))
        if metadata:
            where.append("json_contains(metadata, ?)")
            params.append(json_text(metadata))
        return await self._search(  # type: ignore[attr-defined]
            "crons", CRONS, where, params, limit=limit, offset=offset, sort_by=sort_by, sort_order=sort_order
        )

    async def cron_claim_due(self, at: datetime, next_run: NextRun, limit: int = 100) -> list[Record]:
        when = time_text(at)

        def claim(db: Any) -> list[Record]:
            due = self._fetch(  # type: ignore[attr-defined]
                db,
                CRONS,
                "SELECT * FROM crons WHERE enabled = 'true' AND next_run_date <= ? "
                "AND (end_time IS NULL OR end_time >= ?) ORDER BY next_run_date, seq LIMIT ?",
                (when, when, limit),
            )
            db.executemany(
                "UPDATE crons SET next_run_date = ? WHERE cron_id = ?",
                [(time_text(next_run(cron, at)), cron["cron_id"]) for cron in due],
            )
            return due

        return await self._atomic(claim)  # type: ignore[attr-defined]

    async def cron_next_due(self, at: datetime) -> datetime | None:
        query = f"SELECT MIN(next_run_date) FROM crons WHERE {_SQLITE_PENDING}"
        rows = await self._stmt(query, (time_text(at),), write=False)  # type: ignore[attr-defined]
        return parse_time_text(rows[0][0]) if rows and rows[0][0] else None


class PostgresCrons:
    """Cron methods over PostgresStorage's pool and row codec."""

    async def cron_put(self, cron: Record) -> None:
        async with self._pool_or_fail.connection() as conn:  # type: ignore[attr-defined]
            await self._upsert(conn, "crons", CRONS, cron)  # type: ignore[attr-defined]

    async def cron_get(self, cron_id: str) -> Record | None:
        return await self._get("crons", CRONS, cron_id)  # type: ignore[attr-defined]

    async def cron_update(
        self, cron_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        return await self._merge("crons", CRONS, cron_id, _fields(fields), metadata=metadata_patch)  # type: ignore[attr-defined]

    async def cron_delete(self, cron_id: str) -> bool:
        return await self._delete("crons", "cron_id", cron_id)  # type: ignore[attr-defined]

    async def cron_search(
        self,
        *,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: dict[str, Any] | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        from psycopg import sql

        from robyn_server.storage.postgres import _jsonb

        where: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in (("assistant_id", assistant_id), ("thread_id", thread_id)):
            if value is not None:
                where.append(sql.SQL("{c} = %s").format(c=sql.Identifier(column)))
                params.append(value)
        if enabled is not None:
            where.append(sql.SQL("enabled = %s"))
            params.append(_jsonb(enabled))
        if metadata:
            where.append(sql.SQL("metadata @> %s"))
            params.append(_jsonb(metadata))
        return await self._search(  # type: ignore[attr-defined]
            "crons", CRONS, where, params, limit=limit, offset=offset, sort_by=sort_by, sort_order=sort_order
        )

    async def cron_claim_due(self, at: datetime, next_run: NextRun, limit: int = 100) -> list[Record]:
        from psycopg import sql  # here, not at the top: the SQLite storage imports this module too

        query = sql.SQL(
            "SELECT * FROM crons WHERE enabled = 'true'::jsonb AND next_run_date <= %s "
            "AND (end_time IS NULL OR end_time >= %s) ORDER BY next_run_date, seq LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        async with self._pool_or_fail.connection() as conn, conn.transaction():  # type: ignore[attr-defined]
            due = await self._fetch(conn, CRONS, query, [at, at, limit])  # type: ignore[attr-defined]
            async with conn.cursor() as cur:  # one pipelined batch for every claimed cron
                await cur.executemany(
                    "UPDATE crons SET next_run_date = %s WHERE cron_id = %s",
                    [(next_run(cron, at), cron["cron_id"]) for cron in due],
                )
        return due

    async def cron_next_due(self, at: datetime) -> datetime | None:
        async with self._pool_or_fail.connection() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute(f"SELECT MIN(next_run_date) AS d FROM crons WHERE {_PG_PENDING}", (at,))  # type: ignore[arg-type]
            row = await cur.fetchone()
        return row["d"] if row and row["d"] else None

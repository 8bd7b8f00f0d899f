"""Database failures as users should read them: one start-up line, or a 503 while the database is away."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from typing import Any, NoReturn

logger = logging.getLogger("robyn_server.storage")


# Postgres SQLSTATE classes that mean "retry later": connection exceptions, insufficient resources, operator
# intervention (shutdown, statement timeout), transaction rollback (serialization failure, deadlock).
_PG_RETRYABLE_CLASSES = ("08", "53", "57", "40")
# SQLite OperationalError messages that mean the file cannot be used right now (anything else is a bug).
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "disk is full")


def _psycopg() -> Any:
    """psycopg if this process uses it (nothing else raises its errors), else None: the embedded default never
    imports it, nor redis (a quarter of a second each at start-up)."""
    return sys.modules.get("psycopg")


def _is_redis_error(exc: BaseException, *names: str) -> bool:
    module = sys.modules.get("redis.exceptions")
    return module is not None and isinstance(exc, tuple(getattr(module, n) for n in names))


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is away or busy (503, retry) rather than a bug or a permanent error:
    a dropped or refused Postgres connection, a pool with no connection to give, a locked SQLite file, Redis
    (the event bus) away."""
    psycopg = _psycopg()
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        state = getattr(exc, "sqlstate", None)  # None: the client lost or never got a connection (PoolTimeout)
        return state is None or state[:2] in _PG_RETRYABLE_CLASSES
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(marker in message for marker in _SQLITE_UNAVAILABLE)
    return _is_redis_error(exc, "ConnectionError", "TimeoutError")


class MigrationError(RuntimeError):
    """A schema migration failed; its transaction was rolled back, so the schema is as it was."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unavailable_detail(exc: BaseException) -> str:
    """The `detail` of a 503 answered while the database (or Redis, the event bus) is unavailable."""
    if _is_redis_error(exc, "RedisError"):
        return f"Event bus (Redis) unavailable, please retry: {first_line(exc)}"
    return f"Database unavailable, please retry: {first_line(exc)}"


def describe_startup_error(storage: Any, exc: BaseException) -> str:
    """One line naming the database and what is wrong with it."""
    kind = getattr(storage, "kind", "storage")
    if isinstance(exc, MigrationError):
        return f"{kind} schema migration failed, schema left unchanged: {first_line(exc)}"
    if kind == "sqlite":
        path = getattr(storage, "path", "?")
        if isinstance(exc, sqlite3.DatabaseError):
            message = first_line(exc)
            if "locked" in message or "busy" in message:
                return f"SQLite database {path} is locked by another process ({message})"
            if "not a database" in message or "malformed" in message or "corrupt" in message:
                return f"SQLite database {path} is corrupt or not a SQLite file ({message})"
            return f"cannot open SQLite database {path}: {message}"
    if _is_redis_error(exc, "RedisError"):
        return f"cannot use Redis at REDIS_URL: {first_line(exc)}"
    psycopg = _psycopg()
    if kind == "postgres" and psycopg is not None and isinstance(exc, psycopg.Error):
        try:
            host = psycopg.conninfo.conninfo_to_dict(storage.dsn).get("host", "?")
        except Exception:
            host = "?"
        return f"Postgres at {host} failed during start-up: {first_line(exc)}"
    return f"start-up failed: {type(exc).__name__}: {first_line(exc)}"


def exit_on_startup_error(storage: Any, exc: BaseException) -> NoReturn:
    """Robyn swallows exceptions from start-up handlers and keeps serving; end the process instead."""
    logger.debug("start-up failure", exc_info=exc)
    print(f"robyn-server: error: {describe_startup_error(storage, exc)}", file=sys.stderr, flush=True)
    os._exit(1)

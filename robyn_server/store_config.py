"""The `store` and `checkpointer` blocks of langgraph.json, honoured through LangGraph's own stores.

- `store.index` (`dims`, `embed`, `fields`): semantic search. `embed` is `./file.py:function` (a function of
  a list of texts, sync or async, or an `Embeddings` object) or `provider:model` (LangChain's
  `init_embeddings`). Memory storage uses LangGraph's `InMemoryStore`; SQLite its `AsyncSqliteStore` with
  sqlite-vec (only when this Python's sqlite3 can load extensions); Postgres its `AsyncPostgresStore` with
  pgvector (only when the database offers the `vector` extension).
- `store.ttl` (`default_ttl` minutes, `refresh_on_read`, `sweep_interval_minutes`): item expiry, on SQLite and
  Postgres (LangGraph's in-memory store has none).
- `checkpointer.ttl` (`strategy`, `default_ttl` minutes, `sweep_interval_minutes`): the default TTL of threads
  created without one, applied by the server's thread TTL sweeper.

Anything this server cannot honour stops the start with one line instead of being ignored.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from robyn_server.config import ConfigError, ServerConfig

STORE_KEYS = frozenset({"index", "ttl"})
INDEX_KEYS = frozenset({"dims", "embed", "fields"})
STORE_TTL_KEYS = frozenset({"default_ttl", "refresh_on_read", "sweep_interval_minutes"})
CHECKPOINTER_KEYS = frozenset({"ttl"})
THREAD_TTL_KEYS = frozenset({"strategy", "default_ttl", "sweep_interval_minutes"})


def _unknown(block: str, raw: dict[str, Any], known: frozenset[str]) -> None:
    extra = sorted(set(raw) - known)
    if extra:
        raise ConfigError(f"{block}.{extra[0]} in langgraph.json is not supported by this server")


def _object(block: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{block} in langgraph.json must be an object")
    return raw


def _minutes(block: str, value: Any, *, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise ConfigError(f"{block} must be a positive {'integer' if integer else 'number'} of minutes")
    return value


def load_embeddings(embed: Any, base_dir: Path) -> Any:
    """`./file.py:function` (relative to the config), or `provider:model` through LangChain's init_embeddings."""
    from langchain_core.embeddings import Embeddings
    from langgraph.store.base import ensure_embeddings

    if not isinstance(embed, str) or ":" not in embed:
        raise ConfigError("store.index.embed must be './file.py:function' or 'provider:model'")
    if ".py:" in embed:
        file_ref, _, name = embed.rpartition(":")
        path = (base_dir / file_ref).resolve()
        if not path.is_file():
            raise ConfigError(f"store.index.embed: file not found: {path}")
        spec = importlib.util.spec_from_file_location(f"_robyn_embeddings_{abs(hash(str(path)))}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"store.index.embed: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"store.index.embed: import of {path} failed: {type(exc).__name__}: {exc}") from exc
        function = getattr(module, name, None)
        if isinstance(function, Embeddings):
            return function
        if not callable(function):
            raise ConfigError(f"store.index.embed: {name!r} in {path} is not a function or Embeddings object")
        return ensure_embeddings(function)
    try:
        from langchain.embeddings import init_embeddings
    except ImportError:
        raise ConfigError(f"store.index.embed {embed!r} needs the langchain package (init_embeddings)")
    try:
        return init_embeddings(embed)
    except Exception as exc:
        raise ConfigError(f"store.index.embed {embed!r}: {type(exc).__name__}: {exc}") from exc


def store_options(config: ServerConfig, backend: str) -> dict[str, Any]:
    """The `index` and `ttl` arguments for LangGraph's store on `backend` (memory, sqlite, postgres)."""
    raw = _object("store", config.store or {})
    _unknown("store", raw, STORE_KEYS)
    options: dict[str, Any] = {}
    if raw.get("index") is not None:
        index = _object("store.index", raw["index"])
        _unknown("store.index", index, INDEX_KEYS)
        dims = index.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
            raise ConfigError("store.index.dims must be a positive integer")
        fields = index.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise ConfigError("store.index.fields must be a list of JSON paths (strings)")
        if backend == "sqlite" and not hasattr(sqlite3.Connection, "enable_load_extension"):
            raise ConfigError(
                "store.index on SQLite needs sqlite-vec, which this Python's sqlite3 cannot load (built without "
                "extension loading); use Postgres with pgvector or --storage memory"
            )
        options["index"] = {"dims": dims, "embed": load_embeddings(index.get("embed"), config.base_dir)}
        if fields is not None:
            options["index"]["fields"] = fields
    if raw.get("ttl") is not None:
        ttl = _object("store.ttl", raw["ttl"])
        _unknown("store.ttl", ttl, STORE_TTL_KEYS)
        if backend == "memory":
            raise ConfigError("store.ttl needs SQLite or Postgres storage (LangGraph's in-memory store has no TTL)")
        refresh = ttl.get("refresh_on_read", True)
        if not isinstance(refresh, bool):
            raise ConfigError("store.ttl.refresh_on_read must be true or false")
        options["ttl"] = {
            "default_ttl": _minutes("store.ttl.default_ttl", ttl.get("default_ttl")),
            "refresh_on_read": refresh,
            "sweep_interval_minutes": _minutes(
                "store.ttl.sweep_interval_minutes", ttl.get("sweep_interval_minutes"), integer=True
            ),
        }
    return options


def check_pgvector(dsn: str) -> None:
    """A Postgres store with an index needs the `vector` extension: say so at start-up, not on first search."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if row is None:
        raise ConfigError(
            "store.index on Postgres needs the pgvector extension, which this database server does not offer "
            "(install e.g. the postgresql-<version>-pgvector package)"
        )


def thread_ttl_default(config: ServerConfig) -> dict[str, Any] | None:
    """`checkpointer.ttl` as a thread TTL (`{"strategy", "ttl"}`) for threads created without one, or None."""
    raw = _object("checkpointer", config.checkpointer or {})
    _unknown("checkpointer", raw, CHECKPOINTER_KEYS)
    if raw.get("ttl") is None:
        return None
    ttl = _object("checkpointer.ttl", raw["ttl"])
    _unknown("checkpointer.ttl", ttl, THREAD_TTL_KEYS)
    strategy = ttl.get("strategy", "delete")
    if strategy not in ("delete", "keep_latest"):
        raise ConfigError("checkpointer.ttl.strategy must be 'delete' or 'keep_latest'")
    _minutes("checkpointer.ttl.sweep_interval_minutes", ttl.get("sweep_interval_minutes"), integer=True)
    minutes = _minutes("checkpointer.ttl.default_ttl", ttl.get("default_ttl"))
    return {"strategy": strategy, "ttl": minutes} if minutes is not None else None


def configure(config: ServerConfig, storage: Any) -> None:
    """Check both blocks and hand the store options to the storage before it opens its store."""
    backend = storage.kind
    options = store_options(config, backend)
    thread_ttl_default(config)
    ttl = (config.checkpointer or {}).get("ttl") or {}
    if ttl.get("sweep_interval_minutes"):
        # the server's thread TTL sweeper (an explicit environment setting wins)
        os.environ.setdefault("ROBYN_SERVER_TTL_SWEEP_SECONDS", str(int(ttl["sweep_interval_minutes"]) * 60))
    if "index" in options and backend == "postgres":
        check_pgvector(storage.dsn)
    storage.store_options = options
    if backend == "memory" and options:
        from langgraph.store.memory import InMemoryStore

        storage.store = InMemoryStore(**options)


async def start_sweeper(storage: Any) -> None:
    """Run LangGraph's store TTL sweeper when `store.ttl.sweep_interval_minutes` asks for one."""
    ttl = (getattr(storage, "store_options", None) or {}).get("ttl") or {}
    start = getattr(storage.store, "start_ttl_sweeper", None)
    if ttl.get("sweep_interval_minutes") and start is not None:
        result = start()
        if inspect.isawaitable(result):
            await result

"""`store` and `checkpointer` in langgraph.json: semantic search ranked by a deterministic fake embedding, item
TTL, the default thread TTL, and a one-line stop for what a backend cannot honour."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_postgres
from tests.server import ServerProcess, create_database, drop_database, refuses_to_start

PLATFORM = Path(__file__).parent / "graphs" / "platform"
INDEX = {"dims": 4, "embed": "./embeddings.py:embed", "fields": ["text"]}
ITEMS = {"many_cats": "cat cat cat", "dog": "a dog", "fish_and_cat": "fish and a cat", "birds": "bird bird"}


def _config(tmp_path: Path, store: dict | None = None, checkpointer: dict | None = None) -> Path:
    config = {"dependencies": [str(PLATFORM)], "graphs": {"no_args": "factory_graphs:no_args"}}
    if store is not None:
        config["store"] = store
    if checkpointer is not None:
        config["checkpointer"] = checkpointer
    (tmp_path / "embeddings.py").write_text((PLATFORM / "embeddings.py").read_text())
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


def _backend_env(backend: str, tmp_path: Path, dsn: str | None) -> dict[str, str | None]:
    if backend == "sqlite":
        return {"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(tmp_path / "s.sqlite")}
    if backend == "postgres":
        return {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": dsn}
    return {"ROBYN_SERVER_STORAGE": "memory"}


def _can_index(backend: str, dsn: str | None) -> bool:
    if backend == "sqlite":
        return hasattr(sqlite3.Connection, "enable_load_extension")
    if backend == "postgres":
        import psycopg

        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is not None
    return True


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.node.callspec.params.get("backend") != "postgres":
        yield None
        return
    require_postgres()
    dsn = create_database("robyn_store")
    try:
        yield dsn
    finally:
        drop_database(dsn)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_semantic_search_ranks_items_by_the_embedding(tmp_path: Path, backend: str, database: str | None) -> None:
    proc = ServerProcess(config=_config(tmp_path, {"index": INDEX}), env=_backend_env(backend, tmp_path, database))
    if not _can_index(backend, database):
        reason = "sqlite-vec, which this Python's sqlite3 cannot load" if backend == "sqlite" else "the pgvector"
        refuses_to_start(proc, f"robyn-server: error: store.index on .* needs {reason}")
        return
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            for key, text in ITEMS.items():
                r = http.put("/store/items", json={"namespace": ["docs"], "key": key, "value": {"text": text}})
                assert r.status_code == 204
            found = http.post("/store/items/search", json={"namespace_prefix": ["docs"], "query": "cat"}).json()
            keys = [i["key"] for i in found["items"]]
            assert keys[:2] == ["many_cats", "fish_and_cat"]
            scores = [i["score"] for i in found["items"]]
            assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
            dogs = http.post("/store/items/search", json={"namespace_prefix": ["docs"], "query": "dog", "limit": 1})
            assert [i["key"] for i in dogs.json()["items"]] == ["dog"]
    finally:
        proc.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_store_ttl_gives_items_an_expiry(tmp_path: Path, backend: str, database: str | None) -> None:
    store = {"ttl": {"default_ttl": 30, "refresh_on_read": True, "sweep_interval_minutes": 1}}
    proc = ServerProcess(config=_config(tmp_path, store), env=_backend_env(backend, tmp_path, database)).start()
    try:
        r = httpx.put(f"{proc.url}/store/items", json={"namespace": ["n"], "key": "k", "value": {"v": 1}})
        assert r.status_code == 204
        assert httpx.get(f"{proc.url}/store/items", params={"namespace": "n", "key": "k"}).json()["value"] == {"v": 1}
    finally:
        proc.stop()
    query = "SELECT expires_at, ttl_minutes FROM store WHERE key = 'k'"
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "s.sqlite") as conn:
            row = conn.execute(query).fetchone()
    else:
        import psycopg

        with psycopg.connect(database) as conn:
            row = conn.execute(query).fetchone()
    assert row is not None and row[0] is not None and row[1] == 30


def test_checkpointer_ttl_is_the_default_thread_ttl(tmp_path: Path) -> None:
    checkpointer = {"ttl": {"strategy": "keep_latest", "default_ttl": 45, "sweep_interval_minutes": 2}}
    proc = ServerProcess(config=_config(tmp_path, checkpointer=checkpointer)).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            default = http.post("/threads", json={}).json()
            ttl = http.get(f"/threads/{default['thread_id']}", params={"include": "ttl"}).json()["ttl"]
            assert ttl["strategy"] == "keep_latest" and ttl["ttl_minutes"] == 45
            own = http.post("/threads", json={"ttl": {"strategy": "delete", "ttl": 5}}).json()
            ttl = http.get(f"/threads/{own['thread_id']}", params={"include": "ttl"}).json()["ttl"]
            assert ttl["strategy"] == "delete" and ttl["ttl_minutes"] == 5
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("store", "checkpointer", "message"),
    [
        ({"ttl": {"default_ttl": 5}}, None, "store.ttl needs SQLite or Postgres storage"),
        ({"index": {**INDEX, "dims": 0}}, None, "store.index.dims must be a positive integer"),
        ({"index": {**INDEX, "embed": "./nowhere.py:embed"}}, None, "store.index.embed: file not found"),
        ({"index": {**INDEX, "embed": "nosuchprovider:model"}}, None, "store.index.embed 'nosuchprovider:model'"),
        ({"vector": {}}, None, "store.vector in langgraph.json is not supported"),
        (None, {"backend": "mongo"}, "checkpointer.backend in langgraph.json is not supported"),
        (None, {"ttl": {"strategy": "archive", "default_ttl": 5}}, "checkpointer.ttl.strategy must be"),
    ],
)
def test_blocks_this_server_cannot_honour_are_config_errors(
    tmp_path: Path, store: dict | None, checkpointer: dict | None, message: str
) -> None:
    from robyn_server.config import ConfigError, load_config
    from robyn_server.storage.memory import MemoryStorage
    from robyn_server.store_config import configure

    config = load_config(_config(tmp_path, store, checkpointer))
    with pytest.raises(ConfigError, match=message):
        configure(config, MemoryStorage())


def test_a_bad_store_block_stops_the_start_with_one_line(tmp_path: Path) -> None:
    proc = ServerProcess(config=_config(tmp_path, {"ttl": {"default_ttl": 5}}))
    refuses_to_start(proc, "robyn-server: error: store.ttl needs SQLite or Postgres storage")


def test_a_provider_model_embed_goes_through_init_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import OpenAIEmbeddings
    from langgraph.store.memory import InMemoryStore

    from robyn_server.config import load_config
    from robyn_server.storage.memory import MemoryStorage
    from robyn_server.store_config import configure

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    storage = MemoryStorage()
    configure(
        load_config(_config(tmp_path, {"index": {"dims": 1536, "embed": "openai:text-embedding-3-small"}})), storage
    )
    assert isinstance(storage.store, InMemoryStore)
    assert isinstance(storage.store.embeddings, OpenAIEmbeddings)
    assert storage.store.embeddings.model == "text-embedding-3-small"

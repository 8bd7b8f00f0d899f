"""Shared fixtures: one real server process for the session, driven over HTTP with the real SDK.

TEST_STORAGE=memory|sqlite|postgres picks the session server's backend (default memory). With sqlite or
postgres only the tests that use that server run (the storage contract, restart and recovery tests start their
own servers and already cover every backend); postgres gets a fresh database, dropped at the end, and skips
with a reason when Postgres is unreachable unless REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.server import TEST_CONFIG, ServerProcess, create_database, drop_database, postgres_unreachable

TEST_STORAGE = os.environ.get("TEST_STORAGE", "memory").strip().lower() or "memory"
SERVER_FIXTURES = {"server", "base_url", "client", "http"}


def require_postgres() -> None:
    """Skip (or fail, with REQUIRE_POSTGRES=1) when the test Postgres server is unreachable."""
    reason = postgres_unreachable()
    if reason is None:
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(f"{reason} (set REQUIRE_POSTGRES=1 to fail instead)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"session server storage: {TEST_STORAGE} (TEST_STORAGE)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_STORAGE not in ("memory", "sqlite", "postgres"):
        raise pytest.UsageError(f"TEST_STORAGE must be memory, sqlite or postgres, not {TEST_STORAGE!r}")
    if TEST_STORAGE == "memory":
        return
    keep = [i for i in items if SERVER_FIXTURES & set(getattr(i, "fixturenames", ()))]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A fresh, empty Postgres database for one test, dropped afterwards."""
    require_postgres()
    dsn = create_database()
    try:
        yield dsn
    finally:
        drop_database(dsn)


def suite_server(tmp_path_factory: pytest.TempPathFactory, config: Path = TEST_CONFIG) -> Iterator[ServerProcess]:
    """A server process on the suite's storage backend (TEST_STORAGE), stopped (and its database dropped) after."""
    env: dict[str, str | None] = {"ROBYN_SERVER_STORAGE": TEST_STORAGE}
    dsn = None
    if TEST_STORAGE == "sqlite":
        env["ROBYN_SERVER_SQLITE_PATH"] = str(Path(tmp_path_factory.mktemp("sqlite")) / "server.sqlite")
    elif TEST_STORAGE == "postgres":
        require_postgres()
        dsn = create_database("robyn_suite")
        env["DATABASE_URL"] = dsn
    try:
        proc = ServerProcess(config=config, env=env).start()
        yield proc
        proc.stop()
    finally:
        if dsn is not None:
            drop_database(dsn)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from suite_server(tmp_path_factory)


@pytest.fixture(scope="session")
def base_url(server: ServerProcess) -> str:
    return server.url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator:
    """The official `langgraph_sdk` async client pointed at the server."""
    sdk = get_client(url=base_url, api_key=None)
    yield sdk
    await sdk.http.client.aclose()


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    """A raw HTTP client for checking exact bytes, headers and status codes."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c

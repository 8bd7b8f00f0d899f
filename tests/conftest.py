"""Shared fixtures: one real server process for the session, driven over HTTP with the real SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from langgraph_sdk import get_client

from tests.server import ServerProcess


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess().start()
    yield proc
    proc.stop()


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

"""Waiting helpers for cron tests: conditions with generous deadlines, never fixed sleeps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from tests.waiting import wait_for  # noqa: F401 - re-exported for the cron tests

T = TypeVar("T")


def tagged_threads(http: httpx.Client, tag: str) -> list[dict[str, Any]]:
    """Threads whose metadata carries `tag` (cron runs copy the cron's metadata onto their fresh thread)."""
    return http.post("/threads/search", json={"metadata": {"tag": tag}, "limit": 1000}).json()


def runs_of(http: httpx.Client, thread_id: str) -> list[dict[str, Any]]:
    return http.get(f"/threads/{thread_id}/runs", params={"limit": 1000}).json()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)

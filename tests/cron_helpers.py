"""Waiting helpers for cron tests: conditions with generous deadlines, never fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 60.0, every: float = 0.1) -> T:
    """Call `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def tagged_threads(http: httpx.Client, tag: str) -> list[dict[str, Any]]:
    """Threads whose metadata carries `tag` (cron runs copy the cron's metadata onto their fresh thread)."""
    return http.post("/threads/search", json={"metadata": {"tag": tag}, "limit": 1000}).json()


def runs_of(http: httpx.Client, thread_id: str) -> list[dict[str, Any]]:
    return http.get(f"/threads/{thread_id}/runs", params={"limit": 1000}).json()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)

"""Waiting for a condition in tests: poll it until it holds, with a generous deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 60.0, every: float = 0.05) -> T:
    """Call `check` until it returns something truthy (returned); fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def wait_for_async(
    check: Callable[[], Awaitable[T]], what: str, deadline_seconds: float = 60.0, every: float = 0.05
) -> T:
    """`wait_for` for an async check, without blocking the event loop."""
    deadline = time.monotonic() + deadline_seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {deadline_seconds}s waiting for {what} (last: {last!r})")

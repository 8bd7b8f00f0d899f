"""Async readers waiting on a log that threads append to: each waits on a future of its own event loop, which
`wake` resolves at once on that loop's thread or through `call_soon_threadsafe` from any other."""

from __future__ import annotations

import asyncio
import threading


class AsyncWaiters:
    """The futures of the async readers waiting for a log's next entry (the log's lock guards it)."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[tuple[asyncio.AbstractEventLoop, int, asyncio.Future[None]]] = []

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def add(self) -> asyncio.Future[None]:
        """A future of the running loop, resolved at the next `wake`."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append((loop, threading.get_ident(), waiter))
        return waiter

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        here = threading.get_ident()
        for loop, thread, waiter in waiters:
            if thread == here:
                resolve(waiter)
            else:
                try:
                    loop.call_soon_threadsafe(resolve, waiter)
                except RuntimeError:  # that loop is closed: its reader is gone
                    pass


async def wait(waiter: asyncio.Future[None], seconds: float) -> None:
    """Until `waiter` is resolved or `seconds` pass (a timer, cheaper than asyncio.timeout per wait)."""
    timer = asyncio.get_running_loop().call_later(seconds, resolve, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


def resolve(waiter: asyncio.Future[None]) -> None:
    """Wake a reader's future (once; a reader that already stopped waiting is left alone)."""
    if not waiter.done():
        waiter.set_result(None)

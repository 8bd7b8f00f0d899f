"""Double-texting and cancel storms over HTTP leave no run `pending`/`running` and no thread `busy`.

They drive the session server, so CI runs them on memory, SQLite and Postgres. Afterwards a new run on every
thread must complete: a thread wedged by a lost run would never run again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

SLOW = {"assistant_id": "slow", "input": {"delay": 0.05, "count": 1}}


async def _settled(http: httpx.AsyncClient, thread_ids: list[str], deadline_seconds: float = 120.0) -> None:
    """Every thread leaves `busy` and has no in-flight run (a condition, with a generous deadline)."""
    deadline = time.monotonic() + deadline_seconds
    pending = set(thread_ids)
    last: Any = None
    while pending and time.monotonic() < deadline:
        for tid in list(pending):
            thread = (await http.get(f"/threads/{tid}")).json()
            runs = (await http.get(f"/threads/{tid}/runs", params={"limit": 100})).json()
            inflight = [r["run_id"] for r in runs if r["status"] in ("pending", "running")]
            if thread["status"] != "busy" and not inflight:
                pending.discard(tid)
            else:
                last = (tid, thread["status"], inflight)
        if pending:
            await asyncio.sleep(0.1)
    assert not pending, f"{len(pending)} threads still busy or with in-flight runs, e.g. {last}"


async def _new_run_completes(http: httpx.AsyncClient, thread_ids: list[str]) -> None:
    async def one(tid: str) -> None:
        resp = await http.post(f"/threads/{tid}/runs/wait", json={**SLOW, "input": {"delay": 0.01, "count": 2}})
        assert resp.status_code == 200 and resp.json()["count"] == 3, resp.text

    await asyncio.gather(*(one(t) for t in thread_ids))


async def test_double_text_bursts_never_wedge_a_thread(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        threads = [(await http.post("/threads", json={})).json()["thread_id"] for _ in range(12)]

        async def burst(tid: str, strategy: str) -> None:
            bodies = [{**SLOW, "multitask_strategy": strategy} for _ in range(5)]
            responses = await asyncio.gather(*(http.post(f"/threads/{tid}/runs", json=b) for b in bodies))
            assert all(r.status_code == 200 for r in responses), [r.text for r in responses]

        await asyncio.gather(*(burst(t, "interrupt" if i % 2 else "rollback") for i, t in enumerate(threads)))
        await _settled(http, threads)
        await _new_run_completes(http, threads)


async def test_create_then_cancel_pairs_never_wedge_a_thread(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        threads = [(await http.post("/threads", json={})).json()["thread_id"] for _ in range(10)]

        async def pairs(tid: str, count: int) -> None:
            for i in range(count):
                run = (await http.post(f"/threads/{tid}/runs", json={**SLOW, "multitask_strategy": "enqueue"})).json()
                action = "rollback" if i % 3 == 0 else "interrupt"
                resp = await http.post(f"/threads/{tid}/runs/{run['run_id']}/cancel", params={"action": action})
                assert resp.status_code in (202, 404), resp.text  # 404: it had already finished

        await asyncio.gather(*(pairs(t, 20) for t in threads))  # 200 pairs
        await _settled(http, threads)
        await _new_run_completes(http, threads)

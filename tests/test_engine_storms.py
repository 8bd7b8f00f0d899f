"""Double-texting and cancel storms over HTTP leave no run `pending`/`running` and no thread `busy`.

They drive the session server, so CI runs them on memory, SQLite and Postgres. Afterwards a new run on every
thread must complete: a thread wedged by a lost run would never run again.
"""

from __future__ import annotations

import asyncio

import httpx

from tests.waiting import wait_for_async

SLOW = {"assistant_id": "slow", "input": {"delay": 0.05, "count": 1}}


async def _settled(http: httpx.AsyncClient, thread_ids: list[str]) -> None:
    """Every thread leaves `busy` and has no in-flight run (a condition, with a generous deadline)."""

    async def stuck() -> list[tuple[str, str, list[str]]]:
        found = []
        for tid in thread_ids:
            thread = (await http.get(f"/threads/{tid}")).json()
            runs = (await http.get(f"/threads/{tid}/runs", params={"limit": 100})).json()
            inflight = [r["run_id"] for r in runs if r["status"] in ("pending", "running")]
            if thread["status"] == "busy" or inflight:
                found.append((tid, thread["status"], inflight))
        return found

    seen: list[tuple[str, str, list[str]]] = []

    async def none_stuck() -> bool:
        seen[:] = await stuck()
        return not seen

    try:
        await wait_for_async(none_stuck, "every thread to leave busy with no in-flight run", deadline_seconds=120)
    except AssertionError:
        raise AssertionError(f"{len(seen)} threads still busy or with in-flight runs, e.g. {seen[:1]}")


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

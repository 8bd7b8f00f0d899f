"""The run engine in-process (fast tier): cancels that land at awkward moments leave no run `pending` or
`running` without a task and no thread `busy`. Runs the real `RunManager` on `MemoryStorage` with the test
graphs; no HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.utils.uuid import uuid7

from robyn_server.config import apply_config_environment, load_config
from robyn_server.graphs import GraphRegistry
from robyn_server.runs.manager import RunManager, now
from robyn_server.runs.recovery import recover_orphaned_runs
from robyn_server.runs.service import new_thread
from robyn_server.storage.memory import MemoryStorage
from tests.server import TEST_CONFIG
from tests.waiting import wait_for_async


@pytest.fixture
async def engine() -> AsyncIterator[RunManager]:
    config = load_config(TEST_CONFIG)
    apply_config_environment(config)
    storage = MemoryStorage()
    registry = GraphRegistry(storage)
    registry.load(config.graphs, config.base_dir)
    manager = RunManager(storage, registry, max_concurrent=10, timeout=60)
    await manager.bus.start()
    yield manager
    await manager.shutdown(0.1)


async def _thread(manager: RunManager) -> str:
    tid = str(uuid7())
    await manager.storage.thread_put(new_thread(tid, {}))
    return tid


async def _stored_run(manager: RunManager, tid: str, delay: float = 0.05, after: float = 0) -> dict[str, Any]:
    """A `slow` run stored `pending` on the thread (what the create route stores), not started."""
    created = now()
    run_id = str(uuid7())
    run = {
        "run_id": run_id, "thread_id": tid, "assistant_id": "a", "metadata": {}, "status": "pending",
        "multitask_strategy": "enqueue", "created_at": created, "updated_at": created,
        "kwargs": {
            "input": {"delay": delay, "count": 2}, "command": None, "stream_mode": ["values"], "resumable": False,
            "config": {"configurable": {"graph_id": "slow", "thread_id": tid, "run_id": run_id,
                                        "__after_seconds__": after}, "metadata": {"run_attempt": 1}},
        },
    }  # fmt: skip
    previous = await manager.storage.run_create(run, {"graph_id": "slow"}, {"status": "busy"}, reject=False)
    assert previous is not None
    return run


async def _run(manager: RunManager, tid: str, delay: float = 0.05, after: float = 0) -> Any:
    return await manager.submitted(await _stored_run(manager, tid, delay, after), resumable=False)


async def _settled(manager: RunManager, tid: str) -> None:
    async def settled() -> bool:
        thread = await manager.storage.thread_get(tid)
        return thread["status"] != "busy" and not await manager.inflight_runs(tid) and not manager._executing

    await wait_for_async(settled, "the thread to settle with nothing in flight", every=0.01)


async def test_cancel_before_the_task_starts(engine: RunManager) -> None:
    tid = await _thread(engine)
    handle = await _run(engine, tid)
    # the run is claimed and its supervisor spawned, but no step of it has run yet
    assert await engine.cancel(handle.run_id, "interrupt")
    await _settled(engine, tid)
    assert (await engine.storage.run_get(handle.run_id))["status"] == "interrupted"
    assert handle.log.closed


async def test_cancel_of_a_queued_run_interrupt_and_rollback(engine: RunManager) -> None:
    tid = await _thread(engine)
    first = await _run(engine, tid, delay=0.2)
    queued = await _run(engine, tid)
    dropped = await _run(engine, tid)
    assert (await engine.storage.run_get(queued.run_id))["status"] == "pending"
    assert await engine.cancel(queued.run_id, "interrupt")
    assert await engine.cancel(dropped.run_id, "rollback")
    assert queued.log.closed and dropped.log.closed
    await _settled(engine, tid)
    assert (await engine.storage.run_get(first.run_id))["status"] == "success"
    assert (await engine.storage.run_get(queued.run_id))["status"] == "interrupted"
    assert await engine.storage.run_get(dropped.run_id) is None


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_cancel_while_the_outcome_is_recorded(
    engine: RunManager, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    tid = await _thread(engine)
    recording = asyncio.Event()
    release = asyncio.Event()
    original = engine._record_end

    async def slow_record(*args: Any) -> None:
        recording.set()
        await release.wait()
        await original(*args)

    monkeypatch.setattr(engine, "_record_end", slow_record)
    handle = await _run(engine, tid, delay=0.01)
    await asyncio.wait_for(recording.wait(), 30)
    await engine.cancel(handle.run_id, action)  # lands while the end of the run is being written
    release.set()
    await _settled(engine, tid)
    # too late to change anything: the run succeeded and is recorded so (a late rollback once left it `running`)
    assert (await engine.storage.run_get(handle.run_id))["status"] == "success"


async def test_end_of_run_write_is_retried_until_it_lands(engine: RunManager, monkeypatch: pytest.MonkeyPatch) -> None:
    tid = await _thread(engine)
    failures = {"left": 2}
    original = engine.storage.run_finish

    async def flaky_finish(thread_id: str, run_id: str, thread_fields: Any, run_fields: Any) -> None:
        if (run_fields or {}).get("status") == "success" and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database went away")
        await original(thread_id, run_id, thread_fields, run_fields)

    monkeypatch.setattr(engine.storage, "run_finish", flaky_finish)
    handle = await _run(engine, tid, delay=0.01)
    await _settled(engine, tid)
    assert failures["left"] == 0
    assert (await engine.storage.run_get(handle.run_id))["status"] == "success"


async def test_delayed_run_does_not_hold_back_later_runs(engine: RunManager) -> None:
    tid = await _thread(engine)
    delayed = await _run(engine, tid, delay=0.01, after=30)
    later = await _run(engine, tid, delay=0.01)
    async with asyncio.timeout(30):
        await asyncio.to_thread(later.log.wait_closed, 30)
    assert (await engine.storage.run_get(later.run_id))["status"] == "success"
    assert (await engine.storage.run_get(delayed.run_id))["status"] == "pending"
    with contextlib.suppress(Exception):
        await engine.cancel(delayed.run_id, "interrupt")


async def _running_elsewhere(manager: RunManager, tid: str, *, owner_alive: bool, temporary: bool = False) -> str:
    """A run stored `running` and owned by another server process (`other`), which this one never executes:
    `other`'s heartbeat is fresh (alive) or an hour old (gone, its lease lapsed, not yet recovered)."""
    run = await _stored_run(manager, tid, delay=0.01)
    run_id = run["run_id"]
    storage = manager.storage
    await storage.run_update(run_id, {"status": "running", "kwargs": {**run["kwargs"], "temporary": temporary}})
    assert await storage.run_claim(run_id, storage.instance_id, "other")
    beat = now() if owner_alive else now() - timedelta(hours=1)
    await storage.instance_beat("other", "another-host", 4242, beat)
    return run_id


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_cancel_of_a_run_whose_process_is_gone(engine: RunManager, action: str) -> None:
    tid = await _thread(engine)
    run_id = await _running_elsewhere(engine, tid, owner_alive=False)
    # nobody executes it: the cancel takes it over and ends it at once, instead of a later recovery resuming it
    assert await engine.cancel(run_id, action)
    stored = await engine.storage.run_get(run_id)
    if action == "rollback":
        assert stored is None
    else:
        assert stored["status"] == "interrupted"
        assert await engine.storage.run_owner(run_id) == engine.me
    await _settled(engine, tid)
    assert not await engine.cancel(run_id, action)  # already ended
    after = await _run(engine, tid, delay=0.01)
    async with asyncio.timeout(30):
        await asyncio.to_thread(after.log.wait_closed, 30)
    assert (await engine.storage.run_get(after.run_id))["status"] == "success"
    await _settled(engine, tid)


async def test_cancel_of_a_stateless_run_whose_process_is_gone(engine: RunManager) -> None:
    tid = await _thread(engine)
    run_id = await _running_elsewhere(engine, tid, owner_alive=False, temporary=True)
    assert await engine.cancel(run_id, "interrupt")
    # its temporary thread goes with it, as when its own worker ends it
    assert await engine.storage.thread_get(tid) is None
    assert await engine.storage.run_get(run_id) is None


async def test_cancel_while_the_owners_lease_lapses(engine: RunManager) -> None:
    tid = await _thread(engine)
    run_id = await _running_elsewhere(engine, tid, owner_alive=True)
    # its process is alive: the cancel goes to it over the bus and the run is left to it
    assert await engine.cancel(run_id, "interrupt")
    assert (await engine.storage.run_get(run_id))["status"] == "running"
    assert await engine.storage.run_owner(run_id) == "other"
    # then that process dies before acting on it; its heartbeat goes stale and recovery takes the run over:
    # the cancel heard meanwhile still applies, so the run is not resumed to the end
    await engine.storage.instance_beat("other", "another-host", 4242, now() - timedelta(hours=1))
    recovered = await recover_orphaned_runs(SimpleNamespace(storage=engine.storage, runs=engine))  # type: ignore[arg-type]
    assert recovered["requeued"] == [run_id]
    await _settled(engine, tid)
    assert (await engine.storage.run_get(run_id))["status"] == "interrupted"

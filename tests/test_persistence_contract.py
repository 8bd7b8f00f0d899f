"""Contract cases for the operations storage grew for recovery and TTL, on memory, SQLite and Postgres; and
row-level atomicity of concurrent updates from two storage instances (two server processes) on one database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from robyn_server.storage.base import Storage
from tests import test_storage_contract as contract
from tests.test_storage_contract import Backend, at, put_checkpoint, run, thread, uid

# the contract suite's fixtures: every test here runs on memory, SQLite and a fresh Postgres database
backend = contract.backend
storage = contract.storage


async def test_runs_record_their_owner_and_can_be_claimed_once(storage: Storage) -> None:
    t = thread()
    await storage.thread_put(t)
    pending = run(t["thread_id"], status="pending", created=2)
    running = run(t["thread_id"], status="running", created=1)
    done = run(t["thread_id"], status="success", created=0)
    for r in (pending, running, done):
        await storage.run_put(r)
    inflight = await storage.run_list_inflight()
    assert [(r["run_id"], owner) for r, owner in inflight] == [
        (running["run_id"], storage.instance_id),
        (pending["run_id"], storage.instance_id),
    ]
    assert inflight[0][0] == running
    assert await storage.run_claim(running["run_id"], storage.instance_id, "other") is True
    assert await storage.run_claim(running["run_id"], storage.instance_id, "third") is False
    assert await storage.run_claim(uid(), None, "other") is False
    owners = {r["run_id"]: owner for r, owner in await storage.run_list_inflight()}
    assert owners[running["run_id"]] == "other"
    assert await storage.run_owner(running["run_id"]) == "other"
    assert await storage.run_owner(done["run_id"]) == storage.instance_id
    assert await storage.run_owner(uid()) is None
    # updates keep the owner; put of an existing run does not steal it
    await storage.run_update(running["run_id"], {"status": "pending"})
    await storage.run_put({**running, "status": "pending"})
    owners = {r["run_id"]: owner for r, owner in await storage.run_list_inflight()}
    assert owners[running["run_id"]] == "other"
    await storage.thread_delete(t["thread_id"])
    assert await storage.run_list_inflight() == []
    assert await storage.run_owner(running["run_id"]) is None


async def test_instances_heartbeat_and_forget(storage: Storage) -> None:
    await storage.instance_beat("a", "host-1", 11, at(0))
    await storage.instance_beat("b", "host-2", 22, at(5))
    await storage.instance_beat("a", "host-1", 11, at(10))
    found = sorted(await storage.instance_list(), key=lambda i: i["instance_id"])
    assert found == [
        {"instance_id": "a", "host": "host-1", "pid": 11, "heartbeat_at": at(10)},
        {"instance_id": "b", "host": "host-2", "pid": 22, "heartbeat_at": at(5)},
    ]
    await storage.instance_forget("a")
    assert [i["instance_id"] for i in await storage.instance_list()] == ["b"]


async def test_thread_ttl_set_get_expire_and_cascade(storage: Storage) -> None:
    t1, t2, t3 = thread(), thread(), thread()
    for t in (t1, t2, t3):
        await storage.thread_put(t)
    await storage.thread_set_ttl(t1["thread_id"], {"strategy": "delete", "ttl_minutes": 1.0, "expires_at": at(60)})
    await storage.thread_set_ttl(t2["thread_id"], {"strategy": "keep_latest", "ttl_minutes": 0.5, "expires_at": at(30)})
    await storage.thread_set_ttl(t3["thread_id"], {"strategy": "delete", "ttl_minutes": 9.0, "expires_at": at(540)})
    await storage.thread_set_ttl(uid(), {"strategy": "delete", "ttl_minutes": 1.0, "expires_at": at(0)})  # no thread
    assert await storage.thread_get_ttl(t1["thread_id"]) == {
        "strategy": "delete",
        "ttl_minutes": 1.0,
        "expires_at": at(60),
    }
    assert await storage.thread_expired(at(29)) == []
    assert await storage.thread_expired(at(60)) == [(t2["thread_id"], "keep_latest"), (t1["thread_id"], "delete")]
    assert await storage.thread_expired(at(600), limit=1) == [(t2["thread_id"], "keep_latest")]
    # setting again replaces; None clears; deleting the thread drops its TTL
    await storage.thread_set_ttl(t2["thread_id"], {"strategy": "delete", "ttl_minutes": 2.0, "expires_at": at(120)})
    assert (await storage.thread_get_ttl(t2["thread_id"]) or {})["expires_at"] == at(120)
    await storage.thread_set_ttl(t3["thread_id"], None)
    assert await storage.thread_get_ttl(t3["thread_id"]) is None
    await storage.thread_delete(t1["thread_id"])
    assert await storage.thread_get_ttl(t1["thread_id"]) is None
    assert await storage.thread_expired(at(600)) == [(t2["thread_id"], "delete")]


async def test_keep_latest_prune_keeps_only_the_newest_checkpoint(storage: Storage) -> None:
    from robyn_server.storage.prune import keep_latest_checkpoints

    t = thread()
    await storage.thread_put(t)
    for value in (1, 2, 3):
        await put_checkpoint(storage, t["thread_id"], value)
    config = {"configurable": {"thread_id": t["thread_id"]}}
    assert len([c async for c in storage.checkpointer.alist(config)]) == 3
    await keep_latest_checkpoints(storage.checkpointer, t["thread_id"])
    kept = [c async for c in storage.checkpointer.alist(config)]
    assert len(kept) == 1 and kept[0].checkpoint["channel_values"] == {"x": 3}


async def test_ping_names_the_backend(storage: Storage, backend: Backend) -> None:
    info = await storage.ping()
    assert info["backend"] == backend.name


async def test_concurrent_updates_from_two_instances_keep_every_field(backend: Backend) -> None:
    """Two storages on one database (two processes) merging disjoint fields into one thread and one run."""
    first = await backend.open()
    second = first if not backend.persistent else await backend.open()
    try:
        t = thread()
        await first.thread_put(t)
        r = run(t["thread_id"])
        await first.run_put(r)
        n = 25

        async def writer(store: Storage, name: str) -> None:
            for i in range(n):
                await store.thread_update(t["thread_id"], {f"{name}{i}": i, "updated_at": at(i)})
                await store.run_update(r["run_id"], {f"{name}{i}": i})

        await asyncio.gather(writer(first, "a"), writer(second, "b"))
        got = await second.thread_get(t["thread_id"])
        assert got is not None
        assert {k for k in got if k[0] in "ab" and k[1:].isdigit()} == {f"{p}{i}" for p in "ab" for i in range(n)}
        assert got["metadata"] == t["metadata"] and got["created_at"] == t["created_at"]
        assert got["updated_at"] <= at(n - 1) + timedelta(0)
        got_run = await first.run_get(r["run_id"])
        assert got_run is not None
        assert {k for k in got_run if k[0] in "ab" and k[1:].isdigit()} == {f"{p}{i}" for p in "ab" for i in range(n)}
    finally:
        if second is not first:
            await second.close()
        await first.close()

"""`Storage.thread_merge_metadata`: an atomic metadata merge, on every backend (same fixtures as the contract)."""

from __future__ import annotations

import asyncio

from robyn_server.storage.base import Storage
from tests import test_storage_contract as contract
from tests.test_storage_contract import Backend, at, thread, uid

# the contract suite's fixtures: every test here runs on memory, SQLite and a fresh Postgres database
backend = contract.backend
storage = contract.storage

CONCURRENT_MERGES = 50


async def test_merge_adds_and_overwrites_keys_and_sets_fields(storage: Storage) -> None:
    record = thread(metadata={"a": 1, "b": {"x": 1}, "keep": "k"})
    await storage.thread_put(record)
    merged = await storage.thread_merge_metadata(
        record["thread_id"], {"b": {"y": 2}, "c": None, "d": [1, 2]}, {"updated_at": at(60), "status": "busy"}
    )
    expected = {
        **record,
        "metadata": {"a": 1, "b": {"y": 2}, "keep": "k", "c": None, "d": [1, 2]},
        "updated_at": at(60),
        "status": "busy",
    }
    assert merged == expected
    assert await storage.thread_get(record["thread_id"]) == expected


async def test_merge_without_fields_and_with_empty_patch(storage: Storage) -> None:
    record = thread(metadata={"a": 1})
    await storage.thread_put(record)
    assert await storage.thread_merge_metadata(record["thread_id"], {}) == record
    merged = await storage.thread_merge_metadata(record["thread_id"], {"b": 2})
    assert merged == {**record, "metadata": {"a": 1, "b": 2}}
    assert await storage.thread_get(record["thread_id"]) == merged


async def test_merge_ignores_metadata_in_fields(storage: Storage) -> None:
    record = thread(metadata={"a": 1})
    await storage.thread_put(record)
    merged = await storage.thread_merge_metadata(record["thread_id"], {"b": 2}, {"metadata": {"z": 0}})
    assert merged is not None and merged["metadata"] == {"a": 1, "b": 2}


async def test_merge_into_missing_or_null_metadata(storage: Storage) -> None:
    record = {**thread(), "metadata": None}
    await storage.thread_put(record)
    merged = await storage.thread_merge_metadata(record["thread_id"], {"a": 1})
    assert merged == {**record, "metadata": {"a": 1}}
    bare = {k: v for k, v in thread().items() if k not in ("metadata", "updated_at")}
    await storage.thread_put(bare)
    merged = await storage.thread_merge_metadata(bare["thread_id"], {"a": 1}, {"updated_at": at(5)})
    assert merged == {**bare, "metadata": {"a": 1}, "updated_at": at(5)}
    assert await storage.thread_get(bare["thread_id"]) == merged


async def test_merge_with_fields_kept_outside_columns(storage: Storage) -> None:
    record = thread(metadata={"a": 1})
    await storage.thread_put(record)
    fields = {"error": "boom", "interrupts": {"t": [{"id": "i"}]}, "updated_at": at(9)}
    merged = await storage.thread_merge_metadata(record["thread_id"], {"b": 2}, fields)
    assert merged == {**record, **fields, "metadata": {"a": 1, "b": 2}}
    assert await storage.thread_get(record["thread_id"]) == merged


async def test_merge_missing_thread_is_none(storage: Storage) -> None:
    assert await storage.thread_merge_metadata(uid(), {"a": 1}, {"updated_at": at(1)}) is None
    assert await storage.thread_get(uid()) is None


async def test_merge_does_not_mutate_earlier_snapshots(storage: Storage) -> None:
    record = thread(metadata={"a": 1})
    await storage.thread_put(record)
    before = await storage.thread_get(record["thread_id"])
    await storage.thread_merge_metadata(record["thread_id"], {"b": 2})
    assert before is not None and before["metadata"] == {"a": 1}
    assert record["metadata"] == {"a": 1}


async def test_concurrent_merges_of_distinct_keys_all_survive(storage: Storage) -> None:
    record = thread(metadata={"base": True})
    await storage.thread_put(record)
    results = await asyncio.gather(
        *(
            storage.thread_merge_metadata(record["thread_id"], {f"k{i}": i}, {"updated_at": at(i)})
            for i in range(CONCURRENT_MERGES)
        )
    )
    assert all(r is not None for r in results)
    found = await storage.thread_get(record["thread_id"])
    assert found is not None
    assert found["metadata"] == {"base": True, **{f"k{i}": i for i in range(CONCURRENT_MERGES)}}


async def test_concurrent_merges_and_updates_interleave(storage: Storage) -> None:
    """Merges racing plain `thread_update`s of other fields lose neither the keys nor the fields."""
    record = thread(metadata={})
    await storage.thread_put(record)
    merges = [storage.thread_merge_metadata(record["thread_id"], {f"k{i}": i}) for i in range(20)]
    updates = [storage.thread_update(record["thread_id"], {"status": "busy", f"extra{i}": i}) for i in range(20)]
    await asyncio.gather(*merges, *updates)
    found = await storage.thread_get(record["thread_id"])
    assert found is not None
    assert found["metadata"] == {f"k{i}": i for i in range(20)}
    assert all(found[f"extra{i}"] == i for i in range(20))
    assert found["status"] == "busy"


async def test_concurrent_merges_from_two_instances_all_survive(backend: Backend) -> None:
    """Two storages on one database (two server processes) merging distinct keys into one thread's metadata."""
    first = await backend.open()
    second = first if not backend.persistent else await backend.open()
    try:
        record = thread(metadata={"base": True})
        await first.thread_put(record)
        n = 25
        await asyncio.gather(
            *(
                store.thread_merge_metadata(record["thread_id"], {f"{name}{i}": i}, {"updated_at": at(i)})
                for i in range(n)
                for store, name in ((first, "a"), (second, "b"))
            )
        )
        found = await second.thread_get(record["thread_id"])
        assert found is not None
        assert found["metadata"] == {"base": True, **{f"{p}{i}": i for p in "ab" for i in range(n)}}
    finally:
        if second is not first:
            await second.close()
        await first.close()

"""`Storage.assistant_patch`: an atomic new assistant version, on every backend (same fixtures as the contract)."""

from __future__ import annotations

import asyncio

from robyn_server.storage.base import Storage
from tests import test_storage_contract as contract
from tests.test_storage_contract import Backend, assistant, at, uid

# the contract suite's fixtures: every test here runs on memory, SQLite and a fresh Postgres database
backend = contract.backend
storage = contract.storage

CONCURRENT_PATCHES = 30


async def versions_of(storage: Storage, assistant_id: str) -> list[int]:
    return [v["version"] for v in await storage.assistant_versions(assistant_id, None, 1000, 0)]


async def test_patch_sets_fields_merges_metadata_and_adds_a_version(storage: Storage) -> None:
    record = assistant(metadata={"a": 1, "b": {"x": 1}})
    await storage.assistant_put(record)
    fields = {"name": "renamed", "config": {"configurable": {"z": 1}}, "context": {"z": 1}, "updated_at": at(60)}
    patched = await storage.assistant_patch(record["assistant_id"], fields, {"b": {"y": 2}, "c": None})
    expected = {**record, **fields, "metadata": {"a": 1, "b": {"y": 2}, "c": None}, "version": 2}
    assert patched == expected
    assert await storage.assistant_get(record["assistant_id"]) == expected
    found = await storage.assistant_versions(record["assistant_id"], None, 10, 0)
    assert found == [expected, record]


async def test_patch_without_metadata_keeps_it_and_ignores_fixed_fields(storage: Storage) -> None:
    record = assistant(metadata={"a": 1})
    await storage.assistant_put(record)
    fields = {"assistant_id": uid(), "version": 99, "metadata": {"z": 0}, "description": "d"}
    patched = await storage.assistant_patch(record["assistant_id"], fields)
    assert patched == {**record, "description": "d", "version": 2}
    patched = await storage.assistant_patch(record["assistant_id"], {}, {})
    assert patched == {**record, "description": "d", "version": 3}
    assert await versions_of(storage, record["assistant_id"]) == [3, 2, 1]


async def test_patch_into_null_metadata(storage: Storage) -> None:
    record = {**assistant(), "metadata": None}
    await storage.assistant_put(record)
    patched = await storage.assistant_patch(record["assistant_id"], {}, {"a": 1})
    assert patched == {**record, "metadata": {"a": 1}, "version": 2}


async def test_patch_numbers_above_the_highest_version(storage: Storage) -> None:
    """After making an older version current, the next patch still gets max + 1 (never a duplicate)."""
    record = assistant()
    await storage.assistant_put(record)
    for i in range(2):
        await storage.assistant_patch(record["assistant_id"], {"name": f"n{i}"})
    assert await storage.assistant_set_latest(record["assistant_id"], 1) is not None
    patched = await storage.assistant_patch(record["assistant_id"], {"description": "from v1"})
    assert patched is not None
    assert patched["version"] == 4
    assert patched["name"] == record["name"]  # built on the current version (1), not the newest
    assert await versions_of(storage, record["assistant_id"]) == [4, 3, 2, 1]


async def test_patch_missing_assistant_is_none(storage: Storage) -> None:
    missing = uid()
    assert await storage.assistant_patch(missing, {"name": "x"}, {"a": 1}) is None
    assert await storage.assistant_get(missing) is None
    assert await storage.assistant_versions(missing, None, 10, 0) == []


async def test_patch_does_not_mutate_earlier_snapshots(storage: Storage) -> None:
    record = assistant(metadata={"a": 1})
    await storage.assistant_put(record)
    before = await storage.assistant_get(record["assistant_id"])
    await storage.assistant_patch(record["assistant_id"], {"name": "x"}, {"b": 2})
    assert before == record
    assert record["metadata"] == {"a": 1}
    oldest = (await storage.assistant_versions(record["assistant_id"], None, 10, 0))[-1]
    assert oldest == record


async def test_concurrent_patches_keep_all_keys_and_unique_versions(storage: Storage) -> None:
    record = assistant(metadata={"base": True})
    await storage.assistant_put(record)
    results = await asyncio.gather(
        *(
            storage.assistant_patch(record["assistant_id"], {"updated_at": at(i)}, {f"k{i}": i})
            for i in range(CONCURRENT_PATCHES)
        )
    )
    assert all(r is not None for r in results)
    assert sorted(r["version"] for r in results if r) == list(range(2, CONCURRENT_PATCHES + 2))
    found = await storage.assistant_get(record["assistant_id"])
    assert found is not None
    assert found["metadata"] == {"base": True, **{f"k{i}": i for i in range(CONCURRENT_PATCHES)}}
    assert found["version"] == CONCURRENT_PATCHES + 1
    assert sorted(await versions_of(storage, record["assistant_id"])) == list(range(1, CONCURRENT_PATCHES + 2))


async def test_concurrent_patches_from_two_instances(backend: Backend) -> None:
    """Two storages on one database (two server processes) patching one assistant."""
    first = await backend.open()
    second = first if not backend.persistent else await backend.open()
    try:
        record = assistant(metadata={})
        await first.assistant_put(record)
        n = 15
        await asyncio.gather(
            *(
                store.assistant_patch(record["assistant_id"], {}, {f"{name}{i}": i})
                for i in range(n)
                for store, name in ((first, "a"), (second, "b"))
            )
        )
        found = await second.assistant_get(record["assistant_id"])
        assert found is not None
        assert found["metadata"] == {f"{p}{i}": i for p in "ab" for i in range(n)}
        assert sorted(await versions_of(second, record["assistant_id"])) == list(range(1, 2 * n + 2))
    finally:
        if second is not first:
            await second.close()
        await first.close()

"""Updates that SQLite applies as one statement and those that need the read-modify-write give the same records as
MemoryStorage, on every backend: a field moving between a typed column and the JSON doc, new keys, datetimes and
non-ASCII text in the doc, metadata keys that need quoting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robyn_server.storage.base import Storage
from tests import test_storage_contract as contract
from tests.test_storage_contract import at, run, thread

backend = contract.backend
storage = contract.storage


async def test_a_sequence_of_thread_updates_reads_back_like_memory(storage: Storage) -> None:
    t = thread(metadata={"a": 1, "nested": {"k": [1, 2]}})
    await storage.thread_put(t)
    expected: dict[str, Any] = dict(t)
    steps: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"status": "busy", "updated_at": at(1)}, {"graph_id": "g", "a": 2}),
        ({"values": {"x": [1, "é"]}, "status": 5}, None),  # status not text: kept in the doc
        ({"status": "idle"}, None),  # back in its column
        ({"error": {"m": 1}, "updated_at": at(2)}, None),  # a new key
        ({"error": None, "when": datetime(2020, 1, 1, tzinfo=UTC)}, {'we"ird.key': "v", "": 0}),
        ({"error": {"m": "ü"}, "when": at(3), "values": None}, {"nested": {"k": []}}),
    ]
    for fields, patch in steps:
        if patch is None:
            got = await storage.thread_update(t["thread_id"], fields)
        else:
            got = await storage.thread_merge_metadata(t["thread_id"], patch, fields)
            expected["metadata"] = {**expected["metadata"], **patch}
        expected.update(fields)
        assert got == expected
        assert await storage.thread_get(t["thread_id"]) == expected
    assert list((await storage.thread_get(t["thread_id"]) or {}).keys()) == list(expected.keys())


async def test_run_status_updates_and_put_keep_the_owner(storage: Storage) -> None:
    t = thread()
    await storage.thread_put(t)
    r = run(t["thread_id"])
    await storage.run_put(r)
    for status in ("running", "success"):
        got = await storage.run_update(r["run_id"], {"status": status, "updated_at": at(5)})
        assert got == {**r, "status": status, "updated_at": at(5)}
    await storage.run_put({**r, "status": "pending"})
    assert (await storage.run_get(r["run_id"]) or {})["status"] == "pending"
    assert [owner for _, owner in await storage.run_list_inflight()] == [storage.instance_id]
    assert await storage.run_update("no-such-run", {"status": "error"}) is None

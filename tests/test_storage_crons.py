"""The cron storage contract on memory, SQLite and Postgres: records read back as written, search/sort/page
agree, updates merge metadata atomically, and a due cron is claimed exactly once however many storage
instances (processes) race for it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from robyn_server.storage.base import Record, Storage
from tests.test_storage_contract import at, backend, storage, thread, uid  # noqa: F401 - fixtures

__all__ = ["backend", "storage"]


def cron(
    *,
    cron_id: str | None = None,
    assistant_id: str = "a-1",
    thread_id: str | None = None,
    enabled: bool = True,
    next_run: float = 10,
    end: float | None = None,
    created: float = 0,
    metadata: dict[str, Any] | None = None,
) -> Record:
    return {
        "cron_id": cron_id or uid(),
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "user_id": None,
        "end_time": None if end is None else at(end),
        "schedule": "* * * * * *",
        "timezone": None,
        "payload": {"assistant_id": assistant_id, "input": {"n": [1, {"x": None}]}},
        "next_run_date": at(next_run),
        "metadata": metadata if metadata is not None else {},
        "on_run_completed": None if thread_id else "delete",
        "enabled": enabled,
        "created_at": at(created),
        "updated_at": at(created),
    }


def one_second_later(c: Record, when: datetime) -> datetime:
    return when + timedelta(seconds=1)


async def test_cron_round_trip_update_delete(storage: Storage) -> None:
    record = cron(metadata={"team": "a"}, end=100)
    await storage.cron_put(record)
    assert await storage.cron_get(record["cron_id"]) == record
    assert await storage.cron_get(uid()) is None
    updated = await storage.cron_update(
        record["cron_id"], {"enabled": False, "schedule": "0 * * * *", "cron_id": "ignored"}, {"owner": "me"}
    )
    assert updated is not None
    assert updated["enabled"] is False and updated["schedule"] == "0 * * * *"
    assert updated["cron_id"] == record["cron_id"]
    assert updated["metadata"] == {"team": "a", "owner": "me"}
    assert await storage.cron_get(record["cron_id"]) == updated
    assert await storage.cron_update(uid(), {"enabled": True}) is None
    assert await storage.cron_delete(record["cron_id"]) is True
    assert await storage.cron_delete(record["cron_id"]) is False
    assert await storage.cron_get(record["cron_id"]) is None


async def test_cron_search_filters_sorts_and_pages(storage: Storage) -> None:
    tid = uid()
    first = cron(assistant_id="a-1", created=1, next_run=30, metadata={"k": 1})
    second = cron(assistant_id="a-2", created=2, next_run=20, thread_id=tid, enabled=False)
    third = cron(assistant_id="a-1", created=3, next_run=10, metadata={"k": 1, "j": [1, 2]})
    for record in (first, second, third):
        await storage.cron_put(record)

    async def search(**kw: Any) -> tuple[list[str], int]:
        args: dict[str, Any] = {"assistant_id": None, "thread_id": None, "enabled": None, "metadata": None}
        args.update({"limit": 10, "offset": 0, "sort_by": "created_at", "sort_order": "desc", **kw})
        items, total = await storage.cron_search(**args)
        return [c["cron_id"] for c in items], total

    ids = lambda *records: [r["cron_id"] for r in records]  # noqa: E731
    assert await search() == (ids(third, second, first), 3)
    assert await search(sort_order="asc") == (ids(first, second, third), 3)
    assert await search(sort_by="next_run_date", sort_order="asc") == (ids(third, second, first), 3)
    assert await search(assistant_id="a-1") == (ids(third, first), 2)
    assert await search(thread_id=tid) == (ids(second), 1)
    assert await search(enabled=False) == (ids(second), 1)
    assert await search(enabled=True) == (ids(third, first), 2)
    assert await search(metadata={"k": 1}) == (ids(third, first), 2)
    assert await search(metadata={"j": [2]}) == (ids(third), 1)
    assert await search(limit=1, offset=1) == (ids(second), 3)
    # None sorts last in both directions, like every other search
    assert (await search(sort_by="thread_id", sort_order="desc"))[0][0] == second["cron_id"]
    assert (await search(sort_by="thread_id", sort_order="asc"))[0][0] == second["cron_id"]


async def test_claim_due_advances_next_run_date_once(storage: Storage) -> None:
    due = cron(next_run=10)
    later = cron(next_run=50)
    disabled = cron(next_run=5, enabled=False)
    ended = cron(next_run=5, end=8)
    for record in (due, later, disabled, ended):
        await storage.cron_put(record)
    claimed = await storage.cron_claim_due(at(12), one_second_later)
    assert [c["cron_id"] for c in claimed] == [due["cron_id"]]
    assert claimed[0]["next_run_date"] == at(10)  # the date that fired
    assert (await storage.cron_get(due["cron_id"]))["next_run_date"] == at(13)
    assert await storage.cron_claim_due(at(12), one_second_later) == []
    # the alarm: the earliest pending date, ignoring disabled and ended crons
    assert await storage.cron_next_due(at(12)) == at(13)
    await storage.cron_delete(due["cron_id"])
    assert await storage.cron_next_due(at(12)) == at(50)
    await storage.cron_update(later["cron_id"], {"end_time": at(40)})
    assert await storage.cron_next_due(at(12)) is None  # its next date is beyond its end


async def test_deleting_a_thread_deletes_its_crons(storage: Storage) -> None:
    t = thread()
    await storage.thread_put(t)
    mine = cron(thread_id=t["thread_id"])
    other = cron()
    await storage.cron_put(mine)
    await storage.cron_put(other)
    await storage.thread_delete(t["thread_id"])
    assert await storage.cron_get(mine["cron_id"]) is None
    assert await storage.cron_get(other["cron_id"]) is not None


async def test_racing_claims_hand_each_due_date_out_once(backend: Any) -> None:  # noqa: F811
    """Four storage instances (separate connections, as separate processes have) claim concurrently."""
    first = await backend.open()
    instances = [first] + ([await backend.open() for _ in range(3)] if backend.persistent else [first] * 3)
    try:
        crons = [cron(next_run=i % 3) for i in range(12)]
        for record in crons:
            await first.cron_put(record)
        results = await asyncio.gather(*(s.cron_claim_due(at(5), one_second_later) for s in instances))
        claimed = [c["cron_id"] for batch in results for c in batch]
        assert sorted(claimed) == sorted(c["cron_id"] for c in crons)  # every one, none twice
        again = await asyncio.gather(*(s.cron_claim_due(at(5), one_second_later) for s in instances))
        assert [c for batch in again for c in batch] == []
    finally:
        for s in dict.fromkeys(instances):
            await s.close()

"""Threads API: CRUD, search/count, copy, state read/update, checkpoints and history."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

INTERRUPT_ID = "2e6b29d1-4009-5fcc-9319-4cffb1865dfe"
THREAD_KEYS = {"thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status", "config", "values"}
STATE_KEYS = {
    "values", "next", "tasks", "metadata", "created_at", "checkpoint", "parent_checkpoint", "interrupts",
    "checkpoint_id", "parent_checkpoint_id",
}  # fmt: skip


@pytest.fixture
async def ahttp(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A raw async HTTP client (blocking calls would stall the test's event loop)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        yield c


def tag() -> str:
    return uuid.uuid4().hex


async def interrupted_thread(client, request: str = "deploy") -> dict[str, Any]:
    """A thread that ran the `interrupt` graph and is waiting at node `ask`."""
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "interrupt", input={"request": request})
    return thread


async def test_create_shape(client, ahttp: httpx.AsyncClient) -> None:
    resp = await ahttp.post("/threads", json={})
    assert resp.status_code == 200
    thread = resp.json()
    assert set(thread) == THREAD_KEYS
    assert thread["status"] == "idle"
    assert thread["values"] is None and thread["config"] == {} and thread["metadata"] == {}
    assert thread["created_at"] == thread["updated_at"] == thread["state_updated_at"]
    uuid.UUID(thread["thread_id"])
    with_meta = await client.threads.create(metadata={"a": 1})
    assert with_meta["metadata"] == {"a": 1}


async def test_create_with_id_and_if_exists(client, ahttp: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    first = await client.threads.create(thread_id=thread_id, metadata={"n": 1})
    assert first["thread_id"] == thread_id
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=thread_id)
    resp = await ahttp.post("/threads", json={"thread_id": thread_id, "if_exists": "raise"})
    assert resp.status_code == 409
    assert resp.json() == {"detail": f"Thread with ID {thread_id} already exists"}
    same = await client.threads.create(thread_id=thread_id, if_exists="do_nothing", metadata={"n": 2})
    assert same == first
    assert (await ahttp.post("/threads", json={"thread_id": "nope"})).status_code == 422


async def test_search_filters_sort_select_pagination(client, ahttp: httpx.AsyncClient) -> None:
    t = tag()
    made = [(await client.threads.create(metadata={"t": t, "i": i}))["thread_id"] for i in range(4)]
    ran = await interrupted_thread(client)
    await client.threads.update(ran["thread_id"], metadata={"t": t})

    found = await client.threads.search(metadata={"t": t}, limit=10)
    assert [x["thread_id"] for x in found] == [ran["thread_id"], *reversed(made)]
    asc = await client.threads.search(metadata={"t": t}, sort_by="created_at", sort_order="asc")
    assert [x["thread_id"] for x in asc] == [*made, ran["thread_id"]]

    assert [x["thread_id"] for x in await client.threads.search(metadata={"t": t, "i": 2})] == [made[2]]
    interrupted = await client.threads.search(metadata={"t": t}, status="interrupted")
    assert [x["thread_id"] for x in interrupted] == [ran["thread_id"]]
    idle = await client.threads.search(metadata={"t": t}, status="idle")
    assert len(idle) == 4
    by_values = await client.threads.search(values={"request": "deploy"}, metadata={"t": t})
    assert [x["thread_id"] for x in by_values] == [ran["thread_id"]]
    by_ids = await client.threads.search(ids=[made[0], made[3]])
    assert {x["thread_id"] for x in by_ids} == {made[0], made[3]}

    sel = await client.threads.search(metadata={"t": t}, select=["thread_id", "status"], limit=2)
    assert [set(x) for x in sel] == [{"thread_id", "status"}] * 2
    assert sel[0] == {"thread_id": ran["thread_id"], "status": "interrupted"}

    page = await ahttp.post("/threads/search", json={"metadata": {"t": t}, "limit": 2, "offset": 1})
    assert [x["thread_id"] for x in page.json()] == [made[3], made[2]]
    assert page.headers["x-pagination-total"] == "4"
    assert page.headers["x-pagination-next"] == "3"
    last = await ahttp.post("/threads/search", json={"metadata": {"t": t}, "limit": 3, "offset": 3})
    assert len(last.json()) == 2
    assert last.headers["x-pagination-total"] == "5"
    assert "x-pagination-next" not in last.headers

    assert (await ahttp.post("/threads/search", json={"select": ["nope"]})).status_code == 422


async def test_count(client, ahttp: httpx.AsyncClient) -> None:
    t = tag()
    for _ in range(3):
        await client.threads.create(metadata={"t": t})
    assert await client.threads.count(metadata={"t": t}) == 3
    assert await client.threads.count(metadata={"t": t}, status="busy") == 0
    resp = await ahttp.post("/threads/count", json={"metadata": {"t": t}, "status": "idle"})
    assert resp.status_code == 200 and resp.content == b"3"


async def test_get_and_run_metadata(client) -> None:
    thread = await interrupted_thread(client)
    got = await client.threads.get(thread["thread_id"])
    assert got["status"] == "interrupted"
    assert got["metadata"]["graph_id"] == "interrupt"
    assert got["metadata"]["assistant_id"] == INTERRUPT_ID
    assert got["values"] == {"request": "deploy"}
    [(task_id, interrupts)] = got["interrupts"].items()
    assert interrupts[0]["value"] == {"question": "approve deploy?"}


async def test_patch_merges_metadata_and_prefer_minimal(client, ahttp: httpx.AsyncClient) -> None:
    thread = await client.threads.create(metadata={"a": 1, "b": 1})
    updated = await client.threads.update(thread["thread_id"], metadata={"b": 2, "c": 3})
    assert updated["metadata"] == {"a": 1, "b": 2, "c": 3}
    assert updated["updated_at"] >= thread["updated_at"]
    resp = await ahttp.patch(
        f"/threads/{thread['thread_id']}", json={"metadata": {"d": 4}}, headers={"Prefer": "return=minimal"}
    )
    assert resp.status_code == 204 and resp.content == b""
    assert (await client.threads.get(thread["thread_id"]))["metadata"] == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert await client.threads.update(thread["thread_id"], metadata={"e": 5}, return_minimal=True) is None
    missing = await ahttp.patch(f"/threads/{uuid.uuid4()}", json={"metadata": {}})
    assert missing.status_code == 404


async def test_concurrent_patches_of_distinct_keys_all_survive(ahttp: httpx.AsyncClient) -> None:
    """The merge happens in storage, atomically: no PATCH overwrites another's key with a stale read."""
    created = await ahttp.post("/threads", json={"metadata": {"base": True}})
    thread_id = created.json()["thread_id"]
    patches = 30
    responses = await asyncio.gather(
        *(ahttp.patch(f"/threads/{thread_id}", json={"metadata": {f"k{i}": i}}) for i in range(patches))
    )
    assert [r.status_code for r in responses] == [200] * patches
    assert all(r.json()["metadata"][f"k{i}"] == i for i, r in enumerate(responses))
    got = await ahttp.get(f"/threads/{thread_id}")
    assert got.json()["metadata"] == {"base": True, **{f"k{i}": i for i in range(patches)}}


async def test_delete_cascades_runs(client, ahttp: httpx.AsyncClient) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "slow", input={"delay": 0.01, "count": 2})
    await client.runs.join(thread["thread_id"], run["run_id"])
    resp = await ahttp.delete(f"/threads/{thread['thread_id']}")
    assert resp.status_code == 204 and resp.content == b""
    gone = await ahttp.get(f"/threads/{thread['thread_id']}")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"Thread with ID {thread['thread_id']} not found"}
    assert (await ahttp.get(f"/threads/{thread['thread_id']}/runs/{run['run_id']}")).status_code == 404
    assert (await ahttp.get(f"/threads/{thread['thread_id']}/runs")).status_code == 404
    assert (await ahttp.get(f"/threads/{thread['thread_id']}/history")).status_code == 404
    assert (await ahttp.delete(f"/threads/{thread['thread_id']}")).status_code == 404
    # the id is free again and the new thread starts empty
    again = await client.threads.create(thread_id=thread["thread_id"])
    assert again["values"] is None
    assert (await client.threads.get_state(thread["thread_id"]))["checkpoint"] is None


async def test_delete_cancels_running_run(client, ahttp: httpx.AsyncClient) -> None:
    thread = await client.threads.create()
    await client.runs.create(thread["thread_id"], "slow", input={"delay": 5})
    assert (await ahttp.delete(f"/threads/{thread['thread_id']}")).status_code == 204
    with pytest.raises(NotFoundError):
        await client.threads.get(thread["thread_id"])


async def test_copy_keeps_checkpoints(client) -> None:
    source = await interrupted_thread(client, "copyme")
    copy = await client.threads.copy(source["thread_id"])
    assert copy["thread_id"] != source["thread_id"]
    assert copy["metadata"]["graph_id"] == "interrupt"
    src_state = await client.threads.get_state(source["thread_id"])
    copy_state = await client.threads.get_state(copy["thread_id"])
    assert copy_state["values"] == src_state["values"] == {"request": "copyme"}
    assert copy_state["next"] == ["ask"]
    assert copy_state["checkpoint"]["thread_id"] == copy["thread_id"]
    src_hist = await client.threads.get_history(source["thread_id"], limit=10)
    copy_hist = await client.threads.get_history(copy["thread_id"], limit=10)
    assert [h["values"] for h in copy_hist] == [h["values"] for h in src_hist]
    assert len(copy_hist) == 2  # input, ask (interrupted)
    # the copy continues independently
    await client.runs.wait(copy["thread_id"], "interrupt", command={"resume": "ok"})
    assert (await client.threads.get_state(copy["thread_id"]))["values"]["result"] == "copyme -> ok"
    assert (await client.threads.get_state(source["thread_id"]))["next"] == ["ask"]


def test_fresh_thread_state_and_history(http: httpx.Client) -> None:
    thread = http.post("/threads", json={}).json()
    resp = http.get(f"/threads/{thread['thread_id']}/state")
    assert resp.status_code == 200
    assert resp.content == (
        b'{"values":{},"next":[],"tasks":[],"metadata":null,"created_at":null,"checkpoint":null,'
        b'"parent_checkpoint":null,"interrupts":[],"checkpoint_id":null,"parent_checkpoint_id":null}'
    )
    assert http.get(f"/threads/{thread['thread_id']}/history").json() == []


def test_state_update_on_never_run_thread_400(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    resp = http.post(f"/threads/{thread_id}/state", json={"values": {"count": 5}})
    assert resp.status_code == 400
    assert resp.json() == {
        "detail": f"Thread '{thread_id}' has no assigned graph ID. This usually occurs when no runs have been made "
        "on this particular thread. This operation requires a graph ID. Please ensure a run has been made for the "
        "thread or manually update the thread metadata (by setting the 'graph_id' field) before running this "
        "operation."
    }


async def test_state_after_interrupt(client) -> None:
    thread = await interrupted_thread(client)
    state = await client.threads.get_state(thread["thread_id"])
    assert set(state) == STATE_KEYS
    assert state["values"] == {"request": "deploy"}
    assert state["next"] == ["ask"]
    assert state["tasks"][0]["name"] == "ask"
    assert state["tasks"][0]["interrupts"][0]["value"] == {"question": "approve deploy?"}
    assert state["interrupts"] == state["tasks"][0]["interrupts"]
    assert state["checkpoint"]["thread_id"] == thread["thread_id"]
    assert state["checkpoint"]["checkpoint_ns"] == ""
    assert state["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint_id"] == state["parent_checkpoint"]["checkpoint_id"]
    assert state["metadata"]["source"] == "loop"
    assert state["metadata"]["graph_id"] == "interrupt"


async def test_update_state_as_node(client, ahttp: httpx.AsyncClient) -> None:
    thread = await interrupted_thread(client)
    before = await client.threads.get_state(thread["thread_id"])
    resp = await ahttp.post(
        f"/threads/{thread['thread_id']}/state", json={"values": {"answer": "patched"}, "as_node": "ask"}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"checkpoint", "configurable", "checkpoint_id"}
    assert body["checkpoint"] == body["configurable"]
    assert body["checkpoint"] == {
        "thread_id": thread["thread_id"], "checkpoint_ns": "", "checkpoint_id": body["checkpoint_id"]
    }  # fmt: skip
    after = await client.threads.get_state(thread["thread_id"])
    assert after["checkpoint_id"] == body["checkpoint_id"]
    assert after["parent_checkpoint_id"] == before["checkpoint_id"]
    assert after["values"] == {"request": "deploy", "answer": "patched"}
    assert after["next"] == ["finish"]
    assert after["metadata"]["source"] == "update"
    got = await client.threads.get(thread["thread_id"])
    assert got["values"] == after["values"]
    # continuing runs `finish` from the updated checkpoint
    result = await client.runs.wait(thread["thread_id"], "interrupt", input=None)
    assert result["result"] == "deploy -> patched"


async def test_update_state_from_older_checkpoint(client) -> None:
    thread = await interrupted_thread(client, "first")
    history = await client.threads.get_history(thread["thread_id"], limit=10)
    oldest_with_values = [h for h in history if h["values"].get("request") == "first"][-1]
    upd = await client.threads.update_state(
        thread["thread_id"], {"request": "branched"}, checkpoint_id=oldest_with_values["checkpoint_id"]
    )
    state = await client.threads.get_state(thread["thread_id"])
    assert state["checkpoint_id"] == upd["checkpoint_id"]
    assert state["parent_checkpoint_id"] == oldest_with_values["checkpoint_id"]
    assert state["values"]["request"] == "branched"


async def test_update_state_unknown_node_is_client_error(client, ahttp: httpx.AsyncClient) -> None:
    thread = await interrupted_thread(client)
    resp = await ahttp.post(f"/threads/{thread['thread_id']}/state", json={"values": {"x": 1}, "as_node": "nope"})
    assert 400 <= resp.status_code < 500


async def test_state_at_checkpoint(client, ahttp: httpx.AsyncClient) -> None:
    thread = await interrupted_thread(client)
    history = await client.threads.get_history(thread["thread_id"], limit=10)
    first = history[-1]
    assert first["metadata"]["source"] == "input"
    resp = await ahttp.get(f"/threads/{thread['thread_id']}/state/{first['checkpoint_id']}")
    assert resp.status_code == 200
    at = resp.json()
    assert at["checkpoint_id"] == first["checkpoint_id"]
    assert at["values"] == {}
    assert at["next"] == ["__start__"]
    assert at["parent_checkpoint"] is None
    sdk_at = await client.threads.get_state(thread["thread_id"], checkpoint_id=first["checkpoint_id"])
    assert sdk_at["checkpoint_id"] == first["checkpoint_id"]
    post = await ahttp.post(
        f"/threads/{thread['thread_id']}/state/checkpoint",
        json={"checkpoint": {"checkpoint_id": history[1]["checkpoint_id"]}},
    )
    assert post.status_code == 200 and post.json()["checkpoint_id"] == history[1]["checkpoint_id"]


async def test_history_get_and_post(client, ahttp: httpx.AsyncClient) -> None:
    thread = await interrupted_thread(client)
    await client.runs.wait(thread["thread_id"], "interrupt", command={"resume": "yes"})
    tid = thread["thread_id"]

    default = await ahttp.get(f"/threads/{tid}/history")
    assert default.status_code == 200
    assert len(default.json()) == 1
    assert default.json()[0]["values"]["result"] == "deploy -> yes"
    full = (await ahttp.get(f"/threads/{tid}/history", params={"limit": 10})).json()
    assert len(full) == 4  # input, ask (interrupted), finish pending, done
    assert [h["metadata"]["source"] for h in full] == ["loop", "loop", "loop", "input"]
    assert [h["metadata"]["step"] for h in full] == sorted((h["metadata"]["step"] for h in full), reverse=True)
    assert full[0]["checkpoint_id"] == (await client.threads.get_state(tid))["checkpoint_id"]

    assert len((await ahttp.post(f"/threads/{tid}/history", json={})).json()) == 1
    two = (await ahttp.post(f"/threads/{tid}/history", json={"limit": 2})).json()
    assert [h["checkpoint_id"] for h in two] == [h["checkpoint_id"] for h in full[:2]]

    before = await client.threads.get_history(tid, limit=10, before=full[1]["checkpoint_id"])
    assert [h["checkpoint_id"] for h in before] == [h["checkpoint_id"] for h in full[2:]]
    before_obj = await client.threads.get_history(tid, limit=1, before={"checkpoint_id": full[1]["checkpoint_id"]})
    assert before_obj[0]["checkpoint_id"] == full[2]["checkpoint_id"]
    get_before = await ahttp.get(f"/threads/{tid}/history", params={"limit": 10, "before": full[2]["checkpoint_id"]})
    assert [h["checkpoint_id"] for h in get_before.json()] == [h["checkpoint_id"] for h in full[3:]]

    inputs = await client.threads.get_history(tid, limit=10, metadata={"source": "input"})
    assert [h["metadata"]["source"] for h in inputs] == ["input"] * len(inputs)
    assert len(inputs) >= 1

    assert (await ahttp.get(f"/threads/{tid}/history", params={"limit": "x"})).status_code == 422


async def test_update_state_with_run_in_flight_409(client, ahttp: httpx.AsyncClient) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "slow", input={"delay": 0.01, "count": 2})
    run = await client.runs.create(tid, "slow", input={"delay": 3, "count": 0})
    try:
        resp = await ahttp.post(f"/threads/{tid}/state", json={"values": {"count": 9}})
        assert resp.status_code == 409
        assert resp.json()["detail"].startswith(f"Thread {tid} has in-flight runs: ")
        assert run["run_id"] in resp.json()["detail"]
    finally:
        await client.runs.cancel(tid, run["run_id"])


async def test_storage_reports_checkpoint_bytes(client, ahttp: httpx.AsyncClient) -> None:
    thread = await client.threads.create()
    empty = (await ahttp.get(f"/threads/{thread['thread_id']}/storage")).json()
    assert empty == {"thread_id": thread["thread_id"], "total_bytes": 0, "checkpoints": {"count": 0, "bytes": 0},
                     "channel_values": {"count": 0, "bytes": 0, "by_channel": {}},
                     "pending_writes": {"count": 0, "bytes": 0}}  # fmt: skip
    await client.runs.wait(thread["thread_id"], "interrupt", input={"request": "x"})
    report = (await ahttp.get(f"/threads/{thread['thread_id']}/storage")).json()
    assert report["checkpoints"]["count"] == len(await client.threads.get_history(thread["thread_id"], limit=100))
    assert report["checkpoints"]["bytes"] > 0 and report["pending_writes"]["count"] > 0
    values = report["channel_values"]
    assert values["count"] == sum(c["versions"] for c in values["by_channel"].values())
    # SQLite keeps channel values inside the checkpoint; memory and Postgres store them apart, per channel
    assert (values["by_channel"] == {}) == (os.environ.get("TEST_STORAGE", "memory") == "sqlite")
    assert report["total_bytes"] == report["checkpoints"]["bytes"] + values["bytes"] + report["pending_writes"]["bytes"]
    missing = await ahttp.get(f"/threads/{uuid.uuid4()}/storage")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    assert (await ahttp.get("/threads/nope/storage")).status_code == 422

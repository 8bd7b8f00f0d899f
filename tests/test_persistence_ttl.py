"""Thread TTL (`ttl` on create/patch, `?include=ttl`, the sweeper) and `POST /threads/prune`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess

SLOW_FAST = {"assistant_id": "slow", "input": {"delay": 0.01, "count": 0}}


def run_twice(http: httpx.Client, tid: str) -> None:
    for _ in range(2):
        resp = http.post(f"/threads/{tid}/runs/wait", json=SLOW_FAST)
        assert resp.status_code == 200 and resp.json()["count"] == 3, resp.text


def history(http: httpx.Client, tid: str) -> list[dict[str, Any]]:
    return http.post(f"/threads/{tid}/history", json={"limit": 100}).json()


# ------------------------------------------------------------------------------------------------ prune
def test_prune_delete_removes_threads_with_runs(http: httpx.Client) -> None:
    t1, t2, t3 = (http.post("/threads", json={}).json()["thread_id"] for _ in range(3))
    run_twice(http, t1)
    missing = str(uuid.uuid4())
    resp = http.post("/threads/prune", json={"thread_ids": [t1, t2, missing, t1]})
    assert resp.status_code == 200
    assert resp.json() == {"pruned_count": 2}
    assert http.get(f"/threads/{t1}").status_code == 404
    assert http.get(f"/threads/{t2}").status_code == 404
    assert http.get(f"/threads/{t1}/runs").status_code == 404
    assert http.get(f"/threads/{t3}").status_code == 200


def test_prune_keep_latest_keeps_thread_and_state(http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    run_twice(http, tid)
    before = http.get(f"/threads/{tid}/state").json()
    full = history(http, tid)
    assert len(full) > 2
    resp = http.post("/threads/prune", json={"thread_ids": [tid], "strategy": "keep_latest"})
    assert resp.json() == {"pruned_count": 1}
    after = history(http, tid)
    assert len(after) == 1
    assert after[0]["values"] == before["values"] and after[0]["checkpoint_id"] == before["checkpoint_id"]
    assert http.get(f"/threads/{tid}/state").json()["values"] == before["values"]
    assert http.get(f"/threads/{tid}").json()["status"] == "idle"
    # the thread keeps working on top of its kept checkpoint
    again = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01}})
    assert again.json()["count"] == 4
    grown = history(http, tid)
    assert grown[-1]["checkpoint_id"] == before["checkpoint_id"] and len(grown) < len(full)


async def test_prune_through_the_sdk(client: Any) -> None:
    threads = [await client.threads.create() for _ in range(2)]
    result = await client.threads.prune([t["thread_id"] for t in threads])
    assert result == {"pruned_count": 2}
    assert await client.threads.search(metadata={"never": "there"}) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"thread_ids": ["not-a-uuid"]},
        {"thread_ids": [], "strategy": "everything"},
        {"thread_ids": "abc"},
    ],
)
def test_prune_rejects_bad_bodies(http: httpx.Client, body: dict[str, Any]) -> None:
    resp = http.post("/threads/prune", json=body)
    assert resp.status_code == 422
    assert isinstance(resp.json()["detail"], str)


# ------------------------------------------------------------------------------------------------ ttl
def test_ttl_on_create_patch_and_include(http: httpx.Client) -> None:
    start = datetime.now(UTC)
    created = http.post("/threads", json={"ttl": {"strategy": "delete", "ttl": 60}})
    assert created.status_code == 200
    tid = created.json()["thread_id"]
    assert "ttl" not in created.json()
    assert "ttl" not in http.get(f"/threads/{tid}").json()
    ttl = http.get(f"/threads/{tid}", params={"include": "ttl"}).json()["ttl"]
    assert ttl["strategy"] == "delete" and ttl["ttl_minutes"] == 60
    expires = datetime.fromisoformat(ttl["expires_at"])
    assert start + timedelta(minutes=59) < expires < datetime.now(UTC) + timedelta(minutes=61)
    patched = http.patch(f"/threads/{tid}", json={"ttl": {"ttl": 5, "strategy": "keep_latest"}})
    assert patched.status_code == 200
    ttl = http.get(f"/threads/{tid}", params={"include": "ttl"}).json()["ttl"]
    assert ttl["strategy"] == "keep_latest" and ttl["ttl_minutes"] == 5
    assert datetime.fromisoformat(ttl["expires_at"]) < datetime.now(UTC) + timedelta(minutes=6)
    plain = http.post("/threads", json={}).json()["thread_id"]
    assert http.get(f"/threads/{plain}", params={"include": "ttl"}).json()["ttl"] is None


async def test_ttl_through_the_sdk(client: Any) -> None:
    thread = await client.threads.create(ttl=30)
    got = await client.threads.get(thread["thread_id"], include=["ttl"])
    assert got["ttl"]["strategy"] == "delete" and got["ttl"]["ttl_minutes"] == 30
    await client.threads.update(thread["thread_id"], metadata={"a": 1}, ttl={"ttl": 10})
    got = await client.threads.get(thread["thread_id"], include=["ttl"])
    assert got["ttl"]["ttl_minutes"] == 10 and got["metadata"] == {"a": 1}


@pytest.mark.parametrize(
    "ttl", [{"ttl": -1}, {"ttl": 0}, {"strategy": "archive", "ttl": 5}, {"strategy": "delete"}, "soon", {"x": 1}]
)
def test_bad_ttl_is_422(http: httpx.Client, ttl: Any) -> None:
    resp = http.post("/threads", json={"ttl": ttl})
    assert resp.status_code == 422, resp.text
    tid = http.post("/threads", json={}).json()["thread_id"]
    assert http.patch(f"/threads/{tid}", json={"ttl": ttl}).status_code == 422


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def sweeping_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    env: dict[str, str | None] = {
        "ROBYN_SERVER_STORAGE": request.param,
        "ROBYN_SERVER_HEARTBEAT_SECONDS": "0.2",
        "ROBYN_SERVER_TTL_SWEEP_SECONDS": "0.2",
    }
    if request.param == "sqlite":
        env["ROBYN_SERVER_SQLITE_PATH"] = str(tmp_path / "db.sqlite")
    elif request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_dsn")
    proc = ServerProcess(env=env).start()
    yield proc
    proc.stop()


def test_sweeper_applies_expired_ttls(sweeping_server: ServerProcess) -> None:
    with httpx.Client(base_url=sweeping_server.url, timeout=30) as http:
        doomed = http.post("/threads", json={"ttl": {"strategy": "delete", "ttl": 0.01}}).json()["thread_id"]
        pruned = http.post("/threads", json={}).json()["thread_id"]
        run_twice(http, pruned)
        values = http.get(f"/threads/{pruned}/state").json()["values"]
        assert http.patch(f"/threads/{pruned}", json={"ttl": {"strategy": "keep_latest", "ttl": 0.01}}).is_success
        kept = http.post("/threads", json={"ttl": {"ttl": 600}}).json()["thread_id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and http.get(f"/threads/{doomed}").status_code != 404:
            time.sleep(0.1)
        assert http.get(f"/threads/{doomed}").status_code == 404
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(history(http, pruned)) != 1:
            time.sleep(0.1)
        assert len(history(http, pruned)) == 1
        assert http.get(f"/threads/{pruned}/state").json()["values"] == values
        assert http.get(f"/threads/{pruned}", params={"include": "ttl"}).json()["ttl"] is None
        assert http.get(f"/threads/{kept}").status_code == 200

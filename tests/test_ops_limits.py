"""Run-creation limits: 429 `{"detail": ...}` with `Retry-After` at the limit, other users unaffected, and the
limited user's earlier runs still complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_postgres
from tests.ops_helpers import AGENT_RUN, issue, wait_for
from tests.server import ServerProcess, create_database, drop_database

SLOW = {"assistant_id": "slow", "input": {"delay": 0.3}}


def keyed_server(storage: dict[str, str] | None = None, **limits: str) -> tuple[ServerProcess, dict, dict]:
    key_a, entry_a = issue("limited-a")
    key_b, entry_b = issue("limited-b")
    env = {"ROBYN_SERVER_API_KEYS": json.dumps([entry_a, entry_b]), **(storage or {}), **limits}
    return ServerProcess(env=env).start(), {"X-Api-Key": key_a}, {"X-Api-Key": key_b}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The backend the in-flight runs are counted in."""
    if request.param == "memory":
        yield {"ROBYN_SERVER_STORAGE": "memory"}
    elif request.param == "sqlite":
        yield {"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(tmp_path / "limits.sqlite")}
    else:
        require_postgres()
        dsn = create_database("robyn_limits")
        try:
            yield {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": dsn}
        finally:
            drop_database(dsn)


def assert_429(resp: httpx.Response, words: str) -> int:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert words in resp.json()["detail"]
    return int(resp.headers["retry-after"])


def test_concurrent_runs_per_user(storage_env: dict[str, str]) -> None:
    proc, a, b = keyed_server(storage_env, ROBYN_SERVER_MAX_RUNS_PER_USER="2")
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            threads = [http.post("/threads", json={}, headers=a).json()["thread_id"] for _ in range(3)]
            earlier = [http.post(f"/threads/{t}/runs", json=SLOW, headers=a).json() for t in threads[:2]]
            assert all(r["status"] == "pending" for r in earlier)
            visible = len(http.post("/threads/search", json={"limit": 100}, headers=a).json())
            assert assert_429(http.post(f"/threads/{threads[2]}/runs", json=SLOW, headers=a), "Too many runs") >= 1
            assert_429(http.post(f"/threads/{threads[2]}/runs/stream", json=SLOW, headers=a), "Too many runs")
            assert_429(http.post("/runs/wait", json=SLOW, headers=a), "Too many runs")
            assert_429(http.post("/runs/batch", json=[SLOW], headers=a), "Too many runs")
            assert http.get(f"/threads/{threads[2]}/runs", headers=a).json() == []  # nothing stored for refusals
            assert len(http.post("/threads/search", json={"limit": 100}, headers=a).json()) == visible  # no thread
            other = http.post("/threads", json={}, headers=b).json()["thread_id"]
            assert http.post(f"/threads/{other}/runs/wait", json=AGENT_RUN, headers=b).status_code == 200
            for thread_id, run in zip(threads, earlier, strict=False):
                assert http.get(f"/threads/{thread_id}/runs/{run['run_id']}/join", headers=a).json()["count"] == 3
                assert http.get(f"/threads/{thread_id}/runs/{run['run_id']}", headers=a).json()["status"] == "success"
            # their runs finished: the user may start again
            assert http.post(f"/threads/{threads[2]}/runs/wait", json=SLOW, headers=a).status_code == 200
            rejected = http.get("/metrics", params={"format": "prometheus"}).text
            assert 'lg_api_runs_rejected_total{limit="concurrent"} 4.0' in rejected
            burst_of_creations(http, a, allowed=2)
    finally:
        proc.stop()


def burst_of_creations(http: httpx.Client, headers: dict, allowed: int, burst: int = 12) -> None:
    """Many run creations by one user at once, on threads of their own: the count is claimed with the run in
    storage, so exactly `allowed` are stored and the rest get 429, however the requests interleave."""
    threads = [http.post("/threads", json={}, headers=headers).json()["thread_id"] for _ in range(burst)]
    long_run = {"assistant_id": "slow", "input": {"delay": 30}}  # still in flight when the burst is over

    def create(thread_id: str) -> httpx.Response:
        return http.post(f"/threads/{thread_id}/runs", json=long_run, headers=headers)

    with ThreadPoolExecutor(burst) as pool:
        answers = list(pool.map(create, threads))
    accepted = [(t, r.json()["run_id"]) for t, r in zip(threads, answers, strict=True) if r.status_code == 200]
    assert len(accepted) == allowed, [r.status_code for r in answers]
    assert all(r.status_code == 429 for r in answers if r.status_code != 200)
    stored = [run for t in threads for run in http.get(f"/threads/{t}/runs", headers=headers).json()]
    assert len(stored) == allowed
    for thread_id, run_id in accepted:  # end them now rather than in 90 seconds
        assert http.post(f"/threads/{thread_id}/runs/{run_id}/cancel", headers=headers).status_code in (200, 202)


def test_run_creation_rate_per_user() -> None:
    proc, a, b = keyed_server(ROBYN_SERVER_RUNS_PER_MINUTE="1", ROBYN_SERVER_RUN_BURST="2")
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            tid = http.post("/threads", json={}, headers=a).json()["thread_id"]
            first = http.post(f"/threads/{tid}/runs", json=AGENT_RUN, headers=a)
            second = http.post(f"/threads/{tid}/runs", json=AGENT_RUN, headers=a)  # enqueued behind the first
            assert first.status_code == 200 and second.status_code == 200
            retry = assert_429(http.post(f"/threads/{tid}/runs", json=AGENT_RUN, headers=a), "per minute")
            assert 1 <= retry <= 60
            other = http.post("/threads", json={}, headers=b).json()["thread_id"]
            assert http.post(f"/threads/{other}/runs", json=AGENT_RUN, headers=b).status_code == 200
            for run in (first.json(), second.json()):
                http.get(f"/threads/{tid}/runs/{run['run_id']}/join", headers=a)
                assert http.get(f"/threads/{tid}/runs/{run['run_id']}", headers=a).json()["status"] == "success"
            assert len(http.get(f"/threads/{tid}/runs", headers=a).json()) == 2
    finally:
        proc.stop()


def test_global_queue_limit_without_auth() -> None:
    # with auth off the per-user limit does not apply: two runs in flight below are not refused by it
    limits = {
        "ROBYN_SERVER_MAX_PENDING_RUNS": "1",
        "ROBYN_SERVER_LIMIT_RETRY_AFTER_SECONDS": "3",
        "ROBYN_SERVER_MAX_RUNS_PER_USER": "1",
    }
    proc = ServerProcess(env=limits)
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            running = http.post(f"/threads/{tid}/runs", json=SLOW).json()
            # wait until the first run left `pending`, so exactly one run is queued next
            path = f"/threads/{tid}/runs/{running['run_id']}"
            wait_for(lambda: http.get(path).json()["status"] == "running", "the first run to start")
            queued = http.post(f"/threads/{tid}/runs", json=SLOW).json()  # pending behind the running one
            assert assert_429(http.post(f"/threads/{tid}/runs", json=SLOW), "queue is full") == 3
            for run in (running, queued):
                assert http.get(f"/threads/{tid}/runs/{run['run_id']}/join").json()["count"] >= 3
                assert http.get(f"/threads/{tid}/runs/{run['run_id']}").json()["status"] == "success"
    finally:
        proc.stop()

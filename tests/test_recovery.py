"""Crash recovery: a server SIGKILLed mid-run leaves `running` and `pending` runs behind; the next start fails
the running ones (thread `error`, never stuck `busy`) and runs the pending ones. SQLite and Postgres."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess
from tests.waiting import wait_for

FAST_UPKEEP = {"ROBYN_SERVER_HEARTBEAT_SECONDS": "0.3"}


@pytest.fixture(params=["sqlite", "postgres"])
def storage_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str | None]]:
    if request.param == "sqlite":
        yield {"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(tmp_path / "db.sqlite")}
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        yield {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": dsn}


def start_slow(http: httpx.Client, tid: str, delay: float, **extra: Any) -> str:
    body = {"assistant_id": "slow", "input": {"delay": delay, "count": 0}, **extra}
    resp = http.post(f"/threads/{tid}/runs", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["run_id"]


def run_status(http: httpx.Client, tid: str, rid: str) -> str:
    return http.get(f"/threads/{tid}/runs/{rid}").json()["status"]


def test_sigkill_mid_run_is_recovered_at_startup(storage_env: dict[str, str | None]) -> None:
    first = ServerProcess(env=storage_env).start()
    with httpx.Client(base_url=first.url, timeout=30) as http:
        # thread A: one run running when the server dies
        a = http.post("/threads", json={}).json()["thread_id"]
        running_a = start_slow(http, a, 30.0)
        # thread B: a running run with a second one queued behind it
        b = http.post("/threads", json={}).json()["thread_id"]
        running_b = start_slow(http, b, 30.0)
        queued_b = start_slow(http, b, 0.01, multitask_strategy="enqueue")
        # thread C: a run delayed by after_seconds, still pending when the server dies
        c = http.post("/threads", json={}).json()["thread_id"]
        delayed_c = start_slow(http, c, 0.01, after_seconds=1)
        wait_for(lambda: run_status(http, a, running_a) == "running", "run A to start")
        wait_for(lambda: run_status(http, b, running_b) == "running", "run B to start")
        assert run_status(http, b, queued_b) == "pending"
        assert run_status(http, c, delayed_c) == "pending"
        assert http.get(f"/threads/{a}").json()["status"] == "busy"
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    # one attempt allowed: a run the crash interrupted is failed, not resumed (resuming: test_engine_*)
    second = ServerProcess(env={**storage_env, "BG_JOB_MAX_RETRIES": "1"}).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            # the running runs failed with a clear error, at once
            assert run_status(http, a, running_a) == "error"
            assert run_status(http, b, running_b) == "error"
            thread_a = http.get(f"/threads/{a}").json()
            assert thread_a["status"] == "error"
            assert thread_a["error"]["error"] == "ServerStoppedError"
            assert running_a in thread_a["error"]["message"]
            assert "server stopped while it was running" in thread_a["error"]["message"]
            # the pending ones run to the end on the new process
            wait_for(lambda: run_status(http, b, queued_b) == "success", "queued run B to finish")
            wait_for(lambda: run_status(http, c, delayed_c) == "success", "delayed run C to finish")
            thread_b = wait_for(
                lambda: (t := http.get(f"/threads/{b}").json())["status"] == "idle" and t, "thread B to be idle"
            )
            assert thread_b["values"]["count"] == 3
            thread_c = wait_for(
                lambda: (t := http.get(f"/threads/{c}").json())["status"] == "idle" and t, "thread C to be idle"
            )
            assert thread_c["values"]["count"] == 3
            # nothing is left busy, and the failed thread takes new runs
            assert http.post("/threads/count", json={"status": "busy"}).json() == 0
            done = http.post(
                f"/threads/{a}/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 0}}
            )
            assert done.status_code == 200 and done.json()["count"] == 3
            assert http.get(f"/threads/{a}").json()["status"] == "idle"
    finally:
        second.stop()


def test_clean_stop_leaves_queued_runs_for_the_next_start(storage_env: dict[str, str | None]) -> None:
    first = ServerProcess(env={**storage_env, "ROBYN_SERVER_SHUTDOWN_GRACE_SECONDS": "0.5"}).start()
    with httpx.Client(base_url=first.url, timeout=30) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        running = start_slow(http, tid, 30.0)
        queued = start_slow(http, tid, 0.01, multitask_strategy="enqueue")
        wait_for(lambda: run_status(http, tid, running) == "running", "the first run to start")
    assert first.stop(signal.SIGTERM) == 0
    second = ServerProcess(env=storage_env).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            # the run still going after the grace period was handed back and resumes as attempt 2
            run = wait_for(lambda: (r := http.get(f"/threads/{tid}/runs/{running}").json())["status"] == "running"
                           and r, "the handed-back run to resume")  # fmt: skip
            assert run["kwargs"]["config"]["metadata"]["run_attempt"] == 2
            assert http.post(f"/threads/{tid}/runs/{running}/cancel?wait=1").status_code == 200
            assert run_status(http, tid, running) == "interrupted"
            wait_for(lambda: run_status(http, tid, queued) == "success", "the queued run to finish")
            wait_for(lambda: http.get(f"/threads/{tid}").json()["status"] == "idle", "the thread to be idle")
    finally:
        second.stop()


def test_live_peer_takes_over_a_killed_peers_runs(postgres_dsn: str) -> None:
    env = {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": postgres_dsn, "BG_JOB_MAX_RETRIES": "1", **FAST_UPKEEP}
    survivor = ServerProcess(env=env).start()
    victim = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=victim.url, timeout=30) as on_victim:
            tid = on_victim.post("/threads", json={}).json()["thread_id"]
            running = start_slow(on_victim, tid, 30.0)
            queued = start_slow(on_victim, tid, 0.01, multitask_strategy="enqueue")
            wait_for(lambda: run_status(on_victim, tid, running) == "running", "the victim's run to start")
        with httpx.Client(base_url=survivor.url, timeout=30) as http:
            # a live peer's runs are left alone
            time.sleep(1.0)
            assert run_status(http, tid, running) == "running"
            assert run_status(http, tid, queued) == "pending"
            victim.stop(signal.SIGKILL)
            wait_for(lambda: run_status(http, tid, running) == "error", "the survivor to fail the orphaned run")
            wait_for(lambda: run_status(http, tid, queued) == "success", "the survivor to run the queued run")
            thread = wait_for(
                lambda: (t := http.get(f"/threads/{tid}").json())["status"] == "idle" and t, "the thread to settle"
            )
            assert thread["values"]["count"] == 3
    finally:
        victim.stop()
        survivor.stop()

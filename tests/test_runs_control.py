"""Run lifecycle control: run and thread statuses, cancel (interrupt/rollback, with and without wait),
multitask strategies, on_disconnect=cancel, time travel, after_seconds and POST /runs/cancel."""

from __future__ import annotations

import json

import httpx

from tests.runs_helpers import (
    BUSY_DETAIL,
    NO_RUNS_TO_CANCEL,
    new_thread,
    poll,
    run_status,
    thread_status,
)


def start_slow(http: httpx.Client, tid: str, delay: float, count: int | None = None, **extra: object) -> str:
    """Create a background run of the slow graph (ticks of `delay` seconds up to count 3) and return its id."""
    graph_input = {"delay": delay} if count is None else {"delay": delay, "count": count}
    resp = http.post(f"/threads/{tid}/runs", json={"assistant_id": "slow", "input": graph_input, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()["run_id"]


def wait_running(http: httpx.Client, tid: str, rid: str) -> None:
    poll(lambda: run_status(http, tid, rid), lambda s: s == "running")


def wait_first_tick(http: httpx.Client, tid: str) -> None:
    """Wait until the slow graph on `tid` has committed its first tick."""
    poll(lambda: http.get(f"/threads/{tid}/state").json()["values"].get("count"), lambda c: c is not None)


def run_ids(http: httpx.Client, tid: str) -> list[str]:
    return [r["run_id"] for r in http.get(f"/threads/{tid}/runs").json()]


def history(http: httpx.Client, tid: str) -> list[dict]:
    return http.post(f"/threads/{tid}/history", json={"limit": 100}).json()


# ----------------------------------------------------------------------------------------- statuses
def test_run_and_thread_statuses(http: httpx.Client) -> None:
    tid = new_thread(http)
    assert thread_status(http, tid) == "idle"
    rid = start_slow(http, tid, 0.2)
    assert thread_status(http, tid) == "busy"
    assert run_status(http, tid, rid) in ("pending", "running")
    wait_running(http, tid, rid)
    assert thread_status(http, tid) == "busy"
    joined = http.get(f"/threads/{tid}/runs/{rid}/join")
    assert json.loads(joined.content) == {"count": 3, "delay": 0.2}
    assert run_status(http, tid, rid) == "success"
    thread = http.get(f"/threads/{tid}").json()
    assert thread["status"] == "idle"
    assert thread["values"] == {"count": 3, "delay": 0.2}
    assert thread["error"] is None and thread["interrupts"] == {}
    runs = http.get(f"/threads/{tid}/runs").json()
    assert [(r["run_id"], r["status"]) for r in runs] == [(rid, "success")]
    assert runs[0]["metadata"]["graph_id"] == "slow"


# ----------------------------------------------------------------------------------------- cancel
def test_cancel_interrupt(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = start_slow(http, tid, 0.3)
    wait_first_tick(http, tid)
    resp = http.post(f"/threads/{tid}/runs/{rid}/cancel")
    assert resp.status_code == 202
    assert resp.content == b""
    assert poll(lambda: run_status(http, tid, rid), lambda s: s not in ("pending", "running")) == "interrupted"
    # Cancelled mid-way: progress kept, the last checkpoint still has `next`, so the thread is interrupted.
    thread = poll(lambda: http.get(f"/threads/{tid}").json(), lambda t: t["status"] != "busy")
    assert thread["status"] == "interrupted"
    assert thread["values"]["count"] >= 1
    assert http.get(f"/threads/{tid}/state").json()["next"] == ["tick"]
    # A finished run cannot be cancelled again.
    again = http.post(f"/threads/{tid}/runs/{rid}/cancel")
    assert again.status_code == 404
    assert again.json() == {"detail": NO_RUNS_TO_CANCEL}


def test_cancel_interrupt_wait(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = start_slow(http, tid, 0.3)
    wait_first_tick(http, tid)
    resp = http.post(f"/threads/{tid}/runs/{rid}/cancel?wait=1")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    body = json.loads(resp.content)
    assert body["delay"] == 0.3 and body["count"] >= 1
    # wait=1 returns only once the run has stopped.
    assert run_status(http, tid, rid) == "interrupted"
    assert thread_status(http, tid) == "interrupted"


def test_cancel_rollback(http: httpx.Client) -> None:
    tid = new_thread(http)
    kept = json.loads(
        http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01}}).content
    )
    assert kept == {"count": 3, "delay": 0.01}
    before = history(http, tid)
    rid = start_slow(http, tid, 0.3, count=0, multitask_strategy="reject")
    wait_first_tick_after(http, tid, len(before))
    resp = http.post(f"/threads/{tid}/runs/{rid}/cancel?action=rollback")
    assert resp.status_code == 202
    poll(lambda: http.get(f"/threads/{tid}/runs/{rid}").status_code, lambda c: c == 404)
    thread = poll(lambda: http.get(f"/threads/{tid}").json(), lambda t: t["status"] != "busy")
    assert len(run_ids(http, tid)) == 1 and rid not in run_ids(http, tid)
    # The run's checkpoints are gone: the history is what it was before the run.
    after = history(http, tid)
    assert [c["checkpoint_id"] for c in after] == [c["checkpoint_id"] for c in before]
    assert all(c["metadata"].get("run_id") != rid for c in after)
    assert thread["status"] == "idle"
    assert http.get(f"/threads/{tid}/state").json()["values"] == {"count": 3, "delay": 0.01}


def wait_first_tick_after(http: httpx.Client, tid: str, known: int) -> None:
    """Wait until the thread has more than `known` checkpoints plus the new run's input and first tick."""
    poll(lambda: len(history(http, tid)), lambda n: n >= known + 3)


def test_cancel_rollback_wait(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = start_slow(http, tid, 0.3)
    wait_first_tick(http, tid)
    resp = http.post(f"/threads/{tid}/runs/{rid}/cancel?wait=1&action=rollback")
    assert resp.status_code == 200
    assert isinstance(json.loads(resp.content), dict)
    # Once the waiting call returns, the run and every checkpoint it wrote are gone.
    assert http.get(f"/threads/{tid}/runs/{rid}").status_code == 404
    assert http.get(f"/threads/{tid}/runs").json() == []
    assert history(http, tid) == []
    assert thread_status(http, tid) == "idle"


def test_cancel_pending_run(http: httpx.Client) -> None:
    tid = new_thread(http)
    first = start_slow(http, tid, 0.3)
    second = start_slow(http, tid, 0.01)  # enqueued behind the first
    assert run_status(http, tid, second) == "pending"
    resp = http.post(f"/threads/{tid}/runs/{second}/cancel")
    assert resp.status_code == 202
    assert run_status(http, tid, second) == "interrupted"  # set at once for a pending run
    third = start_slow(http, tid, 0.01)
    resp = http.post(f"/threads/{tid}/runs/{third}/cancel?action=rollback")
    assert resp.status_code == 202
    assert http.get(f"/threads/{tid}/runs/{third}").status_code == 404  # a pending run is deleted at once
    assert json.loads(http.get(f"/threads/{tid}/runs/{first}/join").content) == {"count": 3, "delay": 0.3}
    assert run_status(http, tid, first) == "success"
    assert thread_status(http, tid) == "idle"


def test_runs_cancel_endpoint(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = start_slow(http, tid, 0.3)
    wait_running(http, tid, rid)
    resp = http.post("/runs/cancel", json={"thread_id": tid, "run_ids": [rid]})
    assert resp.status_code == 204
    assert poll(lambda: run_status(http, tid, rid), lambda s: s not in ("pending", "running")) == "interrupted"
    resp = http.post("/runs/cancel", json={"thread_id": tid, "run_ids": [rid]})
    assert resp.status_code == 404 and resp.json() == {"detail": NO_RUNS_TO_CANCEL}


# ----------------------------------------------------------------------------------------- multitask
def test_multitask_reject(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = start_slow(http, tid, 0.2)
    resp = http.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "slow", "input": {"delay": 0.01}, "multitask_strategy": "reject"},
    )
    assert resp.status_code == 409
    assert resp.json() == {"detail": BUSY_DETAIL}
    resp = http.post(
        f"/threads/{tid}/runs/stream",
        json={"assistant_id": "slow", "input": {"delay": 0.01}, "multitask_strategy": "reject"},
    )
    assert resp.status_code == 409 and resp.json() == {"detail": BUSY_DETAIL}
    assert run_ids(http, tid) == [rid]
    http.get(f"/threads/{tid}/runs/{rid}/join")
    assert run_status(http, tid, rid) == "success"


def test_multitask_enqueue_runs_sequentially(http: httpx.Client) -> None:
    tid = new_thread(http)
    first = start_slow(http, tid, 0.2)
    resp = http.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "slow", "input": {"delay": 0.05}, "multitask_strategy": "enqueue"},
    )
    assert resp.status_code == 200
    second = resp.json()["run_id"]
    assert resp.json()["multitask_strategy"] == "enqueue"
    wait_running(http, tid, first)
    assert run_status(http, tid, second) == "pending"
    # The second run starts from the first one's final state (count 3) and ticks once more.
    assert json.loads(http.get(f"/threads/{tid}/runs/{second}/join").content) == {"count": 4, "delay": 0.05}
    assert run_status(http, tid, first) == "success"
    assert run_status(http, tid, second) == "success"
    assert run_ids(http, tid) == [second, first]
    assert thread_status(http, tid) == "idle"


def _double_text(http: httpx.Client, strategy: str) -> tuple[str, str, str, str]:
    """A thread with one run ticking and one queued, then a third run with `strategy`, joined to its end."""
    tid = new_thread(http)
    first = start_slow(http, tid, 0.3)
    queued = start_slow(http, tid, 0.3)
    wait_first_tick(http, tid)
    resp = http.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 0}, "multitask_strategy": strategy},
    )
    assert resp.status_code == 200
    new = resp.json()["run_id"]
    assert json.loads(http.get(f"/threads/{tid}/runs/{new}/join").content) == {"count": 3, "delay": 0.01}
    return tid, first, queued, new


def test_multitask_interrupt(http: httpx.Client) -> None:
    tid, first, queued, new = _double_text(http, "interrupt")
    statuses = {r["run_id"]: r["status"] for r in http.get(f"/threads/{tid}/runs").json()}
    assert statuses == {first: "interrupted", queued: "interrupted", new: "success"}
    assert thread_status(http, tid) == "idle"
    # The interrupted run's progress is kept in the history.
    assert any(c["metadata"].get("run_id") == first for c in history(http, tid))


def test_multitask_rollback(http: httpx.Client) -> None:
    tid, first, queued, new = _double_text(http, "rollback")
    assert run_ids(http, tid) == [new]
    for old in (first, queued):
        assert http.get(f"/threads/{tid}/runs/{old}").status_code == 404
    # Only the new run's checkpoints remain.
    assert {c["metadata"].get("run_id") for c in history(http, tid)} == {new}
    assert thread_status(http, tid) == "idle"


# ----------------------------------------------------------------------------------------- disconnect
def test_on_disconnect_cancel(base_url: str, http: httpx.Client) -> None:
    tid = new_thread(http)
    body = {"assistant_id": "slow", "input": {"delay": 0.5}, "stream_mode": ["updates"], "on_disconnect": "cancel"}
    with httpx.Client(base_url=base_url, timeout=30) as own:
        with own.stream("POST", f"/threads/{tid}/runs/stream", json=body) as resp:
            assert resp.status_code == 200
            rid = resp.headers["content-location"].rsplit("/", 1)[1]
            first = next(resp.iter_bytes())
            assert first.startswith(b"event: metadata\r\n")
    assert poll(lambda: run_status(http, tid, rid), lambda s: s not in ("pending", "running")) == "interrupted"
    thread = poll(lambda: http.get(f"/threads/{tid}").json(), lambda t: t["status"] != "busy")
    assert thread["status"] == "interrupted"
    assert thread["values"].get("count", 0) < 3
    assert thread["error"] == {
        "error": "UserInterrupt",
        "message": "client disconnected from the run stream (on_disconnect=cancel)",
    }


def test_join_cancel_on_disconnect(base_url: str, http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = start_slow(http, tid, 0.5, stream_mode=["updates"])
    wait_running(http, tid, rid)
    with httpx.Client(base_url=base_url, timeout=30) as own:
        url = f"/threads/{tid}/runs/{rid}/stream?cancel_on_disconnect=true"
        with own.stream("GET", url, headers={"Last-Event-ID": "-"}) as resp:
            assert resp.status_code == 200
            assert next(resp.iter_bytes()).startswith(b"event: ")
    assert poll(lambda: run_status(http, tid, rid), lambda s: s not in ("pending", "running")) == "interrupted"
    assert poll(lambda: thread_status(http, tid), lambda s: s != "busy") == "interrupted"


def test_on_disconnect_continue_is_default(base_url: str, http: httpx.Client) -> None:
    tid = new_thread(http)
    body = {"assistant_id": "slow", "input": {"delay": 0.1}, "stream_mode": ["updates"]}
    with httpx.Client(base_url=base_url, timeout=30) as own:
        with own.stream("POST", f"/threads/{tid}/runs/stream", json=body) as resp:
            rid = resp.headers["content-location"].rsplit("/", 1)[1]
            next(resp.iter_bytes())
    assert poll(lambda: run_status(http, tid, rid), lambda s: s not in ("pending", "running")) == "success"
    assert http.get(f"/threads/{tid}").json()["values"] == {"count": 3, "delay": 0.1}


# ----------------------------------------------------------------------------------------- time travel
def test_fork_from_earlier_checkpoint(http: httpx.Client) -> None:
    tid = new_thread(http)
    done = json.loads(
        http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01}}).content
    )
    assert done == {"count": 3, "delay": 0.01}
    states = history(http, tid)
    assert [s["values"].get("count") for s in states] == [3, 2, 1, None, None]
    at_one = states[2]["checkpoint_id"]
    # No input on a finished thread does nothing; from the count=1 checkpoint it runs the two remaining ticks.
    resp = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "slow", "checkpoint_id": at_one})
    assert json.loads(resp.content) == {"count": 3, "delay": 0.01}
    rid = resp.headers["content-location"].rsplit("/", 1)[1]
    forked = [s for s in history(http, tid) if s["metadata"].get("run_id") == rid]
    assert [s["values"]["count"] for s in forked] == [3, 2, 1]  # the fork copies count=1, then two ticks
    assert forked[-1]["parent_checkpoint"]["checkpoint_id"] == at_one
    assert http.get(f"/threads/{tid}/state").json()["checkpoint"]["checkpoint_id"] == forked[0]["checkpoint_id"]


def test_fork_with_new_input(http: httpx.Client) -> None:
    """Like T:92: new input on the checkpoint that waits at `ask` starts a branch from there."""
    tid = new_thread(http)
    body = {"assistant_id": "interrupt", "input": {"request": "r"}}
    first = json.loads(http.post(f"/threads/{tid}/runs/wait", json=body).content)
    assert first["__interrupt__"][0]["value"] == {"question": "approve r?"}
    resume = {"assistant_id": "interrupt", "command": {"resume": "yes"}}
    assert json.loads(http.post(f"/threads/{tid}/runs/wait", json=resume).content)["result"] == "r -> yes"
    states = history(http, tid)
    assert [s["next"] for s in states] == [[], ["finish"], ["ask"], ["__start__"]]
    at_ask = states[2]["checkpoint_id"]
    body = {"assistant_id": "interrupt", "input": {"request": "forked"}, "checkpoint_id": at_ask}
    resp = http.post(f"/threads/{tid}/runs/wait", json=body)
    forked = json.loads(resp.content)
    assert forked["request"] == "forked"
    assert forked["__interrupt__"][0]["value"] == {"question": "approve forked?"}
    rid = resp.headers["content-location"].rsplit("/", 1)[1]
    branch = [s for s in history(http, tid) if s["metadata"].get("run_id") == rid]
    assert branch[-1]["parent_checkpoint"]["checkpoint_id"] == at_ask
    assert http.get(f"/threads/{tid}/state").json()["next"] == ["ask"]


# ----------------------------------------------------------------------------------------- after_seconds
def test_after_seconds_delays_start(http: httpx.Client) -> None:
    tid = new_thread(http)
    resp = http.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 2}, "after_seconds": 1}
    )
    assert resp.status_code == 200
    run = resp.json()
    assert run["kwargs"]["config"]["configurable"]["__after_seconds__"] == 1
    rid = run["run_id"]
    assert run_status(http, tid, rid) == "pending"
    assert thread_status(http, tid) == "busy"
    assert http.get(f"/threads/{tid}/state").json()["values"] == {}
    assert json.loads(http.get(f"/threads/{tid}/runs/{rid}/join").content) == {"count": 3, "delay": 0.01}
    assert run_status(http, tid, rid) == "success"

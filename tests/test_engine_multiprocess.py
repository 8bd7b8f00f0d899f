"""Several server processes on one Postgres database and one Redis behave as one server.

Two replicas on separate ports (A and B) share a fresh database and a Redis key prefix of their own; the
official `langgraph_sdk` drives them: streams joined and resumed across processes, thread streams, cancels
that cross processes, `reject` and `enqueue` races, a SIGKILLed worker whose run another process resumes, and
a SIGTERM drain; three replicas on one database and Redis. `--processes 2` and the start-up checks are covered
at the end.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.runs_helpers import ANSWER
from tests.server import ROOT, TEST_CONFIG, ServerProcess, free_port
from tests.test_protocol_v2 import AGENT_INPUT, ALL_CHANNELS, command, paused_for_input, read_events, terminal
from tests.waiting import wait_for, wait_for_async

REDIS_URL = "redis://127.0.0.1:6379/0"
FAST_UPKEEP = {"ROBYN_SERVER_HEARTBEAT_SECONDS": "0.3", "ROBYN_SERVER_INSTANCE_TIMEOUT_SECONDS": "3"}


def redis_unreachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"
    return None


@pytest.fixture
def shared_env(postgres_dsn: str) -> dict[str, str]:
    import os

    reason = redis_unreachable()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 (CI) but {reason}")
        pytest.skip(reason)
    return {
        "ROBYN_SERVER_STORAGE": "postgres",
        "DATABASE_URL": postgres_dsn,
        "REDIS_URL": REDIS_URL,
        "ROBYN_SERVER_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:10]}",
        **FAST_UPKEEP,
    }


@pytest.fixture
def replicas(shared_env: dict[str, str]) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    a = ServerProcess(env=shared_env).start()
    b = ServerProcess(env=shared_env).start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def sdks(replicas: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[tuple[Any, Any]]:
    a, b = replicas
    yield get_client(url=a.url), get_client(url=b.url)


SLOW = "slow"


async def test_stream_on_a_join_on_b_with_resume_and_wait(sdks: tuple[Any, Any]) -> None:
    a, b = sdks
    thread = await a.threads.create()
    tid = thread["thread_id"]
    run = await a.runs.create(tid, SLOW, input={"delay": 0.3, "count": 0}, stream_mode=["values"],
                              stream_resumable=True)  # fmt: skip
    joined = [part async for part in b.runs.join_stream(tid, run["run_id"], stream_mode=["values"])]
    values = [p.data["count"] for p in joined if p.event == "values"]
    assert values[-1] == 3, joined
    # the same stream, replayed on B after the first event's id (Last-Event-ID), has no duplicates
    ids = []
    async with httpx.AsyncClient(base_url=b.http.client.base_url, timeout=30) as http:
        async with http.stream("GET", f"/threads/{tid}/runs/{run['run_id']}/stream") as resp:
            async for line in resp.aiter_lines():
                if line.startswith("id: "):
                    ids.append(line[4:])
        assert len(ids) >= 4 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        resumed = []
        async with http.stream("GET", f"/threads/{tid}/runs/{run['run_id']}/stream",
                               headers={"Last-Event-ID": ids[1]}) as resp:  # fmt: skip
            async for line in resp.aiter_lines():
                if line.startswith("id: "):
                    resumed.append(line[4:])
        assert resumed == ids[2:]
    # wait (join) on B for a new run executing on A
    run2 = await a.runs.create(tid, SLOW, input={"delay": 0.2, "count": 0})
    result = await b.runs.join(tid, run2["run_id"])
    assert result["count"] == 3
    assert (await a.runs.get(tid, run2["run_id"]))["status"] == "success"


async def test_thread_stream_on_b_sees_run_on_a(sdks: tuple[Any, Any]) -> None:
    a, b = sdks
    tid = (await a.threads.create())["thread_id"]
    events: list[tuple[str, Any]] = []

    async def follow() -> None:
        async for part in await b.threads.join_stream(tid, last_event_id="-"):
            events.append((part.event, part.data))
            if part.event == "metadata" and isinstance(part.data, dict) and part.data.get("status") == "run_done":
                return

    run = await a.runs.create(tid, SLOW, input={"delay": 0.2, "count": 0})
    # Last-Event-ID "-": everything the thread stream kept, so the follower misses nothing however late it is
    follower = asyncio.create_task(follow())
    await asyncio.wait_for(follower, 60)
    counts = [d["count"] for e, d in events if e == "values"]
    assert counts and counts[-1] == 3
    assert ("metadata", {"status": "run_done", "run_id": run["run_id"]}) in events


def executed_by(dsn: str, run_id: str) -> int:
    """The pid of the process that claimed the run (its `owner` in storage)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT s.pid FROM runs r JOIN server_instances s ON s.instance_id = r.owner "
                           "WHERE r.run_id = %s", (run_id,)).fetchone()  # fmt: skip
    assert row is not None, run_id
    return row[0]


async def until_completed(subscription: Any) -> list[dict[str, Any]]:
    events = []
    async for event in subscription:
        events.append(event)
        if terminal()(events):
            return events
    raise AssertionError(f"the subscription ended after {len(events)} events")


async def test_protocol_v2_streams_show_runs_of_other_processes(
    replicas: tuple[ServerProcess, ServerProcess], postgres_dsn: str, shared_env: dict[str, str]
) -> None:
    """The SDK's thread stream on B (SSE and WebSocket) sees a run started on and executed by A; a reconnect on
    A with `since` replays the same events without duplicates; the thread's next run executes on B and its
    seqs follow on; `input.respond` sent to B answers an interrupt raised by a run on A."""
    a, b = replicas
    assert a.proc is not None and b.proc is not None
    sdk_b = get_client(url=b.url)
    tid = str(uuid.uuid4())
    channels = ["messages", "values", "lifecycle"]
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=30) as on_b,
    ):
        async with (
            sdk_b.threads.stream(tid, assistant_id="agent") as sse,
            sdk_b.threads.stream(tid, assistant_id="agent", transport="websocket") as ws,
        ):
            followers = [asyncio.create_task(until_completed(t.subscribe(channels))) for t in (sse, ws)]
            started = await command(on_a, tid, "run.start", {"assistant_id": "agent", "input": AGENT_INPUT})
            seen_on_b = await asyncio.wait_for(asyncio.gather(*followers), 60)
        run_id = started["result"]["run_id"]
        assert executed_by(postgres_dsn, run_id) == a.proc.pid
        everything = await read_events(on_a, tid, {"channels": ALL_CHANNELS}, terminal())
        assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
        for events in seen_on_b:  # B's events are A's, with the same seq and event_id
            assert events == [e for e in everything if e["method"] in channels], events
            deltas = [e["params"]["data"] for e in events if e["method"] == "messages"]
            text = [d["delta"]["text"] for d in deltas if d["event"] == "content-block-delta"
                    and d["delta"]["type"] == "text-delta"]  # fmt: skip
            assert "".join(text) == ANSWER and len(text) == 6
            root = [e["params"]["data"]["event"] for e in events if e["method"] == "lifecycle"
                    and not e["params"]["namespace"]]  # fmt: skip
            assert root == ["running", "completed"]
            last_values = [e for e in events if e["method"] == "values"][-1]["params"]["data"]
            assert [m["type"] for m in last_values["messages"]] == ["human", "ai", "tool", "ai"]
        cut = everything[len(everything) // 2]["seq"]
        again = await read_events(on_a, tid, {"channels": ALL_CHANNELS, "since": cut}, terminal())
        assert again == [e for e in everything if e["seq"] > cut]

        # the thread's next run, started on B, executes there: its events follow on from A's
        last = everything[-1]["seq"]
        started = await command(on_b, tid, "run.start", {"assistant_id": "agent", "input": AGENT_INPUT}, id_=2)
        assert started["meta"] == {"applied_through_seq": last}
        second = await read_events(on_a, tid, {"channels": ALL_CHANNELS, "since": last}, terminal())
        assert executed_by(postgres_dsn, started["result"]["run_id"]) == b.proc.pid
        assert [e["seq"] for e in second] == list(range(last + 1, last + 1 + len(second)))
        import redis

        stream = f"{shared_env['ROBYN_SERVER_REDIS_PREFIX']}:v2:{tid}"
        with redis.Redis.from_url(REDIS_URL) as r:  # one stream per thread, expiring like the thread streams
            assert r.xlen(stream) == second[-1]["seq"] and 0 < r.ttl(stream) <= 3600

        # an interrupt raised on A, answered on B
        tid = str(uuid.uuid4())
        started = await command(on_a, tid, "run.start", {"assistant_id": "interrupt", "input": {"request": "deploy"}})
        paused = await read_events(on_b, tid, {"channels": ["input", "lifecycle"]}, paused_for_input)
        assert executed_by(postgres_dsn, started["result"]["run_id"]) == a.proc.pid
        interrupt_id = next(e for e in paused if e["method"] == "input.requested")["params"]["data"]["interrupt_id"]
        answered = await command(on_b, tid, "input.respond", {"interrupt_id": interrupt_id, "response": "yes"}, id_=2)
        assert answered["type"] == "success", answered
        await read_events(on_a, tid, {"channels": ["lifecycle"]}, terminal())
        assert (await on_a.get(f"/threads/{tid}/state")).json()["values"]["result"] == "deploy -> yes"


async def test_cancel_on_b_stops_a_run_on_a(sdks: tuple[Any, Any]) -> None:
    a, b = sdks
    tid = (await a.threads.create())["thread_id"]
    run = await a.runs.create(tid, SLOW, input={"delay": 30, "count": 0})
    await wait_for_async(lambda: _status_is(a, tid, run["run_id"], "running"), "the run to start on A")
    await b.runs.cancel(tid, run["run_id"], wait=True)
    assert (await a.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    thread = await wait_for_async(lambda: _thread_settled(a, tid), "the thread to leave busy")
    assert thread["status"] in ("idle", "interrupted")


async def _status_is(client: Any, tid: str, rid: str, status: str) -> bool:
    return (await client.runs.get(tid, rid))["status"] == status


async def _thread_settled(client: Any, tid: str) -> Any:
    thread = await client.threads.get(tid)
    return thread if thread["status"] != "busy" else None


async def test_reject_on_two_processes_accepts_exactly_one(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = replicas
    async with httpx.AsyncClient(base_url=a.url, timeout=60) as ha, httpx.AsyncClient(base_url=b.url, timeout=60) as hb:
        for _ in range(100):
            tid = (await ha.post("/threads", json={})).json()["thread_id"]
            answers = await asyncio.gather(
                ha.post(f"/threads/{tid}/runs", json=REJECTING), hb.post(f"/threads/{tid}/runs", json=REJECTING)
            )
            await _one_accepted_then_cancel(ha, tid, answers)


# A run that outlasts any skew between the racing requests (a busy machine may delay one by seconds): the
# accepted one is cancelled once the race is decided.
REJECTING = {"assistant_id": SLOW, "input": {"delay": 30, "count": 2}, "multitask_strategy": "reject"}


async def _one_accepted_then_cancel(http: httpx.AsyncClient, tid: str, answers: list[httpx.Response]) -> None:
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * (len(answers) - 1), [r.text for r in answers]
    (accepted,) = [r.json() for r in answers if r.status_code == 200]
    cancel = await http.post(f"/threads/{tid}/runs/{accepted['run_id']}/cancel")
    assert cancel.status_code in (200, 202, 204), cancel.text


async def test_enqueue_keeps_order_across_processes(sdks: tuple[Any, Any]) -> None:
    a, b = sdks
    tid = (await a.threads.create())["thread_id"]
    made = []
    for i in range(6):
        client = a if i % 2 == 0 else b
        made.append(await client.runs.create(tid, SLOW, input={"delay": 0.05, "count": 2},
                                             multitask_strategy="enqueue"))  # fmt: skip
    for run in made:
        await b.runs.join(tid, run["run_id"])
    runs = await a.runs.list(tid, limit=20)
    assert all(r["status"] == "success" for r in runs)
    # each run started only after the one before it ended: the thread's checkpoints say who ran when
    history = await a.threads.get_history(tid, limit=100)
    order = []
    for state in reversed(history):
        rid = (state.get("metadata") or {}).get("run_id")
        if rid and (not order or order[-1] != rid):
            order.append(rid)
    assert order == [r["run_id"] for r in made]


async def _values(stream: Any) -> list[Any]:
    return [part.data["count"] async for part in stream if part.event == "values"]


async def test_three_replicas_behave_as_one(shared_env: dict[str, str]) -> None:
    """Each replica's run is streamed on a second and waited for on a third; a cancel sent to one replica
    stops a run executing on another while the third waits for it; `reject` raced on all three accepts one."""
    servers = [ServerProcess(env=shared_env).start() for _ in range(3)]
    try:
        clients = [get_client(url=s.url) for s in servers]
        for i, origin in enumerate(clients):
            streamer, waiter = clients[(i + 1) % 3], clients[(i + 2) % 3]
            tid = (await origin.threads.create())["thread_id"]
            run = await origin.runs.create(tid, SLOW, input={"delay": 0.2, "count": 0}, stream_mode=["values"],
                                           stream_resumable=True)  # fmt: skip
            streamed, waited = await asyncio.gather(
                _values(streamer.runs.join_stream(tid, run["run_id"], stream_mode=["values"])),
                waiter.runs.join(tid, run["run_id"]),
            )
            assert streamed[-1] == 3 and waited["count"] == 3, (i, streamed, waited)

        a, b, c = clients
        tid = (await a.threads.create())["thread_id"]
        run = await a.runs.create(tid, SLOW, input={"delay": 30, "count": 0})
        await wait_for_async(lambda: _status_is(b, tid, run["run_id"], "running"), "the run to start on A")
        waiting = asyncio.create_task(b.runs.join(tid, run["run_id"]))
        await c.runs.cancel(tid, run["run_id"], wait=True)
        await asyncio.wait_for(waiting, 60)
        assert (await b.runs.get(tid, run["run_id"]))["status"] == "interrupted"
        await wait_for_async(lambda: _thread_settled(c, tid), "the thread to leave busy")

        for _ in range(10):
            tid = (await a.threads.create())["thread_id"]
            answers = await asyncio.gather(
                *(client.http.client.post(f"/threads/{tid}/runs", json=REJECTING) for client in clients)
            )
            await _one_accepted_then_cancel(clients[0].http.client, tid, answers)
    finally:
        for server in servers:
            server.stop()


def _slow_run_running(http: httpx.Client, delay: float) -> tuple[str, str]:
    """A new thread with a `slow` run on it (a step every `delay` seconds), once the run is `running`."""
    tid = http.post("/threads", json={}).json()["thread_id"]
    rid = http.post(f"/threads/{tid}/runs", json={"assistant_id": SLOW,
                    "input": {"delay": delay, "count": 0}}).json()["run_id"]  # fmt: skip
    wait_for(lambda: http.get(f"/threads/{tid}/runs/{rid}").json()["status"] == "running", "the run to start")
    return tid, rid


def test_sigkill_of_the_worker_resumes_the_run_elsewhere(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    victim, survivor = replicas
    with httpx.Client(base_url=victim.url, timeout=30) as on_victim:
        tid = on_victim.post("/threads", json={}).json()["thread_id"]
        rid = on_victim.post(f"/threads/{tid}/runs", json={"assistant_id": SLOW,
                             "input": {"delay": 1.0, "count": 0}}).json()["run_id"]  # fmt: skip
        # wait for the first checkpoint of the run (one tick done), then kill the process running it
        wait_for(lambda: (on_victim.get(f"/threads/{tid}/state").json().get("values") or {}).get("count") == 1,
                 "the first step of the run")  # fmt: skip
    victim.stop(signal.SIGKILL)
    with httpx.Client(base_url=survivor.url, timeout=30) as http:
        run = wait_for(lambda: (r := http.get(f"/threads/{tid}/runs/{rid}").json())["status"] == "success" and r,
                       "the run to finish on the survivor")  # fmt: skip
        assert run["kwargs"]["config"]["metadata"]["run_attempt"] == 2
        thread = wait_for(lambda: (t := http.get(f"/threads/{tid}").json())["status"] == "idle" and t, "idle")
        assert thread["values"]["count"] == 3  # resumed from its checkpoint: the first step did not run again


def test_cancel_on_b_of_a_run_whose_process_was_killed(shared_env: dict[str, str]) -> None:
    # no upkeep pass during the test: only the cancel itself can take the run over
    env = {**shared_env, "ROBYN_SERVER_HEARTBEAT_SECONDS": "600"}
    victim, survivor = ServerProcess(env=env).start(), ServerProcess(env=env).start()
    pool = ThreadPoolExecutor(1)
    try:
        with httpx.Client(base_url=victim.url, timeout=30) as on_victim:
            tid, rid = _slow_run_running(on_victim, 30)
        victim.stop(signal.SIGKILL)
        with httpx.Client(base_url=survivor.url, timeout=30) as http:
            # a reader joining on B as the cancel lands: its stream (the dead worker's events, via Redis) ends
            joined = pool.submit(http.get, f"/threads/{tid}/runs/{rid}/stream", headers={"Last-Event-ID": "-"})
            assert http.post(f"/threads/{tid}/runs/{rid}/cancel").status_code == 202
            assert http.get(f"/threads/{tid}/runs/{rid}").json()["status"] == "interrupted"  # at once
            assert http.get(f"/threads/{tid}").json()["status"] in ("idle", "interrupted")
            ended = joined.result(timeout=30)
            assert ended.status_code == 200 and "event: metadata" in ended.text
            follow = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": SLOW,
                               "input": {"delay": 0.01, "count": 0}})  # fmt: skip
            assert follow.status_code == 200 and follow.json()["count"] == 3
    finally:
        victim.stop()
        survivor.stop()  # ends a join left open by a failure above, so the pool's thread returns
        pool.shutdown()


def test_sigterm_drains_running_runs(shared_env: dict[str, str]) -> None:
    env = {**shared_env, "ROBYN_SERVER_SHUTDOWN_GRACE_SECONDS": "30"}
    a = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=a.url, timeout=30) as http:
            tid, rid = _slow_run_running(http, 0.5)
        assert a.stop(signal.SIGTERM, timeout=60) == 0
        b = ServerProcess(env=env).start()
        try:
            with httpx.Client(base_url=b.url, timeout=30) as http:
                run = http.get(f"/threads/{tid}/runs/{rid}").json()
                assert run["status"] == "success"  # finished within the grace period, before the exit
                assert http.get(f"/threads/{tid}").json()["status"] == "idle"
        finally:
            b.stop()
    finally:
        a.stop()


def test_sigterm_hands_long_runs_back_to_the_queue(shared_env: dict[str, str]) -> None:
    env = {**shared_env, "ROBYN_SERVER_SHUTDOWN_GRACE_SECONDS": "0.5"}
    a = ServerProcess(env=env).start()
    b = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=a.url, timeout=30) as http:
            tid, rid = _slow_run_running(http, 1.5)
        assert a.stop(signal.SIGTERM, timeout=60) == 0
        with httpx.Client(base_url=b.url, timeout=30) as http:
            run = wait_for(lambda: (r := http.get(f"/threads/{tid}/runs/{rid}").json())["status"] == "success" and r,
                           "the run to finish on the other process")  # fmt: skip
            assert run["kwargs"]["config"]["metadata"]["run_attempt"] == 2
    finally:
        a.stop()
        b.stop()


def test_two_processes_on_one_port(shared_env: dict[str, str]) -> None:
    server = ServerProcess(env={**shared_env, "ROBYN_SERVER_PROCESSES": "2"}).start(timeout=120)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            results = [
                http.post(
                    f"/threads/{tid}/runs/wait",
                    json={"assistant_id": SLOW, "input": {"delay": 0.01, "count": 0}, "multitask_strategy": "enqueue"},
                ).json()  # fmt: skip
                for _ in range(4)
            ]
            assert [r["count"] for r in results] == [3, 3, 3, 3]
        import psutil

        children = psutil.Process(server.proc.pid).children()  # type: ignore[union-attr]
        assert len(children) == 2
    finally:
        server.stop()


def _start_error(env: dict[str, str], *args: str) -> list[str]:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "robyn_server", "--config", str(TEST_CONFIG), "--port", str(free_port()), *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_several_processes_need_postgres_and_redis(tmp_path: Any) -> None:
    lines = _start_error({"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(tmp_path / "x.db"),
                          "REDIS_URL": ""}, "--processes", "2")  # fmt: skip
    assert len(lines) == 1 and "DATABASE_URL" in lines[0] and "REDIS_URL" in lines[0], lines


def test_unreachable_redis_stops_the_start(tmp_path: Any) -> None:
    lines = _start_error({"ROBYN_SERVER_STORAGE": "sqlite", "ROBYN_SERVER_SQLITE_PATH": str(tmp_path / "x.db"),
                          "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})  # fmt: skip
    assert len(lines) == 1 and "REDIS_URL" in lines[0], lines


def test_api_and_worker_roles(shared_env: dict[str, str]) -> None:
    """The api process executes nothing: the worker (no HTTP) picks the run up, as its creator, with the
    creator's token handed over by the api process (never stored)."""
    import hashlib
    import os

    from tests.test_auth_support import JWT_ENV, bearer, hs256

    config = ROOT / "tests" / "graphs" / "langgraph.auth_identity.json"
    env = {**shared_env, **JWT_ENV}
    api = ServerProcess(config=config, env={**env, "ROBYN_SERVER_ROLE": "api"}).start()
    worker_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    worker = subprocess.Popen(
        [sys.executable, "-m", "robyn_server", "--config", str(config), "--role", "worker"],
        cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    identity = f"carol-{uuid.uuid4().hex[:6]}"
    token = hs256(identity)
    try:
        with httpx.Client(base_url=api.url, timeout=120, headers=bearer(token)) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            result = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "whoami", "input": {"messages": []}})
            assert result.status_code == 200, result.text
            seen = result.json()["seen"]
            assert seen["node"] == seen["async_tool"] == identity, seen
            assert seen["config_token_matches"] is True, seen
            assert seen["config_token_sha256"] == hashlib.sha256(token.encode()).hexdigest(), seen
            assert token not in result.text
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        api.stop()


class OwnRedis:
    """A redis-server of this test's own on a free port, so it can be stopped without touching the shared one."""

    def __init__(self) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OwnRedis:
        import redis

        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(up, "redis-server to answer")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_redis_lost_while_serving_answers_503_and_recovers(shared_env: dict[str, str]) -> None:
    own = OwnRedis().start()
    server = ServerProcess(env={**shared_env, "REDIS_URL": own.url}).start()
    run_body = {"assistant_id": SLOW, "input": {"delay": 0.01, "count": 0}}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            tid = http.post("/threads", json={}).json()["thread_id"]
            assert http.post(f"/threads/{tid}/runs/wait", json=run_body).json()["count"] == 3
            assert http.get("/ok", params={"check_db": "1"}).json()["redis"] == {"ok": True}
            own.stop()
            not_ready = http.get("/ok", params={"check_db": "1"})  # readiness names Redis
            assert not_ready.status_code == 503 and not_ready.json()["redis"]["ok"] is False, not_ready.text
            assert not_ready.json()["detail"].startswith("Redis unavailable")
            refused = http.post(f"/threads/{tid}/runs/stream", json=run_body)
            assert refused.status_code == 503, refused.text
            assert "Redis" in refused.json()["detail"]
            # protocol v2 too: a thread event stream and a command are refused before anything starts
            v2_stream = http.post(f"/threads/{tid}/stream/events", json={"channels": ["values"]})
            v2_command = http.post(f"/threads/{tid}/commands", json={"id": 1, "method": "run.start",
                                                                     "params": {"assistant_id": SLOW}})  # fmt: skip
            for v2 in (v2_stream, v2_command):
                assert v2.status_code == 503 and "Redis" in v2.json()["detail"], v2.text
            # nothing stored is lost: the thread, its state and its finished run are all still there
            assert http.get(f"/threads/{tid}").json()["values"]["count"] == 3
            runs = http.get(f"/threads/{tid}/runs").json()
            assert [r["status"] for r in runs] == ["success"]
            own.start()  # the same port: service resumes

            def streams_again() -> Any:
                resp = http.post(f"/threads/{tid}/runs/wait", json=run_body)
                return resp.status_code == 200 and resp.json()

            assert wait_for(streams_again, "runs to work again after Redis is back")["count"] == 3
            assert http.get("/ok", params={"check_db": "1"}).status_code == 200  # ready again
    finally:
        server.stop()
        own.stop()


async def test_a_stateless_runs_thread_streams_leave_redis_with_it(
    sdks: tuple[Any, Any], shared_env: dict[str, str]
) -> None:
    """A stateless run's temporary thread is deleted when the run ends, and so are its Redis thread streams (a
    copy of every event of the run, which used to stay for an hour); the run's own stream, not resumable, expires
    5 s after its end, a resumable one after RESUMABLE_STREAM_TTL_SECONDS."""
    import redis

    a, _ = sdks
    prefix = shared_env["ROBYN_SERVER_REDIS_PREFIX"]
    parts = [p async for p in a.runs.stream(None, SLOW, input={"delay": 0.05, "count": 0}, stream_mode=["values"])]
    assert [p.data["count"] for p in parts if p.event == "values"][-1] == 3
    with redis.Redis.from_url(REDIS_URL) as r:

        def keys(kind: str) -> list[bytes]:
            return list(r.scan_iter(f"{prefix}:{kind}:*"))

        wait_for(lambda: not keys("thread") and not keys("v2"), "the temporary thread's streams to be deleted")
        runs = keys("run")
        assert len(runs) == 1 and 0 < r.ttl(runs[0]) <= 5  # not resumable: kept as briefly as in-process
        # a resumable run's stream stays joinable for RESUMABLE_STREAM_TTL_SECONDS (120 by default)
        tid = (await a.threads.create())["thread_id"]
        run = await a.runs.create(tid, SLOW, input={"delay": 0.05, "count": 0}, stream_resumable=True)
        await a.runs.join(tid, run["run_id"])
        key = f"{prefix}:run:{run['run_id']}"
        assert 5 < wait_for(lambda: (t := r.ttl(key)) > 0 and t, "the run's stream to get its expiry") <= 120

"""Two server processes on one fresh Postgres database see each other's threads, runs, state and store; and
concurrent clients on one thread never corrupt it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.server import ServerProcess

AGENT_RUN = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather?"}]}}


@pytest.fixture
def two_servers(postgres_dsn: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    env = {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": postgres_dsn}
    first = ServerProcess(env=env).start()
    second = ServerProcess(env=env).start()
    try:
        with (
            httpx.Client(base_url=first.url, timeout=60) as a,
            httpx.Client(base_url=second.url, timeout=60) as b,
        ):
            yield a, b
    finally:
        first.stop()
        second.stop()


def test_two_processes_share_threads_runs_state_and_store(two_servers: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = two_servers
    tid = a.post("/threads", json={"metadata": {"made_on": "a"}}).json()["thread_id"]
    assert b.get(f"/threads/{tid}").json()["metadata"] == {"made_on": "a"}
    # a run made on B is visible, with its state, on A
    result = b.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN).json()
    assert result["messages"][-1]["content"] == "The weather in sf is sunny."
    runs_on_a = a.get(f"/threads/{tid}/runs").json()
    assert [r["status"] for r in runs_on_a] == ["success"]
    assert a.get(f"/threads/{tid}/runs/{runs_on_a[0]['run_id']}").json()["thread_id"] == tid
    assert a.get(f"/threads/{tid}/state").json()["values"] == b.get(f"/threads/{tid}/state").json()["values"]
    assert a.get(f"/threads/{tid}").json()["status"] == "idle"
    # a second run on A continues the history B wrote
    more = a.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN).json()
    assert len(more["messages"]) > len(result["messages"])
    assert [r["status"] for r in b.get(f"/threads/{tid}/runs").json()] == ["success", "success"]
    # search, count, store and assistants agree
    made_on_b = b.post("/threads", json={"metadata": {"made_on": "b"}}).json()["thread_id"]
    for client in (a, b):
        found = client.post("/threads/search", json={"metadata": {"made_on": "b"}}).json()
        assert [t["thread_id"] for t in found] == [made_on_b]
        assert client.post("/threads/count", json={}).json() == 2
    assert a.put("/store/items", json={"namespace": ["shared"], "key": "k", "value": {"v": 1}}).status_code == 204
    assert b.get("/store/items", params={"namespace": "shared", "key": "k"}).json()["value"] == {"v": 1}
    custom = a.post("/assistants", json={"graph_id": "agent", "name": "on-a"}).json()
    assert b.get(f"/assistants/{custom['assistant_id']}").json()["name"] == "on-a"
    # deleting on one process removes it for the other
    assert b.delete(f"/threads/{tid}").status_code == 204
    assert a.get(f"/threads/{tid}").status_code == 404


def test_second_process_start_leaves_the_first_ones_runs_alone(
    two_servers: tuple[httpx.Client, httpx.Client], postgres_dsn: str
) -> None:
    a, _ = two_servers
    tid = a.post("/threads", json={}).json()["thread_id"]
    rid = a.post(f"/threads/{tid}/runs", json={"assistant_id": "slow", "input": {"delay": 2.0, "count": 0}}).json()[
        "run_id"
    ]
    third = ServerProcess(env={"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": postgres_dsn}).start()
    try:
        with httpx.Client(base_url=third.url, timeout=60) as c:
            assert c.get(f"/threads/{tid}/runs/{rid}").json()["status"] in ("pending", "running")
            joined = a.get(f"/threads/{tid}/runs/{rid}/join").json()
            assert joined["count"] == 3
            assert c.get(f"/threads/{tid}/runs/{rid}").json()["status"] == "success"
            assert c.get(f"/threads/{tid}").json()["status"] == "idle"
    finally:
        third.stop()


def test_two_clients_queueing_runs_on_one_thread_never_corrupt_it(http: httpx.Client, base_url: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    per_client = 5

    def client_runs(_: int) -> list[int]:
        with httpx.Client(base_url=base_url, timeout=60) as own:
            codes = []
            for _ in range(per_client):
                resp = own.post(
                    f"/threads/{tid}/runs",
                    json={"assistant_id": "slow", "input": {"delay": 0.01}, "multitask_strategy": "enqueue"},
                )
                codes.append(resp.status_code)
                own.patch(f"/threads/{tid}", json={"metadata": {"last": "x"}})
            return codes

    with ThreadPoolExecutor(2) as pool:
        codes = [c for batch in pool.map(client_runs, range(2)) for c in batch]
    assert codes == [200] * (2 * per_client)
    runs = http.get(f"/threads/{tid}/runs", params={"limit": 100}).json()
    for r in runs:
        http.get(f"/threads/{tid}/runs/{r['run_id']}/join")
    runs = http.get(f"/threads/{tid}/runs", params={"limit": 100}).json()
    assert [r["status"] for r in runs] == ["success"] * (2 * per_client)
    # runs never overlapped: each one added exactly its increments on top of the previous one
    state = http.get(f"/threads/{tid}/state").json()
    assert state["values"]["count"] == 3 + (2 * per_client - 1)
    history = http.post(f"/threads/{tid}/history", json={"limit": 1000}).json()
    for newer, older in zip(history, history[1:], strict=False):
        assert newer["parent_checkpoint"]["checkpoint_id"] == older["checkpoint_id"]
    thread = http.get(f"/threads/{tid}").json()
    assert thread["status"] == "idle" and thread["values"] == state["values"]
    assert thread["metadata"]["last"] == "x" and thread["metadata"]["graph_id"] == "slow"

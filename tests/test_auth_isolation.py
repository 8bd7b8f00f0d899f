"""Per-user isolation with Supabase JWTs and the built-in owner policy: for two users, on every route family
(assistants, threads, runs through their thread, store), another user's resource answers exactly like a missing
one and searches and counts show only one's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.server import ServerProcess
from tests.test_auth_support import JWT_ENV, bearer, hs256

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess(env={**JWT_ENV, "ROBYN_SERVER_STORAGE": "memory"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def alice(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer(hs256(f"alice-{uuid.uuid4().hex[:6]}"))) as c:
        yield c


@pytest.fixture(scope="module")
def bob(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer(hs256(f"bob-{uuid.uuid4().hex[:6]}"))) as c:
        yield c


def _same_as_missing(client: httpx.Client, method: str, path: str, real_id: str, body: object = None) -> None:
    """`client` gets for `real_id` exactly what it gets for an id that does not exist."""
    theirs = client.request(method, path.format(id=real_id), json=body)
    missing = client.request(method, path.format(id=MISSING), json=body)
    assert theirs.status_code == missing.status_code, (method, path, theirs.text, missing.text)
    assert theirs.status_code in (404, 200), (method, path, theirs.status_code, theirs.text)
    assert theirs.text.replace(real_id, MISSING) == missing.text, (method, path, theirs.text, missing.text)


def test_threads_are_private(alice: httpx.Client, bob: httpx.Client) -> None:
    thread = alice.post("/threads", json={"metadata": {"topic": "secret", "owner": "someone-else"}}).json()
    tid = thread["thread_id"]
    assert thread["metadata"]["owner"] != "someone-else"  # the owner is stamped, not chosen by the client
    assert alice.get(f"/threads/{tid}").status_code == 200
    for method, path, body in (
        ("GET", "/threads/{id}", None),
        ("PATCH", "/threads/{id}", {"metadata": {"x": 1}}),
        ("POST", "/threads/{id}/copy", None),
        ("GET", "/threads/{id}/state", None),
        ("POST", "/threads/{id}/state", {"values": {"messages": []}}),
        ("GET", "/threads/{id}/history", None),
        ("POST", "/threads/{id}/history", {"limit": 5}),
        ("GET", "/threads/{id}/runs", None),
        ("DELETE", "/threads/{id}", None),
    ):
        _same_as_missing(bob, method, path, tid, body)
    assert bob.get(f"/threads/{tid}/stream").status_code == 404
    assert bob.post("/threads/search", json={"metadata": {"topic": "secret"}}).json() == []
    assert bob.post("/threads/count", json={}).json() == 0
    assert [t["thread_id"] for t in alice.post("/threads/search", json={"metadata": {"topic": "secret"}}).json()] == [
        tid
    ]
    assert alice.post("/threads/count", json={"metadata": {"topic": "secret"}}).json() == 1
    # claiming someone's thread by patching owner does not work
    patched = alice.patch(f"/threads/{tid}", json={"metadata": {"owner": "bob"}}).json()
    assert patched["metadata"]["owner"] == thread["metadata"]["owner"]
    # creating with another user's thread id does not reveal or return it
    clash = bob.post("/threads", json={"thread_id": tid, "if_exists": "do_nothing"})
    assert clash.status_code == 403 and "exists" not in clash.text
    assert bob.post("/threads/prune", json={"thread_ids": [tid], "strategy": "delete"}).json()["pruned_count"] == 0
    assert alice.get(f"/threads/{tid}").status_code == 200


def test_runs_are_private_through_their_thread(alice: httpx.Client, bob: httpx.Client) -> None:
    tid = alice.post("/threads", json={}).json()["thread_id"]
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    done = alice.post(f"/threads/{tid}/runs/wait", json=body)
    assert done.status_code == 200, done.text
    run_id = alice.get(f"/threads/{tid}/runs").json()[0]["run_id"]
    assert alice.get(f"/threads/{tid}/runs/{run_id}").status_code == 200
    for path in ("/threads/{id}/runs/wait", "/threads/{id}/runs", "/threads/{id}/runs/stream"):
        _same_as_missing(bob, "POST", path, tid, body)
    for method, path in (
        ("GET", f"/threads/{tid}/runs/{{id}}"),
        ("DELETE", f"/threads/{tid}/runs/{{id}}"),
        ("GET", f"/threads/{tid}/runs/{{id}}/join"),
        ("GET", f"/threads/{tid}/runs/{{id}}/stream"),
        ("POST", f"/threads/{tid}/runs/{{id}}/cancel"),
    ):
        _same_as_missing(bob, method, path, run_id)
    cancel = bob.post("/runs/cancel", json={"thread_id": tid, "run_ids": [run_id]})
    assert cancel.status_code == 404
    # bob's own stateless run works and its thread is his
    mine = bob.post("/runs/wait", json=body)
    assert mine.status_code == 200
    assert all(t["metadata"]["owner"].startswith("bob-") for t in bob.post("/threads/search", json={}).json())


def test_assistants_are_private(alice: httpx.Client, bob: httpx.Client) -> None:
    created = alice.post("/assistants", json={"graph_id": "agent", "name": "mine", "metadata": {"tag": "a"}})
    assert created.status_code == 200, created.text
    aid = created.json()["assistant_id"]
    assert created.json()["metadata"]["owner"].startswith("alice-")
    for method, path, body in (
        ("GET", "/assistants/{id}", None),
        ("PATCH", "/assistants/{id}", {"name": "stolen"}),
        ("GET", "/assistants/{id}/graph", None),
        ("GET", "/assistants/{id}/schemas", None),
        ("GET", "/assistants/{id}/subgraphs", None),
        ("POST", "/assistants/{id}/versions", {}),
        ("POST", "/assistants/{id}/latest", {"version": 1}),
        ("DELETE", "/assistants/{id}", None),
    ):
        _same_as_missing(bob, method, path, aid, body)
    assert bob.post("/assistants/search", json={"metadata": {"tag": "a"}}).json() == []
    assert bob.post("/assistants/count", json={"metadata": {"tag": "a"}}).json() == 0
    assert alice.post("/assistants/count", json={"metadata": {"tag": "a"}}).json() == 1
    # the graph's system assistant is shared and read-only
    system = bob.post("/assistants/search", json={"graph_id": "agent"}).json()
    assert [a["metadata"].get("created_by") for a in system] == ["system"]
    assert bob.get(f"/assistants/{system[0]['assistant_id']}").status_code == 200
    assert bob.patch(f"/assistants/{system[0]['assistant_id']}", json={"name": "x"}).status_code == 404
    # running on someone else's assistant: as if it did not exist
    tid = bob.post("/threads", json={}).json()["thread_id"]
    run = bob.post(f"/threads/{tid}/runs/wait", json={"assistant_id": aid, "input": {"messages": []}})
    assert (run.status_code, run.json()) == (404, {"detail": "Thread or assistant not found."})
    assert alice.get(f"/assistants/{aid}").status_code == 200


def test_store_is_scoped_to_the_users_namespace(alice: httpx.Client, bob: httpx.Client) -> None:
    alice_id = alice.post("/threads", json={}).json()["metadata"]["owner"]
    bob_id = bob.post("/threads", json={}).json()["metadata"]["owner"]
    assert (
        alice.put("/store/items", json={"namespace": [alice_id, "notes"], "key": "k", "value": {"v": 1}}).status_code
        == 204
    )
    assert (
        bob.put("/store/items", json={"namespace": [bob_id, "notes"], "key": "k", "value": {"v": 2}}).status_code == 204
    )
    assert alice.get("/store/items", params={"namespace": f"{alice_id}.notes", "key": "k"}).json()["value"] == {"v": 1}
    refused = [
        bob.get("/store/items", params={"namespace": f"{alice_id}.notes", "key": "k"}),
        bob.put("/store/items", json={"namespace": [alice_id, "notes"], "key": "k", "value": {}}),
        bob.request("DELETE", "/store/items", json={"namespace": [alice_id, "notes"], "key": "k"}),
        bob.post("/store/items/search", json={"namespace_prefix": [alice_id]}),
        bob.post("/store/namespaces", json={"prefix": [alice_id]}),
        bob.put("/store/items", json={"namespace": ["shared"], "key": "k", "value": {}}),
    ]
    assert [(r.status_code, r.json()) for r in refused] == [(404, {"detail": "Not Found"})] * len(refused)
    found = bob.post("/store/items/search", json={"namespace_prefix": []}).json()["items"]
    assert [i["namespace"] for i in found] == [[bob_id, "notes"]]
    assert bob.post("/store/namespaces", json={}).json()["namespaces"] == [[bob_id, "notes"]]
    assert alice.get("/store/items", params={"namespace": f"{alice_id}.notes", "key": "k"}).json()["value"] == {"v": 1}


@pytest.mark.parametrize("kind", ["threads", "assistants"])
def test_creating_with_another_users_id_does_not_say_it_exists(
    alice: httpx.Client, bob: httpx.Client, kind: str
) -> None:
    id_key = "thread_id" if kind == "threads" else "assistant_id"
    extra = {} if kind == "threads" else {"graph_id": "agent"}
    theirs = alice.post(f"/{kind}", json={"metadata": {"secret": "alice's"}, **extra}).json()[id_key]
    assert alice.post(f"/{kind}", json={id_key: theirs, **extra}).status_code == 409  # one's own id: a conflict
    for if_exists in ("raise", "do_nothing"):
        response = bob.post(f"/{kind}", json={id_key: theirs, "if_exists": if_exists, **extra})
        assert response.status_code == 403, response.text
        assert "exists" not in response.text and "alice's" not in response.text
    assert alice.get(f"/{kind}/{theirs}").json()["metadata"]["secret"] == "alice's"

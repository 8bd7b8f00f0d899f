"""Crons under auth (Supabase JWTs, built-in owner policy): a cron belongs to its creator, another user sees
it exactly as a missing one, and its runs execute as the creator on threads the creator owns."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.cron_helpers import runs_of, tagged_threads, wait_for
from tests.server import ROOT, ServerProcess
from tests.test_auth_support import JWT_ENV, bearer, hs256

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess(env={**JWT_ENV, "ROBYN_SERVER_STORAGE": "memory"})
    proc.start()
    yield proc
    proc.stop()


def _client(server: ServerProcess, name: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, headers=bearer(hs256(name)))


def test_crons_belong_to_their_creator(server: ServerProcess) -> None:
    alice_id, bob_id = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    with _client(server, alice_id) as alice, _client(server, bob_id) as bob:
        assert httpx.post(f"{server.url}/runs/crons", json={"assistant_id": "agent", "schedule": "* * * * *"}
                          ).status_code == 401  # fmt: skip
        mark = uuid.uuid4().hex
        cron = alice.post("/runs/crons", json={
            "assistant_id": "slow", "schedule": "* * * * * *", "input": {"delay": 0.01},
            "metadata": {"tag": mark, "owner": bob_id}, "on_run_completed": "keep",
        }).json()  # fmt: skip
        assert cron["user_id"] == alice_id and cron["metadata"]["owner"] == alice_id  # stamped, not chosen
        cid = cron["cron_id"]
        for method, path, body in (
            ("GET", "/runs/crons/{id}", None),
            ("PATCH", "/runs/crons/{id}", {"enabled": False}),
            ("DELETE", "/runs/crons/{id}", None),
        ):
            theirs = bob.request(method, path.format(id=cid), json=body)
            missing = bob.request(method, path.format(id=MISSING), json=body)
            assert theirs.status_code == missing.status_code == 404, (method, theirs.text)
            assert theirs.text.replace(cid, MISSING) == missing.text
        assert bob.post("/runs/crons/search", json={}).json() == []
        assert bob.post("/runs/crons/count", json={}).json() == 0
        assert [c["cron_id"] for c in alice.post("/runs/crons/search", json={}).json()] == [cid]
        assert alice.post("/runs/crons/count", json={}).json() == 1
        # nobody puts a cron on another user's thread
        thread = alice.post("/threads", json={}).json()
        refused = bob.post(f"/threads/{thread['thread_id']}/runs/crons",
                           json={"assistant_id": "agent", "schedule": "* * * * *"})  # fmt: skip
        assert refused.status_code == 404
        # the runs execute as alice, on threads alice owns and bob cannot see
        threads = wait_for(lambda: tagged_threads(alice, mark), "a run of alice's cron")
        assert alice.patch(f"/runs/crons/{cid}", json={"enabled": False}).json()["enabled"] is False
        first = threads[-1]
        assert first["metadata"]["owner"] == alice_id
        run = wait_for(lambda: runs_of(alice, first["thread_id"]), "the run to be listed")[0]
        assert run["kwargs"]["config"]["configurable"]["langgraph_auth_user_id"] == alice_id
        assert bob.get(f"/threads/{first['thread_id']}").status_code == 404
        assert tagged_threads(bob, mark) == []
        assert alice.delete(f"/runs/crons/{cid}").status_code == 204


CUSTOM_AUTH = """
from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    if not authorization:
        raise Auth.exceptions.HTTPException(status_code=401, detail="missing token")
    return authorization.split(" ", 1)[1]


@auth.on.crons.create
async def on_cron_create(ctx, value):
    if ctx.user.identity == "limited" and value["schedule"].count(" ") >= 5:
        raise Auth.exceptions.HTTPException(status_code=403, detail="no seconds schedules for you")
    value["metadata"]["team"] = ctx.user.identity
    return {"team": ctx.user.identity}


@auth.on.crons
async def on_crons(ctx, value):
    return {"team": ctx.user.identity}


@auth.on
async def allow_everything_else(ctx, value):
    return None
"""


def test_auth_handlers_decide_for_crons(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`@auth.on.crons...` handlers of a `langgraph_sdk.Auth` (auth.path) see the cron and filter it."""
    folder = tmp_path_factory.mktemp("cron_auth")
    (folder / "cron_auth.py").write_text(CUSTOM_AUTH)
    graphs = ROOT / "tests" / "graphs"
    (folder / "langgraph.json").write_text(json.dumps({
        "dependencies": [str(graphs)], "graphs": {"agent": f"{graphs}/anchor_graph.py:agent"},
        "auth": {"path": "./cron_auth.py:auth"},
    }))  # fmt: skip
    proc = ServerProcess(config=folder / "langgraph.json").start()
    try:

        def client(name: str) -> httpx.Client:
            return httpx.Client(base_url=proc.url, timeout=30, headers={"Authorization": f"Bearer {name}"})

        with client("red") as red, client("blue") as blue, client("limited") as limited:
            body = {"assistant_id": "agent", "schedule": "0 9 * * *", "enabled": False}
            cron = red.post("/runs/crons", json=body).json()
            assert cron["metadata"] == {"team": "red"} and cron["user_id"] == "red"
            assert blue.get(f"/runs/crons/{cron['cron_id']}").status_code == 404
            assert blue.post("/runs/crons/count", json={}).json() == 0
            assert red.post("/runs/crons/count", json={}).json() == 1
            refused = limited.post("/runs/crons", json={**body, "schedule": "* * * * * */5"})
            assert (refused.status_code, refused.json()) == (403, {"detail": "no seconds schedules for you"})
            assert limited.post("/runs/crons", json=body).status_code == 200
    finally:
        proc.stop()

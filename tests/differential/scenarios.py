"""The request sequences sent to both servers: every route family, every stream mode, interrupts and resume,
time travel, errors and the reference's auth module (tokens are user names; `bad` is refused).

Each scenario takes a `Recorder` and uses only what that server answered, so the two recordings can differ
only by what the servers do. A scenario that breaks on one server (an answer it cannot use) is recorded as a
`#crash` exchange and the others go on.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from typing import Any

from tests.differential.compare import Exchange, Recorder
from tests.waiting import wait_for

AGENT_INPUT = {"messages": [{"role": "user", "content": "weather in sf?"}]}
STREAM_MODES = ["values", "updates", "messages", "messages-tuple", "events", "debug", "custom", "tasks",
                "checkpoints"]  # fmt: skip
MISSING = "00000000-0000-4000-8000-000000000000"


def _id(body: Any, key: str) -> str:
    if isinstance(body, dict) and isinstance(body.get(key), str):
        return body[key]
    raise AssertionError(f"no {key} in {str(body)[:200]}")


def meta(r: Recorder) -> None:
    r.call("meta.ok", "GET", "/ok", token=None)
    r.call("meta.info", "GET", "/info", token=None, shape_only=True)
    r.call("meta.unknown_route", "GET", "/nope")


def assistants(r: Recorder) -> None:
    r.call("assistants.search_system", "POST", "/assistants/search", json={"graph_id": "agent", "limit": 5})
    body = {"graph_id": "agent", "name": "a1", "metadata": {"team": "x"}, "config": {"tags": ["t"]},
            "context": {"model": "fake"}}  # fmt: skip
    created = r.call("assistants.create", "POST", "/assistants", json=body)
    aid = _id(created, "assistant_id")
    r.call("assistants.create_conflict", "POST", "/assistants", json={**body, "assistant_id": aid})
    r.call("assistants.create_do_nothing", "POST", "/assistants", json={**body, "assistant_id": aid,
                                                                        "if_exists": "do_nothing"})  # fmt: skip
    r.call("assistants.create_unknown_graph", "POST", "/assistants", json={"graph_id": "nope"})
    r.call("assistants.create_invalid", "POST", "/assistants", json={"graph_id": 3})
    r.call("assistants.get", "GET", f"/assistants/{aid}")
    r.call("assistants.get_missing", "GET", f"/assistants/{MISSING}")
    r.call("assistants.get_bad_id", "GET", "/assistants/not-a-uuid")
    r.call("assistants.patch", "PATCH", f"/assistants/{aid}", json={"metadata": {"v": 2}, "name": "a2"})
    r.call("assistants.versions", "POST", f"/assistants/{aid}/versions", json={})
    r.call("assistants.latest", "POST", f"/assistants/{aid}/latest", json={"version": 1})
    r.call("assistants.count", "POST", "/assistants/count", json={"graph_id": "agent", "metadata": {"team": "x"}})
    r.call("assistants.search_metadata", "POST", "/assistants/search", json={"metadata": {"team": "x"}})
    r.call("assistants.schemas", "GET", f"/assistants/{aid}/schemas")
    r.call("assistants.graph", "GET", "/assistants/agent/graph")
    r.call("assistants.graph_xray", "GET", "/assistants/nested/graph", params={"xray": "true"})
    r.call("assistants.subgraphs", "GET", f"/assistants/{system_id(r, 'nested')}/subgraphs", params={"recurse": "true"})
    r.call("assistants.delete", "DELETE", f"/assistants/{aid}")
    r.call("assistants.get_deleted", "GET", f"/assistants/{aid}")


def system_id(r: Recorder, graph: str) -> str:
    return str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), graph))


def threads(r: Recorder) -> None:
    created = r.call("threads.create", "POST", "/threads", json={"metadata": {"case": "diff"}})
    tid = _id(created, "thread_id")
    r.call("threads.create_conflict", "POST", "/threads", json={"thread_id": tid})
    r.call("threads.create_do_nothing", "POST", "/threads", json={"thread_id": tid, "if_exists": "do_nothing"})
    r.call("threads.get", "GET", f"/threads/{tid}")
    r.call("threads.get_missing", "GET", f"/threads/{MISSING}")
    r.call("threads.get_bad_id", "GET", "/threads/not-a-uuid")
    r.call("threads.state_never_run", "GET", f"/threads/{tid}/state")
    r.call("threads.history_never_run", "POST", f"/threads/{tid}/history", json={})
    r.call("threads.update_state_never_run", "POST", f"/threads/{tid}/state", json={"values": {}})
    r.call("threads.storage_never_run", "GET", f"/threads/{tid}/storage")
    r.call("threads.patch", "PATCH", f"/threads/{tid}", json={"metadata": {"more": 1}})
    r.call("threads.patch_minimal", "PATCH", f"/threads/{tid}", json={"metadata": {"x": 1}},
           headers={"Prefer": "return=minimal"})  # fmt: skip
    r.call("threads.search", "POST", "/threads/search", json={"metadata": {"case": "diff"}, "limit": 1})
    r.call("threads.search_select", "POST", "/threads/search", json={"ids": [tid], "select": ["thread_id", "status"]})
    r.call("threads.count", "POST", "/threads/count", json={"metadata": {"case": "diff"}})
    r.call("threads.search_invalid", "POST", "/threads/search", json={"limit": "ten"})
    r.call("threads.run", "POST", f"/threads/{tid}/runs/wait", json={"assistant_id": "agent", "input": AGENT_INPUT})
    r.call("threads.get_after_run", "GET", f"/threads/{tid}")
    r.call("threads.state_after_run", "GET", f"/threads/{tid}/state")
    r.call("threads.storage_after_run", "GET", f"/threads/{tid}/storage", shape_only=True)
    r.call("threads.history_get", "GET", f"/threads/{tid}/history", params={"limit": 2})
    r.call("threads.history_post", "POST", f"/threads/{tid}/history", json={"limit": 3, "metadata": {"step": 1}})
    copied = r.call("threads.copy", "POST", f"/threads/{tid}/copy")
    r.call("threads.state_of_copy", "GET", f"/threads/{_id(copied, 'thread_id')}/state")
    r.call("threads.prune_keep_latest", "POST", "/threads/prune",
           json={"thread_ids": [_id(copied, "thread_id")], "strategy": "keep_latest"})  # fmt: skip
    r.call("threads.history_after_prune", "POST", f"/threads/{_id(copied, 'thread_id')}/history", json={"limit": 10})
    r.call("threads.delete", "DELETE", f"/threads/{tid}")
    r.call("threads.get_deleted", "GET", f"/threads/{tid}")


def stream_modes(r: Recorder) -> None:
    for mode in STREAM_MODES:
        tid = _id(r.call(f"modes.{mode}.thread", "POST", "/threads", json={}), "thread_id")
        r.stream(f"modes.{mode}", "POST", f"/threads/{tid}/runs/stream",
                 json={"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": mode})  # fmt: skip
    tid = _id(r.call("modes.subgraphs.thread", "POST", "/threads", json={}), "thread_id")
    r.stream("modes.subgraphs", "POST", f"/threads/{tid}/runs/stream",
             json={"assistant_id": "nested", "input": AGENT_INPUT, "stream_mode": ["updates"],
                   "stream_subgraphs": True})  # fmt: skip
    r.stream("modes.tools", "POST", f"/threads/{tid}/runs/stream",
             json={"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": ["tools"]})  # fmt: skip
    r.stream("modes.stateless", "POST", "/runs/stream", json={"assistant_id": "agent", "input": AGENT_INPUT})


def runs(r: Recorder) -> None:
    tid = _id(r.call("runs.thread", "POST", "/threads", json={}), "thread_id")
    run = r.call("runs.create_background", "POST", f"/threads/{tid}/runs", json={"assistant_id": "agent",
                                                                                 "input": AGENT_INPUT})  # fmt: skip
    rid = _id(run, "run_id")
    r.call("runs.join", "GET", f"/threads/{tid}/runs/{rid}/join")
    r.stream("runs.join_stream_finished", "GET", f"/threads/{tid}/runs/{rid}/stream")
    r.call("runs.get", "GET", f"/threads/{tid}/runs/{rid}")
    r.call("runs.list", "GET", f"/threads/{tid}/runs", params={"limit": 5})
    r.call("runs.get_missing", "GET", f"/threads/{tid}/runs/{MISSING}")
    r.call("runs.unknown_assistant", "POST", f"/threads/{tid}/runs/wait", json={"assistant_id": "nope"})
    r.call("runs.invalid_stream_mode", "POST", f"/threads/{tid}/runs/wait",
           json={"assistant_id": "agent", "stream_mode": "telepathy"})  # fmt: skip
    r.call("runs.on_missing_thread", "POST", f"/threads/{MISSING}/runs/wait", json={"assistant_id": "agent"})
    r.call("runs.context_and_configurable", "POST", f"/threads/{tid}/runs/wait",
           json={"assistant_id": "agent", "context": {"a": 1}, "config": {"configurable": {"b": 2}}})  # fmt: skip
    r.call("runs.fail_wait", "POST", f"/threads/{tid}/runs/wait", json={"assistant_id": "fail", "input": {}})
    r.stream("runs.fail_stream", "POST", f"/threads/{tid}/runs/stream", json={"assistant_id": "fail", "input": {}})
    r.call("runs.thread_after_failure", "GET", f"/threads/{tid}")
    # stateless runs: one stream only (modes.stateless); under this auth module the reference loses their
    # temporary thread (its run fails with 404 "Thread not found"), so more of them would only repeat that
    r.call("runs.batch_invalid", "POST", "/runs/batch", json=[{"assistant_id": 3}])
    r.call("runs.bulk_cancel_invalid", "POST", "/runs/cancel", json={})
    # last, on a thread of its own: a run the reference may not stop (its cancel answers 404 under auth) keeps
    # only that thread busy
    tid = _id(r.call("runs.busy_thread", "POST", "/threads", json={}), "thread_id")
    slow = r.call("runs.slow", "POST", f"/threads/{tid}/runs",
                  json={"assistant_id": "slow", "input": {"delay": 1}})  # fmt: skip
    slow_id = _id(slow, "run_id")
    wait_for(lambda: r.http.get(f"/threads/{tid}/runs/{slow_id}", headers=r._headers(r.token, None)).json()
             .get("status") == "running", "the slow run to start")  # fmt: skip
    r.call("runs.reject_busy", "POST", f"/threads/{tid}/runs",
           json={"assistant_id": "agent", "input": AGENT_INPUT, "multitask_strategy": "reject"})  # fmt: skip
    r.call("runs.update_state_busy", "POST", f"/threads/{tid}/state", json={"values": {"count": 9}})
    r.call("runs.cancel", "POST", f"/threads/{tid}/runs/{slow_id}/cancel", params={"wait": "1"})
    r.call("runs.get_cancelled", "GET", f"/threads/{tid}/runs/{slow_id}")
    r.call("runs.delete", "DELETE", f"/threads/{tid}/runs/{slow_id}")


def interrupts(r: Recorder) -> None:
    tid = _id(r.call("interrupts.thread", "POST", "/threads", json={}), "thread_id")
    r.stream(
        "interrupts.stream",
        "POST",
        f"/threads/{tid}/runs/stream",
        json={"assistant_id": "interrupt", "input": {"request": "deploy"}, "stream_mode": ["values", "updates"]},
    )
    r.call("interrupts.thread_interrupted", "GET", f"/threads/{tid}")
    r.call("interrupts.state", "GET", f"/threads/{tid}/state")
    r.stream(
        "interrupts.resume",
        "POST",
        f"/threads/{tid}/runs/stream",
        json={"assistant_id": "interrupt", "command": {"resume": "yes"}, "stream_mode": ["values"]},
    )
    r.call("interrupts.state_after_resume", "GET", f"/threads/{tid}/state")
    r.call("interrupts.resume_stateless", "POST", "/runs/wait",
           json={"assistant_id": "interrupt", "command": {"resume": "x"}})  # fmt: skip
    # time travel: the state before `ask` ran, a run from that checkpoint, and a fork by state update
    history = r.call("interrupts.history", "POST", f"/threads/{tid}/history", json={"limit": 10})
    first = next(s for s in history if s["next"] == ["ask"])
    cid = first["checkpoint"]["checkpoint_id"]
    r.call("travel.state_at", "GET", f"/threads/{tid}/state/{cid}")
    r.call("travel.state_checkpoint", "POST", f"/threads/{tid}/state/checkpoint",
           json={"checkpoint": {"checkpoint_id": cid}})  # fmt: skip
    r.stream(
        "travel.run_from_checkpoint",
        "POST",
        f"/threads/{tid}/runs/stream",
        json={"assistant_id": "interrupt", "input": None, "checkpoint_id": cid, "stream_mode": ["values"]},
    )
    forked = r.call("travel.fork", "POST", f"/threads/{tid}/state",
                    json={"values": {"request": "rollout"}, "checkpoint_id": cid})  # fmt: skip
    r.call("travel.state_after_fork", "GET", f"/threads/{tid}/state")
    r.call("travel.history_after_fork", "GET", f"/threads/{tid}/history", params={"limit": 3})
    r.call("travel.update_as_node", "POST", f"/threads/{tid}/state",
           json={"values": {"answer": "no"}, "as_node": "ask", "checkpoint": forked.get("checkpoint")})  # fmt: skip
    r.call("travel.update_unknown_node", "POST", f"/threads/{tid}/state",
           json={"values": {"answer": "no"}, "as_node": "nope"})  # fmt: skip


def store(r: Recorder) -> None:
    item = {"namespace": ["alice", "notes"], "key": "k1", "value": {"text": "hello"}}
    r.call("store.put", "PUT", "/store/items", json=item)
    r.call("store.get", "GET", "/store/items", params={"namespace": "alice.notes", "key": "k1"})
    r.call("store.get_missing", "GET", "/store/items", params={"namespace": "alice.notes", "key": "nope"})
    r.call("store.search", "POST", "/store/items/search", json={"namespace_prefix": ["alice"], "limit": 5})
    r.call("store.search_filter", "POST", "/store/items/search",
           json={"namespace_prefix": ["alice"], "filter": {"text": "hello"}})  # fmt: skip
    r.call("store.namespaces", "POST", "/store/namespaces", json={"prefix": ["alice"]})
    r.call("store.put_foreign_namespace", "PUT", "/store/items", json={**item, "namespace": ["bob"]})
    r.call("store.put_invalid", "PUT", "/store/items", json={"namespace": ["alice"], "key": "k"})
    r.call("store.delete", "DELETE", "/store/items", json={"namespace": ["alice", "notes"], "key": "k1"})
    r.call("store.get_deleted", "GET", "/store/items", params={"namespace": "alice.notes", "key": "k1"})


def crons(r: Recorder) -> None:
    body = {"assistant_id": "agent", "schedule": "0 0 1 1 *", "input": AGENT_INPUT}
    cron = r.call("crons.create_stateless", "POST", "/runs/crons", json=body)
    cron_id = _id(cron, "cron_id")
    tid = _id(r.call("crons.thread", "POST", "/threads", json={}), "thread_id")
    r.call("crons.create_on_thread", "POST", f"/threads/{tid}/runs/crons", json=body)
    r.call("crons.search", "POST", "/runs/crons/search", json={"assistant_id": "agent"})
    r.call("crons.count", "POST", "/runs/crons/count", json={"assistant_id": "agent"})
    r.call("crons.get", "GET", f"/runs/crons/{cron_id}")
    r.call("crons.patch", "PATCH", f"/runs/crons/{cron_id}", json={"schedule": "0 0 2 1 *"})
    r.call("crons.bad_schedule", "POST", "/runs/crons", json={**body, "schedule": "every day"})
    r.call("crons.delete", "DELETE", f"/runs/crons/{cron_id}")
    r.call("crons.get_deleted", "GET", f"/runs/crons/{cron_id}")


def auth(r: Recorder) -> None:
    r.call("auth.no_token", "GET", "/threads/search", token=None)
    r.call("auth.bad_token", "POST", "/threads/search", json={}, token="bad")
    tid = _id(r.call("auth.alice_thread", "POST", "/threads", json={}), "thread_id")
    run = r.call("auth.alice_run", "POST", f"/threads/{tid}/runs", json={"assistant_id": "agent",
                                                                         "input": AGENT_INPUT})  # fmt: skip
    rid = _id(run, "run_id")
    r.call("auth.alice_join", "GET", f"/threads/{tid}/runs/{rid}/join")
    r.call("auth.bob_get_thread", "GET", f"/threads/{tid}", token="bob")
    r.call("auth.bob_state", "GET", f"/threads/{tid}/state", token="bob")
    r.call("auth.bob_search", "POST", "/threads/search", json={}, token="bob")
    r.call("auth.bob_join", "GET", f"/threads/{tid}/runs/{rid}/join", token="bob")
    r.stream("auth.bob_join_stream", "GET", f"/threads/{tid}/runs/{rid}/stream", token="bob")
    r.call("auth.bob_get_run", "GET", f"/threads/{tid}/runs/{rid}", token="bob")
    r.call("auth.bob_run_on_thread", "POST", f"/threads/{tid}/runs/wait", json={"assistant_id": "agent"},
           token="bob")  # fmt: skip
    r.call("auth.bob_delete_thread", "DELETE", f"/threads/{tid}", token="bob")
    r.call("auth.bob_store_get", "GET", "/store/items", params={"namespace": "alice.notes", "key": "k"}, token="bob")


def mcp(r: Recorder) -> None:
    r.call("mcp.get", "GET", "/mcp")
    r.call("mcp.delete", "DELETE", "/mcp")
    client = {"name": "t", "version": "1"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": client}}  # fmt: skip
    accept = {"Accept": "application/json, text/event-stream"}
    r.call("mcp.initialize", "POST", "/mcp", json=init, headers=accept, shape_only=True)
    r.call("mcp.tools_list", "POST", "/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=accept,
           shape_only=True)  # fmt: skip


def a2a(r: Recorder) -> None:
    card = f"/a2a/{system_id(r, 'agent')}/.well-known/agent-card.json"
    r.call("a2a.card", "GET", card, shape_only=True)
    r.call("a2a.card_missing", "GET", f"/a2a/{MISSING}/.well-known/agent-card.json")


SCENARIOS: list[Callable[[Recorder], None]] = [meta, assistants, threads, stream_modes, runs, interrupts, store, crons,
                                               auth, mcp, a2a]  # fmt: skip


def run_all(r: Recorder) -> Recorder:
    for scenario in SCENARIOS:
        try:
            scenario(r)
        except Exception:
            crash = traceback.format_exc(limit=3).splitlines()[-1]
            r.exchanges.append(Exchange(f"{scenario.__name__} #crash", "", "", 0, {}, crash))
    return r

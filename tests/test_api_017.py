"""The 0.17 request fields: history `select`, `cancel_reason` on cancelled runs, `exclude_metadata` on thread
search and count, and `tools` as a stream mode."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cron_helpers import wait_for
from tests.runs_helpers import parse_sse
from tests.server import ROOT, ServerProcess

GRAPHS = ROOT / "tests" / "graphs"
AGENT_RUN = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather?"}]}}


def test_history_select(http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN)
    full = http.post(f"/threads/{tid}/history", json={"limit": 2}).json()
    picked = http.post(f"/threads/{tid}/history", json={"limit": 2, "select": ["checkpoint", "next"]}).json()
    assert picked == [{"checkpoint": s["checkpoint"], "next": s["next"]} for s in full]
    keyed = http.post(f"/threads/{tid}/history", json={"limit": 1, "select": ["values.messages", "created_at"]})
    latest = full[0]
    assert keyed.json() == [{"created_at": latest["created_at"], "values": {"messages": latest["values"]["messages"]}}]
    bad = http.post(f"/threads/{tid}/history", json={"select": ["nope"]})
    assert bad.status_code == 422 and "nope" in bad.json()["detail"]


def test_cancelled_runs_say_why(http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    slow = {"assistant_id": "slow", "input": {"delay": 5}}
    first = http.post(f"/threads/{tid}/runs", json=slow).json()
    assert "cancel_reason" not in first
    second = http.post(f"/threads/{tid}/runs", json={**slow, "multitask_strategy": "interrupt"}).json()
    got = wait_for(lambda: (r := http.get(f"/threads/{tid}/runs/{first['run_id']}").json())["status"] == "interrupted"
                   and r, "the first run to be interrupted")  # fmt: skip
    assert got["cancel_reason"] == f"superseded by run {second['run_id']} (multitask_strategy=interrupt)"
    assert http.post(f"/threads/{tid}/runs/{second['run_id']}/cancel").status_code == 202
    got = wait_for(lambda: (r := http.get(f"/threads/{tid}/runs/{second['run_id']}").json())["status"]
                   == "interrupted" and r, "the second run to be cancelled")  # fmt: skip
    assert got["cancel_reason"] == "interrupt requested via POST /threads/{thread_id}/runs/{run_id}/cancel"
    third = http.post(f"/threads/{tid}/runs", json=slow).json()
    assert http.post("/runs/cancel", json={"thread_id": tid, "run_ids": [third["run_id"]]}).status_code == 204
    got = wait_for(lambda: (r := http.get(f"/threads/{tid}/runs/{third['run_id']}").json())["status"]
                   == "interrupted" and r, "the third run to be cancelled")  # fmt: skip
    assert got["cancel_reason"] == "interrupt requested via POST /runs/cancel"
    listed = http.get(f"/threads/{tid}/runs", params={"select": ["run_id", "cancel_reason"]}).json()
    assert all(set(r) == {"run_id", "cancel_reason"} for r in listed), listed
    assert {r["run_id"]: r["cancel_reason"] for r in listed}[third["run_id"]] == got["cancel_reason"]


def test_exclude_metadata_on_search_and_count(http: httpx.Client) -> None:
    mark = uuid.uuid4().hex
    plain = http.post("/threads", json={"metadata": {"m": mark}}).json()
    archived = http.post("/threads", json={"metadata": {"m": mark, "archived": True}}).json()
    other = http.post("/threads", json={"metadata": {"m": mark, "archived": False}}).json()
    found = http.post("/threads/search", json={"metadata": {"m": mark}, "exclude_metadata": {"archived": True}})
    assert [t["thread_id"] for t in found.json()] == [other["thread_id"], plain["thread_id"]]
    assert found.headers["x-pagination-total"] == "2"
    page = http.post("/threads/search", json={"metadata": {"m": mark}, "exclude_metadata": {"archived": True},
                                              "limit": 1, "offset": 1})  # fmt: skip
    assert [t["thread_id"] for t in page.json()] == [plain["thread_id"]]
    assert http.post("/threads/count", json={"metadata": {"m": mark}, "exclude_metadata": {"archived": True}}
                     ).json() == 2  # fmt: skip
    assert http.post("/threads/count", json={"metadata": {"m": mark}}).json() == 3
    assert archived["thread_id"] not in [t["thread_id"] for t in found.json()]


@pytest.fixture(scope="module")
def tools_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    config = Path(tmp_path_factory.mktemp("tools")) / "langgraph.json"
    config.write_text(json.dumps({"dependencies": [str(GRAPHS)],
                                  "graphs": {"tools": f"{GRAPHS}/tool_stream_graph.py:graph"}}))  # fmt: skip
    proc = ServerProcess(config=config).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            yield client
    finally:
        proc.stop()


def test_tools_stream_mode(tools_server: httpx.Client) -> None:
    body = {"assistant_id": "tools", "input": {"messages": []}, "stream_mode": ["tools"]}
    resp = tools_server.post("/runs/stream", json=body)
    frames = parse_sse(resp.content)
    assert [f.event for f in frames] == ["metadata", "tools", "tools", "tools", "tools"]
    events = [f.data for f in frames[1:]]
    # ToolNode runs the two calls side by side, so only each call's own order is fixed.
    added = [e for e in events if e["tool_call_id"] == "call-add"]
    exploded = [e for e in events if e["tool_call_id"] == "call-explode"]
    assert [e["event"] for e in added] == ["tool-started", "tool-finished"]
    assert [e["event"] for e in exploded] == ["tool-started", "tool-error"]
    assert added[0] == {"event": "tool-started", "tool_call_id": "call-add", "tool_name": "add",
                        "input": {"a": 2, "b": 3}}  # fmt: skip
    assert added[1]["output"]["content"] == "5"
    assert exploded[0]["tool_name"] == "explode"
    assert exploded[1] == {"event": "tool-error", "tool_call_id": "call-explode", "message": "boom: test"}
    joined = tools_server.post("/runs/stream", json={**body, "stream_mode": "values"})
    assert "tools" not in [f.event for f in parse_sse(joined.content)]

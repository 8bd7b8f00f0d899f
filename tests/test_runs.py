"""Run streaming and results: every stream mode compared with the reference transcripts, subgraph names,
joins with Last-Event-ID, `/wait` and `/join` bodies, errors, interrupts and stateless runs."""

from __future__ import annotations

import json
import re

import httpx

from tests.runs_helpers import (
    AGENT_INPUT,
    ANSWER,
    BOOM,
    TRANSCRIPTS,
    names,
    new_thread,
    parse_sse,
    poll,
    run_status,
    sdk_transcript_names,
    stream,
    strip_ns,
    thread_status,
    transcript_names,
)

SLOW = "cad1b5ad-d177-59d1-ab39-5e327188ed3a"  # uuid5 of the `slow` graph id


# ----------------------------------------------------------------------------------------- stream modes
def test_values_messages_updates_match_transcript(http: httpx.Client) -> None:
    tid = new_thread(http)
    resp, frames = stream(
        http, f"/threads/{tid}/runs/stream", {"assistant_id": "agent", "input": AGENT_INPUT,
                                              "stream_mode": ["values", "messages", "updates"]},
    )  # fmt: skip
    assert names(frames) == transcript_names("11_thread_runs_stream_values_messages_updates")
    assert resp.headers["content-type"].startswith("text/event-stream")
    run_id = frames[0].data["run_id"]
    assert frames[0].data == {"run_id": run_id, "attempt": 1}
    assert resp.headers["content-location"] == f"/threads/{tid}/runs/{run_id}"
    assert resp.headers["location"] == f"/threads/{tid}/runs/{run_id}/stream"
    # CRLF framing, no ids on a non-resumable run, the body is exactly the frames.
    assert resp.content == b"".join(f.raw for f in frames)
    assert all(f.id is None for f in frames)
    assert frames[0].raw == b'event: metadata\r\ndata: {"run_id":"' + run_id.encode() + b'","attempt":1}\r\n\r\n'

    partials = [f.data for f in frames if f.event == "messages/partial"]
    ref = parse_sse((TRANSCRIPTS / "11_thread_runs_stream_values_messages_updates.sse").read_bytes())
    ref_partials = [f.data for f in ref if f.event == "messages/partial"]

    def shape(partial: list[dict]) -> tuple:
        (msg,) = partial
        return msg["type"], msg["content"], msg["tool_calls"], sorted(msg)

    # Partials carry the accumulated message (full text so far, parsed tool calls, no tool_call_chunks).
    assert [shape(p) for p in partials] == [shape(p) for p in ref_partials]
    assert partials[-1][0]["content"] == ANSWER
    (complete,) = [f.data for f in frames if f.event == "messages/complete"]
    assert complete[0]["type"] == "tool" and complete[0]["tool_call_id"] == "call_weather_1"
    metas = [f.data for f in frames if f.event == "messages/metadata"]
    assert len({next(iter(m)) for m in metas}) == 3
    first_meta = next(iter(metas[0].values()))["metadata"]
    assert first_meta["langgraph_node"] == "model" and first_meta["run_id"] == run_id
    assert [f.data for f in frames if f.event == "updates"][1] == {"tools": {"messages": [complete[0]]}}
    assert frames[-1].data["messages"][-1]["content"] == ANSWER


def test_sse_response_headers_match_reference(http: httpx.Client) -> None:
    resp, _ = stream(http, "/runs/stream", {"assistant_id": "fail", "input": {"count": 0}})
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    # Robyn adds its own no-cache variants; what matters to proxies and browsers is that nothing is stored.
    assert len(resp.headers.get_list("cache-control")) == 1
    assert "no-store" in resp.headers["cache-control"]
    assert resp.headers["x-accel-buffering"] == "no"


def test_messages_tuple_is_sent_as_messages(http: httpx.Client) -> None:
    tid = new_thread(http)
    _, frames = stream(
        http, f"/threads/{tid}/runs/stream",
        {"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": "messages-tuple"},
    )  # fmt: skip
    assert names(frames) == transcript_names("17_thread_runs_stream_messages_tuple")
    tuples = [f.data for f in frames[1:]]
    assert all(isinstance(t, list) and len(t) == 2 for t in tuples)
    chunks = [t[0] for t in tuples]
    assert chunks[0]["type"] == "AIMessageChunk"
    assert chunks[0]["tool_call_chunks"][0]["id"] == "call_weather_1"
    assert any(c["type"] == "tool" for c in chunks)
    # Deltas, not accumulated text.
    assert "".join(c["content"] for c in chunks if c["type"] == "AIMessageChunk") == ANSWER
    assert tuples[0][1]["langgraph_node"] == "model"
    assert tuples[0][1]["thread_id"] == tid


def test_all_modes_match_transcript(http: httpx.Client) -> None:
    tid = new_thread(http)
    modes = ["values", "updates", "messages-tuple", "messages", "custom", "events", "debug"]
    _, frames = stream(
        http, f"/threads/{tid}/runs/stream", {"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": modes}
    )
    got = names(frames)
    ref = transcript_names("19_thread_runs_stream_all_modes")
    # `events` and `messages` come from different callbacks, so only their own order is fixed.
    assert sorted(got) == sorted(ref)
    assert [n for n in got if n not in ("events", "messages")] == [n for n in ref if n not in ("events", "messages")]
    ref_frames = parse_sse((TRANSCRIPTS / "19_thread_runs_stream_all_modes.sse").read_bytes())
    assert [(f.data["event"], f.data["name"]) for f in frames if f.event == "events"] == [
        (f.data["event"], f.data["name"]) for f in ref_frames if f.event == "events"
    ]
    assert [f.data[0]["content"] for f in frames if f.event == "messages"] == [
        f.data[0]["content"] for f in ref_frames if f.event == "messages"
    ]
    # Both message modes requested → only the tuple form.
    assert not any(n.startswith("messages/") for n in got)
    assert got.count("events") == 29 and got.count("debug") == 11
    events = [f.data for f in frames if f.event == "events"]
    assert events[0]["event"] == "on_chain_start"
    assert {"event", "name", "run_id", "tags", "metadata", "parent_ids", "data"} <= set(events[0])
    assert any(e["event"] == "on_chat_model_stream" for e in events)
    debug_types = {f.data["type"] for f in frames if f.event == "debug"}
    assert debug_types == {"checkpoint", "task", "task_result"}
    (custom,) = [f.data for f in frames if f.event == "custom"]
    assert custom == {"progress": "calling get_weather", "args": {"city": "sf"}}


async def test_sdk_all_modes_match_sdk_transcript(client) -> None:
    thread = await client.threads.create()
    modes = ["values", "updates", "messages-tuple", "messages", "custom", "events", "debug"]
    parts = [p async for p in client.runs.stream(thread["thread_id"], "agent", input=AGENT_INPUT, stream_mode=modes)]
    got, ref = [p.event for p in parts], sdk_transcript_names("sdk_stream_all_modes")
    assert sorted(got) == sorted(ref)
    assert [n for n in got if n not in ("events", "messages")] == [n for n in ref if n not in ("events", "messages")]


async def test_sdk_values_messages_updates_match_sdk_transcript(client) -> None:
    thread = await client.threads.create()
    parts = [
        p
        async for p in client.runs.stream(
            thread["thread_id"], "agent", input=AGENT_INPUT, stream_mode=["values", "messages", "updates"]
        )
    ]
    assert [p.event for p in parts] == sdk_transcript_names("sdk_stream_values_messages_updates")
    assert parts[-1].data["messages"][-1]["content"] == ANSWER


def test_tasks_checkpoints_custom_match_transcript(http: httpx.Client) -> None:
    tid = new_thread(http)
    _, frames = stream(
        http, f"/threads/{tid}/runs/stream",
        {"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": ["tasks", "checkpoints", "custom"]},
    )  # fmt: skip
    assert names(frames) == transcript_names("19c_thread_runs_stream_tasks_checkpoints_custom")
    tasks = [f.data for f in frames if f.event == "tasks"]
    starts = [t for t in tasks if "input" in t]
    results = [t for t in tasks if "result" in t]
    assert [t["name"] for t in starts] == ["model", "tools", "model"]
    assert [t["name"] for t in results] == ["model", "tools", "model"]
    assert all(set(t) >= {"id", "name", "error", "result", "interrupts"} for t in results)
    checkpoints = [f.data for f in frames if f.event == "checkpoints"]
    assert all(set(c) >= {"config", "parent_config", "values", "metadata", "next", "tasks"} for c in checkpoints)
    assert checkpoints[-1]["next"] == []
    assert checkpoints[-1]["values"]["messages"][-1]["content"] == ANSWER


def test_default_stream_mode_is_values(http: httpx.Client) -> None:
    tid = new_thread(http)
    _, frames = stream(http, f"/threads/{tid}/runs/stream", {"assistant_id": "interrupt", "input": {"request": "x"}})
    assert names(frames) == transcript_names("19d_thread_runs_stream_default_mode")
    assert frames[1].data == {"request": "x"}
    assert frames[2].data["__interrupt__"][0]["value"] == {"question": "approve x?"}


def test_single_modes(http: httpx.Client) -> None:
    """Each mode alone yields only its own events (after `metadata`); a stateless run keeps no checkpoints, so
    `debug` has only its task events and `checkpoints` none (the reference's counts, langgraph-api 0.16.7)."""
    expected = {"updates": 3, "values": 4, "custom": 1, "debug": 6, "tasks": 6, "checkpoints": 0}
    for mode, count in expected.items():
        _, frames = stream(http, "/runs/stream", {"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": mode})
        assert names(frames) == ["metadata"] + [mode] * count, mode
    _, frames = stream(http, "/runs/stream", {"assistant_id": "agent", "input": AGENT_INPUT, "stream_mode": "events"})
    got = names(frames)
    assert got[0] == "metadata" and set(got[1:]) == {"events"}
    assert frames[1].data["event"] == "on_chain_start" and frames[-1].data["event"] == "on_chain_end"


def test_stream_subgraphs_names(http: httpx.Client) -> None:
    body = json.loads((TRANSCRIPTS / "C0_subgraphs_stream.request.json").read_text())
    _, frames = stream(http, "/runs/stream", body)
    got = names(frames)
    assert [strip_ns(n) for n in got] == [strip_ns(n) for n in transcript_names("C0_subgraphs_stream")]
    namespaced = [n for n in got if "|" in n]
    assert namespaced and len({n.split("|", 1)[1] for n in namespaced}) == 1
    assert re.fullmatch(r"updates\|inner:[0-9a-f-]{36}", next(n for n in namespaced if n.startswith("updates")))
    # Without stream_subgraphs only the parent's events are sent: the subgraph's messages arrive whole,
    # when the `inner` node ends, not as chunks.
    _, frames = stream(http, "/runs/stream", {**body, "stream_subgraphs": False})
    assert [n for n in names(frames) if n != "messages"] == ["metadata", "values", "updates", "values"]
    assert [f.data[0]["type"] for f in frames if f.event == "messages"] == ["ai", "tool", "ai"]


# ----------------------------------------------------------------------------------------- errors
def test_error_event_bytes_stateless(http: httpx.Client) -> None:
    resp, frames = stream(
        http, "/runs/stream", {"assistant_id": "fail", "input": {"count": 0}, "stream_mode": ["values", "updates"]}
    )
    assert names(frames) == transcript_names("60_fail_stream")
    assert resp.content.endswith(
        b'event: values\r\ndata: {"count":0}\r\n\r\n'
        b'event: error\r\ndata: {"error":"ValueError","message":"boom: deliberate failure"}\r\n\r\n'
    )


def test_error_on_thread_sets_statuses(http: httpx.Client) -> None:
    tid = new_thread(http)
    _, frames = stream(http, f"/threads/{tid}/runs/stream", {"assistant_id": "fail", "input": {"count": 0}})
    assert names(frames) == transcript_names("63_fail_stream_thread")
    assert frames[-1].data == BOOM
    run_id = frames[0].data["run_id"]
    assert poll(lambda: run_status(http, tid, run_id), lambda s: s != "running") == "error"
    thread = http.get(f"/threads/{tid}").json()
    assert thread["status"] == "error"
    assert thread["error"] == BOOM
    assert thread["values"] == {"count": 0}


def test_wait_on_failure_returns_200_error(http: httpx.Client) -> None:
    resp = http.post("/runs/wait", json={"assistant_id": "fail", "input": {"count": 0}})
    assert resp.status_code == 200
    assert json.loads(resp.content) == {"__error__": BOOM}
    tid = new_thread(http)
    resp = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "fail", "input": {"count": 0}})
    assert resp.status_code == 200 and json.loads(resp.content) == {"__error__": BOOM}
    assert thread_status(http, tid) == "error"


async def test_sdk_wait_on_failure(client) -> None:
    assert await client.runs.wait(None, "fail", input={"count": 0}, raise_error=False) == {"__error__": BOOM}
    thread = await client.threads.create()
    result = await client.runs.wait(thread["thread_id"], "fail", input={"count": 0}, raise_error=False)
    assert result == {"__error__": BOOM}
    assert (await client.threads.get(thread["thread_id"]))["status"] == "error"
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["error"]


# ----------------------------------------------------------------------------------------- wait / join results
def test_wait_returns_final_values(http: httpx.Client) -> None:
    tid = new_thread(http)
    resp = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "agent", "input": AGENT_INPUT})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    run_id = resp.headers["content-location"].rsplit("/", 1)[1]
    assert resp.headers["location"] == f"/threads/{tid}/runs/{run_id}/join"
    assert resp.content.startswith(b"{")  # no padding for a run that ends within the heartbeat interval
    values = json.loads(resp.content)
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "tool", "ai"]
    assert values["messages"][-1]["content"] == ANSWER
    assert run_status(http, tid, run_id) == "success"
    assert thread_status(http, tid) == "idle"
    # /join of the finished run gives the same final values.
    joined = http.get(f"/threads/{tid}/runs/{run_id}/join")
    assert joined.status_code == 200 and json.loads(joined.content) == values


async def test_sdk_wait_and_join(client) -> None:
    sdk_values = await client.runs.wait(None, "agent", input=AGENT_INPUT)
    assert sdk_values["messages"][-1]["content"] == ANSWER
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "slow", input={"delay": 0.05})
    assert await client.runs.join(tid, run["run_id"]) == {"count": 3, "delay": 0.05}
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"


def test_wait_interrupt_on_new_thread(http: httpx.Client) -> None:
    tid = "5abaab0a-a1b9-4f80-b9c7-8f9b521445bb"
    http.delete(f"/threads/{tid}")
    resp = http.post(
        f"/threads/{tid}/runs/wait",
        json={"assistant_id": "interrupt", "input": {"request": "wait-case"}, "if_not_exists": "create"},
    )
    assert resp.status_code == 200
    body = json.loads(resp.content)
    expected = json.loads((TRANSCRIPTS / "37_interrupt_wait_new_thread.body").read_text())
    assert body["request"] == expected["request"]
    assert [{k: v for k, v in i.items() if k != "id"} for i in body["__interrupt__"]] == [
        {k: v for k, v in i.items() if k != "id"} for i in expected["__interrupt__"]
    ]
    thread = http.get(f"/threads/{tid}").json()
    assert thread["status"] == "interrupted"
    (interrupts,) = thread["interrupts"].values()
    assert interrupts == [{"id": body["__interrupt__"][0]["id"], "value": {"question": "approve wait-case?"}}]
    http.delete(f"/threads/{tid}")


def test_run_on_unknown_thread_is_404(http: httpx.Client) -> None:
    resp = http.post(
        "/threads/00000000-0000-0000-0000-000000000000/runs/stream", json={"assistant_id": "agent", "input": {}}
    )
    assert resp.status_code == 404
    assert resp.json() == {"detail": "Thread or assistant not found."}


# ----------------------------------------------------------------------------------------- interrupts
def test_interrupt_stream_bytes(http: httpx.Client) -> None:
    tid = new_thread(http)
    resp, frames = stream(
        http, f"/threads/{tid}/runs/stream",
        {"assistant_id": "interrupt", "input": {"request": "deploy"}, "stream_mode": ["values", "updates"]},
    )  # fmt: skip
    assert names(frames) == transcript_names("31_interrupt_stream")
    interrupt = frames[2].data["__interrupt__"][0]
    assert interrupt["value"] == {"question": "approve deploy?"} and interrupt["response_schema"] is None
    dumped = json.dumps(interrupt, separators=(",", ":")).encode()
    assert resp.content.endswith(
        b'event: updates\r\ndata: {"__interrupt__":[' + dumped + b"]}\r\n\r\n"
        b'event: values\r\ndata: {"request":"deploy","__interrupt__":[' + dumped + b"]}\r\n\r\n"
    )
    assert run_status(http, tid, frames[0].data["run_id"]) == "success"  # an interrupt() ends the run successfully
    thread = http.get(f"/threads/{tid}").json()
    assert thread["status"] == "interrupted"
    assert list(thread["interrupts"].values()) == [[{"id": interrupt["id"], "value": interrupt["value"]}]]


async def test_interrupt_then_resume(client) -> None:
    tid = (await client.threads.create())["thread_id"]
    parts = [
        p
        async for p in client.runs.stream(
            tid, "interrupt", input={"request": "deploy"}, stream_mode=["values", "updates"]
        )
    ]
    assert [p.event for p in parts] == sdk_transcript_names("sdk_interrupt")
    interrupt = parts[-1].data["__interrupt__"][0]
    assert interrupt["value"] == {"question": "approve deploy?"}
    assert (await client.runs.get(tid, parts[0].data["run_id"]))["status"] == "success"
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    assert list(thread["interrupts"].values()) == [[{"id": interrupt["id"], "value": interrupt["value"]}]]
    state = await client.threads.get_state(tid)
    assert state["next"] == ["ask"]
    assert state["tasks"][0]["interrupts"][0]["id"] == interrupt["id"]

    parts = [
        p
        async for p in client.runs.stream(
            tid, "interrupt", command={"resume": "yes"}, stream_mode=["values", "updates"]
        )
    ]
    assert [p.event for p in parts] == transcript_names("34_resume_stream")
    assert [p.event for p in parts] == sdk_transcript_names("sdk_resume")
    assert parts[1].data == {"request": "deploy"}
    assert parts[-1].data == {"request": "deploy", "answer": "yes", "result": "deploy -> yes"}
    thread = await client.threads.get(tid)
    assert thread["status"] == "idle" and thread["interrupts"] == {}
    assert (await client.threads.get_state(tid))["next"] == []


def test_resume_without_thread_is_400(http: httpx.Client) -> None:
    resp = http.post("/runs/wait", json={"assistant_id": "interrupt", "command": {"resume": "yes"}})
    assert resp.status_code == 400
    assert resp.json() == {"detail": "You must provide a thread_id when resuming."}


def test_interrupt_before_and_after(http: httpx.Client) -> None:
    tid = new_thread(http)
    body = {"assistant_id": "agent", "input": AGENT_INPUT, "interrupt_before": ["tools"]}
    values = json.loads(http.post(f"/threads/{tid}/runs/wait", json=body).content)
    assert [m["type"] for m in values["messages"]] == ["human", "ai"]
    assert thread_status(http, tid) == "interrupted"
    assert http.get(f"/threads/{tid}/state").json()["next"] == ["tools"]
    # Continue with no input: the thread runs to the end.
    values = json.loads(http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "agent"}).content)
    assert values["messages"][-1]["content"] == ANSWER
    assert thread_status(http, tid) == "idle"

    tid = new_thread(http)
    body = {"assistant_id": "agent", "input": AGENT_INPUT, "interrupt_after": ["tools"]}
    values = json.loads(http.post(f"/threads/{tid}/runs/wait", json=body).content)
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "tool"]
    assert thread_status(http, tid) == "interrupted"
    assert http.get(f"/threads/{tid}/state").json()["next"] == ["model"]


# ----------------------------------------------------------------------------------------- joins
def test_join_resumable_run_and_last_event_id(http: httpx.Client) -> None:
    tid = new_thread(http)
    created = http.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "slow", "input": {"delay": 0.2}, "stream_mode": ["values", "updates"],
              "stream_resumable": True},
    )  # fmt: skip
    assert created.status_code == 200
    run = created.json()
    assert run["status"] == "pending" and run["assistant_id"] == SLOW
    assert run["kwargs"]["resumable"] is True
    rid = run["run_id"]
    assert thread_status(http, tid) == "busy"

    resp = http.get(f"/threads/{tid}/runs/{rid}/stream")
    assert resp.status_code == 200
    frames = parse_sse(resp.content)
    assert names(frames) == transcript_names("42_join_run_stream")
    assert frames[0].data == {"run_id": rid, "attempt": 1}
    assert all(f.id is not None and re.fullmatch(r"\d+-\d+", f.id) for f in frames)
    assert frames[0].raw.endswith(b"\r\nid: " + frames[0].id.encode() + b"\r\n\r\n")
    assert frames[-1].data == {"count": 3, "delay": 0.2}

    # Last-Event-ID replays only the events stored after that id.
    last = frames[1].id
    resp = http.get(f"/threads/{tid}/runs/{rid}/stream", headers={"Last-Event-ID": last})
    replay = parse_sse(resp.content)
    assert [(f.event, f.data) for f in replay] == [(f.event, f.data) for f in frames[2:]]
    assert names(replay) == transcript_names("44_join_run_stream_last_event_id")[-len(replay) :]
    # `-` replays everything; a join filtered by stream_mode keeps metadata and that mode.
    everything = parse_sse(http.get(f"/threads/{tid}/runs/{rid}/stream", headers={"Last-Event-ID": "-"}).content)
    assert names(everything) == names(frames)
    only_updates = parse_sse(http.get(f"/threads/{tid}/runs/{rid}/stream?stream_mode=updates").content)
    assert names(only_updates) == ["metadata", "updates", "updates", "updates"]

    assert run_status(http, tid, rid) == "success"
    joined = http.get(f"/threads/{tid}/runs/{rid}/join")
    assert json.loads(joined.content) == {"count": 3, "delay": 0.2}


async def test_sdk_join_stream_live(client) -> None:
    thread = await client.threads.create()
    tid = thread["thread_id"]
    run = await client.runs.create(
        tid, "slow", input={"delay": 0.2}, stream_mode=["values", "updates"], stream_resumable=True
    )
    parts = [p async for p in client.runs.join_stream(tid, run["run_id"])]
    assert [p.event for p in parts] == sdk_transcript_names("sdk_join_stream")
    assert parts[-1].data == {"count": 3, "delay": 0.2}


def test_join_finished_non_resumable_run_is_empty(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = http.post(f"/threads/{tid}/runs", json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 0}}).json()[
        "run_id"
    ]
    poll(lambda: run_status(http, tid, rid), lambda s: s == "success")
    resp = http.get(f"/threads/{tid}/runs/{rid}/stream")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.content == b""
    assert (TRANSCRIPTS / "47_join_finished_run_stream.sse").read_bytes() == b""


def test_join_live_non_resumable_run_sees_later_events(http: httpx.Client) -> None:
    tid = new_thread(http)
    rid = http.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "input": {"delay": 0.3}, "stream_mode": "updates"}
    ).json()["run_id"]
    frames = parse_sse(http.get(f"/threads/{tid}/runs/{rid}/stream").content)
    got = names(frames)
    assert got and set(got) <= {"metadata", "updates"}
    assert frames[-1].data == {"tick": {"count": 3}}
    assert all(f.id is None for f in frames)


def test_join_unknown_run(http: httpx.Client) -> None:
    tid = new_thread(http)
    unknown = "00000000-0000-0000-0000-000000000000"
    resp = http.get(f"/threads/{tid}/runs/{unknown}/stream")
    assert resp.status_code == 200
    assert resp.content == (TRANSCRIPTS / "D3_join_unknown_run_stream.sse").read_bytes()
    resp = http.get(f"/threads/{tid}/runs/{unknown}/join")
    assert resp.status_code == 200
    assert resp.json() == {"__error__": {"error": "HTTPException", "message": "404: Run not found"}}


# ----------------------------------------------------------------------------------------- stateless
def test_stateless_stream_and_wait(http: httpx.Client) -> None:
    resp, frames = stream(
        http, "/runs/stream", {"assistant_id": "agent", "input": AGENT_INPUT,
                               "stream_mode": ["values", "messages", "updates"]},
    )  # fmt: skip
    assert names(frames) == transcript_names("20_runs_stream_stateless")
    run_id = frames[0].data["run_id"]
    assert resp.headers["location"] == f"/runs/{run_id}/stream"
    values = json.loads(http.post("/runs/wait", json={"assistant_id": "agent", "input": AGENT_INPUT}).content)
    assert values["messages"][-1]["content"] == ANSWER


async def test_sdk_stateless_stream(client) -> None:
    parts = [p async for p in client.runs.stream(None, "agent", input=AGENT_INPUT, stream_mode=["updates"])]
    assert [p.event for p in parts] == sdk_transcript_names("sdk_stateless_stream")
    assert [next(iter(p.data)) for p in parts[1:]] == ["model", "tools", "model"]


def test_stateless_temporary_thread_is_deleted(http: httpx.Client) -> None:
    resp = http.post("/runs", json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 2}})
    assert resp.status_code == 200
    run = resp.json()
    assert run["status"] == "pending" and run["kwargs"]["temporary"] is True
    poll(lambda: http.get(f"/threads/{run['thread_id']}").status_code, lambda c: c == 404)
    # on_completion=keep keeps the thread and its final values.
    resp = http.post("/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 2},
                                         "on_completion": "keep"})  # fmt: skip
    assert json.loads(resp.content) == {"count": 3, "delay": 0.01}
    tid = resp.headers["content-location"].split("/")[2]
    thread = poll(lambda: http.get(f"/threads/{tid}"), lambda r: r.status_code == 200 and r.json()["status"] == "idle")
    assert thread.json()["values"] == {"count": 3, "delay": 0.01}


def test_stateless_run_keeps_no_checkpoints(http: httpx.Client) -> None:
    """A run whose thread goes when it ends runs without a checkpointer, as the reference runs it (checked live
    against langgraph-api 0.16.7): no `checkpoints` events, its interrupt still reported; `on_completion: keep`
    keeps a checkpointed thread."""
    body = {"assistant_id": "interrupt", "input": {"request": "deploy"},
            "stream_mode": ["checkpoints", "updates", "values"]}  # fmt: skip
    _, frames = stream(http, "/runs/stream", body)
    assert names(frames) == ["metadata", "values", "updates", "values"]
    assert frames[2].data["__interrupt__"][0]["value"] == {"question": "approve deploy?"}
    _, frames = stream(http, "/runs/stream", {**body, "on_completion": "keep"})
    assert names(frames).count("checkpoints") >= 2
    tid = frames[1].data["config"]["configurable"]["thread_id"]
    state = poll(lambda: http.get(f"/threads/{tid}"), lambda r: r.json()["status"] == "interrupted")
    assert state.json()["values"] == {"request": "deploy"}


def test_runs_batch(http: httpx.Client) -> None:
    payload = [{"assistant_id": "slow", "input": {"delay": 0.01, "count": 2}}] * 2
    resp = http.post("/runs/batch", json=payload)
    assert resp.status_code == 200
    runs = resp.json()
    assert len(runs) == 2
    assert runs[0]["run_id"] != runs[1]["run_id"] and runs[0]["thread_id"] != runs[1]["thread_id"]
    assert all(r["status"] == "pending" and r["kwargs"]["input"] == {"delay": 0.01, "count": 2} for r in runs)
    for run in runs:
        poll(lambda run=run: http.get(f"/threads/{run['thread_id']}").status_code, lambda c: c == 404)

"""The protocol-v2 thread event log on its own: numbering, filters, the kept window and which logs stay in memory."""

from __future__ import annotations

import json

from robyn_server.protocol_v2.log import EventFilter, LocalWriter, ThreadEventLog, ThreadLogs


def body(method: str, namespace: list[str], data: object) -> bytes:
    return json.dumps({"method": method, "params": {"namespace": namespace, "timestamp": 1, "data": data}}).encode()


def test_events_are_numbered_framed_and_filtered() -> None:
    log = ThreadEventLog()
    log.append("values", body("values", [], {"a": 1}))
    log.append("messages|inner:1", body("messages", ["inner:1"], {"event": "message-start"}))
    log.append("custom", body("custom", [], {"name": "progress", "payload": 1}))
    log.append("input.requested", body("input.requested", [], {"interrupt_id": "i", "payload": None}))
    first = log.entries[0]
    event = json.loads(first.json)
    assert event["type"] == "event" and event["seq"] == 1 and event["event_id"].endswith("-1")
    assert event["method"] == "values" and event["params"]["data"] == {"a": 1}
    assert first.frame == b"event: values\r\ndata: " + first.json + b"\r\nid: 1\r\n\r\n"
    channels = [e.channel for e in log.entries]
    assert channels == ["values", "messages", "custom:progress", "input"]
    assert [e.seq for e in log.since(0, EventFilter(frozenset({"custom"})))] == [3]
    assert [e.seq for e in log.since(0, EventFilter(frozenset({"custom:other"})))] == []
    root = EventFilter(frozenset({"values", "messages"}), [[]], 0)
    assert [e.seq for e in log.since(0, root)] == [1]
    inner = EventFilter(frozenset({"messages"}), [["inner"]])  # a segment without `:task` matches any task
    assert [e.seq for e in log.since(0, inner)] == [2]
    assert [e.seq for e in log.since(2, EventFilter(frozenset({"values", "input", "custom"})))] == [3, 4]


def test_the_log_keeps_the_latest_events() -> None:
    log = ThreadEventLog(max_events=10)
    for i in range(25):
        log.append("values", body("values", [], i))
    assert log.last_seq == 25 and len(log.entries) <= 10 and log.entries[-1].seq == 25
    kept = log.since(0, EventFilter(frozenset({"values"})))
    assert [e.seq for e in kept] == list(range(log.first_seq, 26))
    assert [e.seq for e in log.since(23, EventFilter(frozenset({"values"})))] == [24, 25]


def test_logs_in_use_stay_in_memory() -> None:
    logs = ThreadLogs(max_logs=2)
    busy = logs.log("busy")
    writer = LocalWriter(busy)  # a running run
    logs.log("idle")
    logs.log("third")
    assert set(logs._logs) == {"busy", "third"}
    logs.log("fourth")
    assert set(logs._logs) == {"busy", "fourth"} and logs.log("busy") is busy
    writer.release()  # the run ended: now the least recently used log goes first
    logs.log("fourth")
    logs.log("fifth")
    assert set(logs._logs) == {"fourth", "fifth"}


def test_a_replica_keeps_the_numbers_it_is_given() -> None:
    """A replica of a Redis stream starts at the oldest kept seq and ignores events it already holds."""
    log = ThreadEventLog()
    for seq in (41, 42, 42, 43):
        log.append_numbered(seq, b"1700000000000", "values", body("values", [], seq))
    assert [e.seq for e in log.entries] == [41, 42, 43] and log.first_seq == 41 and log.last_seq == 43
    assert [e.seq for e in log.since(41, EventFilter(frozenset({"values"})))] == [42, 43]
    assert json.loads(log.entries[0].json)["event_id"] == "1700000000000-41"

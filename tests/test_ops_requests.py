"""Request ids and structured logs: `X-Request-Id` echoed on every answer (streams and errors too), stored in
the run's metadata as `langgraph_request_id`, and carried by every JSON log line of the request and its run."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langgraph_sdk import get_client

from tests.ops_helpers import AGENT_RUN, json_lines, log_lines_where, wait_for
from tests.server import ServerProcess

ACCESS_FIELDS = {"timestamp", "level", "message", "request_id", "method", "path", "status", "duration_ms"}


@pytest.fixture(scope="module")
def logged() -> Iterator[ServerProcess]:
    proc = ServerProcess(env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}).start()
    yield proc
    proc.stop()


def test_request_id_is_echoed_on_plain_error_and_stream_answers(logged: ServerProcess) -> None:
    with httpx.Client(base_url=logged.url, timeout=30) as http:
        ok = http.post("/threads", json={}, headers={"X-Request-Id": "client-id-1"})
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "client-id-1"
        missing = http.get("/no/such/route", headers={"X-Request-Id": "client-id-2"})
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "client-id-2"
        invalid = http.post("/threads", content=b"{nope", headers={"X-Request-Id": "client-id-3"})
        assert invalid.status_code == 422 and invalid.headers["x-request-id"] == "client-id-3"
        tid = ok.json()["thread_id"]
        with http.stream("POST", f"/threads/{tid}/runs/stream", json=AGENT_RUN,
                         headers={"X-Request-Id": "client-id-4"}) as stream:  # fmt: skip
            assert stream.status_code == 200 and stream.headers["x-request-id"] == "client-id-4"
            assert b"event: metadata" in stream.read()
        # no header, or an unusable one: a fresh UUID is answered
        fresh = http.get("/ok").headers["x-request-id"]
        replaced = http.get("/ok", headers={"X-Request-Id": "x" * 500}).headers["x-request-id"]
        assert len(fresh) == 36 and len(replaced) == 36 and fresh != replaced


async def test_request_id_reaches_run_metadata_and_every_log_line(logged: ServerProcess) -> None:
    client = get_client(url=logged.url, headers={"X-Request-Id": "sdk-run-7"})
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "agent", input=AGENT_RUN["input"])
    runs = await client.runs.list(thread["thread_id"])
    assert [r["kwargs"]["config"]["configurable"]["langgraph_request_id"] for r in runs] == ["sdk-run-7"]
    run_id, thread_id = runs[0]["run_id"], thread["thread_id"]

    finished = wait_for(lambda: log_lines_where(logged, event="run_finished", run_id=run_id), "the run's end line")
    started = log_lines_where(logged, event="run_started", run_id=run_id)
    assert len(started) == 1 and len(finished) == 1
    for line in (started[0], finished[0]):
        assert line["request_id"] == "sdk-run-7"
        assert line["thread_id"] == thread_id and line["graph_id"] == "agent" and line["attempt"] == 1
        assert {"timestamp", "level", "message"} <= line.keys()
    assert finished[0]["status"] == "success" and finished[0]["duration_ms"] > 0

    # the access line of every request of that client carries its id, method, path, status and duration
    access = wait_for(
        lambda: [
            x
            for x in log_lines_where(logged, logger="robyn_server.access", request_id="sdk-run-7")
            if x["route"] == "/threads/:thread_id/runs/wait"
        ],  # fmt: skip
        "the access line of the wait request",
    )
    assert ACCESS_FIELDS <= access[0].keys()
    assert access[0]["method"] == "POST" and access[0]["status"] == 200
    assert access[0]["stream"] is True  # /wait streams its answer: the line is written when it ends
    assert access[0]["path"] == f"/threads/{thread_id}/runs/wait"
    # every line written while serving that id names it
    assert all(x["request_id"] == "sdk-run-7" for x in json_lines(logged) if x.get("run_id") == run_id)


def test_a_failing_run_logs_its_error_with_ids(logged: ServerProcess) -> None:
    with httpx.Client(base_url=logged.url, timeout=30) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        resp = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "fail", "input": {}},
                         headers={"X-Request-Id": "fail-9"})  # fmt: skip
        assert resp.headers["x-request-id"] == "fail-9"
    end = wait_for(lambda: log_lines_where(logged, event="run_finished", request_id="fail-9"), "the failed run's end")
    assert end[0]["status"] == "error" and end[0]["thread_id"] == tid
    warning = wait_for(
        lambda: [x for x in log_lines_where(logged, level="WARNING", request_id="fail-9") if "failed" in x["message"]],
        "the run failure warning",
    )
    assert warning[0]["run_id"] == end[0]["run_id"]


def test_authenticated_lines_name_the_user_never_the_token() -> None:
    secret = "ops-test-secret-0123456789abcdef0123456789abcdef"
    import jwt

    token = jwt.encode({"sub": "user-ops-1", "aud": "authenticated", "exp": 4102444800}, secret, algorithm="HS256")
    proc = ServerProcess(env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "SUPABASE_JWT_SECRET": secret}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.post("/threads", json={}, headers={"X-Request-Id": "auth-1"}).status_code == 200
            bad = {"Authorization": "Bearer bad", "X-Request-Id": "a-2"}
            refused = http.post("/threads/search", json={}, headers=bad)
            assert refused.status_code == 401 and refused.headers["x-request-id"] == "a-2"
        line = wait_for(lambda: log_lines_where(proc, request_id="auth-1", logger="robyn_server.access"), "access")
        assert line[0]["user"] == "user-ops-1"
        assert token not in proc.log_path.read_text()
    finally:
        proc.stop()


def test_text_logs_stay_the_default_and_carry_the_ids() -> None:
    proc = ServerProcess(env={"LOG_FORMAT": None, "LOG_LEVEL": "INFO"}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            http.get("/info", headers={"X-Request-Id": "text-1"})
        line = wait_for(
            lambda: [x for x in proc.log_path.read_text().splitlines() if "request_id=text-1" in x], "text line"
        )
        assert " INFO robyn_server.access: GET /info 200 " in line[0] and not line[0].startswith("{")
    finally:
        proc.stop()


def test_bad_log_format_stops_the_start() -> None:
    proc = ServerProcess(env={"LOG_FORMAT": "xml"})
    with pytest.raises(RuntimeError, match="LOG_FORMAT must be 'text' or 'json'"):
        proc.start()

"""Meta routes, error shapes, body limits, garbage input and the raw SSE wire format."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess

AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
FRAME = re.compile(rb"event: ([^\r\n]+)\r\ndata: ([^\r\n]*)\r\n\r\n")
HEARTBEAT = b": heartbeat\r\n\r\n"


@pytest.fixture(scope="module")
def tuned_server() -> Iterator[ServerProcess]:
    """A second server with a 1000-byte body limit and 0.2 s SSE heartbeats."""
    proc = ServerProcess(env={"HTTP_MAX_REQUEST_BODY_BYTES": "1000", "SSE_HEARTBEAT_SECONDS": "0.2"}).start()
    yield proc
    proc.stop()


def frames(raw: bytes) -> list[tuple[str, Any]]:
    """Split an SSE body into (event, data) pairs, asserting nothing but frames and heartbeats is present."""
    without_beats = raw.replace(HEARTBEAT, b"")
    parsed = [(m.group(1).decode(), json.loads(m.group(2))) for m in FRAME.finditer(without_beats)]
    assert FRAME.sub(b"", without_beats) == b"", "bytes outside of well-formed CRLF frames"
    return parsed


# ---------------------------------------------------------------------------- meta


def test_ok(http: httpx.Client) -> None:
    for path in ("/ok", "/"):
        resp = http.get(path)
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
        assert resp.content == b'{"ok":true,"services":{}}'


def test_info(http: httpx.Client) -> None:
    info = http.get("/info").json()
    assert set(info) == {"version", "langgraph_py_version", "flags", "host"}
    assert set(info["flags"]) == {
        "assistants", "crons", "langsmith", "langsmith_tracing_replicas", "langsmith_tracing_session_on_runs"
    }  # fmt: skip
    assert info["flags"]["assistants"] is True
    assert info["host"]["kind"] == "self-hosted"
    assert set(info["host"]) == {"kind", "project_id", "host_revision_id", "revision_id", "tenant_id"}


def test_openapi_lists_served_paths(http: httpx.Client) -> None:
    resp = http.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"]
    paths = doc["paths"]
    for path, method in [
        ("/assistants", "post"), ("/assistants/search", "post"), ("/assistants/{assistant_id}", "patch"),
        ("/threads/{thread_id}/state", "post"), ("/threads/{thread_id}/history", "get"),
        ("/threads/{thread_id}/runs/stream", "post"), ("/runs/wait", "post"), ("/store/items", "put"),
        ("/store/namespaces", "post"), ("/ok", "get"), ("/info", "get"),
    ]:  # fmt: skip
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing"
    # every listed operation is really served: the router answers neither 405 nor a bare 404
    for path, ops in paths.items():
        if any(part in path for part in ("stream", "join", "wait", "cancel")):
            continue
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        for method, op in ops.items():
            resp = http.request(method.upper(), concrete)
            if next(iter(op["responses"])) == str(resp.status_code):
                continue  # the operation's documented answer (stateless MCP: GET 405, DELETE 404, as the reference)
            assert resp.status_code != 405, f"{method.upper()} {path}"
            if "{" not in path:
                assert resp.status_code != 404, f"{method.upper()} {path}"
    create = paths["/assistants"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = create.rsplit("/", 1)[-1]
    assert "graph_id" in doc["components"]["schemas"][name]["properties"]


def test_docs_html(http: httpx.Client) -> None:
    resp = http.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert b"/openapi.json" in resp.content


# ---------------------------------------------------------------------------- error shapes


def test_unknown_thread_404(http: httpx.Client) -> None:
    resp = http.get("/threads/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.content == b'{"detail":"Thread with ID 00000000-0000-0000-0000-000000000000 not found"}'


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/threads/not-a-uuid"),
        ("PATCH", "/threads/not-a-uuid"),
        ("DELETE", "/threads/not-a-uuid"),
        ("GET", "/threads/not-a-uuid/state"),
        ("GET", "/threads/not-a-uuid/history"),
        ("POST", "/threads/not-a-uuid/copy"),
    ],
)
def test_bad_thread_uuid_422(http: httpx.Client, method: str, path: str) -> None:
    resp = http.request(method, path, json={})
    assert resp.status_code == 422
    assert resp.content == b'{"detail":"Invalid thread ID: must be a UUID"}'


@pytest.mark.parametrize("path", ["/threads", "/threads/search", "/assistants", "/assistants/search", "/runs/wait"])
def test_invalid_json_422(http: httpx.Client, path: str) -> None:
    resp = http.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert resp.json() == {"detail": "Invalid JSON in request body"}


def test_method_not_allowed(http: httpx.Client) -> None:
    resp = http.put("/threads")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert resp.json() == {"detail": "Method Not Allowed"}
    multi = http.put(f"/threads/{uuid.uuid4()}")
    assert multi.status_code == 405
    assert set(multi.headers["allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}


@pytest.mark.parametrize("path", ["/nope", "/threads/x/y/z/w", "/store"])
def test_unknown_route_404(http: httpx.Client, path: str) -> None:
    resp = http.get(path)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.content == b'{"detail":"Not Found"}'


def test_body_too_large_413(tuned_server: ServerProcess) -> None:
    with httpx.Client(base_url=tuned_server.url, timeout=30) as c:
        big = {"metadata": {"blob": "x" * 2000}}
        resp = c.post("/threads", json=big)
        assert resp.status_code == 413
        assert resp.json() == {"detail": "Request body too large (limit: 1000 bytes)"}
        put = c.put("/store/items", json={"namespace": ["a"], "key": "k", "value": {"blob": "x" * 2000}})
        assert put.status_code == 413
        small = c.post("/threads", json={"metadata": {"blob": "x" * 100}})
        assert small.status_code == 200


GARBAGE: list[Any] = [
    [],
    "text",
    123,
    None,
    True,
    {"limit": "ten"},
    {"limit": -1, "offset": -5},
    {"metadata": [1, 2]},
    {"metadata": "x", "values": 5, "status": 3},
    {"namespace": "a", "key": 1, "value": "v"},
    {"assistant_id": 5, "input": object.__name__},
    {"assistant_id": "agent", "stream_mode": 7},
    {"assistant_id": "agent", "config": "x", "checkpoint": 3},
    {"graph_id": ["agent"], "if_exists": 4},
    {"values": "x", "as_node": 3, "checkpoint_id": []},
    {"version": "one", "thread_ids": "t"},
    {"checkpoint": "x", "before": 3},
    {"prefix": "a", "max_depth": "x", "select": "assistant_id"},
    {"ids": ["not-a-uuid"], "sort_by": "nope", "sort_order": "sideways"},
]


def _write_routes(http: httpx.Client, thread_id: str) -> list[tuple[str, str]]:
    doc = http.get("/openapi.json").json()
    routes = []
    for path, ops in doc["paths"].items():
        for method in ops:
            if method.upper() not in ("POST", "PUT", "PATCH", "DELETE"):
                continue
            concrete = (
                path.replace("{thread_id}", thread_id)
                .replace("{assistant_id}", AGENT_ID)
                .replace("{run_id}", str(uuid.uuid4()))
                .replace("{checkpoint_id}", str(uuid.uuid4()))
                .replace("{namespace}", "inner")
            )
            routes.append((method.upper(), concrete))
    return routes


def test_garbage_bodies_never_500(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    routes = _write_routes(http, thread_id)
    assert len(routes) >= 20
    failures = []
    for method, path in routes:
        if path.endswith("/cancel") or method == "DELETE":
            continue
        for body in GARBAGE:
            resp = http.request(method, path, content=json.dumps(body).encode(), headers={"content-type": "x"})
            if resp.status_code >= 500:
                failures.append((method, path, body, resp.status_code, resp.text[:200]))
    assert failures == []
    assert http.get("/ok").status_code == 200


# ---------------------------------------------------------------------------- raw SSE


def test_sse_framing_and_headers(http: httpx.Client) -> None:
    thread_id = http.post("/threads", json={}).json()["thread_id"]
    body = {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": "weather in sf?"}]},
        "stream_mode": ["values", "updates"],
    }
    with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].split(";")[0] == "text/event-stream"
        raw = resp.read()
    parsed = frames(raw)
    assert raw.startswith(b"event: metadata\r\ndata: {")
    assert parsed[0][0] == "metadata"
    run_id = parsed[0][1]["run_id"]
    assert parsed[0][1] == {"run_id": run_id, "attempt": 1}
    assert resp.headers["location"] == f"/threads/{thread_id}/runs/{run_id}/stream"
    assert resp.headers["content-location"] == f"/threads/{thread_id}/runs/{run_id}"
    names = [name for name, _ in parsed]
    assert names.count("values") == 4
    assert names.count("updates") == 3
    assert "end" not in names
    assert b"\nid:" not in raw and b"retry:" not in raw
    assert parsed[-1][1]["messages"][-1]["content"] == "The weather in sf is sunny."


def test_sse_heartbeat_on_slow_run(tuned_server: ServerProcess) -> None:
    with httpx.Client(base_url=tuned_server.url, timeout=30) as c:
        thread_id = c.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": "slow", "input": {"delay": 0.3}, "stream_mode": "updates"}
        with c.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
            assert resp.status_code == 200
            raw = resp.read()
    assert HEARTBEAT in raw
    # heartbeats sit between whole frames, never inside one
    parsed = frames(raw)
    assert [name for name, _ in parsed] == ["metadata", "updates", "updates", "updates"]
    assert parsed[-1][1] == {"tick": {"count": 3}}


def test_stateless_stream_location(http: httpx.Client) -> None:
    body = {"assistant_id": "slow", "input": {"delay": 0.01, "count": 2}, "stream_mode": "values"}
    with http.stream("POST", "/runs/stream", json=body) as resp:
        raw = resp.read()
    parsed = frames(raw)
    run_id = parsed[0][1]["run_id"]
    assert resp.headers["location"] == f"/runs/{run_id}/stream"
    assert parsed[-1] == ("values", {"count": 3, "delay": 0.01})

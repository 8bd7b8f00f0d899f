"""A table of hand-made hostile or careless requests, run against the session server (memory, SQLite and
Postgres in the three CI passes): every one gets a JSON 4xx with a `detail`, never a 5xx, and stored data
is unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

BIG = 2**63
HUGE = 2**64 + 1
NUL = "a\u0000b"


class Raw(str):
    """A JSON body written out by hand (too deep for the client's own encoder)."""


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def raw_nested(prefix: str, depth: int, suffix: str) -> Raw:
    return Raw(prefix + '{"k":' * depth + "1" + "}" * depth + suffix)


@pytest.fixture(scope="module")
def ids(base_url: str) -> Iterator[dict[str, str]]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assistant = c.post("/assistants", json={"graph_id": "agent", "metadata": {"kept": "yes"}}).json()
        thread = c.post("/threads", json={"metadata": {"kept": "yes"}}).json()
        tid = thread["thread_id"]
        c.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "agent", "input": {"messages": []}})
        yield {"aid": assistant["assistant_id"], "tid": tid}


# (method, path, json body or None, query params or None, expected status: None for any 4xx, 0 for any non-5xx)
CASES: list[tuple[str, str, Any, Any, int | None]] = [
    # integers >= 2**63 (and beyond 64 bits) in bodies
    ("POST", "/assistants/search", {"limit": BIG}, None, 422),
    ("POST", "/assistants/search", {"offset": BIG}, None, 422),
    ("POST", "/assistants/search", {"offset": HUGE}, None, 422),
    ("POST", "/assistants/count", {"metadata": {"n": BIG}}, None, 422),
    ("POST", "/threads/search", {"limit": HUGE}, None, 422),
    ("POST", "/threads/search", {"offset": BIG}, None, 422),
    ("POST", "/assistants/{aid}/versions", {"offset": BIG}, None, 422),
    ("POST", "/assistants/{aid}/latest", {"version": BIG}, None, 422),
    ("POST", "/assistants/{aid}/latest", {"version": -1}, None, 422),
    ("POST", "/store/namespaces", {"max_depth": BIG}, None, 422),
    ("POST", "/store/namespaces", {"offset": BIG}, None, 422),
    ("POST", "/store/items/search", {"offset": BIG}, None, 422),
    ("POST", "/store/items/search", {"limit": -1}, None, 422),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": {}, "ttl": BIG}, None, 422),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": {"n": BIG}}, None, 422),
    ("POST", "/threads", {"ttl": {"strategy": "delete", "ttl": BIG}}, None, 422),
    ("POST", "/threads", {"ttl": 1e300}, None, 422),
    ("POST", "/threads", {"metadata": {"n": BIG}}, None, 422),
    ("PATCH", "/threads/{tid}", {"ttl": {"ttl": BIG}}, None, 422),
    ("POST", "/threads/{tid}/history", {"limit": BIG}, None, 422),
    ("POST", "/threads/{tid}/runs", {"assistant_id": "agent", "after_seconds": BIG}, None, 422),
    ("POST", "/threads/{tid}/runs", {"assistant_id": "agent", "after_seconds": 2.0**63}, None, 422),
    ("POST", "/runs", {"assistant_id": "agent", "config": {"recursion_limit": BIG}}, None, 422),
    ("POST", "/runs/wait", {"assistant_id": "agent", "input": {"messages": [], "n": BIG}}, None, 422),
    ("POST", "/assistants", {"graph_id": "agent", "config": {"configurable": {"n": BIG}}}, None, 422),
    # integers out of range and negative in query strings
    ("GET", "/threads/{tid}/runs", None, {"limit": "-1"}, 422),
    ("GET", "/threads/{tid}/runs", None, {"offset": "-1"}, 422),
    ("GET", "/threads/{tid}/runs", None, {"limit": str(BIG)}, 422),
    ("GET", "/threads/{tid}/runs", None, {"offset": str(BIG)}, 422),
    ("GET", "/threads/{tid}/history", None, {"limit": "-1"}, 422),
    ("GET", "/threads/{tid}/history", None, {"limit": str(HUGE)}, 422),
    ("GET", "/threads/{tid}/history", None, {"limit": "0"}, 422),
    # NUL characters: refused the same way on every backend
    ("POST", "/threads", {"metadata": {NUL: 1}}, None, 422),
    ("POST", "/threads", {"metadata": {"k": NUL}}, None, 422),
    ("PATCH", "/threads/{tid}", {"metadata": {NUL: NUL}}, None, 422),
    ("POST", "/threads/search", {"metadata": {"k": NUL}}, None, 422),
    ("POST", "/assistants", {"graph_id": "agent", "name": NUL}, None, 422),
    ("PATCH", "/assistants/{aid}", {"metadata": {NUL: 1}}, None, 422),
    ("PUT", "/store/items", {"namespace": ["n"], "key": NUL, "value": {}}, None, 422),
    ("PUT", "/store/items", {"namespace": [NUL], "key": "k", "value": {}}, None, 422),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": {"v": NUL}}, None, 422),
    ("GET", "/store/items", None, {"namespace": "n", "key": NUL}, 422),
    ("GET", "/store/items", None, {"namespace": NUL, "key": "k"}, 422),
    ("POST", "/threads/{tid}/state", {"values": {"messages": [{"role": "user", "content": NUL}]}}, None, 422),
    ("POST", "/threads/{tid}/runs/wait", {"assistant_id": "agent", "input": {"messages": [NUL]}}, None, 422),
    ("GET", "/threads/{tid}/history", None, {"before": NUL}, 422),
    ("GET", "/threads/{tid}/runs", None, {"status": NUL}, 422),
    # deep nesting
    ("POST", "/threads/{tid}/history", raw_nested('{"metadata":', 1000, "}"), None, 422),
    ("POST", "/threads/{tid}/history", raw_nested('{"metadata":', 200, "}"), None, 422),
    ("POST", "/threads", raw_nested('{"metadata":', 150, "}"), None, 422),
    ("PUT", "/store/items", raw_nested('{"namespace":["n"],"key":"k","value":', 300, "}"), None, 422),
    ("POST", "/threads/search", Raw("[" * 5000 + "]" * 5000), None, 422),
    # sizes of store keys and namespaces (a permanent error, never a retryable 503)
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k" * 1_000_000, "value": {}}, None, 422),
    ("PUT", "/store/items", {"namespace": ["n"] * 1000, "key": "k", "value": {}}, None, 422),
    ("PUT", "/store/items", {"namespace": ["x" * 5000], "key": "k", "value": {}}, None, 422),
    ("DELETE", "/store/items", {"namespace": ["n"], "key": "k" * 100_000}, None, 422),
    ("POST", "/store/items/search", {"namespace_prefix": ["n"] * 1000}, None, 422),
    ("POST", "/store/namespaces", {"prefix": ["n"] * 1000}, None, 422),
    ("GET", "/store/items", None, {"namespace": "n", "key": "k" * 5000}, 422),
    ("GET", "/store/items", None, {"namespace": ".".join(["n"] * 1000), "key": "k"}, 422),
    # odd ids and references
    ("GET", "/threads/{tid}/state/not-a-checkpoint", None, None, 0),
    ("POST", "/threads/{tid}/history", {"before": "garbage"}, None, 0),
    ("POST", "/threads/{tid}/history", {"before": {"configurable": {"checkpoint_id": 5}}}, None, 422),
    ("POST", "/threads/{tid}/history", {"before": {"configurable": [1]}}, None, 422),
    ("POST", "/threads/{tid}/state", {"values": {"messages": []}, "as_node": "no-such-node"}, None, None),
    ("POST", "/threads/{tid}/state/checkpoint", {"checkpoint": {"checkpoint_id": "x" * 10_000}}, None, 0),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c[0]} {c[1]}" for i, c in enumerate(CASES)])
def test_bad_input_is_a_json_4xx(http: httpx.Client, ids: dict[str, str], case: tuple) -> None:
    method, path, body, params, expected = case
    if isinstance(body, Raw):
        headers = {"content-type": "application/json"}
        response = http.request(method, path.format(**ids), content=body, params=params, headers=headers)
    else:
        response = http.request(method, path.format(**ids), json=body, params=params)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if expected == 0:
        return
    assert response.status_code >= 400, (response.status_code, response.text[:300])
    if expected is not None:
        assert response.status_code == expected, response.text[:300]
    if response.status_code != 422 or not path.startswith("/store/items") or "namespace" not in str(body):
        assert response.headers["content-type"].startswith("application/json"), response.headers
        assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def test_stored_data_survives_the_table(http: httpx.Client, ids: dict[str, str]) -> None:
    assert http.get(f"/threads/{ids['tid']}").json()["metadata"]["kept"] == "yes"
    assert http.get(f"/assistants/{ids['aid']}").json()["metadata"] == {"kept": "yes"}
    assert http.get(f"/threads/{ids['tid']}/state").status_code == 200


def test_bounds_still_accept_the_edges(http: httpx.Client) -> None:
    assert http.post("/threads/search", json={"limit": 1000, "offset": 2**31 - 1}).status_code == 200
    thread = http.post("/threads", json={"metadata": {"n": 2**63 - 1, "m": -(2**63), "deep": nested(90)}})
    assert thread.status_code == 200 and thread.json()["metadata"]["n"] == 2**63 - 1
    key = "k" * 1024
    ns = ["a" * 200] * 5
    assert http.put("/store/items", json={"namespace": ns, "key": key, "value": {"v": 1}}).status_code == 204
    got = http.get("/store/items", params={"namespace": ".".join(ns), "key": key}).json()
    assert got["value"] == {"v": 1}
    assert http.get(f"/threads/{uuid.uuid4()}/runs", params={"limit": "1000", "offset": "0"}).status_code == 404


def test_query_values_are_percent_decoded(http: httpx.Client) -> None:
    namespace, key = ["a b", "é+"], "k+1 x/%"
    assert http.put("/store/items", json={"namespace": namespace, "key": key, "value": {"v": 1}}).status_code == 204
    got = http.get("/store/items", params={"namespace": ".".join(namespace), "key": key})
    assert got.json()["namespace"] == namespace and got.json()["key"] == key

"""Store API: put/get/search/namespaces/delete and the reference's odd error shapes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

ITEM_KEYS = {"namespace", "key", "value", "created_at", "updated_at"}


@pytest.fixture
async def ahttp(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A raw async HTTP client (blocking calls would stall the test's event loop)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture
def ns() -> list[str]:
    """A namespace root unique to the test."""
    return ["t" + uuid.uuid4().hex]


async def test_put_get_roundtrip(client, ahttp: httpx.AsyncClient, ns: list[str]) -> None:
    resp = await ahttp.put("/store/items", json={"namespace": [*ns, "u1"], "key": "prefs", "value": {"theme": "dark"}})
    assert resp.status_code == 204 and resp.content == b""
    item = await client.store.get_item([*ns, "u1"], key="prefs")
    assert set(item) == ITEM_KEYS
    assert item["namespace"] == [*ns, "u1"] and item["key"] == "prefs" and item["value"] == {"theme": "dark"}
    raw = await ahttp.get("/store/items", params={"namespace": f"{ns[0]}.u1", "key": "prefs"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    assert raw.json() == item

    await client.store.put_item([*ns, "u1"], key="prefs", value={"theme": "light"})
    updated = await client.store.get_item([*ns, "u1"], key="prefs")
    assert updated["value"] == {"theme": "light"}
    assert updated["updated_at"] >= item["updated_at"]


def test_missing_item_is_200_null(http: httpx.Client, ns: list[str]) -> None:
    resp = http.get("/store/items", params={"namespace": ns[0], "key": "absent"})
    assert resp.status_code == 200
    assert resp.content == b"null"


def test_missing_key_400(http: httpx.Client, ns: list[str]) -> None:
    resp = http.get("/store/items", params={"namespace": ns[0]})
    assert resp.status_code == 400
    assert resp.json() == {"error": "Key is required"}


@pytest.mark.parametrize(
    ("namespace", "label"),
    [(["a.b"], "a.b"), (["ok", ""], "")],
)
def test_bad_namespace_label_422_plain_text(http: httpx.Client, namespace: list[str], label: str) -> None:
    resp = http.put("/store/items", json={"namespace": namespace, "key": "k", "value": {}})
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.text == f"Namespace label '{label}' must be a non-empty string without periods"
    delete = http.request("DELETE", "/store/items", json={"namespace": namespace, "key": "k"})
    assert delete.status_code == 422
    assert delete.text == resp.text


def test_put_validation(http: httpx.Client, ns: list[str]) -> None:
    ttl = http.put("/store/items", json={"namespace": ns, "key": "k", "value": {}, "ttl": 5})
    assert ttl.status_code in (204, 422)  # accepted, or refused by a store without TTL support; never a 500
    assert http.put("/store/items", json={"namespace": ns, "key": "k"}).status_code == 422
    assert http.put("/store/items", json={"namespace": ns, "key": "k", "value": [1, 2]}).status_code == 422
    assert http.put("/store/items", json={"key": "k", "value": {}}).status_code == 422


async def test_search(client, ahttp: httpx.AsyncClient, ns: list[str]) -> None:
    for i in range(5):
        await client.store.put_item([*ns, "docs", f"d{i % 2}"], key=f"k{i}", value={"i": i, "even": i % 2 == 0})
    everything = await client.store.search_items(ns, limit=10)
    assert len(everything["items"]) == 5
    assert all(set(i) == ITEM_KEYS | {"score"} for i in everything["items"])
    assert all(i["score"] is None for i in everything["items"])

    sub = await client.store.search_items([*ns, "docs", "d1"])
    assert sorted(i["key"] for i in sub["items"]) == ["k1", "k3"]
    filtered = await client.store.search_items(ns, filter={"even": True})
    assert sorted(i["key"] for i in filtered["items"]) == ["k0", "k2", "k4"]
    page1 = await client.store.search_items(ns, limit=2)
    page2 = await client.store.search_items(ns, limit=2, offset=2)
    assert len(page1["items"]) == 2 and len(page2["items"]) == 2
    assert {i["key"] for i in page1["items"]}.isdisjoint({i["key"] for i in page2["items"]})
    raw = await ahttp.post("/store/items/search", json={"namespace_prefix": ["nobody-" + ns[0]]})
    assert raw.status_code == 200 and raw.json() == {"items": []}


async def test_namespaces(client, ns: list[str]) -> None:
    await client.store.put_item([*ns, "users", "u1"], key="a", value={})
    await client.store.put_item([*ns, "users", "u2"], key="a", value={})
    await client.store.put_item([*ns, "teams", "x", "deep"], key="a", value={})
    listed = await client.store.list_namespaces(prefix=ns)
    assert sorted(listed["namespaces"]) == sorted(
        [[*ns, "users", "u1"], [*ns, "users", "u2"], [*ns, "teams", "x", "deep"]]
    )
    shallow = await client.store.list_namespaces(prefix=ns, max_depth=2)
    assert sorted(shallow["namespaces"]) == [[*ns, "teams"], [*ns, "users"]]
    by_suffix = await client.store.list_namespaces(prefix=ns, suffix=["u2"])
    assert by_suffix["namespaces"] == [[*ns, "users", "u2"]]
    limited = await client.store.list_namespaces(prefix=ns, limit=1)
    assert len(limited["namespaces"]) == 1


async def test_delete(client, ahttp: httpx.AsyncClient, ns: list[str]) -> None:
    await client.store.put_item(ns, key="gone", value={"x": 1})
    resp = await ahttp.request("DELETE", "/store/items", json={"namespace": ns, "key": "gone"})
    assert resp.status_code == 204 and resp.content == b""
    assert (await ahttp.get("/store/items", params={"namespace": ns[0], "key": "gone"})).content == b"null"
    # deleting again is not an error
    await client.store.delete_item(ns, key="gone")
    assert (await ahttp.request("DELETE", "/store/items", json={"namespace": ns})).status_code == 422

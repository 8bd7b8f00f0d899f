"""Assistants API: create, search, count, get, patch/versions, delete, graph, schemas, subgraphs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

# GET /assistants/agent/graph on the reference server (transcript 06), byte for byte.
AGENT_GRAPH = (
    b'{"nodes":[{"id":"__start__","type":"runnable","data":{"name":"__start__"}},{"id":"model","type":"run'
    b'nable","data":{"name":"model"}},{"id":"tools","type":"runnable","data":{"name":"tools"}},{"id":"__en'
    b'd__"}],"edges":[{"source":"__start__","target":"model"},{"source":"model","target":"__end__","condit'
    b'ional":true},{"source":"model","target":"tools","conditional":true},{"source":"tools","target":"mode'
    b'l"}]}'
)
AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
GRAPH_IDS = ["agent", "fail", "interrupt", "nested", "slow"]
ASSISTANT_KEYS = {
    "assistant_id", "graph_id", "config", "context", "metadata", "name", "created_at", "updated_at", "version",
    "description",
}  # fmt: skip


@pytest.fixture
async def ahttp(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A raw async HTTP client (blocking calls would stall the test's event loop)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        yield c


def tag() -> str:
    """A unique metadata value so searches only see this test's assistants."""
    return uuid.uuid4().hex


async def test_system_assistants_are_deterministic(client) -> None:
    for graph_id in GRAPH_IDS:
        expected = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), graph_id))
        found = await client.assistants.get(expected)
        assert found["graph_id"] == graph_id
        assert found["metadata"] == {"created_by": "system"}
    agent = await client.assistants.get(AGENT_ID)
    assert agent["name"] == "agent"
    assert set(agent) == ASSISTANT_KEYS


async def test_create_mirrors_configurable_into_context(client) -> None:
    created = await client.assistants.create(
        "agent", config={"configurable": {"k": "v"}}, metadata={"team": "x"}, name="custom agent"
    )
    assert set(created) == ASSISTANT_KEYS
    assert created["context"] == {"k": "v"}
    assert created["version"] == 1
    assert created["name"] == "custom agent"
    assert created["created_at"] == created["updated_at"]
    uuid.UUID(created["assistant_id"])


async def test_create_default_name_is_untitled(client) -> None:
    created = await client.assistants.create("slow")
    assert created["name"] == "Untitled"
    assert created["config"] == {} and created["context"] == {} and created["metadata"] == {}


async def test_create_if_exists(client) -> None:
    assistant_id = str(uuid.uuid4())
    first = await client.assistants.create("agent", assistant_id=assistant_id, name="first")
    with pytest.raises(ConflictError):
        await client.assistants.create("agent", assistant_id=assistant_id, name="second")
    with pytest.raises(ConflictError):
        await client.assistants.create("agent", assistant_id=assistant_id, name="second", if_exists="raise")
    same = await client.assistants.create("agent", assistant_id=assistant_id, name="third", if_exists="do_nothing")
    assert same == first


def test_create_duplicate_409_detail(http: httpx.Client) -> None:
    assistant_id = str(uuid.uuid4())
    assert http.post("/assistants", json={"graph_id": "agent", "assistant_id": assistant_id}).status_code == 200
    resp = http.post("/assistants", json={"graph_id": "agent", "assistant_id": assistant_id})
    assert resp.status_code == 409
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"detail": f"Assistant {assistant_id} already exists"}


def test_create_unknown_graph_404(http: httpx.Client) -> None:
    resp = http.post("/assistants", json={"graph_id": "nope"})
    assert resp.status_code == 404
    assert resp.content == (
        b"{\"detail\":\"Graph 'nope' not found. Expected one of: ['agent', 'fail', 'interrupt', 'nested', 'slow']\"}"
    )


def test_create_missing_graph_id_422(http: httpx.Client) -> None:
    resp = http.post("/assistants", json={"name": "x"})
    assert resp.status_code == 422
    assert "graph_id" in resp.json()["detail"]


async def test_search_filters_and_pagination(client, ahttp: httpx.AsyncClient) -> None:
    t = tag()
    made = [
        await client.assistants.create("agent", metadata={"t": t, "i": i}, name=f"pager-{t}-{i % 2}") for i in range(5)
    ]
    found = await client.assistants.search(metadata={"t": t}, limit=10)
    assert {a["assistant_id"] for a in found} == {a["assistant_id"] for a in made}
    # default sort: created_at desc
    assert [a["assistant_id"] for a in found] == [a["assistant_id"] for a in reversed(made)]

    assert await client.assistants.search(metadata={"t": t, "i": 3}) == [made[3]]
    assert len(await client.assistants.search(metadata={"t": t}, graph_id="slow")) == 0
    by_name = await client.assistants.search(metadata={"t": t}, name=f"pager-{t}-1")
    assert {a["assistant_id"] for a in by_name} == {made[1]["assistant_id"], made[3]["assistant_id"]}

    page = await ahttp.post("/assistants/search", json={"metadata": {"t": t}, "limit": 2, "offset": 0})
    assert page.status_code == 200
    assert len(page.json()) == 2
    assert page.headers["x-pagination-total"] == "3"
    assert page.headers["x-pagination-next"] == "2"

    last = await ahttp.post("/assistants/search", json={"metadata": {"t": t}, "limit": 2, "offset": 4})
    assert len(last.json()) == 1
    assert last.headers["x-pagination-total"] == "5"
    assert "x-pagination-next" not in last.headers

    asc = await client.assistants.search(metadata={"t": t}, sort_by="created_at", sort_order="asc", limit=2, offset=1)
    assert [a["assistant_id"] for a in asc] == [made[1]["assistant_id"], made[2]["assistant_id"]]

    sel = await client.assistants.search(metadata={"t": t}, select=["assistant_id", "name"], limit=1)
    assert set(sel[0]) == {"assistant_id", "name"}


def test_search_by_graph_id_matches_reference(http: httpx.Client) -> None:
    resp = http.post("/assistants/search", json={"graph_id": "interrupt", "metadata": {"created_by": "system"}})
    assert resp.status_code == 200
    assert [a["assistant_id"] for a in resp.json()] == ["2e6b29d1-4009-5fcc-9319-4cffb1865dfe"]
    assert resp.headers["x-pagination-total"] == "1"


async def test_count(client, ahttp: httpx.AsyncClient) -> None:
    t = tag()
    for _ in range(3):
        await client.assistants.create("slow", metadata={"t": t})
    assert await client.assistants.count(metadata={"t": t}) == 3
    assert await client.assistants.count(metadata={"t": t}, graph_id="agent") == 0
    resp = await ahttp.post("/assistants/count", json={"metadata": {"t": t}, "graph_id": "slow"})
    assert resp.status_code == 200 and resp.content == b"3"


async def test_get_unknown_and_invalid(client, ahttp: httpx.AsyncClient) -> None:
    with pytest.raises(NotFoundError):
        await client.assistants.get(str(uuid.uuid4()))
    resp = await ahttp.get(f"/assistants/{uuid.uuid4()}")
    assert resp.status_code == 404 and resp.json() == {"detail": "Not Found"}
    bad = await ahttp.get("/assistants/agent")
    assert bad.status_code == 422
    assert bad.json() == {"detail": "Invalid assistant ID: must be a UUID"}


async def test_patch_creates_versions_and_latest(client, ahttp: httpx.AsyncClient) -> None:
    created = await client.assistants.create("agent", metadata={"a": 1}, name="v1")
    aid = created["assistant_id"]
    v2 = await client.assistants.update(aid, metadata={"b": 2}, name="v2", config={"configurable": {"x": 1}})
    assert v2["version"] == 2
    assert v2["metadata"] == {"a": 1, "b": 2}
    assert v2["name"] == "v2"
    assert v2["context"] == {"x": 1}
    assert v2["created_at"] == created["created_at"]
    v3 = await client.assistants.update(aid, description="third")
    assert v3["version"] == 3 and v3["description"] == "third" and v3["name"] == "v2"
    assert (await client.assistants.get(aid))["version"] == 3

    versions = await client.assistants.get_versions(aid)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[2]["name"] == "v1"
    assert [v["version"] for v in await client.assistants.get_versions(aid, limit=1, offset=1)] == [2]
    assert [v["version"] for v in await client.assistants.get_versions(aid, metadata={"b": 2})] == [3, 2]

    back = await client.assistants.set_latest(aid, 1)
    assert back["version"] == 1 and back["name"] == "v1"
    assert (await client.assistants.get(aid))["name"] == "v1"
    # a new patch after going back still gets the next free version number
    v4 = await client.assistants.update(aid, name="v4")
    assert v4["version"] == 4

    missing = await ahttp.post(f"/assistants/{aid}/latest", json={"version": 99})
    assert missing.status_code == 404


def test_patch_unknown_assistant_and_graph(http: httpx.Client) -> None:
    assert http.patch(f"/assistants/{uuid.uuid4()}", json={"name": "x"}).status_code == 404
    resp = http.patch(f"/assistants/{AGENT_ID}", json={"graph_id": "nope"})
    assert resp.status_code == 404
    assert resp.json()["detail"].startswith("Graph 'nope' not found")


def test_versions_of_system_assistant_shape(http: httpx.Client) -> None:
    resp = http.post(f"/assistants/{AGENT_ID}/versions", json={"limit": 1000})
    assert resp.status_code == 200
    # the session server is shared: other test files may have added versions of the system assistant
    (first,) = [v for v in resp.json() if v["version"] == 1]
    assert first["version"] == 1 and first["graph_id"] == "agent" and first["metadata"] == {"created_by": "system"}


async def test_delete(client, ahttp: httpx.AsyncClient) -> None:
    created = await client.assistants.create("agent")
    resp = await ahttp.delete(f"/assistants/{created['assistant_id']}")
    assert resp.status_code == 204 and resp.content == b""
    with pytest.raises(NotFoundError):
        await client.assistants.get(created["assistant_id"])
    assert (await ahttp.delete(f"/assistants/{created['assistant_id']}")).status_code == 404


async def test_delete_with_threads(client) -> None:
    keep = await client.assistants.create("slow")
    drop = await client.assistants.create("slow")
    kept_thread = await client.threads.create()
    dropped_thread = await client.threads.create()
    await client.runs.wait(kept_thread["thread_id"], keep["assistant_id"], input={"delay": 0.01, "count": 2})
    await client.runs.wait(dropped_thread["thread_id"], drop["assistant_id"], input={"delay": 0.01, "count": 2})

    await client.assistants.delete(keep["assistant_id"])
    assert (await client.threads.get(kept_thread["thread_id"]))["thread_id"] == kept_thread["thread_id"]

    await client.assistants.delete(drop["assistant_id"], delete_threads=True)
    with pytest.raises(NotFoundError):
        await client.threads.get(dropped_thread["thread_id"])


async def test_graph(client, ahttp: httpx.AsyncClient) -> None:
    graph = await client.assistants.get_graph(AGENT_ID)
    assert [n["id"] for n in graph["nodes"]] == ["__start__", "model", "tools", "__end__"]
    assert {"source": "tools", "target": "model"} in graph["edges"]
    assert {"source": "model", "target": "tools", "conditional": True} in graph["edges"]
    by_graph_id = await ahttp.get("/assistants/agent/graph")
    assert by_graph_id.status_code == 200
    assert by_graph_id.content == AGENT_GRAPH
    assert by_graph_id.json() == graph
    assert (await ahttp.get("/assistants/nope/graph")).status_code == 422
    assert (await ahttp.get(f"/assistants/{uuid.uuid4()}/graph")).status_code == 404


async def test_graph_xray_expands_subgraphs(client, ahttp: httpx.AsyncClient) -> None:
    flat = (await ahttp.get("/assistants/nested/graph")).json()
    assert [n["id"] for n in flat["nodes"]] == ["__start__", "inner", "__end__"]
    xray = await ahttp.get("/assistants/nested/graph", params={"xray": "true"})
    assert xray.status_code == 200
    ids = [n["id"] for n in xray.json()["nodes"]]
    assert "inner:model" in ids and "inner:tools" in ids
    assert all(set(n.get("data", {})) <= {"name"} for n in xray.json()["nodes"])
    assert await client.assistants.get_graph("nested", xray=1) == xray.json()
    assert (await ahttp.get("/assistants/nested/graph", params={"xray": "maybe"})).status_code == 422


async def test_schemas(client) -> None:
    schemas = await client.assistants.get_schemas(AGENT_ID)
    assert set(schemas) == {"graph_id", "input_schema", "output_schema", "state_schema", "config_schema",
                            "context_schema"}  # fmt: skip
    assert schemas["graph_id"] == "agent"
    assert "messages" in schemas["input_schema"]["properties"]
    assert "messages" in schemas["output_schema"]["properties"]
    assert "messages" in schemas["state_schema"]["properties"]
    interrupt = await client.assistants.get_schemas("2e6b29d1-4009-5fcc-9319-4cffb1865dfe")
    assert set(interrupt["state_schema"]["properties"]) == {"request", "answer", "result"}
    assert set(interrupt["input_schema"]["properties"]) == {"request", "answer", "result"}


async def test_subgraphs(client, ahttp: httpx.AsyncClient) -> None:
    nested_id = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "nested"))
    subgraphs = await client.assistants.get_subgraphs(nested_id)
    assert list(subgraphs) == ["inner"]
    assert "messages" in subgraphs["inner"]["state_schema"]["properties"]
    assert await client.assistants.get_subgraphs(nested_id, namespace="inner") == subgraphs
    assert await client.assistants.get_subgraphs(AGENT_ID) == {}
    assert (await ahttp.get(f"/assistants/{nested_id}/subgraphs", params={"recurse": "true"})).status_code == 200

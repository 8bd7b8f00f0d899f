"""Graph factories of every signature the reference accepts: they load, run, and see the caller and the context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from robyn_server.config import ConfigError, GraphSpec
from robyn_server.graphs import GraphRegistry
from robyn_server.storage.memory import MemoryStorage
from tests.server import ServerProcess

CONFIG = Path(__file__).parent / "graphs" / "platform" / "langgraph.json"
RUNTIME_FACTORIES = ["runtime_only", "config_and_runtime", "sync_cm_runtime_first"]
CONFIG_FACTORIES = ["config_only", "config_and_runtime", "sync_cm_runtime_first"]


@pytest.fixture(scope="module")
def platform_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(config=CONFIG).start()
    yield proc
    proc.stop()


def _client(server: ServerProcess, user: str):
    return get_client(url=server.url, headers={"Authorization": f"Bearer {user}"})


@pytest.mark.parametrize("graph_id", ["no_args", *CONFIG_FACTORIES, "runtime_only"])
async def test_each_factory_signature_runs(platform_server: ServerProcess, graph_id: str) -> None:
    client = _client(platform_server, "alice")
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        graph_id,
        input={"question": "who?"},
        context={"tenant": "acme"} if graph_id in RUNTIME_FACTORIES else None,
        config=None if graph_id in RUNTIME_FACTORIES else {"configurable": {"model": "m1"}},
    )
    seen = result["seen"]
    assert seen["factory"] == graph_id
    if graph_id in RUNTIME_FACTORIES:
        assert seen["access_context"] == "threads.create_run"
        assert seen["user"] == "alice"
        assert seen["context"] == {"tenant": "acme"}
        assert seen["has_store"] is True
    if graph_id == "config_only":
        assert seen["model"] == "m1"
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success"]


async def test_runtime_user_is_the_caller_of_each_run(platform_server: ServerProcess) -> None:
    for user in ("bob", "carol"):
        client = _client(platform_server, user)
        result = await client.runs.wait(None, "config_and_runtime", input={"question": "q"}, context={"n": user})
        assert result["seen"]["user"] == user
        assert result["seen"]["context"] == {"n": user}


async def test_factories_are_entered_for_reads_with_a_read_runtime(platform_server: ServerProcess) -> None:
    client = _client(platform_server, "dave")
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "sync_cm_runtime_first", input={"question": "q"})
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["seen"]["factory"] == "sync_cm_runtime_first"
    [assistant] = await client.assistants.search(graph_id="sync_cm_runtime_first")
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert "question" in schemas["input_schema"]["properties"]
    graph = await client.assistants.get_graph(assistant["assistant_id"])
    assert {n["id"] for n in graph["nodes"]} >= {"answer"}


def test_factory_signatures_the_reference_refuses_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "def three(a, b, c):\n    return None\n\ndef two_configs(a, b):\n    return None\n"
    )
    for name, message in (("three", "must take 0, 1 or 2 arguments"), ("two_configs", "one must be annotated")):
        registry = GraphRegistry(MemoryStorage())
        with pytest.raises(ConfigError, match=message):
            registry.load([GraphSpec(name, f"./bad.py:{name}")], tmp_path)


def test_configurable_headers_reach_the_run_config(platform_server: ServerProcess) -> None:
    headers = {
        "Authorization": "Bearer erin",
        "x-custom-flavour": "vanilla",
        "x-custom-secret": "excluded by the pattern",
        "x-api-key": "never copied",
        "x-other": "not included",
    }
    body = {"assistant_id": "config_only", "input": {"question": "q"}}
    result = httpx.post(f"{platform_server.url}/runs/wait", json=body, headers=headers, timeout=30).json()
    assert result["seen"]["headers"] == {"x-custom-flavour": "vanilla"}
    plain = httpx.post(f"{platform_server.url}/runs/wait", json=body, headers={"Authorization": "Bearer erin"})
    assert plain.json()["seen"]["headers"] == {}


def test_unauthenticated_runs_are_refused(platform_server: ServerProcess) -> None:
    assert httpx.post(f"{platform_server.url}/runs/wait", json={"assistant_id": "no_args"}).status_code == 401

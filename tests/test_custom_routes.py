"""`http.app`: the user's Starlette app answers its routes on this server, streamed or not, with the server's auth,
its own middleware and lifespan, shadowing /info but not /ok, and merged into /openapi.json."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from robyn_server.config import ConfigError
from robyn_server.custom_app import load_app
from robyn_server.graphs import system_assistant_id
from robyn_server.platform import check_http_config
from tests.server import ServerProcess, refuses_to_start

PLATFORM = Path(__file__).parent / "graphs" / "platform"
ALICE = {"Authorization": "Bearer alice"}


@pytest.fixture(scope="module")
def platform_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(config=PLATFORM / "langgraph.json").start()
    yield proc
    proc.stop()


@pytest.fixture
def http(platform_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform_server.url, timeout=30) as c:
        yield c


def test_a_custom_route_answers_after_the_lifespan_started(http: httpx.Client) -> None:
    r = http.get("/custom/hello", headers=ALICE)
    assert r.status_code == 200
    assert r.json() == {"hello": "world", "lifespan_started": True}
    assert r.headers["x-custom-middleware"] == "1"


def test_custom_routes_see_the_authenticated_user(http: httpx.Client) -> None:
    assert http.get("/custom/whoami", headers=ALICE).json() == {
        "identity": "alice",
        "scopes": ["read", "write"],
        "current_user": "alice",
    }
    refused = http.get("/custom/whoami")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "missing or bad bearer token"}


def test_body_path_query_status_and_headers_go_both_ways(http: httpx.Client) -> None:
    r = http.post("/custom/echo/bob?q=1&q=2", json={"x": [1, 2]}, headers=ALICE)
    assert r.status_code == 201
    assert r.headers["x-echo"] == "yes"
    assert r.json() == {"name": "bob", "body": {"x": [1, 2]}, "query": ["1", "2"]}
    wrong_method = http.get("/custom/echo/bob", headers=ALICE)
    assert wrong_method.status_code == 405


def test_a_streamed_response_arrives_while_it_is_produced(http: httpx.Client) -> None:
    with http.stream("GET", "/custom/stream", headers=ALICE) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        chunks = r.iter_raw()
        assert next(chunks) == b"first\n"  # the app has not sent the rest yet: it waits for /custom/release
        assert http.post("/custom/release", headers=ALICE).json() == {"released": True}
        assert b"".join(chunks) == b"second\n"


def test_custom_routes_shadow_info_but_not_ok_or_docs(http: httpx.Client) -> None:
    assert http.get("/info", headers=ALICE).json() == {"custom_info": True}
    assert http.get("/ok").json()["ok"] is True
    assert http.get("/docs").headers["content-type"].startswith("text/html")


def test_by_default_the_apps_middleware_runs_before_auth(http: httpx.Client) -> None:
    refused = http.get("/custom/whoami")
    assert refused.status_code == 401 and refused.headers["x-custom-middleware"] == "1"


def test_built_in_routes_still_answer(http: httpx.Client) -> None:
    r = http.post("/assistants/search", json={}, headers=ALICE)
    assert r.status_code == 200 and len(r.json()) == 7
    assert http.get("/no/such/route", headers=ALICE).status_code == 404


def test_custom_routes_are_in_openapi(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert paths["/custom/echo/{name}"]["post"]["summary"] == "Echo the body, path and query back."
    assert "get" in paths["/custom/stream"]
    assert "post" in paths["/assistants/search"]


def test_factories_are_entered_per_run_and_for_reads(http: httpx.Client) -> None:
    before = len(http.get("/custom/factory-calls", headers=ALICE).json())
    thread = http.post("/threads", json={}, headers=ALICE).json()
    run = http.post(
        f"/threads/{thread['thread_id']}/runs/wait",
        json={"assistant_id": "config_and_runtime", "input": {"question": "q"}},
        headers=ALICE,
    )
    assert run.json()["seen"]["access_context"] == "threads.create_run"
    http.get(f"/threads/{thread['thread_id']}/state", headers=ALICE).raise_for_status()
    calls = http.get("/custom/factory-calls", headers=ALICE).json()[before:]
    mine = [(c["event"], c["access_context"]) for c in calls if c["graph"] == "config_and_runtime"]
    assert ("enter", "threads.create_run") in mine and ("exit", "threads.create_run") in mine
    assert ("enter", "threads.read") in mine and ("exit", "threads.read") in mine
    update = http.post(f"/threads/{thread['thread_id']}/state", json={"values": {"question": "q2"}}, headers=ALICE)
    assert update.status_code == 200
    [assistant] = http.post("/assistants/search", json={"graph_id": "config_and_runtime"}, headers=ALICE).json()
    http.get(f"/assistants/{assistant['assistant_id']}/schemas", headers=ALICE).raise_for_status()
    calls = http.get("/custom/factory-calls", headers=ALICE).json()[before:]
    entries = {(c["access_context"], c["execution"]) for c in calls if c["graph"] == "config_and_runtime"}
    assert entries == {("threads.create_run", True), ("threads.read", False), ("threads.update", False),
                       ("assistants.read", False)}  # fmt: skip


def test_without_custom_route_auth_the_routes_are_open_and_switched_off_groups_are_absent(tmp_path: Path) -> None:
    config = json.loads((PLATFORM / "langgraph.json").read_text())
    config["dependencies"] = [str(PLATFORM)]
    config["graphs"] = {"no_args": "factory_graphs:no_args"}
    config["auth"] = {"path": str(PLATFORM / "auth.py") + ":auth"}
    config["http"] = {
        "app": str(PLATFORM / "custom_app.py") + ":app",
        "disable_store": True,
        "disable_meta": True,
        "disable_mcp": True,
        "disable_a2a": True,
        "disable_threads": True,
        "disable_runs": True,
    }
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    proc = ServerProcess(config=tmp_path / "langgraph.json").start()
    try:
        assert httpx.get(f"{proc.url}/custom/hello").status_code == 200
        assert httpx.post(f"{proc.url}/assistants/search", json={}).status_code == 401
        bearer = {"Authorization": "Bearer alice"}
        assert httpx.post(f"{proc.url}/store/items/search", json={}, headers=bearer).status_code == 404
        assert httpx.get(f"{proc.url}/openapi.json", headers=bearer).status_code == 404
        assert httpx.post(f"{proc.url}/mcp", json={}, headers=bearer).status_code == 404
        assert httpx.post(f"{proc.url}/a2a/{uuid.uuid4()}", json={}, headers=bearer).status_code == 404
        assert httpx.post(f"{proc.url}/threads/search", json={}, headers=bearer).status_code == 404
        assert httpx.post(f"{proc.url}/runs/wait", json={}, headers=bearer).status_code == 404
        assert httpx.post(f"{proc.url}/assistants/search", json={}, headers=bearer).status_code == 200
        assert httpx.get(f"{proc.url}/ok").json() == {"ok": True}
    finally:
        proc.stop()


def test_auth_first_runs_auth_before_the_apps_middleware(tmp_path: Path) -> None:
    config = json.loads((PLATFORM / "langgraph.json").read_text())
    config["dependencies"] = [str(PLATFORM)]
    config["graphs"] = {"no_args": "factory_graphs:no_args"}
    config["auth"] = {"path": str(PLATFORM / "auth.py") + ":auth"}
    config["http"] = {"app": str(PLATFORM / "custom_app.py") + ":app", "enable_custom_route_auth": True,
                      "middleware_order": "auth_first"}  # fmt: skip
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    proc = ServerProcess(config=tmp_path / "langgraph.json").start()
    try:
        refused = httpx.get(f"{proc.url}/custom/whoami")
        assert refused.status_code == 401 and "x-custom-middleware" not in refused.headers
        allowed = httpx.get(f"{proc.url}/custom/whoami", headers=ALICE)
        assert allowed.json()["identity"] == "alice" and allowed.headers["x-custom-middleware"] == "1"
    finally:
        proc.stop()


def test_a_bad_http_app_stops_the_start_with_one_line(tmp_path: Path) -> None:
    config = {"dependencies": [str(PLATFORM)], "graphs": {"no_args": "factory_graphs:no_args"}}
    config["http"] = {"app": "./missing.py:app"}
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    refuses_to_start(ServerProcess(config=tmp_path / "langgraph.json"), "robyn-server: error: http.app file not found")


@pytest.mark.parametrize(
    ("http_block", "message"),
    [
        ({"middleware_order": "sideways"}, "http.middleware_order must be one of"),
        ({"no_such_switch": True}, "http.no_such_switch in langgraph.json is not supported"),
        ({"disable_store": "yes"}, "http.disable_store must be true or false"),
        ({"configurable_headers": ["x-*"]}, "http.configurable_headers must be an object"),
        ({"mount_prefix": "api/"}, "http.mount_prefix 'api/': must start with '/'"),
    ],
)
def test_bad_http_settings_are_config_errors(http_block: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_http_config(http_block)


def test_an_http_app_that_is_not_starlette_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected a Starlette or FastAPI app"):
        load_app("./auth.py:auth", PLATFORM)


def test_a_failing_lifespan_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import contextlib\n"
        "from starlette.applications import Starlette\n\n\n"
        "@contextlib.asynccontextmanager\n"
        "async def lifespan(app):\n"
        "    raise RuntimeError('no database for the custom app')\n"
        "    yield\n\n\n"
        "app = Starlette(lifespan=lifespan)\n"
    )
    config = {"dependencies": [str(PLATFORM)], "graphs": {"no_args": "factory_graphs:no_args"}}
    config["http"] = {"app": "./app.py:app"}
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    message = "robyn-server: error: start-up failed: RuntimeError: http.app lifespan"
    refuses_to_start(ServerProcess(config=tmp_path / "langgraph.json"), message)


def test_mount_prefix_moves_every_route_under_it(tmp_path: Path) -> None:
    config = json.loads((PLATFORM / "langgraph.json").read_text())
    config["dependencies"] = [str(PLATFORM), str(PLATFORM.parent)]
    config["auth"] = {"path": str(PLATFORM / "auth.py") + ":auth"}
    config["http"] = {"app": str(PLATFORM / "custom_app.py") + ":app", "enable_custom_route_auth": True,
                      "mount_prefix": "/api"}  # fmt: skip
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    proc = ServerProcess(config=tmp_path / "langgraph.json").start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30, headers=ALICE) as http:
            assert http.get("/ok").status_code == 200 and http.get("/api/ok").status_code == 200
            assert http.post("/assistants/search", json={}).status_code == 404
            thread = http.post("/api/threads", json={}).json()
            run = http.post(
                f"/api/threads/{thread['thread_id']}/runs/wait",
                json={"assistant_id": "no_args", "input": {"question": "q"}},
            )
            assert run.json()["seen"]["factory"] == "no_args", run.text
            assert http.get("/api/custom/whoami").json()["identity"] == "alice"
            assert http.get("/api/info").json() == {"custom_info": True}
            card = http.get(f"/api/a2a/{system_assistant_id('agent')}/.well-known/agent-card.json").json()
            assert card["supportedInterfaces"][0]["url"] == f"{proc.url}/api/a2a/{system_assistant_id('agent')}"
        assert httpx.get(f"{proc.url}/api/docs").status_code == 200  # public under the prefix too
        assert httpx.get(f"{proc.url}/api/custom/whoami").status_code == 401
        doc = httpx.get(f"{proc.url}/api/openapi.json").json()
        assert doc["servers"] == [{"url": "/api"}]
        assert "post" in doc["paths"]["/assistants/search"] and "get" in doc["paths"]["/custom/hello"]
    finally:
        proc.stop()

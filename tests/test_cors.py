"""CORS as the reference server answers it: defaults, settings from env and langgraph.json, preflight before auth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from robyn_server.config import ConfigError
from robyn_server.cors import CorsPolicy, install, load_policy
from robyn_server.http import Router, error_response
from tests.server import ROOT, ServerProcess

ORIGIN = "http://page.example"
EXPOSE = "x-pagination-total, x-pagination-next, content-location"
ALL_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, QUERY"
USER_INPUT = {"messages": [{"role": "user", "content": "weather in sf?"}]}


def preflight(
    http: httpx.Client, path: str, method: str = "POST", origin: str = ORIGIN, **extra: str
) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return http.options(path, headers=headers)


def new_thread(http: httpx.Client) -> str:
    return http.post("/threads", json={}).json()["thread_id"]


def started(env: dict[str, str] | None = None, config: Path | None = None) -> Iterator[httpx.Client]:
    proc = ServerProcess(env=env, **({"config": config} if config else {})).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            yield client
    finally:
        proc.stop()


# --------------------------------------------------------------------------- defaults (the shared server)


def test_simple_request_gets_any_origin_and_exposed_headers(http: httpx.Client) -> None:
    res = http.get("/ok", headers={"Origin": ORIGIN})
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == "*"
    assert res.headers["access-control-expose-headers"] == EXPOSE
    assert "access-control-allow-credentials" not in res.headers
    assert res.headers["vary"] == "Origin"


def test_no_origin_no_cors_headers(http: httpx.Client) -> None:
    res = http.get("/ok")
    assert res.status_code == 200
    assert not [h for h in res.headers if h.startswith("access-control-")]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/threads/{tid}/runs/stream"),
        ("POST", "/runs/stream"),
        ("GET", "/threads/{tid}/runs/{rid}/stream"),
        ("GET", "/threads/{tid}/stream"),
        ("POST", "/threads/search"),
        ("DELETE", "/threads/{tid}"),
        ("PATCH", "/assistants/{tid}"),
        ("PUT", "/store/items"),
        ("GET", "/no/such/route"),
    ],
)
def test_preflight_on_every_route(http: httpx.Client, method: str, path: str) -> None:
    path = path.format(tid="00000000-0000-0000-0000-000000000001", rid="00000000-0000-0000-0000-000000000002")
    res = preflight(http, path, method, access_control_request_headers="content-type,authorization,last-event-id")
    assert res.status_code == 200, res.text
    assert res.text == "OK"
    assert res.headers["access-control-allow-origin"] == "*"
    assert res.headers["access-control-allow-methods"] == ALL_METHODS
    assert res.headers["access-control-allow-headers"] == "content-type,authorization,last-event-id"
    assert res.headers["access-control-max-age"] == "600"
    assert res.headers["vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    assert "access-control-allow-credentials" not in res.headers
    assert "access-control-expose-headers" not in res.headers
    # Private-network access is off by default.
    assert "access-control-allow-private-network" not in res.headers


def test_options_without_request_method_is_not_a_preflight(http: httpx.Client) -> None:
    res = http.options("/threads", headers={"Origin": ORIGIN})
    assert res.status_code == 405
    assert res.json() == {"detail": "Method Not Allowed"}
    assert res.headers["allow"] == "POST"
    assert res.headers["access-control-allow-origin"] == "*"


def test_preflight_for_unknown_method_is_refused(http: httpx.Client) -> None:
    res = preflight(http, "/threads", "FROB")
    assert res.status_code == 400
    assert res.text == "Disallowed CORS method"


def test_private_network_request_without_the_setting_gets_no_grant(http: httpx.Client) -> None:
    res = preflight(http, "/ok", "GET", access_control_request_private_network="true")
    assert res.status_code == 200
    assert "access-control-allow-private-network" not in res.headers
    assert res.headers["vary"].endswith("Access-Control-Request-Private-Network")


def test_errors_are_readable_cross_origin(http: httpx.Client) -> None:
    for res in (
        http.get("/no/such/route", headers={"Origin": ORIGIN}),
        http.get("/threads/not-a-uuid", headers={"Origin": ORIGIN}),
        http.delete("/ok", headers={"Origin": ORIGIN}),
    ):
        assert res.status_code in (404, 405, 422)
        assert res.headers["access-control-allow-origin"] == "*"
        assert "detail" in res.json()


def test_pagination_header_is_sent_and_exposed(http: httpx.Client) -> None:
    new_thread(http)
    res = http.post("/threads/search", json={"limit": 1}, headers={"Origin": ORIGIN})
    assert res.status_code == 200
    assert int(res.headers["x-pagination-total"]) >= 1
    assert "x-pagination-total" in res.headers["access-control-expose-headers"]


def test_streaming_response_carries_cors_headers(http: httpx.Client) -> None:
    tid = new_thread(http)
    body = {"assistant_id": "agent", "input": USER_INPUT, "stream_mode": "values"}
    with http.stream("POST", f"/threads/{tid}/runs/stream", json=body, headers={"Origin": ORIGIN}) as res:
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/event-stream")
        assert res.headers["access-control-allow-origin"] == "*"
        assert res.headers["access-control-expose-headers"] == EXPOSE
        assert res.headers["content-location"].startswith(f"/threads/{tid}/runs/")
        text = res.read().decode()
    assert "event: values" in text
    run_path = res.headers["content-location"]
    joined = http.get(f"{run_path}/stream", headers={"Origin": ORIGIN})
    assert joined.headers["access-control-allow-origin"] == "*"


def test_playground_page_is_served(http: httpx.Client) -> None:
    page = http.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/playground/static/playground.js">' in page.text
    script = http.get("/playground/static/playground.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "runs/stream" in script.text
    assert http.get("/playground/static/playground.css").headers["content-type"] == "text/css; charset=utf-8"
    for bad in ("/playground/static/nope.js", "/playground/static/..%2Fcors.py", "/playground/static/__init__.py"):
        assert http.get(bad).status_code == 404, bad


# --------------------------------------------------------------------------- settings from the environment


@pytest.fixture(scope="module")
def listed() -> Iterator[httpx.Client]:
    yield from started(
        env={
            "CORS_ALLOW_ORIGINS": "http://allowed.example, https://app.example",
            "ALLOW_PRIVATE_NETWORK": "true",
            "CORS_MAX_AGE": "60",
        }
    )


def test_listed_origin_is_echoed_with_credentials(listed: httpx.Client) -> None:
    res = listed.get("/ok", headers={"Origin": "https://app.example"})
    assert res.headers["access-control-allow-origin"] == "https://app.example"
    assert res.headers["access-control-allow-credentials"] == "true"
    assert res.headers["vary"] == "Origin"
    pre = preflight(
        listed, "/threads/search", origin="http://allowed.example", access_control_request_private_network="true"
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "http://allowed.example"
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert pre.headers["access-control-allow-private-network"] == "true"
    assert pre.headers["access-control-max-age"] == "60"


def test_unlisted_origin_gets_the_answer_without_cors_headers(listed: httpx.Client) -> None:
    """Served as usual (never 403 like Robyn's ALLOW_CORS, never 500); the browser withholds it."""
    res = listed.get("/ok", headers={"Origin": "http://evil.example"})
    assert res.status_code == 200
    assert res.json() == {"ok": True, "services": {}}
    assert not [h for h in res.headers if h.startswith("access-control-")]
    tid = new_thread(listed)
    body = {"assistant_id": "agent", "input": USER_INPUT, "stream_mode": "values"}
    streamed = listed.post(f"/threads/{tid}/runs/stream", json=body, headers={"Origin": "http://evil.example"})
    assert streamed.status_code == 200
    assert "access-control-allow-origin" not in streamed.headers
    assert "event: values" in streamed.text


def test_unlisted_origin_preflight_is_refused(listed: httpx.Client) -> None:
    res = preflight(listed, "/threads/x/runs/stream", origin="http://evil.example")
    assert res.status_code == 400
    assert res.text == "Disallowed CORS origin"
    assert "access-control-allow-origin" not in res.headers


# --------------------------------------------------------------------------- settings from langgraph.json


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    graphs = ROOT / "tests" / "graphs"
    config = tmp_path_factory.mktemp("cors") / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "dependencies": [str(graphs)],
                "graphs": {"agent": f"{graphs / 'anchor_graph.py'}:agent"},
                "http": {
                    "cors": {
                        "allow_origins": ["http://cfg.example"],
                        "allow_origin_regex": r"https://[a-z0-9-]+\.preview\.example",
                        "allow_methods": ["GET", "POST"],
                        "allow_headers": ["Authorization", "Last-Event-ID"],
                        "expose_headers": ["content-location"],
                        "allow_credentials": False,
                        "max_age": 30,
                    }
                },
            }
        )
    )
    # CORS_CONFIG (environment) wins over http.cors key by key; CORS_ALLOW_ORIGINS loses to http.cors.
    yield from started(
        env={"CORS_CONFIG": json.dumps({"max_age": 45}), "CORS_ALLOW_ORIGINS": "http://env.example"}, config=config
    )


def test_config_lists_methods_and_headers(configured: httpx.Client) -> None:
    res = preflight(configured, "/threads/search", access_control_request_headers="authorization, content-type",
                    origin="http://cfg.example")  # fmt: skip
    assert res.status_code == 200
    assert res.headers["access-control-allow-origin"] == "http://cfg.example"
    assert res.headers["access-control-allow-methods"] == "GET, POST"
    assert res.headers["access-control-allow-headers"] == (
        "accept, accept-language, content-language, content-type, authorization, last-event-id"
    )
    assert res.headers["access-control-max-age"] == "45"
    assert "access-control-allow-credentials" not in res.headers


def test_config_refuses_other_methods_headers_and_origins(configured: httpx.Client) -> None:
    assert preflight(configured, "/threads/x", "DELETE", origin="http://cfg.example").text == "Disallowed CORS method"
    bad_header = preflight(
        configured, "/ok", "GET", origin="http://cfg.example", access_control_request_headers="x-api-key"
    )
    assert (bad_header.status_code, bad_header.text) == (400, "Disallowed CORS headers")
    env_origin = preflight(configured, "/ok", "GET", origin="http://env.example")
    assert (env_origin.status_code, env_origin.text) == (400, "Disallowed CORS origin")


def test_config_origin_regex(configured: httpx.Client) -> None:
    ok = configured.get("/ok", headers={"Origin": "https://pr-12.preview.example"})
    assert ok.headers["access-control-allow-origin"] == "https://pr-12.preview.example"
    assert ok.headers["access-control-expose-headers"] == "content-location"
    other = configured.get("/ok", headers={"Origin": "https://pr-12.preview.example.evil.com"})
    assert "access-control-allow-origin" not in other.headers


# --------------------------------------------------------------------------- policy loading and hook order


def test_defaults_match_the_reference() -> None:
    policy = load_policy({}, {})
    assert policy.allow_origins == ["*"]
    assert policy.allow_credentials is False
    assert policy.expose_headers == ["x-pagination-total", "x-pagination-next", "content-location"]
    assert policy.max_age == 600
    assert policy.allow_private_network is False


def test_environment_variables_and_precedence() -> None:
    env = {
        "CORS_ALLOW_ORIGINS": "http://a.example,http://b.example",
        "CORS_ALLOW_METHODS": "GET",
        "CORS_EXPOSE_HEADERS": "x-one",
        "CORS_MAX_AGE": "5",
        "ALLOW_PRIVATE_NETWORK": "1",
        "CORS_CONFIG": '{"allow_methods": ["GET", "PUT"]}',
    }
    policy = load_policy({"cors": {"max_age": 7, "allow_credentials": False}}, env)
    assert policy.allow_origins == ["http://a.example", "http://b.example"]
    assert policy.methods == ["GET", "PUT"]
    assert policy.expose_headers == ["x-one"]
    assert policy.max_age == 7
    assert policy.allow_credentials is False
    assert policy.allow_private_network is True
    # Explicit origins mean credentials unless a setting says otherwise (the reference's rule).
    assert load_policy({}, {"CORS_ALLOW_ORIGINS": "http://a.example"}).allow_credentials is True


@pytest.mark.parametrize(
    ("http_config", "env", "message"),
    [
        ({"cors": {"allow_origin": ["*"]}}, {}, "unknown key 'allow_origin'"),
        ({"cors": {"max_age": "10"}}, {}, "http.cors.max_age must be an integer"),
        ({"cors": {"allow_methods": [1]}}, {}, "http.cors.allow_methods must be a list of strings"),
        ({"cors": {"allow_origin_regex": "("}}, {}, "is not a valid regex"),
        ({"cors": []}, {}, "http.cors must be an object"),
        ({}, {"CORS_CONFIG": "{nope"}, "CORS_CONFIG is not valid JSON"),
        ({}, {"CORS_MAX_AGE": "soon"}, "CORS_MAX_AGE must be an integer"),
        ({}, {"ALLOW_PRIVATE_NETWORK": "maybe"}, "ALLOW_PRIVATE_NETWORK must be true or false"),
        ({}, {"CORS_ALLOW_CREDENTIALS": "true"}, "allow_credentials needs an explicit list of allow_origins"),
        ({"cors": {"allow_origins": ["*"], "allow_credentials": True}}, {}, "needs an explicit list"),
    ],
)
def test_bad_settings_are_config_errors(http_config: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_policy(http_config, env)


class FakeRequest:
    """The parts of a Robyn request the gate and the hooks read."""

    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.headers = {k.lower(): v for k, v in headers.items()}

        class Url:
            pass

        self.url = Url()
        self.url.path = path


async def test_preflight_is_answered_before_a_later_auth_hook() -> None:
    router = Router(max_body_bytes=1000)
    router.add("POST", "/threads/:thread_id/runs/stream", lambda req: None)
    install(router, policy=CorsPolicy())

    async def auth(request: Any) -> Any:  # what an auth hook installed after CORS does without a token
        return error_response(401, "Unauthorized")

    router.request_hooks.append(auth)
    path = "/threads/t/runs/stream"
    pre = await router.gate(FakeRequest("OPTIONS", path, {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}))
    assert pre.status_code == 200
    assert pre.headers.get("access-control-allow-origin") == "*"
    denied = await router.gate(FakeRequest("POST", path, {"Origin": ORIGIN}))
    assert denied.status_code == 401
    # The 401 is readable by the page, so it can ask for a token.
    assert denied.headers.get("access-control-allow-origin") == "*"
    assert denied.headers.get("access-control-expose-headers") == EXPOSE


def test_bad_setting_stops_the_server_with_one_line() -> None:
    with pytest.raises(RuntimeError, match="robyn-server: error: environment variable CORS_MAX_AGE must be an integer"):
        ServerProcess(env={"CORS_MAX_AGE": "soon"}).start()

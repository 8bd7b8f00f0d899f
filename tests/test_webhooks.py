"""Webhooks against a real local receiver: a run with `webhook` POSTs the run when it ends (signed with
HMAC-SHA256 when a secret is set, with the configured headers), retries 5xx with backoff, never changes the
run when the receiver fails, and refuses private, loopback and metadata addresses unless allowed."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from robyn_server.config import ConfigError
from robyn_server.errors import ApiError
from robyn_server.webhooks import WebhookPolicy, check_url, load_policy
from tests.cron_helpers import wait_for
from tests.server import ROOT, ServerProcess

SECRET = "whsec-test-0123456789"
HANG = -1  # a scripted "status": answer only once the server has given up and sent its next attempt
GRAPHS = ROOT / "tests" / "graphs"


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers the statuses scripted per path."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scripts: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)  # notified on every request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "at": time.time()})  # fmt: skip
                    receiver.arrived.notify_all()
                    script = receiver.scripts.get(self.path) or []
                    status = script.pop(0) if script else 200
                    if status == HANG:  # the server's timeout ends this attempt: its retry is what we wait for
                        seen = len(receiver.at_locked(self.path))
                        receiver.arrived.wait_for(lambda: len(receiver.at_locked(self.path)) > seen, timeout=60)
                        status = 200
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the server stopped waiting for a hung answer
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return self.at_locked(path)

    def at_locked(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.httpd.shutdown()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server whose webhook policy allows loopback (the local receiver), with a signing secret and a header."""
    config = Path(tmp_path_factory.mktemp("webhooks")) / "langgraph.json"
    config.write_text(json.dumps({
        "dependencies": [str(GRAPHS)],
        "graphs": {"agent": f"{GRAPHS}/anchor_graph.py:agent", "slow": f"{GRAPHS}/anchor_graph.py:slow_graph",
                   "fail": f"{GRAPHS}/anchor_graph.py:fail_graph"},
        "webhooks": {"url": {"disable_loopback": False, "require_https": False},
                     "headers": {"X-Token": "Bearer ${{ env.LG_WEBHOOK_TOKEN }}"}},
    }))  # fmt: skip
    env = {"ROBYN_SERVER_WEBHOOK_SECRET": SECRET, "ROBYN_SERVER_WEBHOOK_BACKOFF_SECONDS": "0.05",
           "ROBYN_SERVER_WEBHOOK_ATTEMPTS": "3", "ROBYN_SERVER_WEBHOOK_TIMEOUT_SECONDS": "1",
           "LG_WEBHOOK_TOKEN": "abc"}  # fmt: skip
    proc = ServerProcess(config=config, env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            yield client
    finally:
        proc.stop()


def test_run_webhook_is_delivered_signed_with_the_run(hooked: httpx.Client, receiver: Receiver) -> None:
    path = f"/done/{uuid.uuid4().hex}"
    thread = hooked.post("/threads", json={}).json()
    body = {"assistant_id": "slow", "input": {"delay": 0.01}, "webhook": receiver.url + path}
    state = hooked.post(f"/threads/{thread['thread_id']}/runs/wait", json=body).json()
    call = wait_for(lambda: receiver.at(path), "the webhook call")[0]
    payload = json.loads(call["body"])
    run = hooked.get(f"/threads/{thread['thread_id']}/runs").json()[0]
    assert payload["run_id"] == run["run_id"] and payload["thread_id"] == thread["thread_id"]
    assert payload["status"] == "success" and payload["values"] == state
    assert payload["kwargs"]["webhook"] == receiver.url + path
    started, ended, sent = (datetime.fromisoformat(payload[k]) for k in ("run_started_at", "run_ended_at",
                                                                          "webhook_sent_at"))  # fmt: skip
    created = datetime.fromisoformat(run["created_at"])
    assert created.replace(microsecond=created.microsecond // 1000 * 1000) <= started <= ended <= sent  # ms clock
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["content-type"] == "application/json" and headers["x-token"] == "Bearer abc"
    stamp = headers["x-webhook-timestamp"]
    assert abs(int(stamp) - time.time()) < 120
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + call["body"], hashlib.sha256).hexdigest()
    assert headers["x-webhook-signature"] == f"sha256={expected}"
    assert len(receiver.at(path)) == 1


def test_failed_deliveries_are_retried_and_never_touch_the_run(hooked: httpx.Client, receiver: Receiver) -> None:
    flaky, broken = f"/flaky/{uuid.uuid4().hex}", f"/broken/{uuid.uuid4().hex}"
    receiver.scripts[flaky] = [500, HANG]  # a 5xx, then a timeout, then success
    receiver.scripts[broken] = [500, 500, 500, 500]
    runs = []
    for path in (flaky, broken):
        thread = hooked.post("/threads", json={}).json()
        run = hooked.post(
            f"/threads/{thread['thread_id']}/runs",
            json={"assistant_id": "slow", "input": {"delay": 0.01}, "webhook": receiver.url + path},
        )
        runs.append(run.json())  # fmt: skip
    calls = wait_for(lambda: (c := receiver.at(flaky)) and len(c) >= 3 and c, "three attempts at the flaky receiver")
    assert len({json.loads(c["body"])["run_id"] for c in calls}) == 1
    assert calls[1]["at"] >= calls[0]["at"] and calls[2]["at"] >= calls[1]["at"]
    wait_for(lambda: len(receiver.at(broken)) >= 3, "three attempts at the broken receiver")
    for run in runs:
        joined = hooked.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}/join").json()
        assert joined["count"] == 3
        assert hooked.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}").json()["status"] == "success"
        assert hooked.get(f"/threads/{run['thread_id']}").json()["status"] == "idle"


def test_a_host_name_is_called_at_the_address_that_was_checked(hooked: httpx.Client, receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    path = f"/named/{uuid.uuid4().hex}"
    hooked.post("/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01},
                                    "webhook": f"http://localhost:{port}{path}"})  # fmt: skip
    call = wait_for(lambda: receiver.at(path), "the webhook sent to localhost")[0]
    assert {k.lower(): v for k, v in call["headers"].items()}["host"] == f"localhost:{port}"
    assert json.loads(call["body"])["status"] == "success"


def test_a_failed_run_sends_its_error(hooked: httpx.Client, receiver: Receiver) -> None:
    path = f"/failed/{uuid.uuid4().hex}"
    hooked.post("/runs/wait", json={"assistant_id": "fail", "input": {}, "webhook": receiver.url + path})
    payload = json.loads(wait_for(lambda: receiver.at(path), "the failed run's webhook")[0]["body"])
    assert payload["status"] == "error" and payload["values"] is None
    assert payload["error"]["error"] == "ValueError" and "boom" in payload["error"]["message"]


def test_cron_runs_call_the_cron_webhook(hooked: httpx.Client, receiver: Receiver) -> None:
    path = f"/cron/{uuid.uuid4().hex}"
    cron = hooked.post(
        "/runs/crons",
        json={
            "assistant_id": "slow",
            "schedule": "* * * * * *",
            "input": {"delay": 0.01},
            "webhook": receiver.url + path,
        },
    ).json()
    try:
        call = wait_for(lambda: receiver.at(path), "the cron run's webhook")[0]
    finally:
        hooked.delete(f"/runs/crons/{cron['cron_id']}")
    payload = json.loads(call["body"])
    assert payload["status"] == "success"
    assert payload["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]


def test_private_loopback_and_metadata_addresses_are_refused(http: httpx.Client, hooked: httpx.Client) -> None:
    for client, url, detail in (
        (hooked, "http://10.1.2.3/hook", "Webhook host blocked: private address"),
        (hooked, "http://192.168.0.7:8080/hook", "Webhook host blocked: private address"),
        (hooked, "http://169.254.169.254/latest", "Webhook host blocked: cloud metadata endpoint"),
        (hooked, "ftp://example.com/x", "Webhook host blocked: scheme 'ftp' not allowed"),
        (http, "http://127.0.0.1:9/hook", "Webhook host blocked: loopback address"),  # not allowed by default
        (http, "http://localhost:9/hook", "Webhook host blocked: localhost address"),
    ):
        for path, body in (("/runs", {"assistant_id": "agent"}),
                           ("/runs/crons", {"assistant_id": "agent", "schedule": "* * * * *"})):  # fmt: skip
            resp = client.post(path, json={**body, "webhook": url})
            assert (resp.status_code, resp.json()) == (422, {"detail": detail}), (path, url)


async def test_url_policy_rules() -> None:
    async def refused(url: str, policy: WebhookPolicy) -> str | None:
        try:
            await check_url(url, policy)
        except ApiError as exc:
            return exc.detail
        return None

    assert await refused("http://203.0.113.9/x", WebhookPolicy(require_https=True)) == "Webhook must use https"
    wildcard = WebhookPolicy(allowed_domains=("*.example.com",))
    assert await refused("https://evil.org/x", wildcard) == "Webhook domain not allowed"
    assert await refused("https://example.com/x", wildcard) == "Webhook domain not allowed"  # not the apex
    assert await refused("https://8.8.8.8:444/x", WebhookPolicy(allowed_ports=(443,))) == "Webhook port 444 not allowed"
    assert await refused("https://8.8.8.8/x", WebhookPolicy()) is None
    assert await refused("http://10.0.0.1/x", WebhookPolicy(disable_private_ips=False)) is None
    assert await refused("http://10.0.0.1/x", WebhookPolicy(allowed_domains=("10.0.0.1",))) is None  # listed
    assert await refused("http://10.0.0.2/x", WebhookPolicy(allowed_domains=("10.0.0.1",))) == (
        "Webhook domain not allowed"
    )
    assert await refused("http://[::1]/x", WebhookPolicy()) == "Webhook host blocked: loopback address"
    assert await refused("http://[::ffff:10.0.0.1]/x", WebhookPolicy()) == "Webhook host blocked: private address"
    assert await refused("http://x/" + "a" * 5000, WebhookPolicy()) == "Webhook URL too long"
    assert await refused("/internal", WebhookPolicy()) is not None


async def test_host_names_are_resolved_before_the_address_checks() -> None:
    name = socket.gethostname()
    try:
        address = ipaddress.ip_address(socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)[0][4][0])
    except OSError:
        pytest.skip(f"this machine's own name {name!r} does not resolve")
    if not (address.is_loopback or address.is_private):
        pytest.skip(f"{name!r} resolves to a public address")
    kind = "loopback address" if address.is_loopback else "private address"
    with pytest.raises(ApiError, match=kind):
        await check_url(f"http://{name}:8080/hook", WebhookPolicy())


def test_bad_webhooks_config_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"agent": f"{GRAPHS}/anchor_graph.py:agent"},
                                  "webhooks": {"headers": {"X-Key": "${{ env.NOT_PREFIXED }}"}}}))  # fmt: skip
    with pytest.raises(RuntimeError, match="must start with 'LG_WEBHOOK_'"):
        ServerProcess(config=config).start()


def test_policy_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGGRAPH_WEBHOOKS", raising=False)
    assert load_policy({}).require_https is False
    configured = load_policy({"url": {}})  # like the reference, an explicit url policy defaults to https
    assert configured.require_https is True and configured.max_url_length == 2048
    assert configured.disable_loopback is True and configured.disable_private_ips is True
    monkeypatch.setenv("LG_WEBHOOK_KEY", "k1")
    monkeypatch.setenv("OTHER_SECRET", "nope")
    assert load_policy({"headers": {"X-Key": "key ${{ env.LG_WEBHOOK_KEY }}"}}).headers == {"X-Key": "key k1"}
    with pytest.raises(ConfigError, match="must start with 'LG_WEBHOOK_'"):
        load_policy({"headers": {"X-Key": "${{ env.OTHER_SECRET }}"}})
    with pytest.raises(ConfigError, match="wildcard"):
        load_policy({"url": {"allowed_domains": ["a.*.com"]}})
    monkeypatch.setenv("LANGGRAPH_WEBHOOKS", json.dumps({"url": {"require_https": False, "allowed_ports": [8443]}}))
    from_env = load_policy({"url": {}})
    assert from_env.require_https is False and from_env.allowed_ports == (8443,)

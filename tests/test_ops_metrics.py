"""`GET /metrics`: Prometheus text that prometheus-client's parser reads, the reference's JSON shape, and
counters that move by exactly the traffic sent (a server of its own, so no other test's requests count)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops_helpers import AGENT_RUN, wait_for
from tests.server import ServerProcess


@pytest.fixture(scope="module")
def server_alone() -> Iterator[ServerProcess]:
    proc = ServerProcess().start()
    yield proc
    proc.stop()


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_by_the_traffic_sent(server_alone: ServerProcess) -> None:
    with httpx.Client(base_url=server_alone.url, timeout=30) as http:
        before = scrape(http)
        tids = [http.post("/threads", json={}).json()["thread_id"] for _ in range(3)]
        assert http.get("/threads/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12).status_code == 404
        assert http.post(f"/threads/{tids[0]}/runs/wait", json=AGENT_RUN).status_code == 200
        assert http.post(f"/threads/{tids[1]}/runs/wait", json={"assistant_id": "fail", "input": {}}).status_code == 200
        with http.stream(
            "POST", f"/threads/{tids[2]}/runs/stream", json={**AGENT_RUN, "stream_mode": "messages-tuple"}
        ) as s:
            s.read()
        after = wait_for(
            lambda: (
                (s := scrape(http)) and value(s, "lg_api_open_streams") == value(before, "lg_api_open_streams") and s
            ),
            "the stream to be closed",
        )

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("lg_api_http_requests_total", method="POST", path="/threads", status="200") == 3
    assert moved("lg_api_http_requests_total", method="GET", path="/threads/:thread_id", status="404") == 1
    assert moved("lg_api_http_requests_total", method="POST", path="/threads/:thread_id/runs/wait", status="200") == 2
    assert moved("lg_api_http_requests_total", method="POST", path="/threads/:thread_id/runs/stream", status="200") == 1
    assert moved("lg_api_http_requests_latency_seconds_count", method="POST", path="/threads", status="200") == 3
    assert moved("lg_api_runs_total", status="success") == 2
    assert moved("lg_api_runs_total", status="error") == 1
    assert moved("lg_api_run_duration_seconds_count", status="success") == 2
    assert moved("lg_api_run_duration_seconds_count", status="error") == 1
    assert moved("lg_api_run_first_token_seconds_count") == 1  # only the run streaming `messages-tuple`
    assert moved("lg_api_run_queue_wait_seconds_count") == 3
    assert value(after, "lg_api_num_pending_runs") == 0 and value(after, "lg_api_num_running_runs") == 0
    assert value(after, "lg_api_workers_max") == value(after, "lg_api_workers_available") > 0


def test_queue_depth_counts_pending_and_running_runs(server_alone: ServerProcess) -> None:
    with httpx.Client(base_url=server_alone.url, timeout=30) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        slow = {"assistant_id": "slow", "input": {"delay": 0.5}}
        first = http.post(f"/threads/{tid}/runs", json=slow).json()
        second = http.post(f"/threads/{tid}/runs", json=slow).json()  # queued behind the first on the thread
        queued = wait_for(
            lambda: (d := http.get("/metrics", params={"format": "json"}).json())["queue"]["n_running"] == 1 and d,
            "one running run",
        )
        assert queued["queue"]["n_pending"] == 1 and queued["queue"]["pending_runs_wait_time_max_secs"] >= 0
        assert queued["workers"]["active"] == 1
        text = scrape(http)
        assert value(text, "lg_api_num_pending_runs") == 1 and value(text, "lg_api_num_running_runs") == 1
        assert value(text, "lg_api_workers_active") == 1 and value(text, "lg_api_pending_runs_wait_time_max") >= 0
        for run in (first, second):
            http.get(f"/threads/{tid}/runs/{run['run_id']}/join")
        done = http.get("/metrics", params={"format": "json"}).json()
        assert done["queue"]["n_pending"] == 0 and done["queue"]["n_running"] == 0


def test_json_shape_and_errors(server_alone: ServerProcess) -> None:
    with httpx.Client(base_url=server_alone.url, timeout=30) as http:
        http.get("/info")
        doc = http.get("/metrics", params={"format": "json"}).json()
        assert set(doc) >= {"queue", "workers", "api", "runs"}
        assert {"n_pending", "n_running"} <= set(doc["queue"])
        assert {"max", "active", "available"} == set(doc["workers"])
        info = [e for e in doc["api"]["http_requests_total"] if e["path"] == "/info"]
        assert info and info[0] == {"method": "GET", "path": "/info", "status": "200", "count": info[0]["count"]}
        bad = http.get("/metrics", params={"format": "xml"})
        assert bad.status_code == 422 and "format" in bad.json()["detail"]


def test_metrics_stay_public_with_auth_on() -> None:
    proc = ServerProcess(env={"SUPABASE_JWT_SECRET": "ops-metrics-secret-0123456789abcdef0123456789"}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            assert http.post("/threads", json={}).status_code == 401
            samples = scrape(http)
        assert value(samples, "lg_api_http_requests_total", method="POST", path="/threads", status="401") == 1
    finally:
        proc.stop()


def test_metrics_switched_off_are_not_served() -> None:
    proc = ServerProcess(env={"ROBYN_SERVER_METRICS": "false"}).start()
    try:
        resp = httpx.get(f"{proc.url}/metrics", timeout=30)
        assert resp.status_code == 404 and resp.json() == {"detail": "Not Found"}
    finally:
        proc.stop()


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    """Two server processes sharing PROMETHEUS_MULTIPROC_DIR: a scrape of either counts the requests of both."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    first, second = ServerProcess(env=env).start(), ServerProcess(env=env).start()
    try:
        for proc, count in ((first, 2), (second, 3)):
            for _ in range(count):
                assert httpx.post(f"{proc.url}/threads", json={}, timeout=30).status_code == 200
        for proc in (first, second):
            with httpx.Client(base_url=proc.url, timeout=30) as http:
                samples = scrape(http)
            assert value(samples, "lg_api_http_requests_total", method="POST", path="/threads", status="200") == 5
    finally:
        first.stop()
        second.stop()

"""Operations across an `--role api` process and a `--role worker` process (no HTTP) on Postgres and Redis:
a run the worker executes keeps the api request's trace, and `/metrics` reports both connection pools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import require_postgres
from tests.ops_helpers import AGENT_RUN, wait_for
from tests.otlp_receiver import OtlpReceiver
from tests.server import ROOT, TEST_CONFIG, ServerProcess, create_database, drop_database
from tests.test_engine_multiprocess import REDIS_URL, redis_unreachable

REQUEST_SPAN = "POST /threads/:thread_id/runs/wait"


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerProcess, OtlpReceiver]]:
    """The api process (serving HTTP, executing nothing) and a worker, both exporting spans to one receiver."""
    reason = redis_unreachable()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 (CI) but {reason}")
        pytest.skip(reason)
    require_postgres()
    dsn = create_database("robyn_api_worker")
    receiver = OtlpReceiver().start()
    shared = {
        "ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": dsn, "REDIS_URL": REDIS_URL,
        "ROBYN_SERVER_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:10]}", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }  # fmt: skip
    api = ServerProcess(env={**shared, "ROBYN_SERVER_ROLE": "api", "OTEL_SERVICE_NAME": "robyn-api"}).start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "robyn_server", "--config", str(TEST_CONFIG), "--role", "worker"],
        cwd=ROOT, env={**os.environ, **shared, "OTEL_SERVICE_NAME": "robyn-worker"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield api, receiver
    finally:
        worker.send_signal(signal.SIGTERM)
        api.stop()  # while the worker drains
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.stop()
        drop_database(dsn)


def by_name(spans: list[dict], name: str) -> list[dict]:
    return [s for s in spans if s["name"] == name]


def test_run_executed_by_a_worker_keeps_the_request_as_its_parent(pair: tuple[ServerProcess, OtlpReceiver]) -> None:
    """The api stores the run with its request's traceparent; the worker that executes it starts the run's span
    under that request's server span: one trace across the two processes."""
    api, receiver = pair
    trace_id = "7bf92f3577b34da6a3ce929d0e0e4739"
    with httpx.Client(base_url=api.url, timeout=60) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        headers = {"traceparent": f"00-{trace_id}-3333333333333333-01"}
        answer = http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN, headers=headers)
        assert answer.status_code == 200, answer.text
        (stored,) = http.get(f"/threads/{tid}/runs").json()

    def complete() -> list[dict] | None:
        spans = receiver.trace(trace_id)
        names = {s["name"] for s in spans}
        return spans if {REQUEST_SPAN, "run agent", "node model"} <= names else None

    spans = wait_for(complete, "the api's request span and the worker's run and node spans")
    (server,) = by_name(spans, REQUEST_SPAN)
    (run,) = by_name(spans, "run agent")
    assert server["service"] == "robyn-api" and server["parent_span_id"] == "3333333333333333"
    assert run["service"] == "robyn-worker" and run["parent_span_id"] == server["span_id"]
    assert all(n["parent_span_id"] == run["span_id"] for n in by_name(spans, "node model"))
    # what was stored with the run: the request's span as W3C traceparent, nothing else
    assert stored["kwargs"]["trace_context"] == {"traceparent": f"00-{trace_id}-{server['span_id']}-01"}


def test_metrics_report_the_redis_pool_beside_the_database_pool(pair: tuple[ServerProcess, OtlpReceiver]) -> None:
    """The control channel's subscriber holds a Redis connection; the ones a request used are back in the pool."""
    api, _ = pair
    with httpx.Client(base_url=api.url, timeout=30) as http:
        assert http.post("/threads", json={}).status_code == 200
        document = http.get("/metrics", params={"format": "json"}).json()
        text = http.get("/metrics").text
    redis, postgres = document["redis"], document["postgres"]
    assert set(redis) == {"pool_in_use", "pool_available", "pool_size"}  # redis-py's default pool is unbounded
    assert redis["pool_in_use"] >= 1 and redis["pool_size"] == redis["pool_in_use"] + redis["pool_available"]
    assert postgres["pool_max"] == 10 and postgres["pool_size"] >= 1
    for name in ("lg_api_redis_pool_in_use", "lg_api_redis_pool_available", "lg_api_redis_pool_size",
                 "lg_api_pg_pool_available"):  # fmt: skip
        assert f"\n{name} " in text, name

"""Prometheus metrics (prometheus-client) and `GET /metrics` in the reference's two shapes.

Counters and histograms are process metrics updated by the request and run hooks. Queue depth is read from
storage at scrape time, so every process sharing a database reports the same queue. With
`PROMETHEUS_MULTIPROC_DIR` set, prometheus-client keeps the process metrics in files in that folder and a
scrape merges every process's files (`prometheus_client.multiprocess`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # no `_created` series: they double the output and the reference has none
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# ROBYN_SERVER_METRICS=false: nothing is recorded and GET /metrics is not served.
ENABLED = (os.environ.get("ROBYN_SERVER_METRICS") or "true").strip().lower() not in ("0", "false", "no", "off")
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
RUN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# Process metrics: registered here in single-process mode; in multi-process mode they write to files and the
# scrape collects the files instead.
_REGISTRY = None if MULTIPROCESS else CollectorRegistry(auto_describe=False)

HTTP_REQUESTS = Counter(
    "lg_api_http_requests", "Total number of HTTP requests.", ["method", "path", "status"], registry=_REGISTRY
)
HTTP_LATENCY = Histogram(
    "lg_api_http_requests_latency_seconds",
    "HTTP request latency in seconds (streams: until the response head).",
    ["method", "path", "status"],
    buckets=LATENCY_BUCKETS,
    registry=_REGISTRY,
)
OPEN_STREAMS = Gauge(
    "lg_api_open_streams", "Streamed responses being sent now.", multiprocess_mode="livesum", registry=_REGISTRY
)
RUNS_FINISHED = Counter("lg_api_runs", "Runs finished, by final status.", ["status"], registry=_REGISTRY)
RUN_DURATION = Histogram(
    "lg_api_run_duration_seconds", "Run execution time, by final status.", ["status"], buckets=RUN_BUCKETS,
    registry=_REGISTRY,
)  # fmt: skip
RUN_FIRST_TOKEN = Histogram(
    "lg_api_run_first_token_seconds",
    "Time from a run's start to its first messages event.",
    buckets=LATENCY_BUCKETS,
    registry=_REGISTRY,
)
RUN_QUEUE_WAIT = Histogram(
    "lg_api_run_queue_wait_seconds", "Time from a run's creation to its start.", buckets=RUN_BUCKETS,
    registry=_REGISTRY,
)  # fmt: skip
WORKERS_ACTIVE = Gauge("lg_api_workers_active", "Runs executing now.", multiprocess_mode="livesum", registry=_REGISTRY)
RATE_LIMITED = Counter(
    "lg_api_runs_rejected", "Run creations refused with 429, by limit.", ["limit"], registry=_REGISTRY
)

_process = {"active_runs": 0}
# Each label set's children, looked up once: `labels()` takes a lock and builds its key on every call. The
# label sets are bounded (route templates, statuses), so these stay small.
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_run_children: dict[str, tuple[Any, Any]] = {}


# ---------------------------------------------------------------------------- hooks
def http_observed(method: str, route: str, status: int, seconds: float) -> None:
    if not ENABLED:
        return
    key = (method, route, status)
    children = _http_children.get(key)
    if children is None:
        labels = (method, route, str(status))
        children = _http_children[key] = (HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


def stream_opened() -> None:
    if not ENABLED:
        return
    OPEN_STREAMS.inc()


def stream_closed() -> None:
    if not ENABLED:
        return
    OPEN_STREAMS.dec()


def run_started(queue_wait: float | None) -> None:
    if not ENABLED:
        return
    _process["active_runs"] += 1
    WORKERS_ACTIVE.inc()
    if queue_wait is not None:
        RUN_QUEUE_WAIT.observe(max(0.0, queue_wait))


def run_first_token(seconds: float) -> None:
    if not ENABLED:
        return
    RUN_FIRST_TOKEN.observe(seconds)


def run_finished(status: str, seconds: float) -> None:
    if not ENABLED:
        return
    _process["active_runs"] -= 1
    WORKERS_ACTIVE.dec()
    children = _run_children.get(status)
    if children is None:
        children = _run_children[status] = (RUNS_FINISHED.labels(status), RUN_DURATION.labels(status))
    children[0].inc()
    children[1].observe(seconds)


def run_rejected(limit: str) -> None:
    if not ENABLED:
        return
    RATE_LIMITED.labels(limit).inc()


# ---------------------------------------------------------------------------- scrape
class _Snapshot(Collector):
    """Gauges read at scrape time: queue depth from storage, worker slots, Postgres and Redis pool use of this
    process."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def collect(self) -> Iterator[GaugeMetricFamily]:
        v = self.values
        queue, workers = v["queue"], v["workers"]
        yield GaugeMetricFamily("lg_api_num_pending_runs", "The number of runs currently pending.", queue["n_pending"])
        yield GaugeMetricFamily("lg_api_num_running_runs", "The number of runs currently running.", queue["n_running"])
        yield GaugeMetricFamily(
            "lg_api_pending_runs_wait_time_max",
            "The maximum time a run has been pending, in seconds.",
            queue["pending_runs_wait_time_max_secs"] or 0,
        )
        yield GaugeMetricFamily("lg_api_workers_max", "The maximum number of runs executing at once.", workers["max"])
        yield GaugeMetricFamily("lg_api_workers_available", "Run slots free in this process.", workers["available"])
        for key, value in (v.get("postgres") or {}).items():
            yield GaugeMetricFamily(f"lg_api_pg_{key}", f"Postgres connection pool: {key} (this process).", value)
        for key, value in (v.get("redis") or {}).items():
            yield GaugeMetricFamily(f"lg_api_redis_{key}", f"Redis connection pool: {key} (this process).", value)


async def queue_stats(storage: Any) -> dict[str, Any]:
    """`n_pending`, `n_running` and the longest pending wait, as the reference's `Runs.stats`."""
    runs = await storage.run_list_by_status(["pending", "running"])
    pending = [r for r in runs if r["status"] == "pending"]
    now = datetime.now(UTC)
    waits = [(now - r["created_at"]).total_seconds() for r in pending if isinstance(r.get("created_at"), datetime)]
    return {
        "n_pending": len(pending),
        "n_running": len(runs) - len(pending),
        "pending_runs_wait_time_max_secs": max(waits) if waits else None,
    }


def pool_stats(storage: Any) -> dict[str, int]:
    """Postgres pool use of this process (psycopg_pool's own counters); empty for other backends."""
    pool = getattr(storage, "_pool", None)
    get_stats = getattr(pool, "get_stats", None)
    if get_stats is None:
        return {}
    stats = get_stats()
    return {
        "pool_max": int(stats.get("pool_max", 0)),
        "pool_size": int(stats.get("pool_size", 0)),
        "pool_available": int(stats.get("pool_available", 0)),
        "pool_requests_waiting": int(stats.get("requests_waiting", 0)),
    }


def _registry(snapshot: dict[str, Any]) -> CollectorRegistry:
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry)
    else:
        assert _REGISTRY is not None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Forward(_REGISTRY))
    registry.register(_Snapshot(snapshot))
    return registry


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        return iter(self.source.collect())


async def snapshot(storage: Any, max_workers: int, bus: Any = None) -> dict[str, Any]:
    active = _process["active_runs"]
    values: dict[str, Any] = {
        "queue": await queue_stats(storage),
        "workers": {"max": max_workers, "active": active, "available": max(0, max_workers - active)},
    }
    pg = pool_stats(storage)
    if pg:
        values["postgres"] = pg
    redis = bus.pool_stats() if bus is not None else {}
    if redis:
        values["redis"] = redis
    return values


def prometheus_text(values: dict[str, Any]) -> bytes:
    return generate_latest(_registry(values))


def json_document(values: dict[str, Any]) -> dict[str, Any]:
    """The reference's JSON shape (`queue`, `workers`, `api.http_requests_total`) plus runs and streams."""
    counts: dict[str, list[dict[str, Any]]] = {"http": [], "runs": []}
    open_streams = 0.0
    registry = _registry({**values, "postgres": {}, "redis": {}})
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "lg_api_http_requests_total":
                counts["http"].append({**sample.labels, "count": int(sample.value)})
            elif sample.name == "lg_api_runs_total":
                counts["runs"].append({**sample.labels, "count": int(sample.value)})
            elif sample.name == "lg_api_open_streams":
                open_streams += sample.value
    document: dict[str, Any] = {
        "queue": values["queue"],
        "workers": values["workers"],
        "api": {"http_requests_total": counts["http"], "open_streams": int(open_streams)},
        "runs": {"runs_total": counts["runs"]},
    }
    for pool in ("postgres", "redis"):
        if values.get(pool):
            document[pool] = values[pool]
    return document

"""Readiness (`GET /ok?check_db=1`): each dependency reported; 503 naming the failing one while Postgres is
unreachable or Redis does not answer, 200 again once it is back. `GET /ok` stays liveness throughout."""

from __future__ import annotations

import httpx

from tests.ops_helpers import wait_for
from tests.server import ServerProcess, allow_connections, free_port, terminate_connections


def _cut_off(dbname: str, cut: bool) -> None:
    allow_connections(dbname, not cut)
    if cut:
        terminate_connections(dbname)


def test_readiness_flips_to_503_while_postgres_is_unreachable(postgres_dsn: str) -> None:
    dbname = postgres_dsn.rsplit("/", 1)[-1]
    env = {
        "ROBYN_SERVER_STORAGE": "postgres",
        "DATABASE_URL": postgres_dsn,
        "ROBYN_SERVER_DB_POOL_TIMEOUT_SECONDS": "1",
    }
    proc = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            ready = http.get("/ok", params={"check_db": "1"})
            assert ready.status_code == 200
            body = ready.json()
            assert body["ok"] is True and body["database"]["ok"] is True and body["database"]["backend"] == "postgres"
            assert body["graphs"] == {"ok": True, "loaded": ["agent", "interrupt", "fail", "slow", "nested"]}
            assert "redis" not in body
            pool = http.get("/metrics", params={"format": "json"}).json()["postgres"]
            assert pool["pool_max"] == 10 and 1 <= pool["pool_size"] <= 10 and pool["pool_requests_waiting"] == 0
            assert "lg_api_pg_pool_available" in http.get("/metrics").text
            _cut_off(dbname, True)
            try:
                down = http.get("/ok", params={"check_db": "1"})
                assert down.status_code == 503
                assert down.json()["detail"].startswith("Database unavailable")
                assert down.json()["ok"] is False and down.json()["database"]["ok"] is False
                assert down.json()["graphs"]["ok"] is True
                assert http.get("/ok").status_code == 200  # liveness is not readiness
            finally:
                _cut_off(dbname, False)
            back = wait_for(
                lambda: (r := http.get("/ok", params={"check_db": "1"})).status_code == 200 and r, "readiness back"
            )
            assert back.json()["database"]["ok"] is True
    finally:
        proc.stop()


def test_readiness_names_redis_when_it_does_not_answer() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    proc = ServerProcess(env={"REDIS_URI": dead}).start()
    try:
        resp = httpx.get(f"{proc.url}/ok", params={"check_db": "1"}, timeout=30)
        assert resp.status_code == 503
        body = resp.json()
        assert body["detail"].startswith("Redis unavailable") and body["redis"]["ok"] is False
        assert body["database"]["ok"] is True
    finally:
        proc.stop()


def test_readiness_reports_a_live_redis() -> None:
    proc = ServerProcess(env={"REDIS_URI": "redis://127.0.0.1:6379/0"}).start()
    try:
        resp = httpx.get(f"{proc.url}/ok", params={"check_db": "1"}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["redis"] == {"ok": True}
    finally:
        proc.stop()

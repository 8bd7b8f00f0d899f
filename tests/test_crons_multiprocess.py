"""Two server processes on one Postgres database both run a scheduler, woken at the same due dates: every due
date of a cron fires exactly once, and none after its end time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.cron_helpers import parse_time, runs_of, tagged_threads, wait_for
from tests.server import ServerProcess


@pytest.fixture
def two_servers(postgres_dsn: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    # a short cap, so both schedulers wake at every due date and race for it
    env = {"ROBYN_SERVER_STORAGE": "postgres", "DATABASE_URL": postgres_dsn, "CRON_SCHEDULER_SLEEP_TIME": "0.3"}
    first = ServerProcess(env=env).start()
    second = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=first.url, timeout=60) as a, httpx.Client(base_url=second.url, timeout=60) as b:
            yield a, b
    finally:
        first.stop()
        second.stop()


def test_each_due_date_fires_once_across_two_processes(two_servers: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = two_servers
    mark, sentinel = uuid.uuid4().hex, uuid.uuid4().hex
    start = datetime.now(UTC).replace(microsecond=0)
    ticks = [start + timedelta(seconds=s) for s in (3, 6, 9)]  # three due dates, 3 s apart
    end = ticks[-1] + timedelta(seconds=1.5)
    seconds = ",".join(str(t.second) for t in ticks)
    cron = a.post("/runs/crons", json={
        "assistant_id": "slow", "schedule": f"* * * * * {seconds}", "input": {"delay": 0.01},
        "metadata": {"tag": mark}, "on_run_completed": "keep", "end_time": end.isoformat(),
    }).json()  # fmt: skip
    b.post("/runs/crons", json={"assistant_id": "slow", "schedule": "* * * * * *", "input": {"delay": 0.01},
                                "metadata": {"tag": sentinel}, "on_run_completed": "keep"})  # fmt: skip
    assert b.get(f"/runs/crons/{cron['cron_id']}").json()["next_run_date"] == ticks[0].isoformat()

    def sentinel_fired_after_end() -> bool:
        return any(parse_time(t["created_at"]) > end + timedelta(seconds=1) for t in tagged_threads(b, sentinel))

    wait_for(sentinel_fired_after_end, "both schedulers to run past the cron's end time")
    threads = tagged_threads(a, mark)
    assert len(threads) == 3, [t["created_at"] for t in threads]
    created = sorted(parse_time(t["created_at"]) for t in threads)
    for tick, at in zip(ticks, created, strict=True):
        assert tick <= at < tick + timedelta(seconds=3)  # each due date once, none before it is due
    for thread in threads:
        runs = wait_for(lambda t=thread: (rs := runs_of(b, t["thread_id"])) and rs[0]["status"] == "success" and rs,
                        "the cron run to finish")  # fmt: skip
        assert len(runs) == 1
    assert parse_time(a.get(f"/runs/crons/{cron['cron_id']}").json()["next_run_date"]) > end

"""Crons over HTTP with the real SDK: the reference's routes and shapes, validation errors, and the scheduler
firing seconds schedules on time, on fresh threads (deleted or kept) or on a thread, until `end_time`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.cron_helpers import parse_time, runs_of, tagged_threads, wait_for
from tests.server import ServerProcess

MISSING = "00000000-0000-4000-8000-000000000000"
ZoneParis = ZoneInfo("Europe/Paris")
SLOW = {"delay": 0.3, "count": 0}


def tag() -> str:
    return uuid.uuid4().hex


async def test_cron_routes_and_shapes(client: LangGraphClient) -> None:
    raw = client.http.client  # the SDK's own httpx.AsyncClient, for exact statuses and headers
    assert (await raw.get("/info")).json()["flags"]["crons"] is True
    mark = tag()
    end = datetime.now(UTC) + timedelta(days=1)
    cron = await client.crons.create(
        "agent", schedule="0 9 * * *", input={"messages": []}, metadata={"tag": mark}, timezone="Europe/Paris",
        end_time=end, enabled=False,
    )  # fmt: skip
    assert list(cron) == [
        "cron_id", "assistant_id", "thread_id", "user_id", "end_time", "schedule", "timezone", "payload",
        "next_run_date", "metadata", "on_run_completed", "enabled", "created_at", "updated_at",
    ]  # fmt: skip
    assert cron["thread_id"] is None and cron["on_run_completed"] == "delete" and cron["enabled"] is False
    assert cron["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    assert cron["payload"]["assistant_id"] == cron["assistant_id"] != "agent"  # the graph id is resolved
    assert cron["metadata"] == {"tag": mark} and cron["user_id"] == ""
    next_run = parse_time(cron["next_run_date"])
    assert next_run.astimezone(ZoneParis).hour == 9 and next_run.minute == 0  # 9:00 in Paris, stored in UTC
    assert parse_time(cron["end_time"]) == end.replace(microsecond=end.microsecond)
    assert (await raw.get(f"/runs/crons/{cron['cron_id']}")).json() == cron

    thread = await client.threads.create()
    on_thread = await client.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="*/5 * * * *", metadata={"tag": mark}, multitask_strategy="enqueue"
    )
    assert on_thread["thread_id"] == thread["thread_id"] and on_thread["on_run_completed"] is None

    found = await client.crons.search(metadata={"tag": mark})
    assert [c["cron_id"] for c in found] == [on_thread["cron_id"], cron["cron_id"]]  # newest first
    page = await raw.post("/runs/crons/search", json={"metadata": {"tag": mark}, "limit": 1})
    assert page.headers["x-pagination-total"] == "2" and page.headers["x-pagination-next"] == "1"
    assert [c["cron_id"] for c in page.json()] == [on_thread["cron_id"]]
    picked = await client.crons.search(metadata={"tag": mark}, select=["cron_id", "schedule"], sort_order="asc",
                                       sort_by="created_at")  # fmt: skip
    assert picked == [{"cron_id": c["cron_id"], "schedule": c["schedule"]} for c in (cron, on_thread)]
    assert [c["cron_id"] for c in await client.crons.search(thread_id=thread["thread_id"])] == [on_thread["cron_id"]]
    assert [c["cron_id"] for c in await client.crons.search(metadata={"tag": mark}, enabled=False)] == [cron["cron_id"]]
    assert await client.crons.count(metadata={"tag": mark}) == 2
    assert await client.crons.count(thread_id=thread["thread_id"]) == 1

    updated = await client.crons.update(cron["cron_id"], schedule="30 8 * * *", metadata={"extra": 1},
                                        input={"messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert updated["schedule"] == "30 8 * * *" and updated["metadata"] == {"tag": mark, "extra": 1}
    assert updated["payload"]["input"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert updated["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    assert parse_time(updated["next_run_date"]).astimezone(ZoneParis).strftime("%H:%M") == "08:30"
    assert parse_time(updated["updated_at"]) > parse_time(cron["updated_at"])
    cleared = await client.crons.update(cron["cron_id"], end_time=None)
    assert cleared["end_time"] is None

    await client.crons.delete(on_thread["cron_id"])
    assert (await raw.get(f"/runs/crons/{on_thread['cron_id']}")).status_code == 404
    assert (await raw.delete(f"/runs/crons/{on_thread['cron_id']}")).json() == {"detail": "Not Found"}
    # deleting a thread deletes its crons
    again = await client.crons.create_for_thread(thread["thread_id"], "agent", schedule="* * * * *")
    await client.threads.delete(thread["thread_id"])
    assert (await raw.get(f"/runs/crons/{again['cron_id']}")).status_code == 404
    await client.crons.delete(cron["cron_id"])


def test_cron_errors(http: httpx.Client) -> None:
    def detail(method: str, path: str, body: object = None) -> tuple[int, str]:
        resp = http.request(method, path, json=body)
        return resp.status_code, resp.json()["detail"]

    for schedule in ("nope", "0 0 30 2 *", "61 * * * *"):  # unreadable, no such date, out of range
        code, text = detail("POST", "/runs/crons", {"assistant_id": "agent", "schedule": schedule})
        assert code == 422 and text.startswith(f"Invalid cron schedule: '{schedule}'."), text
    assert detail("POST", "/runs/crons", {"assistant_id": "agent", "schedule": "* * * * *", "timezone": "Mars/X"}) == (
        422, "Invalid timezone: 'Mars/X'. Use IANA timezone format (e.g. 'America/New_York').")  # fmt: skip
    assert detail("POST", "/runs/crons", {"assistant_id": MISSING, "schedule": "* * * * *"}) == (
        404, f"Assistant '{MISSING}' not found")  # fmt: skip
    code, text = detail("POST", "/runs/crons", {"assistant_id": "agent"})
    assert code == 422 and '"schedule" is a required property' in text
    code, text = detail("POST", f"/threads/{MISSING}/runs/crons", {"assistant_id": "agent", "schedule": "* * * * *"})
    assert code == 404 and text.startswith(f"Thread with ID '{MISSING}' not found.")
    assert detail("GET", "/runs/crons/nope") == (422, "Invalid cron ID: must be a UUID")
    assert detail("GET", f"/runs/crons/{MISSING}") == (404, "Not Found")
    assert detail("PATCH", f"/runs/crons/{MISSING}", {"enabled": True}) == (404, f"Cron '{MISSING}' not found")
    assert detail("DELETE", f"/runs/crons/{MISSING}") == (404, "Not Found")
    cron = http.post("/runs/crons", json={"assistant_id": "agent", "schedule": "0 0 1 1 *", "enabled": False}).json()
    assert detail("PATCH", f"/runs/crons/{cron['cron_id']}", {}) == (400, "Request body cannot be empty")
    code, text = detail("PATCH", f"/runs/crons/{cron['cron_id']}", {"schedule": "bad"})
    assert code == 422 and text.startswith("Invalid cron schedule")
    code, _ = detail("POST", "/runs/crons/search", {"select": ["nope"]})
    assert code == 422
    code, _ = detail("POST", "/runs/crons/search", {"sort_by": "nope"})
    assert code == 422
    assert http.delete(f"/runs/crons/{cron['cron_id']}").status_code == 204


def test_stateless_crons_fire_each_second_on_fresh_threads_kept_or_deleted(http: httpx.Client) -> None:
    kept, dropped = tag(), tag()
    keep = http.post("/runs/crons", json={"assistant_id": "slow", "schedule": "* * * * * *", "input": SLOW,
                                          "metadata": {"tag": kept}, "on_run_completed": "keep"}).json()  # fmt: skip
    drop = http.post("/runs/crons", json={"assistant_id": "slow", "schedule": "* * * * * *", "input": SLOW,
                                          "metadata": {"tag": dropped}}).json()  # fmt: skip
    seen: set[str] = set()

    def dropped_threads_seen() -> bool:
        seen.update(t["thread_id"] for t in tagged_threads(http, dropped))
        return len(seen) >= 2

    try:
        threads = wait_for(lambda: (ts := tagged_threads(http, kept)) and len(ts) >= 2 and ts, "two kept threads")
        wait_for(dropped_threads_seen, "two runs of the deleting cron")
    finally:
        for cron in (keep, drop):
            http.patch(f"/runs/crons/{cron['cron_id']}", json={"enabled": False})
    # one fresh thread per run, each with its one run, created at (not before) its second
    first = threads[-1]
    run = wait_for(lambda: (rs := runs_of(http, first["thread_id"])) and rs[0]["status"] == "success" and rs[0],
                   "the first kept run to succeed")  # fmt: skip
    assert len(runs_of(http, first["thread_id"])) == 1
    assert run["kwargs"]["config"]["configurable"]["cron_id"] == keep["cron_id"]
    assert run["metadata"]["tag"] == kept
    assert parse_time(run["created_at"]) >= parse_time(keep["next_run_date"])
    assert http.get(f"/threads/{first['thread_id']}").json()["values"]["count"] == 3
    # the threads of the deleting cron are gone once their run ended
    wait_for(lambda: all(http.get(f"/threads/{t}").status_code == 404 for t in seen), "deleted cron threads")
    for cron in (keep, drop):
        http.delete(f"/runs/crons/{cron['cron_id']}")


def test_thread_cron_runs_on_its_thread_until_end_time(http: httpx.Client) -> None:
    thread = http.post("/threads", json={}).json()
    tid = thread["thread_id"]
    end = datetime.now(UTC) + timedelta(seconds=2.5)
    cron = http.post(
        f"/threads/{tid}/runs/crons",
        json={"assistant_id": "slow", "schedule": "* * * * * *", "input": {"delay": 0.01}, "end_time": end.isoformat()},
    )
    cron = cron.json()
    # a sentinel cron shows the scheduler kept firing after the end time
    sentinel = tag()
    http.post("/runs/crons", json={"assistant_id": "slow", "schedule": "* * * * * *", "input": {"delay": 0.01},
                                   "metadata": {"tag": sentinel}, "on_run_completed": "keep"})  # fmt: skip

    def sentinel_after_end() -> bool:
        late = [t for t in tagged_threads(http, sentinel) if parse_time(t["created_at"]) > end + timedelta(seconds=1)]
        return len(late) >= 2

    wait_for(sentinel_after_end, "the sentinel cron to fire twice after the end time")
    runs = runs_of(http, tid)
    assert 1 <= len(runs) <= 3
    assert all(parse_time(r["created_at"]) <= end + timedelta(milliseconds=200) for r in runs)
    assert all(r["thread_id"] == tid and r["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
               for r in runs)  # fmt: skip
    assert parse_time(http.get(f"/runs/crons/{cron['cron_id']}").json()["next_run_date"]) > end
    for found in http.post("/runs/crons/search", json={"metadata": {"tag": sentinel}}).json():
        http.delete(f"/runs/crons/{found['cron_id']}")
    http.delete(f"/runs/crons/{cron['cron_id']}")


def test_scheduler_sleeps_until_the_due_date_not_a_fixed_poll() -> None:
    """With a 60 s cap, a cron created here wakes the scheduler and its first due date fires well before it."""
    proc = ServerProcess(env={"CRON_SCHEDULER_SLEEP_TIME": "60"}).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            mark = tag()
            due = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
            cron = http.post("/runs/crons", json={
                "assistant_id": "slow", "schedule": f"* * * * * {due.second}", "input": {"delay": 0.01},
                "metadata": {"tag": mark}, "on_run_completed": "keep",
            }).json()  # fmt: skip
            assert parse_time(cron["next_run_date"]) == due
            fired = wait_for(lambda: tagged_threads(http, mark), "the first run", timeout=30)
            assert due <= parse_time(fired[0]["created_at"]) < due + timedelta(seconds=30)
    finally:
        proc.stop()


def test_malformed_scheduler_setting_stops_the_start() -> None:
    with pytest.raises(RuntimeError, match="CRON_SCHEDULER_SLEEP_TIME must be a number"):
        ServerProcess(env={"CRON_SCHEDULER_SLEEP_TIME": "soon"}).start()


def test_next_run_dates_follow_the_time_zone_across_daylight_saving() -> None:
    from robyn_server.crons.schedule import NEVER, next_run_date

    before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Paris: UTC+1 today, UTC+2 from tomorrow 02:00
    assert next_run_date("30 8 * * *", before, "Europe/Paris") == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
    assert next_run_date("30 8 * * *", before) == datetime(2026, 3, 29, 8, 30, tzinfo=UTC)
    assert next_run_date("* * * * * */15", before) == datetime(2026, 3, 28, 12, 0, 15, tzinfo=UTC)
    # a schedule whose dates have all passed parks the cron instead of failing every claim
    assert next_run_date("0 0 1 1 * 0 2027", datetime(2028, 1, 1, tzinfo=UTC)) == NEVER

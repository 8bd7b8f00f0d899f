"""Crosstalk: many users at once must each only ever see themselves.

1,000+ concurrent requests from 50+ users mix plain routes (create, get own, get another's, search) with
streaming and waiting runs of a graph that reports the caller from an async node, a sync node, an async tool,
a sync tool in a worker thread and the injected config. Any answer naming another user is a mismatch."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import ROOT, ServerProcess
from tests.test_auth_support import JWT_ENV, bearer, hs256

CONFIG = ROOT / "tests" / "graphs" / "langgraph.auth_identity.json"
USERS = [f"user-{i:02d}" for i in range(60)]
SEEN_KEYS = ("node", "config_user_id", "config_user", "sync_node", "collect", "async_tool", "sync_tool")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    env = {**JWT_ENV, "ROBYN_SERVER_STORAGE": "memory", "N_JOBS_PER_WORKER": "64"}
    proc = ServerProcess(config=Path(CONFIG), env=env)
    proc.start()
    yield proc
    proc.stop()


def _last_values(sse_text: str) -> dict:
    values: dict = {}
    for frame in sse_text.replace("\r\n", "\n").split("\n\n"):
        lines = frame.split("\n")
        if lines and lines[0] == "event: values":
            data = "\n".join(line[len("data: ") :] for line in lines[1:] if line.startswith("data: "))
            values = json.loads(data)
    return values


async def test_no_identity_crosstalk_under_load(server: ServerProcess) -> None:
    tokens = {user: hs256(user) for user in USERS}
    mismatches: list[str] = []
    counts = {"requests": 0, "runs": 0}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(100)

        async def call(user: str, method: str, path: str, body: object = None) -> httpx.Response:
            async with gate:
                counts["requests"] += 1
                return await client.request(method, path, json=body, headers=bearer(tokens[user]))

        # every user creates a thread of their own
        own: dict[str, str] = {}

        async def create(user: str) -> None:
            response = await call(user, "POST", "/threads", {"metadata": {"who": user}})
            thread = response.json()
            if thread["metadata"].get("owner") != user:
                mismatches.append(f"create {user}: {thread['metadata']}")
            own[user] = thread["thread_id"]

        await asyncio.gather(*(create(u) for u in USERS))

        async def get_own(user: str) -> None:
            response = await call(user, "GET", f"/threads/{own[user]}")
            if response.status_code != 200 or response.json()["metadata"]["owner"] != user:
                mismatches.append(f"get own {user}: {response.status_code} {response.text[:200]}")

        async def get_other(user: str) -> None:
            other = random.choice([u for u in USERS if u != user])
            response = await call(user, "GET", f"/threads/{own[other]}")
            if response.status_code != 404:
                mismatches.append(f"get other {user}->{other}: {response.status_code}")

        async def search(user: str) -> None:
            response = await call(user, "POST", "/threads/search", {"limit": 100})
            owners = {t["metadata"].get("owner") for t in response.json()}
            if response.status_code != 200 or owners - {user}:
                mismatches.append(f"search {user}: {owners}")

        def check_seen(kind: str, user: str, seen: dict) -> None:
            counts["runs"] += 1
            wrong = {k: seen.get(k) for k in SEEN_KEYS if seen.get(k) != user}
            if wrong or not seen.get("config_token_matches"):
                mismatches.append(f"{kind} {user}: {seen}")

        async def stream_run(user: str) -> None:
            body = {"assistant_id": "whoami", "input": {"messages": []}, "stream_mode": ["values"],
                    "multitask_strategy": "enqueue"}  # fmt: skip
            response = await call(user, "POST", f"/threads/{own[user]}/runs/stream", body)
            check_seen("stream", user, _last_values(response.text).get("seen") or {})

        async def wait_run(user: str) -> None:
            body = {"assistant_id": "whoami", "input": {"messages": []}}
            response = await call(user, "POST", "/runs/wait", body)
            check_seen("wait", user, (response.json() or {}).get("seen") or {})

        jobs = []
        kinds = [get_own, get_other, search, stream_run, wait_run]
        for i in range(1100):
            user = USERS[i % len(USERS)]
            jobs.append(kinds[(i // len(USERS) + i) % len(kinds)](user))
        random.shuffle(jobs)
        await asyncio.gather(*jobs)

    assert counts["requests"] >= 1000
    assert counts["runs"] >= 300
    assert len(USERS) >= 50
    assert mismatches == [], f"{len(mismatches)} mismatches, first: {mismatches[:5]}"

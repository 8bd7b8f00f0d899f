"""The script that writes a batch of a run's events to Redis: a batch sent again (its answer was lost with the
connection) adds nothing twice, to the run's stream or to its thread's, and the end marker comes once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from robyn_server.streaming.redis_bus import RUN_APPEND
from tests.test_engine_multiprocess import REDIS_URL, redis_unreachable


@pytest.fixture
def prefix() -> str:
    return f"test-append-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def r(prefix: str) -> Iterator[redis.Redis]:
    import os

    reason = redis_unreachable()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 (CI) but {reason}")
        pytest.skip(reason)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


def append(r: redis.Redis, run: str, thread: str, end: str, end_data: bytes, *items: str | bytes) -> None:
    r.eval(RUN_APPEND, 2, run, thread, 1000, end, end_data, 60, 3600, *items)


def entries(r: redis.Redis, key: str) -> list[tuple[str, bytes]]:
    return [(fields[b"e"].decode(), fields[b"d"]) for _, fields in r.xrange(key)]


def test_a_batch_sent_twice_is_written_once(r: redis.Redis, prefix: str) -> None:
    run, thread = f"{prefix}:run:1", f"{prefix}:thread:1"
    first = ("1700000000000-0", "metadata", b'{"run_id":"1"}', "1700000000000-1", "values", b'{"n":1}')
    append(r, run, thread, "", b"", *first)
    append(r, run, thread, "", b"", *first)  # the answer was lost: sent again
    later = ("1700000000000-1", "values", b'{"n":1}', "1700000000001-0", "values", b'{"n":2}')
    append(r, run, thread, "e", b'{"n":2}', *later)  # one event written already, one new, and the end
    append(r, run, thread, "e", b'{"n":2}', *later)
    expected = [("metadata", b'{"run_id":"1"}'), ("values", b'{"n":1}'), ("values", b'{"n":2}')]
    assert entries(r, run) == [*expected, ("__end__", b'{"n":2}')]
    assert [entry_id.decode() for entry_id, _ in r.xrange(run)][:3] == [first[0], first[3], later[3]]
    assert entries(r, thread) == expected
    assert 0 < r.ttl(run) <= 60 and 3500 < r.ttl(thread) <= 3600


def test_a_run_handed_back_gets_no_end_marker(r: redis.Redis, prefix: str) -> None:
    run, thread = f"{prefix}:run:2", f"{prefix}:thread:2"
    append(r, run, thread, "h", b"", "1700000000000-0", "metadata", b"{}")
    assert entries(r, run) == [("metadata", b"{}")]  # the next attempt continues this stream
    assert 0 < r.ttl(run) <= 60

"""Streams served by the request guard instead of Robyn (robyn_server/streaming/handoff.py): more open streams
than Robyn has threads, pipelined requests answered in order, a gone client cancelling its run at once; and the
guard's response framer (robyn_server/guard_responses.py) on every framing Robyn can send."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from robyn_server.guard_responses import ResponseFramer, ResponseHead
from tests.server import ServerProcess
from tests.waiting import wait_for

OPEN_STREAMS = 300  # more than Robyn's ~256 blocking threads, each of which an open Robyn stream holds

PIPELINE = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\n\r\n\r\n0\r\nx-trailer: 1\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\n\r\n"
    b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n"  # the answer to HEAD: no body follows
    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-robyn-server-handoff-token: t1\r\n\r\n"
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}"
)
METHODS = [b"POST", b"GET", b"DELETE", b"HEAD", b"POST", b"GET"]


def frame(pieces: list[bytes]) -> tuple[list[int], bytes]:
    framer = ResponseFramer()
    framer.methods.extend(METHODS)
    statuses, data = [], b""
    for piece in pieces:
        for kind, value in framer.feed(piece):
            if kind == "head":
                assert isinstance(value, ResponseHead)
                statuses.append(value.status)
                data += value.raw
            else:
                assert isinstance(value, bytes)
                data += value
    return statuses, data


def test_framer_finds_every_response_whole_or_byte_by_byte() -> None:
    expected = [100, 200, 200, 204, 200, 200, 404]
    assert frame([PIPELINE]) == (expected, PIPELINE)
    assert frame([PIPELINE[i : i + 1] for i in range(len(PIPELINE))]) == (expected, PIPELINE)
    assert frame([PIPELINE[:57], PIPELINE[57:130], PIPELINE[130:]]) == (expected, PIPELINE)


def test_framer_passes_an_upgraded_connection_through() -> None:
    framer = ResponseFramer()
    framer.methods.append(b"GET")
    out = list(framer.feed(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n\x81\x02hi"))
    assert [kind for kind, _ in out] == ["head", "data"] and out[1][1] == b"\x81\x02hi"
    assert list(framer.feed(b"HTTP/1.1 not a head")) == [("data", b"HTTP/1.1 not a head")]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess().start()
    yield proc
    proc.stop()


def run_status(client: httpx.Client, thread_id: str, run_id: str) -> str:
    resp = client.get(f"/threads/{thread_id}/runs/{run_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["status"]


def test_more_open_streams_than_robyn_threads_all_stream_at_once(server: ServerProcess) -> None:
    """300 runs that each wait minutes: every stream gets its first event while all of them still run, the
    server holds far fewer threads than streams, and closing the streams cancels the runs (on_disconnect)."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        threads = [client.post("/threads", json={}).json()["thread_id"] for _ in range(OPEN_STREAMS)]
    body = {"assistant_id": "slow", "input": {"delay": 600}, "stream_mode": ["updates"], "on_disconnect": "cancel"}
    runs: list[tuple[str, str]] = []  # (thread, run)
    first_events: list[bytes] = []
    peak_threads = 0

    async def open_all() -> None:
        nonlocal peak_threads
        limits = httpx.Limits(max_connections=OPEN_STREAMS + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            ready = asyncio.Event()
            opened = 0

            async def one(thread_id: str) -> None:
                nonlocal opened
                async with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
                    assert resp.status_code == 200
                    runs.append((thread_id, resp.headers["content-location"].rsplit("/", 1)[1]))
                    first_events.append(await resp.aiter_raw().__anext__())
                    opened += 1
                    if opened == OPEN_STREAMS:
                        ready.set()
                    await ready.wait()  # every stream stays open until all have their first event

            tasks = [asyncio.create_task(one(t)) for t in threads]
            await asyncio.wait_for(ready.wait(), 120)
            peak_threads = psutil.Process(server.proc.pid).num_threads()  # type: ignore[union-attr]
            await asyncio.gather(*tasks)

    asyncio.run(open_all())
    assert len(first_events) == OPEN_STREAMS
    assert all(event.startswith(b"event: metadata\r\n") for event in first_events)
    assert peak_threads < OPEN_STREAMS // 2, f"{peak_threads} threads for {OPEN_STREAMS} open streams"
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for thread_id, run_id in runs:
            cancelled = lambda t=thread_id, r=run_id: run_status(client, t, r) == "interrupted"  # noqa: E731
            wait_for(cancelled, f"run {run_id} cancelled")


def test_more_waits_than_robyn_threads_hold_no_thread_each(server: ServerProcess) -> None:
    """300 `/runs/wait` requests on runs that would take minutes: while every run is busy the server holds far
    fewer threads than waiting requests; cancelled, each request gets its run's values."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        threads = [client.post("/threads", json={}).json()["thread_id"] for _ in range(OPEN_STREAMS)]

        def busy() -> int:
            return client.post("/threads/count", json={"status": "busy"}).json()

        async def wait_all() -> tuple[list[httpx.Response], int]:
            limits = httpx.Limits(max_connections=OPEN_STREAMS + 10, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as waiting:
                body = {"assistant_id": "slow", "input": {"delay": 600}}
                tasks = [asyncio.create_task(waiting.post(f"/threads/{t}/runs/wait", json=body)) for t in threads]
                await asyncio.to_thread(wait_for, lambda: busy() >= OPEN_STREAMS, "every run busy")
                threads_held = psutil.Process(server.proc.pid).num_threads()  # type: ignore[union-attr]
                assert (await waiting.post("/runs/cancel", json={"status": "running"})).status_code == 204
                return await asyncio.gather(*tasks), threads_held

        answers, threads_held = asyncio.run(wait_all())
    assert threads_held < OPEN_STREAMS // 2, f"{threads_held} threads for {OPEN_STREAMS} waiting requests"
    assert [a.status_code for a in answers] == [200] * OPEN_STREAMS
    assert all(a.json()["delay"] == 600 for a in answers)


def test_more_protocol_v2_streams_than_robyn_threads() -> None:
    """300 idle protocol-v2 thread streams (`POST /threads/{id}/stream/events`) each get a heartbeat while all
    are open, with far fewer threads in the server than streams."""
    server = ServerProcess(env={"SSE_HEARTBEAT_SECONDS": "0.5"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            threads = [client.post("/threads", json={}).json()["thread_id"] for _ in range(OPEN_STREAMS)]

        async def open_all() -> tuple[list[bytes], int]:
            limits = httpx.Limits(max_connections=OPEN_STREAMS + 10, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
                ready, firsts = asyncio.Event(), []

                async def one(thread_id: str) -> None:
                    body = {"channels": ["lifecycle", "values"]}
                    async with client.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as resp:
                        assert resp.status_code == 200
                        firsts.append(await resp.aiter_raw().__anext__())
                        if len(firsts) == OPEN_STREAMS:
                            ready.set()
                        await ready.wait()

                tasks = [asyncio.create_task(one(t)) for t in threads]
                await asyncio.wait_for(ready.wait(), 120)
                held = psutil.Process(server.proc.pid).num_threads()  # type: ignore[union-attr]
                await asyncio.gather(*tasks)
                return firsts, held

        firsts, held = asyncio.run(open_all())
    finally:
        server.stop()
    assert len(firsts) == OPEN_STREAMS and all(first.startswith(b": heartbeat") for first in firsts)
    assert held < OPEN_STREAMS // 2, f"{held} threads for {OPEN_STREAMS} open protocol-v2 streams"


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before {marker!r}; got {data[-300:]!r}")
        data += chunk
    return data


def test_pipelined_requests_are_answered_in_order_around_a_handed_off_stream(server: ServerProcess) -> None:
    """A run stream and a health check sent together on one connection, with a client-made handoff mark the
    guard drops: the stream's whole body comes first, in chunks, then the health check's answer."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        thread_id = client.post("/threads", json={}).json()["thread_id"]
    payload = b'{"assistant_id":"slow","input":{"delay":0.05},"stream_mode":["updates"]}'
    stream = (
        f"POST /threads/{thread_id}/runs/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"x-robyn-server-handoff: forged\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    health = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(stream + health)
        data = read_until(sock, b'{"ok":true')
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head
    assert b"text/event-stream" in head and b"x-robyn-server-handoff" not in head
    body, end, after = rest.partition(b"\r\n0\r\n\r\n")
    assert end, "the stream's body ends with the last chunk before the next response"
    assert body.count(b"event: updates\r\n") == 3 and b"event: metadata\r\n" in body
    assert after.startswith(b"HTTP/1.1 200 OK\r\n")


def test_offers_and_takes_from_two_threads_at_once() -> None:
    """Robyn's threads offer bodies (and sweep the unclaimed ones) while the guard's thread takes them: with
    thousands pending, a sweep once raised "dictionary changed size during iteration" (a 500 in a 10,000-run
    benchmark). Here one thread offers and sweeps while another takes, 20,000 times each."""
    import threading

    from robyn import Headers
    from robyn.responses import StreamingResponse

    from robyn_server.streaming import handoff

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            return iter(())

        async def _chunks(self) -> Any:
            yield b""

        def async_chunks(self) -> Any:
            return self._chunks()

    marked = {handoff.REQUEST_HEADER: handoff.SECRET}
    tokens: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def offering() -> None:
        try:
            for _ in range(20_000):
                answer = handoff.offer(Headers(marked), StreamingResponse(content=Body()))
                assert answer is not None
                tokens.append(answer.headers.get(handoff.RESPONSE_HEADER))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            done.set()

    taken: list[object] = []

    def taking() -> None:
        try:
            while not done.is_set() or tokens:
                if len(tokens) > 3000 or (done.is_set() and tokens):  # thousands stay pending, so sweeps walk many
                    taken.append(handoff.take(tokens.pop(0)))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    workers = [threading.Thread(target=offering), threading.Thread(target=taking)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors
    assert len(taken) == 20_000 and all(body is not None for body in taken)  # each body taken once, by its token
    assert not handoff._pending

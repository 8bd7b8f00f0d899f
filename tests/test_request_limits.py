"""Request limits enforced in front of Robyn (robyn_server/guard.py): before a body is read, for slow clients,
for malformed multipart and unknown methods, each answered with a JSON 4xx and a clean connection."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import websockets.sync.client

from robyn_server.guard import LISTEN_BACKLOG
from tests.server import ServerProcess


@pytest.fixture(scope="module")
def strict() -> Iterator[ServerProcess]:
    env = {"HTTP_MAX_REQUEST_BODY_BYTES": str(1024 * 1024), "HTTP_HEADER_TIMEOUT_SECONDS": "1",
           "HTTP_BODY_TIMEOUT_SECONDS": "1", "HTTP_KEEPALIVE_TIMEOUT_SECONDS": "2"}  # fmt: skip
    proc = ServerProcess(env=env).start()
    yield proc
    proc.stop()


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body (what the guard and plain JSON routes send)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def closed_by_server(sock: socket.socket, within: float = 10.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    extra = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}{headers}\r\n".encode() + body


def test_content_length_over_the_limit_is_413_before_any_body(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        sock.sendall(b"PUT /store/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 419430400\r\n\r\n")  # fmt: skip
        status, headers, body = read_response(sock)  # answered without sending a byte of the body
        assert status == 413 and headers["connection"] == "close"
        assert json.loads(body) == {"detail": "Request body too large (limit: 1048576 bytes)"}
        assert closed_by_server(sock)


def test_chunked_body_is_cut_off_at_the_limit(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        sock.sendall(b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        piece = b"x" * 65536
        try:
            for _ in range(40):  # 2.5 MB in 64 KB chunks, over the 1 MB limit
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = read_response(sock)
        assert status == 413 and "too large" in json.loads(body)["detail"]


def test_small_bodies_and_keep_alive_still_work(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        for _ in range(3):
            sock.sendall(request("POST", "/threads", b"{}", "Content-Type: application/json\r\n"))
            status, _, body = read_response(sock)
            assert status == 200 and "thread_id" in json.loads(body)
        chunked = b"POST /threads/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        sock.sendall(chunked)
        assert read_response(sock)[0] == 200


def test_slow_headers_are_timed_out(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /ok HTTP/1.1\r\n")
        # a byte at most every 0.2 s (the head would take > 1 s), until the server answers: waits on the answer
        for byte in b"Host: slowly-slowly-slowly\r\n\r\n":
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            answered, _, _ = select.select([sock], [], [], 0.2)
            if answered:
                break
        status, _, body = read_response(sock)
        assert status == 408 and "not received within 1 s" in json.loads(body)["detail"]
        assert time.monotonic() - started < 10


def test_slow_body_is_timed_out(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        sock.sendall(b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert closed_by_server(sock, within=10)


def test_idle_keep_alive_connections_are_closed(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        sock.sendall(request("GET", "/ok"))
        assert read_response(sock)[0] == 200
        assert closed_by_server(sock, within=15)


@pytest.mark.parametrize("path", ["/threads", "/ok", "/store/items", "/no/such/route"])
def test_multipart_without_boundary_is_a_json_400(strict: ServerProcess, path: str) -> None:
    with connect(strict) as sock:
        sock.sendall(request("POST", path, b"--x\r\n\r\n", "Content-Type: multipart/form-data\r\n"))
        status, headers, body = read_response(sock)
        assert status == 400 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"detail": "Malformed multipart content type: no boundary"}
        assert closed_by_server(sock)
    with connect(strict) as sock:  # the server is fine afterwards
        sock.sendall(request("GET", "/ok"))
        assert read_response(sock)[0] == 200


def test_unknown_method_with_a_body_is_a_json_405_and_a_clean_connection(strict: ServerProcess) -> None:
    with connect(strict) as sock:
        sock.sendall(request("FROB", "/threads/search", b'{"limit": 1}'))
        status, headers, body = read_response(sock)
        assert status == 405 and "POST" in headers["allow"].split(", ")
        assert json.loads(body) == {"detail": "Method Not Allowed"}
        assert closed_by_server(sock)
    with connect(strict) as sock:
        sock.sendall(request("FROB", "/no/such/route", b"{}"))
        assert read_response(sock)[0] == 404
    with connect(strict) as sock:
        sock.sendall(request("GET", "/ok"))
        assert read_response(sock)[0] == 200


def test_400_mb_upload_is_refused_without_the_memory() -> None:
    """The default limit (300 MB): a 400 MB upload gets 413 while the server's memory stays flat."""
    server = ServerProcess().start()
    try:
        process = psutil.Process(server.proc.pid)  # type: ignore[union-attr]
        baseline = process.memory_info().rss
        peak, done = [baseline], threading.Event()

        def sample() -> None:  # every 10 ms until the upload is answered
            while not done.wait(0.01):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with connect(server) as sock:
            sock.sendall(b"POST /threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 419430400\r\n\r\n")  # fmt: skip
            piece = b" " * (1024 * 1024)
            try:
                for _ in range(400):
                    sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass
            status, _, _ = read_response(sock)
        done.set()
        sampler.join()
        grown_mb = (peak[0] - baseline) / 1e6
        print(f"400 MB upload: status {status}, baseline RSS {baseline / 1e6:.1f} MB, peak +{grown_mb:.1f} MB")
        assert status == 413
        assert grown_mb < 20, f"RSS grew by {grown_mb:.1f} MB"
    finally:
        server.stop()


def test_guard_can_be_switched_off() -> None:
    """Robyn then serves the port itself; the body limit is still applied, after Robyn read the body, and Robyn
    streams runs itself. The protocol-v2 WebSocket (which the guard serves) is refused with a `not_supported` frame
    instead of hanging."""
    server = ServerProcess(env={"ROBYN_SERVER_REQUEST_GUARD": "0", "HTTP_MAX_REQUEST_BODY_BYTES": "1024"}).start()
    try:
        with connect(server) as sock:
            sock.sendall(request("POST", "/threads", b"{}", "Content-Type: application/json\r\n"))
            assert read_response(sock)[0] == 200
            sock.sendall(request("POST", "/threads", b" " * 2048 + b"{}", "Content-Type: application/json\r\n"))
            status, headers, _ = read_response(sock)
            assert status == 413 and "connection" not in headers  # Robyn's own answer, no guard in front
        body = {"assistant_id": "slow", "input": {"delay": 0.01}, "stream_mode": ["updates"]}
        with httpx.Client(base_url=server.url, timeout=60) as client:  # Robyn streams the run itself
            streamed = client.post("/runs/stream", json=body)
            waited = client.post("/runs/wait", json=body)
        assert streamed.status_code == 200 and streamed.text.count("event: updates\r\n") == 3
        assert waited.status_code == 200 and waited.json() == {"count": 3, "delay": 0.01}
        url = server.url.replace("http://", "ws://") + f"/threads/{uuid.uuid4()}/stream/events"
        with websockets.sync.client.connect(url, open_timeout=30) as ws:
            frame = json.loads(ws.recv(timeout=30))
        assert frame["type"] == "error" and frame["id"] is None and frame["error"] == "not_supported"
        assert "request guard" in frame["message"] and "Use the SSE transport" in frame["message"]
    finally:
        server.stop()


def test_public_port_listens_with_the_full_backlog(strict: ServerProcess) -> None:
    """The public listener's accept queue is LISTEN_BACKLOG (capped by the kernel), not asyncio's default of 100:
    with 100, a burst of new clients while the loop is busy had SYNs dropped and waited 1-3 s for a retry."""
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    listed = subprocess.run(["ss", "-Hltn", f"sport = :{strict.port}"], capture_output=True, text=True, check=True)
    backlogs = [int(line.split()[2]) for line in listed.stdout.splitlines() if line.startswith("LISTEN")]
    assert backlogs == [min(LISTEN_BACKLOG, somaxconn)]

"""Where each of Robyn's responses begins and ends on a connection, so the request guard can serve a handed-off
stream (robyn_server/streaming/handoff.py) in its place and in order, and copy everything else byte for byte.

The framer is a state machine over whatever bytes arrive: it cuts them into response heads (handed over whole
for a look) and body bytes (passed on as they are), following `Content-Length`, chunked framing, the responses
that have no body (1xx, 204, 304, answers to HEAD) and the ones that end with the connection (101, no framing).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024


class FramingError(Exception):
    """Robyn sent something that is not an HTTP/1.1 response: the connection cannot be followed further."""


@dataclass(slots=True)
class ResponseHead:
    raw: bytes
    status: int
    headers: list[tuple[bytes, bytes]]

    def get(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


def parse_response_head(raw: bytes) -> ResponseHead:
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise FramingError(f"not a response line: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
    return ResponseHead(raw, int(parts[1]), headers)


class ResponseFramer:
    """Feed it upstream bytes; it yields ("head", ResponseHead) and ("data", bytes) in wire order."""

    def __init__(self) -> None:
        self.methods: deque[bytes] = deque()  # the methods of the requests still waiting for their response
        self._buf = b""
        self._state = "head"  # head | length | size | chunk | trailer | raw
        self._left = 0

    def feed(self, data: bytes) -> Iterator[tuple[str, object]]:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos = 0
        while pos < len(buf):
            state = self._state
            if state == "raw":
                yield "data", buf[pos:]
                return
            if state in ("length", "chunk"):
                take = min(self._left, len(buf) - pos)
                yield "data", buf[pos : pos + take]
                pos += take
                self._left -= take
                if not self._left:
                    self._state = "head" if state == "length" else "size"
                continue
            if state == "head":
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                head = parse_response_head(buf[pos : end + 4])
                pos = end + 4
                self._after_head(head)
                yield "head", head
                continue
            end = buf.find(b"\r\n", pos)  # size or trailer: one line
            if end < 0:
                break
            line = buf[pos : end + 2]
            pos = end + 2
            yield "data", line
            if state == "size":
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise FramingError(f"bad chunk size line {line[:40]!r}")
                self._state, self._left = ("trailer", 0) if size == 0 else ("chunk", size + 2)
            elif line == b"\r\n":
                self._state = "head"
        rest = buf[pos:]
        if len(rest) > MAX_HEAD_BYTES:
            raise FramingError("response head or chunk line too long")
        self._buf = rest

    def _after_head(self, head: ResponseHead) -> None:
        status = head.status
        if 100 <= status < 200 and status != 101:
            return  # informational: the final response follows
        method = self.methods.popleft() if self.methods else b"GET"
        encoding = (head.get(b"transfer-encoding") or b"").lower()
        length = head.get(b"content-length")
        if status == 101:
            self._state = "raw"
        elif method == b"HEAD" or status in (204, 304):
            self._state = "head"
        elif b"chunked" in encoding:
            self._state = "size"
        elif length is not None and length.isdigit():
            self._state, self._left = ("length", int(length)) if int(length) else ("head", 0)
        else:
            self._state = "raw"  # the body ends with the connection

"""Server-Sent-Events frames in the reference's exact bytes: CRLF lines, one compact JSON `data:` line."""

from __future__ import annotations

HEARTBEAT = b": heartbeat\r\n\r\n"


def encode_frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """`event: NAME`, `data: JSON` and, on resumable runs, `id: ID`, each ending in CRLF, then a blank line."""
    if event_id is None:
        return b"event: " + event.encode() + b"\r\ndata: " + data + b"\r\n\r\n"
    return b"event: " + event.encode() + b"\r\ndata: " + data + b"\r\nid: " + event_id.encode() + b"\r\n\r\n"

"""Helpers shared by the run tests: SSE parsing, transcript loading and bounded polling."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
AGENT_INPUT = {"messages": [{"role": "user", "content": "weather in sf?"}]}
ANSWER = "The weather in sf is sunny."
BOOM = {"error": "ValueError", "message": "boom: deliberate failure"}
BUSY_DETAIL = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
NO_RUNS_TO_CANCEL = (
    "No matching runs to cancel. Please verify the thread ID and run IDs are correct, "
    "and the runs haven't been deleted or completed."
)
_NS = re.compile(r"\|([^|:]+):[0-9a-f-]{36}")


class Frame:
    """One SSE event: its name, decoded JSON data and optional id."""

    def __init__(self, event: str, data: Any, event_id: str | None, raw: bytes) -> None:
        self.event = event
        self.data = data
        self.id = event_id
        self.raw = raw

    def __repr__(self) -> str:
        return f"Frame({self.event!r}, id={self.id!r})"


def parse_sse(body: bytes) -> list[Frame]:
    """Split a CRLF-framed SSE body into frames, skipping comment (heartbeat) frames."""
    frames = []
    for block in body.split(b"\r\n\r\n"):
        if not block or block.startswith(b":"):
            continue
        fields: dict[str, str] = {}
        for line in block.split(b"\r\n"):
            name, _, value = line.decode().partition(": ")
            fields[name] = value
        frames.append(Frame(fields["event"], json.loads(fields["data"]), fields.get("id"), block + b"\r\n\r\n"))
    return frames


def names(frames: list[Frame]) -> list[str]:
    return [f.event for f in frames]


def strip_ns(name: str) -> str:
    """`updates|inner:<uuid>` → `updates|inner:*`, so namespaced names compare across runs."""
    return _NS.sub(lambda m: f"|{m.group(1)}:*", name)


def transcript_names(name: str) -> list[str]:
    """Event names, in order, of a captured reference stream."""
    return names(parse_sse((TRANSCRIPTS / f"{name}.sse").read_bytes()))


def sdk_transcript_names(name: str) -> list[str]:
    lines = (TRANSCRIPTS / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines if line.strip()]


def stream(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[httpx.Response, list[Frame]]:
    """POST a streaming create and read the whole SSE body."""
    resp = http.post(path, json=body)
    assert resp.status_code == 200, resp.text
    return resp, parse_sse(resp.content)


def poll(fetch: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 10.0, step: float = 0.05) -> Any:
    """Call `fetch` until `check(result)` holds; fail with the last result after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = fetch()
    while not check(last):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
        time.sleep(step)
        last = fetch()
    return last


def new_thread(http: httpx.Client) -> str:
    resp = http.post("/threads", json={})
    assert resp.status_code == 200, resp.text
    return resp.json()["thread_id"]


def run_status(http: httpx.Client, thread_id: str, run_id: str) -> str | None:
    resp = http.get(f"/threads/{thread_id}/runs/{run_id}")
    return resp.json()["status"] if resp.status_code == 200 else None


def thread_status(http: httpx.Client, thread_id: str) -> str:
    return http.get(f"/threads/{thread_id}").json()["status"]

"""`GET /threads/{id}/stream`: every run event on a thread, `run_done` markers, state updates, resume by id."""

from __future__ import annotations

import threading

import httpx

from tests.runs_helpers import Frame, parse_sse


class ThreadStreamReader:
    """Reads a thread stream in a background thread until `stop_when` matches a frame."""

    def __init__(self, base_url: str, thread_id: str, stop_when, headers: dict[str, str] | None = None,
                 params: dict[str, str] | None = None) -> None:  # fmt: skip
        self.frames: list[Frame] = []
        self.status: int | None = None
        self.connected = threading.Event()
        self._buffer = b""
        self._args = (base_url, thread_id, stop_when, headers or {}, params or {})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "thread stream did not connect"

    def _run(self) -> None:
        base_url, thread_id, stop_when, headers, params = self._args
        with httpx.Client(base_url=base_url, timeout=30) as http:
            with http.stream("GET", f"/threads/{thread_id}/stream", headers=headers, params=params) as resp:
                self.status = resp.status_code
                self.connected.set()
                for chunk in resp.iter_bytes():
                    self._buffer += chunk
                    *done, self._buffer = self._buffer.split(b"\r\n\r\n")
                    for block in done:
                        self.frames.extend(parse_sse(block + b"\r\n\r\n"))
                    if any(stop_when(f) for f in self.frames):
                        return

    def join(self, timeout: float = 20) -> list[Frame]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"thread stream did not finish: {[f.event for f in self.frames]}"
        return self.frames


def _run_done(frame: Frame) -> bool:
    return frame.event == "metadata" and frame.data.get("status") == "run_done"


def test_thread_stream_carries_run_events_and_run_done(http: httpx.Client, base_url: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    reader = ThreadStreamReader(base_url, tid, _run_done)
    run = http.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "slow", "input": {"delay": 0.05, "count": 0}, "stream_mode": ["updates"]},
    ).json()
    frames = reader.join()
    assert reader.status == 200
    assert [f.event for f in frames] == ["metadata", "updates", "updates", "updates", "metadata"]
    assert frames[0].data == {"run_id": run["run_id"], "attempt": 1}
    assert frames[-1].data == {"status": "run_done", "run_id": run["run_id"]}
    assert all(f.id for f in frames), "thread stream events always carry ids"


def test_thread_stream_state_update_and_resume(http: httpx.Client, base_url: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "slow", "input": {"delay": 0.01, "count": 2}})
    reader = ThreadStreamReader(base_url, tid, lambda f: f.event == "state_update")
    update = http.post(f"/threads/{tid}/state", json={"values": {"count": 7}})
    assert update.status_code == 200
    frames = reader.join()
    assert frames[-1].data["values"]["count"] == 7
    assert frames[-1].data["checkpoint"]["checkpoint_id"] == update.json()["checkpoint_id"]
    # Resume after that event: a second update arrives, the first is not replayed.
    resumed = ThreadStreamReader(
        base_url, tid, lambda f: f.event == "state_update", headers={"Last-Event-ID": frames[-1].id}
    )
    http.post(f"/threads/{tid}/state", json={"values": {"count": 8}})
    again = resumed.join()
    assert [f.data["values"]["count"] for f in again if f.event == "state_update"] == [8]


def test_thread_stream_filters_lifecycle(http: httpx.Client, base_url: str) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    reader = ThreadStreamReader(base_url, tid, _run_done, params={"stream_modes": "lifecycle"})
    http.post(f"/threads/{tid}/runs", json={"assistant_id": "slow", "input": {"delay": 0.05, "count": 1}})
    assert [f.event for f in reader.join()] == ["metadata", "metadata"]


def test_thread_stream_rejects_bad_input(http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    bad_id = http.get(f"/threads/{tid}/stream", headers={"Last-Event-ID": "nope"})
    assert bad_id.status_code == 422
    assert bad_id.json() == {"detail": "Invalid last-event-id: must be a valid Redis stream ID"}
    assert http.get(f"/threads/{tid}/stream", params={"stream_modes": "bogus"}).status_code == 422
    missing = http.get("/threads/00000000-0000-0000-0000-000000000000/stream")
    assert missing.status_code == 404

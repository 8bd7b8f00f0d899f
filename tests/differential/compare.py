"""Recording the same request sequence on two servers, normalising what must differ, and listing the rest.

A `Recorder` sends requests and keeps one `Exchange` per labelled request: status, the headers that matter and
the body (JSON, text, or the SSE events with their data parsed). `normalised` replaces timestamps, the server's
own URL and ids: an id seen under an id key (`thread_id`, `run_id`, `checkpoint_id`, ...) is named after the
place it first appeared (`<run_id runs.create/run_id>`), so references between answers (a Location naming the
run just made, a history entry's parent) are compared too, and one extra id on one side does not shift the names
of all later ones; any other UUID becomes `<uuid>`. `differences` walks both recordings
and yields one `Difference` per differing status, header, key or value, named `<label> <aspect><path>` so that
`tests/differential/differences.py` can list the kept ones with glob patterns.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

HEADERS = ("content-type", "cache-control", "pragma", "expires", "x-accel-buffering", "location", "content-location",
           "x-pagination-total", "x-pagination-next", "www-authenticate", "allow")  # fmt: skip
ID_KEYS = ("assistant_id", "thread_id", "run_id", "checkpoint_id", "parent_checkpoint_id", "cron_id")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX_ID = re.compile(r"\b[0-9a-f]{32}\b")  # interrupt ids: derived from checkpoint and task ids
TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
# Values that differ between any two runs of the same server (clocks), whatever the server.
VOLATILE_KEYS = {"__request_start_time_ms__", "run_started_at", "run_ended_at", "ts"}


@dataclass
class Exchange:
    label: str
    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: Any
    shape_only: bool = False  # compare the body's structure and types, not its values (byte counts, ...)
    seconds: float = 0.0  # since the previous exchange (for the report: where the time goes)


@dataclass
class Recorder:
    """Sends requests to one server as one user (a bearer token, per the reference's auth module)."""

    url: str
    token: str | None = "alice"
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._last = time.monotonic()

    def close(self) -> None:
        self.http.close()

    def _headers(self, token: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return {**headers, **(extra or {})}

    def call(self, label: str, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
             token: str | None | bool = True, headers: dict[str, str] | None = None,
             shape_only: bool = False) -> Any:  # fmt: skip
        """One request; returns the parsed body (None when empty)."""
        who = self.token if token is True else token or None
        response = self.http.request(method, path, json=json, params=params, headers=self._headers(who, headers))
        body = _parse(response)
        self._keep(label, method, path, response, body, shape_only)
        return body

    def stream(self, label: str, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
               token: str | None | bool = True, headers: dict[str, str] | None = None) -> list[Any]:  # fmt: skip
        """An SSE request read to its end; returns the events as `{"event", "data"}` (data parsed as JSON)."""
        who = self.token if token is True else token or None
        extra = self._headers(who, headers)
        with self.http.stream(method, path, json=json, params=params, headers=extra) as response:
            raw = response.read()
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            body = _parse_bytes(response, raw)
        else:
            body = parse_sse(raw.decode())
        self._keep(label, method, path, response, body, False)
        return body if isinstance(body, list) else []

    def _keep(self, label: str, method: str, path: str, response: httpx.Response, body: Any, shape: bool) -> None:
        if any(e.label == label for e in self.exchanges):
            raise AssertionError(f"label {label!r} used twice")
        headers = {k: response.headers[k] for k in HEADERS if k in response.headers}
        now = time.monotonic()
        exchange = Exchange(label, method, path, response.status_code, headers, body, shape, now - self._last)
        self.exchanges.append(exchange)
        self._last = now


def _parse(response: httpx.Response) -> Any:
    return _parse_bytes(response, response.content)


def _parse_bytes(response: httpx.Response, raw: bytes) -> Any:
    if not raw.strip():
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode(errors="replace")


def parse_sse(text: str) -> list[dict[str, Any]]:
    """SSE frames as `{"event", "data"}`; comments (heartbeats) and `id:` lines are left out."""
    events = []
    for frame in re.split(r"\r?\n\r?\n", text):
        name, data = "message", []
        for line in frame.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if not data and name == "message":
            continue
        joined = "\n".join(data)
        try:
            parsed: Any = json.loads(joined)
        except ValueError:
            parsed = joined
        events.append({"event": name, "data": parsed})
    return events


# ------------------------------------------------------------------------------------------ normalising
class Normaliser:
    """One server's recording made comparable: its ids named in order of appearance, times and URL replaced."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.names: dict[str, str] = {}

    def name(self, value: str, key: str, where: str) -> None:
        if UUID.fullmatch(value) and value not in self.names:
            self.names[value] = f"<{key} {where}>"

    def register(self, value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                item = value[key]
                if key in ID_KEYS and isinstance(item, str):
                    self.name(item, key.removeprefix("parent_"), f"{where}/{key}")
                self.register(item, f"{where}/{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.register(item, f"{where}/{i}")

    def text(self, value: str) -> str:
        value = value.replace(self.base_url, "<base>")
        value = TIME.sub("<time>", value)
        value = HEX_ID.sub("<hex>", value)
        return UUID.sub(lambda m: self.names.get(m.group(0), "<uuid>"), value)

    def value(self, value: Any, key: str = "") -> Any:
        if key in VOLATILE_KEYS and value is not None:
            return "<volatile>"
        if isinstance(value, dict):
            return {self.text(k): self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def exchange(self, exchange: Exchange) -> dict[str, Any]:
        self.register(exchange.body, exchange.label)
        for header in ("location", "content-location"):
            for found in UUID.findall(exchange.headers.get(header, "")):
                segment = exchange.headers[header].split(found)[0].rstrip("/").rsplit("/", 1)[-1]
                key = {"threads": "thread_id", "runs": "run_id"}.get(segment, "uuid")
                self.name(found, key, f"{exchange.label} {header}")
        body = self.value(exchange.body)
        return {
            "status": exchange.status,
            "headers": {k: self.text(v) for k, v in exchange.headers.items()},
            "body": shape(body) if exchange.shape_only else body,
        }


def shape(value: Any) -> Any:
    """The structure of a value: dict keys with their shapes, list item shapes, scalar type names."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# ------------------------------------------------------------------------------------------ differences
@dataclass(frozen=True)
class Difference:
    where: str  # `<label> <aspect><path>`, e.g. `threads.get body/config/configurable`
    reference: str
    ours: str

    def __str__(self) -> str:
        return f"{self.where}: reference {self.reference} | ours {self.ours}"


def _brief(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def diff_values(where: str, ref: Any, ours: Any) -> Iterator[Difference]:
    if isinstance(ref, dict) and isinstance(ours, dict):
        for key in sorted(set(ref) | set(ours), key=str):
            path = f"{where}/{key}"
            if key not in ours:
                yield Difference(path, _brief(ref[key]), "(absent)")
            elif key not in ref:
                yield Difference(path, "(absent)", _brief(ours[key]))
            else:
                yield from diff_values(path, ref[key], ours[key])
    elif isinstance(ref, list) and isinstance(ours, list):
        if _is_events(ref) and _is_events(ours):
            yield from _diff_events(where, ref, ours)
            return
        if len(ref) != len(ours):
            yield Difference(f"{where}/#len", str(len(ref)), str(len(ours)))
        for i, (a, b) in enumerate(zip(ref, ours, strict=False)):
            yield from diff_values(f"{where}/{i}", a, b)
    elif ref != ours or type(ref) is not type(ours):
        yield Difference(where, _brief(ref), _brief(ours))


def _is_events(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(e, dict) and set(e) == {"event", "data"} for e in value)


def _diff_events(where: str, ref: list[dict[str, Any]], ours: list[dict[str, Any]]) -> Iterator[Difference]:
    """SSE events: the sequence of event names first; the data of each event when the sequences agree."""
    ref_names, our_names = [e["event"] for e in ref], [e["event"] for e in ours]
    if ref_names != our_names:
        yield Difference(f"{where}/#events", " ".join(ref_names), " ".join(our_names))
        # still compare the data of the events that both have at the same place under the same name
    for i, (a, b) in enumerate(zip(ref, ours, strict=False)):
        if a["event"] == b["event"]:
            yield from diff_values(f"{where}/{i}:{a['event']}", a["data"], b["data"])


def differences(reference: list[dict[str, Any]], ours: list[dict[str, Any]]) -> Iterator[Difference]:
    """Every difference between two normalised recordings (matched by label)."""
    ours_by_label = {e["label"]: e for e in ours}
    ref_labels = {e["label"] for e in reference}
    for ref in reference:
        label = ref["label"]
        mine = ours_by_label.get(label)
        if mine is None:
            yield Difference(f"{label} #exchange", "recorded", "(absent)")
            continue
        if ref["status"] != mine["status"]:
            yield Difference(f"{label} status", str(ref["status"]), str(mine["status"]))
        yield from diff_values(f"{label} headers", ref["headers"], mine["headers"])
        yield from diff_values(f"{label} body", ref["body"], mine["body"])
    for mine in ours:
        if mine["label"] not in ref_labels:
            yield Difference(f"{mine['label']} #exchange", "(absent)", "recorded")


def normalised(recorder: Recorder) -> list[dict[str, Any]]:
    normaliser = Normaliser(recorder.url)
    return [{"label": e.label, **normaliser.exchange(e)} for e in recorder.exchanges]

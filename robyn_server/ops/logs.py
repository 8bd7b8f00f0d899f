"""Log set-up: plain text (default) or one JSON object per line (`LOG_FORMAT=json`, python-json-logger).

Every record gets the ids of the request and run it was written in (from their ContextVars) and the caller's
identity, never a token. Access lines (`robyn_server.access`) and run start/end lines (`robyn_server.runs`) are
written at INFO, so they show with `LOG_LEVEL=INFO` or lower.
"""

from __future__ import annotations

import logging
import os
import sys

from robyn_server.auth.context import current_identity
from robyn_server.ops import requests, runscope

ACCESS = logging.getLogger("robyn_server.access")
RUNS = logging.getLogger("robyn_server.runs")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
# Fields a record may carry, in the order the text format prints them.
CONTEXT_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "user", "run_id", "thread_id", "graph_id")


class ContextFilter(logging.Filter):
    """Adds request/run ids, method, path and the user to each record (fields already set by `extra` win)."""

    def __init__(self, text: bool) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        values = record.__dict__
        request = requests.current()
        if request is not None:
            values.setdefault("request_id", request.request_id)
            values.setdefault("method", request.method)
            values.setdefault("path", request.path)
        run = runscope.current()
        if run is not None:
            values.setdefault("run_id", run.run_id)
            values.setdefault("thread_id", run.thread_id)
            if run.graph_id:
                values.setdefault("graph_id", run.graph_id)
            if run.request_id:
                values.setdefault("request_id", run.request_id)
            if run.user:
                values.setdefault("user", run.user)
        if "user" not in values:
            user = current_identity()
            if user is not None:
                values["user"] = user
        if self.text:
            parts = [f"{name}={values[name]}" for name in CONTEXT_FIELDS if values.get(name) is not None]
            record.context = (" [" + " ".join(parts) + "]") if parts else ""
        return True


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.orjson import OrjsonFormatter

    return OrjsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def configure(level: str, fmt: str | None = None) -> str:
    """Install one stderr handler on the root logger; returns the format used (`text` or `json`)."""
    fmt = (fmt or os.environ.get("LOG_FORMAT") or "text").strip().lower()
    if fmt not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be 'text' or 'json', got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(text=fmt == "text"))
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # What neither format prints, not computed for every record (the logging HOWTO's "Optimization"): the
    # caller's file and line (a walk up the stack), thread, process and multiprocessing names.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return fmt

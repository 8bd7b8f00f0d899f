"""Helpers for the operations tests: reading a server's JSON log lines and waiting for conditions."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, TypeVar

from tests.server import ROOT, ServerProcess
from tests.waiting import wait_for  # noqa: F401 - re-exported for the ops tests

T = TypeVar("T")
AGENT_RUN = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather in sf?"}]}}


def json_lines(proc: ServerProcess) -> list[dict[str, Any]]:
    """Every JSON object line the server wrote so far (start-up banner lines are plain text and skipped)."""
    out = []
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))  # every JSON-looking line must parse
    return out


def log_lines_where(proc: ServerProcess, **fields: Any) -> list[dict[str, Any]]:
    return [line for line in json_lines(proc) if all(line.get(k) == v for k, v in fields.items())]


def issue(identity: str, *permissions: str) -> tuple[str, dict]:
    """A new key from the real CLI: (the key, its config entry)."""
    args = [sys.executable, "-m", "robyn_server.auth.api_keys", "new", "--identity", identity]
    for permission in permissions:
        args += ["--permission", permission]
    out = json.loads(subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    assert out["key"] not in json.dumps(out["entry"])  # the entry holds the hash only
    return out["key"], out["entry"]

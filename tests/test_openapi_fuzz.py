"""schemathesis (pinned in pyproject's dev extras) fuzzes the real server from its own /openapi.json and checks
every response against the document: no server error, documented status codes, content types, headers and
body schemas, and no hang (each request has a deadline; the whole run too)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import ROOT, ServerProcess

CONFIG = ROOT / "tests" / "schemathesis.toml"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance," \
    "response_schema_conformance"  # fmt: skip
# Responses that legitimately last as long as a run or a thread (with heartbeats, so no read timeout ends them):
# `GET /threads/{id}/stream` follows a thread forever, and a created run may wait `after_seconds` (up to a year)
# before it starts, which a `/stream` or `/wait` create and a join (schemathesis reuses the ids it saw) answer
# for. The same run bodies are fuzzed through the background creates (`POST /runs`, `POST /threads/{id}/runs`),
# which answer at once.
EXCLUDED = (
    r"^(/threads/\{thread_id\}/stream|(/threads/\{thread_id\})?/runs/(stream|wait)"
    r"|.*/runs/\{run_id\}/(stream|join))$"
)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ServerProcess]:
    proc = ServerProcess().start()
    yield proc
    proc.stop()


def schemathesis_binary() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed (pip install -e '.[dev]')")
    return found


def test_fuzzing_finds_no_server_errors_schema_violations_or_hangs(fuzz_server: ServerProcess) -> None:
    command = [
        schemathesis_binary(), "--config-file", str(CONFIG), "--no-color", "run", f"{fuzz_server.url}/openapi.json",
        "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "4",
        "--workers", "2", "--seed", "1", "--max-time", "60", "--exclude-path-regex", EXCLUDED, "--continue-on-failure",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = result.stdout + result.stderr
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "schemathesis.txt").write_text(output)
    summary = re.search(r"Test cases:\s*\n\s*(\d+) generated", output)
    print(output[-1500:])
    assert summary is not None, output[-3000:]
    assert int(summary.group(1)) > 500  # it really fuzzed every operation
    tail = output[output.rfind("SUMMARY") :]
    assert "Failures:" not in tail, output[-8000:]  # no 5xx, undocumented status, content type or schema mismatch
    assert "Network Error" not in output  # no request timed out (a hang)
    # schemathesis' own crashes (e.g. a hypothesis FlakyFailure while building coverage cases) are not the server's
    errors = re.findall(r"🚫 ([A-Za-z ]+): \d+", tail[tail.find("Errors:") :] if "Errors:" in tail else "")
    assert all(kind == "Runtime Error" for kind in errors), output[-8000:]
    assert "Traceback" not in fuzz_server.log_path.read_text()  # and the server logged no exception

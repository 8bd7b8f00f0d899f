"""`scripts/e2e_manual.py --mock` against a live server: the whole flow offline, and a failing step named."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.agent_services import agent_config, closed_port_url
from tests.server import ROOT, ServerProcess

SCRIPT = ROOT / "scripts" / "e2e_manual.py"
STEPS = ["auth", "health", "mock services", "assistant", "thread", "stream", "state", "history"]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(config=agent_config(tmp_path_factory.mktemp("e2e")), env={"OPENAI_API_KEY": ""}).start()
    yield proc
    proc.stop()


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_mock_flow_streams_an_answer_with_a_tool_call(live_server: ServerProcess) -> None:
    result = run_script("--url", live_server.url, "--mock")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    ok_steps = [line.split(":", 1)[0].removeprefix("[ok] ") for line in lines if line.startswith("[ok] ")]
    assert ok_steps == [*STEPS, "all steps passed"]
    assert "[tool call: add] [tool result: 5] The tool returned: 5" in result.stdout
    assert any(line.startswith("[ok] stream:") and "1 tool call(s)" in line for line in lines)
    assert "4 messages (human, ai, tool, ai)" in result.stdout
    assert "unauthenticated" in result.stdout


def test_minted_token_is_used_when_a_jwt_secret_is_set(live_server: ServerProcess) -> None:
    result = run_script("--url", live_server.url, "--mock", env={"SUPABASE_JWT_SECRET": "s" * 32})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok] auth: minted HS256 token for" in result.stdout


def test_a_failing_step_is_named_and_exits_non_zero(live_server: ServerProcess) -> None:
    down = run_script("--url", closed_port_url(), "--mock")
    assert down.returncode == 1
    assert "[FAIL] health:" in down.stdout and "e2e failed at step 'health'" in down.stderr
    # no model configured on the server and no --mock: the run's error event fails the `stream` step
    no_model = run_script("--url", live_server.url)
    assert no_model.returncode == 1
    assert "e2e failed at step 'stream'" in no_model.stderr
    assert "No model is configured" in no_model.stdout

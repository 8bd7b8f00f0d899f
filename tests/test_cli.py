"""`python -m robyn_server`: start-up failures end quickly with one line; signals stop a running server."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import ROOT, ServerProcess, free_port

GRAPH_DIR = ROOT / "tests" / "graphs"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the server CLI to completion (it must fail at start-up)."""
    return subprocess.run(
        [sys.executable, "-m", "robyn_server", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def write_config(tmp_path: Path, graphs: dict[str, str]) -> Path:
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    return config


def test_missing_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = run_cli("--config", str(missing), "--port", str(free_port()))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1
    assert str(missing) in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_config_json(tmp_path: Path) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text("{not json")
    result = run_cli("--config", str(config), "--port", str(free_port()))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and str(config) in lines[0]


def test_missing_variable(tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text("x = 1\n")
    config = write_config(tmp_path, {"mine": "./g.py:graph"})
    result = run_cli("--config", str(config), "--port", str(free_port()))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1
    assert "'mine'" in lines[0] and "graph" in lines[0] and "g.py" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_graph_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mine": "./absent.py:graph"})
    result = run_cli("--config", str(config), "--port", str(free_port()))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "absent.py" in lines[0] and "'mine'" in lines[0]


def test_graph_file_raises_on_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('kaboom at import')\n")
    config = write_config(tmp_path, {"broken": "./broken.py:graph"})
    result = run_cli("--config", str(config), "--port", str(free_port()))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1
    assert "broken.py" in lines[0] and "kaboom at import" in lines[0] and "'broken'" in lines[0]
    assert "Traceback" not in result.stderr


def test_busy_port() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("--config", str(GRAPH_DIR / "langgraph.json"), "--port", str(port))
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1
    assert str(port) in lines[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_server(sig: signal.Signals) -> None:
    server = ServerProcess().start()
    try:
        assert httpx.get(f"{server.url}/ok", timeout=5).status_code == 200
        assert server.proc is not None
        server.proc.send_signal(sig)
        try:
            server.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server still running 5 s after {sig.name}")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.url}/ok", timeout=1)
    finally:
        server.stop()


def test_forked_and_fresh_servers_answer_and_exit_alike() -> None:
    """The suite forks its servers from a parent that imported LangGraph once (tests/forkserver.py); a fresh
    `python -m robyn_server` (what TEST_SERVER_FORK=0 starts) gives the same answer and the same exit status."""
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "weather in sf?"}]}}
    forked, fresh = ServerProcess(fork=True).start(), ServerProcess(fork=False).start()
    try:
        assert type(fresh.proc) is subprocess.Popen and type(forked.proc) is not subprocess.Popen
        answers = [httpx.post(f"{s.url}/runs/wait", json=body, timeout=30).json() for s in (forked, fresh)]
        assert [[m["content"] for m in a["messages"]] for a in answers] == [
            [m["content"] for m in answers[1]["messages"]]
        ] * 2
        assert answers[0]["messages"][-1]["content"] == "The weather in sf is sunny."
        assert forked.stop(signal.SIGTERM) == fresh.stop(signal.SIGTERM) == 0
    finally:
        forked.stop()
        fresh.stop()
    killed = [ServerProcess(fork=fork).start().stop(signal.SIGKILL) for fork in (True, False)]
    assert killed == [-signal.SIGKILL] * 2


def test_signal_stops_server_with_running_run() -> None:
    server = ServerProcess(env={"ROBYN_SERVER_SHUTDOWN_GRACE_SECONDS": "1"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            thread_id = c.post("/threads", json={}).json()["thread_id"]
            run = c.post(f"/threads/{thread_id}/runs", json={"assistant_id": "slow", "input": {"delay": 30}})
            assert run.status_code == 200
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("server still running 5 s after SIGTERM with a run in flight")
    finally:
        server.stop()

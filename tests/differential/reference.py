"""The official server (`langgraph dev` from .venv-reference/) as a subprocess, and the config both servers read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.server import ROOT, free_port, wait_until_ok

REFERENCE_VENV = ROOT / ".venv-reference"
LANGGRAPH = REFERENCE_VENV / "bin" / "langgraph"
GRAPHS = ROOT / "tests" / "graphs"


def write_config(folder: Path) -> Path:
    """tests/graphs/langgraph.protocol.json with the reference auth module, its paths made absolute.

    `langgraph dev` resolves graph paths against its working directory (and writes `.langgraph_api/` there), so
    both servers read this copy and the reference runs in `folder`.
    """
    config = json.loads((GRAPHS / "langgraph.protocol.json").read_text())

    def absolute(target: str) -> str:
        return str(GRAPHS / target.removeprefix("./"))

    config["dependencies"] = [str(GRAPHS)]
    config["graphs"] = {name: absolute(target) for name, target in config["graphs"].items()}
    config["auth"] = {"path": absolute("./auth_reference.py:auth")}
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


class ReferenceServer:
    """`langgraph dev --no-browser --no-reload` on a free port, in memory, offline, with no telemetry."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config, self.cwd = config, cwd
        self.log_path = ROOT / "test-artifacts" / f"reference-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> ReferenceServer:
        self.log_path.parent.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "SUPABASE_"))}
        env.update({"LANGGRAPH_NO_VERSION_CHECK": "true", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
                    "LANGSMITH_TRACING": "false", "LANGGRAPH_DISABLE_FILE_PERSISTENCE": "true"})  # fmt: skip
        command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
                   "--port", str(self.port), "--config", str(self.config)]  # fmt: skip
        self.proc = subprocess.Popen(
            command, cwd=self.cwd, env=env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 60.0) -> ReferenceServer:
        assert self.proc is not None
        try:
            wait_until_ok(self.proc, self.url, timeout, "langgraph dev", self.log_tail)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: uvicorn and anything it started
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

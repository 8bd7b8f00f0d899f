"""A parent that has imported LangGraph once and forks the test servers from there.

Starting `python -m robyn_server` costs about 2.3 s of CPU on the CI machine, nine tenths of it importing
LangGraph, LangChain and LangSmith, and the suite starts more than 150 servers. This process imports those
libraries once (nothing of robyn_server: its modules read settings from the environment when imported), then
for each request forks a child that takes the request's environment, working directory and log file and runs
`robyn_server` as `python -m robyn_server` would (`runpy`, `__main__`, its exit status). The children are real
server processes running the same code; only the interpreter start and those imports are shared.

Protocol, one JSON object per line on stdin, one answer per line on stdout:
`{"op": "spawn", "args": [...], "env": {...}, "cwd": "...", "log": "..."}` -> `{"pid": N}`;
`{"op": "poll", "pid": N}` -> `{"code": C}` (None while running; -signal for a killed child, as Popen has it).
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from typing import Any

# Libraries only, none of which reads the environment when imported (prometheus_client does, for its
# multiprocess mode, and opentelemetry may: both are left to the child).
PRELOAD = (
    "langgraph.graph",
    "langgraph.types",
    "langgraph.checkpoint.base",
    "langgraph.checkpoint.memory",
    "langgraph.checkpoint.sqlite.aio",
    "langgraph.store.memory",
    "langchain_core.messages",
    "langchain_core.runnables",
    "langchain_core.language_models",
    "langchain_protocol",
    "langgraph_sdk",
    "pydantic",
    "orjson",
    "httpx",
    "aiosqlite",
    "robyn",
    "uvloop",
    "multiprocess",
    "jwt",
    "croniter",
    "dotenv",
    "a2a.types",
)


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve() -> dict[str, Any] | None:
    """Answer requests until stdin closes (None); in a forked child, the request it is to run."""
    exits: dict[int, int] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                return request
            _answer({"pid": pid})
        elif request["op"] == "poll":
            pid = request["pid"]
            if pid not in exits:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, status = pid, 0
                if done:
                    exits[pid] = os.waitstatus_to_exitcode(status)
            _answer({"code": exits.get(pid)})
    return None


def run_server(request: dict[str, Any]) -> None:
    """In the child: become `python -m robyn_server <args>` with the request's environment and files."""
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 1 << 16)  # nothing of the parent's stays open: its pipes, the log's first descriptor
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
    sys.argv = ["robyn_server", *request["args"]]
    runpy.run_module("robyn_server", run_name="__main__", alter_sys=True)


def main() -> int:
    for module in PRELOAD:
        importlib.import_module(module)
    request = serve()
    if request is None:
        return 0
    run_server(request)  # SystemExit from the server ends the child as it ends `python -m robyn_server`
    return 0


# ------------------------------------------------------------------------------ the tests' side
class ForkServer:
    """The running parent (started at first use, one per test process); its answers come in request order."""

    _instance: ForkServer | None = None
    _instance_lock = threading.Lock()

    def __init__(self, cwd: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver"], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._lock = threading.Lock()

    @classmethod
    def get(cls, cwd: str) -> ForkServer:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.proc.poll() is not None:
                cls._instance = cls(cwd)
            return cls._instance

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server exited with {self.proc.wait()}")
        return json.loads(line)


class ForkedProcess:
    """A server forked by the fork server, with the part of `subprocess.Popen` the tests use."""

    def __init__(self, server: ForkServer, args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
        self._server = server
        self.args = args
        self.pid: int = server.ask({"op": "spawn", "args": args, "env": env, "cwd": cwd, "log": log})["pid"]
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.ask({"op": "poll", "pid": self.pid})["code"]
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(delay)  # an exit status arrives by asking; nothing to wait on from this process
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())

"""`--processes N`: N independent server processes on one port, started and watched by this parent.

Each child is a whole server (`--processes 1`) that binds the same port (Robyn's listening socket is
SO_REUSEPORT, so the kernel spreads connections across them); they share runs through Postgres and Redis.
SIGTERM/SIGINT are passed on to every child, which drains its runs; a child that dies is started again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger("robyn_server.supervisor")
CHILD_ENV = "ROBYN_SERVER_CHILD"


def child_argv(argv: list[str]) -> list[str]:
    """The command line of one child: the same flags with `--processes 1`."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--processes":
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        out.append(arg)
    return [sys.executable, "-m", "robyn_server", *out, "--processes", "1"]


def supervise(argv: list[str], processes: int) -> None:
    """Run `processes` children until a signal stops them all; never returns."""
    stopping = threading.Event()
    env = {**os.environ, CHILD_ENV: "1"}
    command = child_argv(argv)
    children: list[subprocess.Popen[bytes]] = [subprocess.Popen(command, env=env) for _ in range(processes)]

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    while not stopping.is_set():
        for index, child in enumerate(children):
            code = child.poll()
            if code is None or stopping.is_set():
                continue
            if time.monotonic() - started < 10 and code != 0:
                # a child that cannot start (bad config, database down) stops the whole server
                stop(signal.SIGTERM, None)
                for other in children:
                    other.wait()
                sys.exit(code)
            print(f"robyn-server: process {child.pid} exited with {code}; starting another", file=sys.stderr)
            children[index] = subprocess.Popen(command, env=env)
        stopping.wait(0.5)
    codes = [child.wait() for child in children]
    sys.exit(0 if all(c in (0, -signal.SIGTERM, -signal.SIGINT) for c in codes) else 1)

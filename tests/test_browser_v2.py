"""Protocol v2 in a real browser (headless Debian Chromium, driven by tests/browser/v2.mjs), from a second origin:

- the official JS SDK 1.15 `client.threads.stream()`: a run whose tokens arrive one by one, its tool call and
  result and final messages, an interrupt answered with `input.respond`, a failing run's error, a page reload
  in the middle of a run (the new page attaches to the thread and follows the run to its end), and a run streamed
  over the WebSocket transport (its tokens one by one and its final messages);
- a React page on `@langchain/react` 1.1 `useStream` (bundled with esbuild): a run's messages, an interrupt
  answered, a failing run's error, and a page reload in the middle of a run that rejoins the thread and shows
  the finished answer.

Needs what tests/test_browser.py needs (tests/browser/setup.sh installs it); skipped with the reason when it is
missing, except in CI, where that fails.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from tests.server import ServerProcess
from tests.test_browser import ARTIFACTS, BROWSER_DIR, IN_CI, QuietHandler, missing_requirement, run_node

SITE_DIR = ARTIFACTS / "browser-site-v2"
PACKAGES = ("langgraph-sdk-1-15", "@langchain/react", "react", "react-dom")


@pytest.fixture(scope="module", autouse=True)
def browser_ready() -> None:
    reason = missing_requirement()
    for package in PACKAGES:
        if reason is None and not (BROWSER_DIR / "node_modules" / package / "package.json").is_file():
            reason = f"{package} not installed in tests/browser (run tests/browser/setup.sh, or `npm ci` there)"
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def api_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(config=BROWSER_DIR / "langgraph.json").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """The protocol-v2 pages, built with esbuild and served on their own port: a second origin."""
    build = subprocess.run(
        ["node", "build-v2.mjs", str(SITE_DIR)], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, f"esbuild bundle failed:\n{build.stdout}\n{build.stderr}"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(SITE_DIR)))
    thread = threading.Thread(target=httpd.serve_forever, name="second-origin-v2", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_js_sdk_thread_streams_from_another_origin(api_server: ServerProcess, site_url: str) -> None:
    output = run_node("v2.mjs", "jsSdk", API_URL=api_server.url, SITE_URL=site_url)
    assert "websocket transport: 6 tokens over ws://" in output


def test_react_use_stream_chat_interrupt_error_and_reload(api_server: ServerProcess, site_url: str) -> None:
    shot = ARTIFACTS / "v2-react-reload.png"
    shot.unlink(missing_ok=True)
    run_node("v2.mjs", "react", API_URL=api_server.url, SITE_URL=site_url)
    assert shot.is_file() and shot.stat().st_size > 0

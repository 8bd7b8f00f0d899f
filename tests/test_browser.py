"""Real-browser tests: headless Debian Chromium driven by playwright-core (the Node scripts in tests/browser/).

- the official JS SDK (@langchain/langgraph-sdk, bundled with esbuild) runs in a page served from a second local
  port, i.e. another origin than the API: a streamed run with tokens arriving one by one, a thread list, an
  interrupt approved and resumed, a cancel, a join with Last-Event-ID; CORS preflights and exposed headers as
  the browser sees them, and a server that does not list the page's origin being refused by the browser;
- the playground page (/playground) driven end to end over protocol v2 (its default) and the classic run
  stream, with screenshots in test-artifacts/.

Needs node, `npm ci` in tests/browser and /usr/bin/chromium (scripts/test.sh installs them). Without them the
tests are skipped with the reason, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest

from tests.server import ROOT, ServerProcess

BROWSER_DIR = ROOT / "tests" / "browser"
ARTIFACTS = ROOT / "test-artifacts"
SITE_DIR = ARTIFACTS / "browser-site"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
NODE_TIMEOUT = 180
JWT_SECRET = "browser-tests-secret-0123456789abcdef"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def missing_requirement() -> str | None:
    if chromium_path() is None:
        return "Chromium not found (/usr/bin/chromium; install Debian's chromium: scripts/test.sh does it as root)"
    if shutil.which("node") is None:
        return "node not found"
    for package in ("playwright-core", "esbuild", "@langchain/langgraph-sdk"):
        if not (BROWSER_DIR / "node_modules" / package / "package.json").is_file():
            return f"{package} not installed in tests/browser (run scripts/test.sh, or `npm ci` there)"
    return None


@pytest.fixture(scope="module", autouse=True)
def browser_ready() -> None:
    reason = missing_requirement()
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
def auth_server() -> Iterator[ServerProcess]:
    """The same graphs with authentication on (Supabase HS256 JWTs)."""
    proc = ServerProcess(config=BROWSER_DIR / "langgraph.json", env={"SUPABASE_JWT_SECRET": JWT_SECRET})
    proc.env = {k: v for k, v in proc.env.items() if k not in ("SUPABASE_URL", "SUPABASE_JWKS_URL")}
    yield proc.start()
    proc.stop()


def user_token(sub: str = "browser-user") -> str:
    now = int(time.time())
    claims = {"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def restricted_server() -> Iterator[ServerProcess]:
    """A server that only allows another origin than the test page's."""
    proc = ServerProcess(env={"CORS_ALLOW_ORIGINS": "http://allowed.example"}).start()
    yield proc
    proc.stop()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_url(browser_ready: None) -> Iterator[str]:
    """The SDK test page, built with esbuild and served on its own port: a second origin."""
    build = subprocess.run(
        ["node", "build.mjs", str(SITE_DIR)], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, f"esbuild bundle failed:\n{build.stdout}\n{build.stderr}"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(SITE_DIR)))
    thread = threading.Thread(target=httpd.serve_forever, name="second-origin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_node(script: str, scenario: str, **env: str) -> str:
    full_env = {**os.environ, "ARTIFACTS_DIR": str(ARTIFACTS), "CHROMIUM_PATH": chromium_path() or "", **env}
    try:
        done = subprocess.run(
            ["node", script, scenario],
            cwd=BROWSER_DIR,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script} {scenario} did not finish in {NODE_TIMEOUT}s:\n{exc.stdout}\n{exc.stderr}")
    output = f"{done.stdout}\n{done.stderr}".strip()
    assert done.returncode == 0, f"{script} {scenario} failed:\n{output}"
    assert "ok: " in done.stdout, output
    return output


@pytest.mark.parametrize(
    "scenario", ["streamRun", "listThreads", "interruptResume", "cancelRun", "joinWithLastEventId"]
)
def test_js_sdk_from_another_origin(api_server: ServerProcess, page_url: str, scenario: str) -> None:
    run_node("sdk.mjs", scenario, API_URL=api_server.url, PAGE_URL=page_url)


def test_cors_as_the_browser_sees_it(
    api_server: ServerProcess, restricted_server: ServerProcess, page_url: str
) -> None:
    output = run_node(
        "sdk.mjs", "corsFetch", API_URL=api_server.url, PAGE_URL=page_url, RESTRICTED_URL=restricted_server.url
    )
    assert "preflights seen:" in output


@pytest.mark.parametrize(
    "scenario,stream",
    [("chat", "v2"), ("interrupt", "v2"), ("cancel", "v2"), ("reload", "v2"), ("chat", "classic"),
     ("interrupt", "classic"), ("reload", "classic")],
)  # fmt: skip
def test_playground_end_to_end(api_server: ServerProcess, scenario: str, stream: str) -> None:
    """The page streams over protocol v2 by default and over the classic run stream when switched."""
    shot = ARTIFACTS / f"playground-{scenario}.png"
    shot.unlink(missing_ok=True)
    run_node("playground.mjs", scenario, API_URL=api_server.url, PLAYGROUND_STREAM=stream)
    if scenario in ("chat", "interrupt"):
        assert shot.is_file() and shot.stat().st_size > 0, f"no screenshot at {shot}"


def test_js_sdk_and_playground_with_auth_on(auth_server: ServerProcess, page_url: str) -> None:
    """Preflights pass without a token, a 401 is readable by the page, and a bearer token works."""
    token = user_token()
    run_node("sdk.mjs", "withAuth", API_URL=auth_server.url, PAGE_URL=page_url, TOKEN=token)
    run_node("playground.mjs", "auth", API_URL=auth_server.url, TOKEN=token)

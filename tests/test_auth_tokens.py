"""Supabase JWT verification at the gate: good HS256/RS256/ES256 tokens pass, every bad token is a 401 with
`{"detail": ...}` and `WWW-Authenticate: Bearer`, public paths stay open, JWKS keys rotate, and start-up refuses
half configurations."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from tests.server import ROOT, TEST_CONFIG, ServerProcess, free_port
from tests.test_auth_support import SECRET, JwksServer, KeyPair, bearer, hs256, signed

RSA = KeyPair("RS256")
EC = KeyPair("ES256")


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    with JwksServer([RSA, EC]) as server:
        yield server


@pytest.fixture(scope="module")
def jwt_server(jwks: JwksServer) -> Iterator[ServerProcess]:
    env = {
        "SUPABASE_JWT_SECRET": SECRET,
        "SUPABASE_URL": jwks.url,
        "SUPABASE_JWKS_MIN_REFRESH_SECONDS": "0",
        "ROBYN_SERVER_STORAGE": "memory",
    }
    proc = ServerProcess(env=env).start()
    yield proc
    proc.stop()


@pytest.fixture
def http(jwt_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jwt_server.url, timeout=30) as client:
        yield client


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(payload: dict, alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def _hmac_with(key: bytes, payload: dict, kid: str) -> str:
    """HS256 signed with the RSA *public key* as the secret: the classic HS/RS confusion attack."""
    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}.{_b64(json.dumps(payload).encode())}"
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _bad_tokens(jwks: JwksServer) -> dict[str, dict[str, str]]:
    from tests.test_auth_support import claims_for

    iss = jwks.issuer
    stranger = KeyPair("RS256", kid=RSA.kid)  # same kid, different key: a forged RS256 signature
    unknown = KeyPair("RS256")
    return {
        "missing": {},
        "empty": {"Authorization": ""},
        "basic scheme": {"Authorization": "Basic YWxpY2U6cGFzcw=="},
        "bearer without token": {"Authorization": "Bearer"},
        "malformed": bearer("not-a-jwt"),
        "garbage segments": bearer("aaa.bbb.ccc"),
        "expired": bearer(hs256("alice", iss, exp=1_000_000_000)),
        "not yet valid": bearer(hs256("alice", iss, nbf=4_000_000_000)),
        "wrong audience": bearer(hs256("alice", iss, aud="anon")),
        "wrong issuer": bearer(hs256("alice", "https://evil.example/auth/v1")),
        "wrong HS256 secret": bearer(hs256("alice", iss, secret="another-secret-that-is-long-enough-0123456789")),
        "forged RS256 signature": bearer(signed(stranger, "alice", iss)),
        "unknown kid": bearer(signed(unknown, "alice", iss)),
        "alg none": bearer(_unsigned(claims_for("alice", iss))),
        "alg None spelled": bearer(_unsigned(claims_for("alice", iss), alg="None")),
        "HS/RS confusion": bearer(_hmac_with(RSA.public_pem(), claims_for("alice", iss), RSA.kid)),
        "RS key named for an ES token": bearer(signed(RSA, "alice", iss, kid=EC.kid)),
        "no subject": bearer(jwt.encode({k: v for k, v in claims_for("x", iss).items() if k != "sub"}, SECRET)),
        "oversized": bearer(hs256("alice", iss, padding="x" * 9000)),
        "exp as a string": bearer(hs256("alice", iss, exp=str(int(time.time()) + 3600))),
        "nbf as a string": bearer(hs256("alice", iss, nbf=str(int(time.time()) - 10))),
        "iat as a string": bearer(hs256("alice", iss, iat=str(int(time.time())))),
        "exp as a boolean": bearer(hs256("alice", iss, exp=True)),
        "no issuer": bearer(hs256("alice", None)),
    }


BAD_CASES = [
    "missing", "empty", "basic scheme", "bearer without token", "malformed", "garbage segments", "expired",
    "not yet valid", "wrong audience", "wrong issuer", "wrong HS256 secret", "forged RS256 signature",
    "unknown kid", "alg none", "alg None spelled", "HS/RS confusion", "RS key named for an ES token",
    "no subject", "oversized", "exp as a string", "nbf as a string", "iat as a string", "exp as a boolean",
    "no issuer",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_tokens_are_401_with_bearer_challenge(http: httpx.Client, jwks: JwksServer, case: str) -> None:
    headers = _bad_tokens(jwks)[case]
    for method, path, body in (
        ("POST", "/threads/search", {}),
        ("GET", "/threads/00000000-0000-0000-0000-000000000000", None),
        ("POST", "/runs/stream", {"assistant_id": "agent", "input": {"messages": []}}),
        ("PUT", "/store/items", {"namespace": ["alice"], "key": "k", "value": {}}),
    ):
        response = http.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (case, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/json"
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail


def test_detail_names_the_problem(http: httpx.Client, jwks: JwksServer) -> None:
    bad = _bad_tokens(jwks)
    expected = {
        "missing": "Missing bearer token",
        "expired": "Token has expired",
        "not yet valid": "Token is not yet valid",
        "wrong audience": "Invalid token audience",
        "wrong issuer": "Invalid token issuer",
        "wrong HS256 secret": "Invalid token signature",
        "alg none": "Unsupported token algorithm",
        "oversized": "Token too large",
        "unknown kid": "Unknown signing key",
        "exp as a string": "Token claim 'exp' must be a number",
        "no issuer": "Token is missing the 'iss' claim",
    }
    for case, detail in expected.items():
        assert http.post("/threads/search", json={}, headers=bad[case]).json() == {"detail": detail}, case


@pytest.mark.parametrize("kind", ["HS256", "RS256", "ES256"])
def test_good_tokens_pass(http: httpx.Client, jwks: JwksServer, kind: str) -> None:
    if kind == "HS256":
        token = hs256("carol", jwks.issuer)
    else:
        token = signed(RSA if kind == "RS256" else EC, "carol", jwks.issuer)
    created = http.post("/threads", json={"metadata": {"k": kind}}, headers=bearer(token))
    assert created.status_code == 200, created.text
    assert created.json()["metadata"] == {"k": kind, "owner": "carol"}
    found = http.post("/threads/search", json={"metadata": {"k": kind}}, headers=bearer(token))
    assert [t["thread_id"] for t in found.json()] == [created.json()["thread_id"]]


def test_public_paths_and_preflight_need_no_token(http: httpx.Client) -> None:
    for path in ("/ok", "/info", "/docs", "/openapi.json", "/playground"):
        response = http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    preflight = http.options(
        "/threads/search",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert "access-control-allow-origin" in preflight.headers
    # unknown routes are not a way around the gate
    assert http.get("/nope").status_code == 401


def test_unknown_kid_refetches_the_jwks(http: httpx.Client, jwks: JwksServer) -> None:
    rotated = KeyPair("ES256")
    token = signed(rotated, "dave", jwks.issuer)
    assert http.post("/threads/search", json={}, headers=bearer(token)).status_code == 401
    jwks.keys.append(rotated.jwk)
    hits = jwks.hits
    response = http.post("/threads/search", json={}, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert jwks.hits == hits + 1
    # cached afterwards: no fetch per request
    for _ in range(5):
        assert http.post("/threads/search", json={}, headers=bearer(token)).status_code == 200
    assert jwks.hits == hits + 1


def _start_and_wait(env: dict[str, str], config=TEST_CONFIG, seconds: float = 20.0) -> subprocess.CompletedProcess:
    port = free_port()
    full_env = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith("SUPABASE_") and k not in ("AUTH_MAX_TOKEN_BYTES",)
    }
    full_env.update({"ROBYN_SERVER_STORAGE": "memory", **env})
    return subprocess.run(
        [sys.executable, "-m", "robyn_server", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=seconds,
    )


def test_supabase_url_without_usable_keys_is_a_startup_error() -> None:
    with JwksServer([]) as empty:
        result = _start_and_wait({"SUPABASE_URL": empty.url})
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("robyn-server: error:")]
    assert len(errors) == 1, result.stderr
    assert "SUPABASE_JWT_SECRET" in errors[0] and "no usable" in errors[0]


def test_unreachable_jwks_is_a_startup_error() -> None:
    result = _start_and_wait({"SUPABASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert result.returncode != 0
    assert "could not be fetched" in result.stderr


def test_audience_without_key_source_is_a_startup_error() -> None:
    result = _start_and_wait({"SUPABASE_JWT_AUDIENCE": "authenticated"})
    assert result.returncode != 0
    assert "robyn-server: error: SUPABASE_JWT_AUDIENCE is set but neither" in result.stderr


def test_no_auth_configured_runs_open_with_one_warning() -> None:
    proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": "memory"})
    proc.env = {k: v for k, v in proc.env.items() if not k.startswith("SUPABASE_")}
    proc.start()
    try:
        assert httpx.post(f"{proc.url}/threads", json={}).status_code == 200
    finally:
        proc.stop()
    log = proc.log_path.read_text()
    assert log.count("authentication is OFF") == 1, log


def test_expired_by_leeway_boundary_is_refused(http: httpx.Client, jwks: JwksServer) -> None:
    import time

    token = hs256("erin", jwks.issuer, exp=int(time.time()) - 2)
    assert http.get("/threads/search", headers=bearer(token)).status_code in (401,)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"

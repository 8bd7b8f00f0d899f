"""Helpers for the auth tests (no tests here): minting Supabase-style tokens and serving a JWKS on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SECRET = "test-secret-for-hs256-which-is-long-enough-0123456789"
# A server with Supabase HS256 JWT auth on that secret (no JWKS from the environment: None removes a variable).
JWT_ENV: dict[str, str | None] = {"SUPABASE_JWT_SECRET": SECRET, "SUPABASE_URL": None, "SUPABASE_JWKS_URL": None}
AUDIENCE = "authenticated"


class KeyPair:
    def __init__(self, kind: str, kid: str | None = None) -> None:
        self.kind = kind
        self.kid = kid or f"{kind}-{uuid.uuid4().hex[:8]}"
        if kind == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        elif kind == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            raise ValueError(kind)
        self.jwk.update({"kid": self.kid, "alg": kind, "use": "sig"})

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class JwksServer:
    """A tiny HTTP server answering `/auth/v1/.well-known/jwks.json` with the current key set."""

    def __init__(self, keys: list[KeyPair] | None = None) -> None:
        self.keys: list[dict[str, Any]] = [k.jwk for k in keys or []]
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/auth/v1/.well-known/jwks.json":
                    self.send_response(404)
                    self.end_headers()
                    return
                outer.hits += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"


def claims_for(sub: str, issuer: str | None, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "aud": AUDIENCE,
        "role": "authenticated",
        "email": f"{sub}@example.com",
        "iat": now,
        "exp": now + 3600,
    }
    if issuer:
        claims["iss"] = issuer
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def hs256(sub: str, issuer: str | None = None, secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims_for(sub, issuer, **overrides), secret, algorithm="HS256")


def signed(key: KeyPair, sub: str, issuer: str | None = None, kid: str | None = None, **overrides: Any) -> str:
    return jwt.encode(
        claims_for(sub, issuer, **overrides), key.private, algorithm=key.kind, headers={"kid": kid or key.kid}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

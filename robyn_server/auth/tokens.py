"""Local verification of Supabase access tokens (JWTs): HS256 with the project's secret, or asymmetric keys
(RS256, ES256, EdDSA...) from the project's JWKS, cached and refetched when a token names an unknown `kid`.

No call to the auth service per request: a verification costs one signature check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK

logger = logging.getLogger("robyn_server.auth")

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                                   "EdDSA"})  # fmt: skip

TIME_CLAIMS = ("exp", "nbf", "iat")


class TokenError(Exception):
    """A token that must be refused with 401; the message is the client-facing detail."""


@dataclass
class VerifierSettings:
    secret: str | None
    jwks_url: str | None
    audience: list[str] | None  # None: not checked
    issuer: str | None  # None: not checked
    leeway: float = 0.0
    max_token_bytes: int = 8192
    jwks_ttl_seconds: float = 600.0
    jwks_min_refresh_seconds: float = 5.0
    jwks_timeout_seconds: float = 5.0


class JwksCache:
    """Keys by `kid` from a JWKS URL. Fetching happens in a worker thread; one fetch at a time."""

    def __init__(self, url: str, *, ttl: float, min_refresh: float, timeout: float) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.timeout = timeout
        self.keys: dict[str, PyJWK] = {}
        self.fetched_at = 0.0
        self.attempted_at = float("-inf")
        self._lock = threading.Lock()

    def fetch(self) -> int:
        """Fetch now (blocking); returns the number of usable keys. Raises on network or format errors."""
        self.attempted_at = time.monotonic()
        response = httpx.get(self.url, timeout=self.timeout, follow_redirects=True)
        response.raise_for_status()
        data = response.json()
        raw_keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(raw_keys, list):
            raise ValueError("JWKS document has no 'keys' list")
        keys: dict[str, PyJWK] = {}
        for i, raw in enumerate(raw_keys):
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue
            try:
                key = PyJWK(raw)
            except Exception as exc:  # unsupported key types are skipped, not fatal
                logger.warning("skipping JWKS key %s: %s", raw.get("kid", i), exc)
                continue
            if key.algorithm_name in HMAC_ALGORITHMS or key.algorithm_name not in ASYMMETRIC_ALGORITHMS:
                continue  # never accept symmetric keys from a JWKS: that is the HS/RS confusion door
            keys[str(raw.get("kid", ""))] = key
        self.keys = keys
        self.fetched_at = time.monotonic()
        return len(keys)

    def _refresh_blocking(self, reason_kid: str | None) -> None:
        with self._lock:
            now = time.monotonic()
            if reason_kid is not None and reason_kid in self.keys:
                return  # another request refreshed it meanwhile
            if now - self.attempted_at < self.min_refresh:
                return
            try:
                count = self.fetch()
                logger.info("fetched %d signing key(s) from %s", count, self.url)
            except Exception as exc:
                logger.warning("could not refresh the JWKS from %s: %s", self.url, exc)

    async def key_for(self, kid: str | None) -> PyJWK | None:
        stale = time.monotonic() - self.fetched_at > self.ttl
        key = self._lookup(kid)
        if key is None or stale:
            await asyncio.to_thread(self._refresh_blocking, kid if key is None else None)
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> PyJWK | None:
        if kid is not None:
            return self.keys.get(kid)
        if len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return None


class TokenVerifier:
    def __init__(self, settings: VerifierSettings) -> None:
        self.settings = settings
        self.jwks = (
            JwksCache(
                settings.jwks_url,
                ttl=settings.jwks_ttl_seconds,
                min_refresh=settings.jwks_min_refresh_seconds,
                timeout=settings.jwks_timeout_seconds,
            )
            if settings.jwks_url
            else None
        )
        self._options = {"require": ["exp", "sub"], "verify_aud": settings.audience is not None}
        # token -> claims of tokens that verified; `exp` is checked again on every hit
        self._verified: dict[str, dict[str, Any]] = {}
        self.cache_size = 4096

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's verified claims; TokenError (401) for anything wrong with it."""
        settings = self.settings
        if len(token) > settings.max_token_bytes:
            raise TokenError("Token too large")
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < float(cached["exp"]) + settings.leeway:
                return cached
            self._verified.pop(token, None)
            raise TokenError("Token has expired")
        claims = await self._verify_uncached(token)
        if len(self._verified) >= self.cache_size:
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[token] = claims
        return claims

    async def _verify_uncached(self, token: str) -> dict[str, Any]:
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("Invalid token")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenError("Unsupported token algorithm")
        key: Any
        if alg in HMAC_ALGORITHMS:
            if not settings.secret or alg != "HS256":
                raise TokenError("Unsupported token algorithm")
            key = settings.secret
        elif alg in ASYMMETRIC_ALGORITHMS:
            if self.jwks is None:
                raise TokenError("Unsupported token algorithm")
            kid = header.get("kid")
            if kid is not None and not isinstance(kid, str):
                raise TokenError("Invalid token")
            jwk = await self.jwks.key_for(kid)
            if jwk is None:
                raise TokenError("Unknown signing key")
            if jwk.algorithm_name != alg:
                raise TokenError("Unsupported token algorithm")
            key = jwk.key
        else:
            raise TokenError("Unsupported token algorithm")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("Token has expired")
        except jwt.ImmatureSignatureError:
            raise TokenError("Token is not yet valid")
        except jwt.InvalidAudienceError:
            raise TokenError("Invalid token audience")
        except jwt.InvalidIssuerError:
            raise TokenError("Invalid token issuer")
        except jwt.InvalidSignatureError:
            raise TokenError("Invalid token signature")
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"Token is missing the '{exc.claim}' claim")
        except jwt.PyJWTError:
            raise TokenError("Invalid token")
        for name in TIME_CLAIMS:  # PyJWT accepts numeric strings ("exp": "9999999999"); RFC 7519 wants numbers
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TokenError(f"Token claim '{name}' must be a number")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("Token has no subject")
        return claims


def describe_jwks_error(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    return str(exc) or type(exc).__name__

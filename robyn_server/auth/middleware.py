"""The authentication gate: one async request hook that verifies the caller before any route runs.

Modes, from the environment and langgraph.json:
- Supabase JWTs (`SUPABASE_JWT_SECRET` for HS256 and/or `SUPABASE_URL` for the project's JWKS): the bearer
  token is verified locally; without `auth.path` the built-in owner policy (policy.py) authorizes.
- `auth.path` in langgraph.json: its `@auth.authenticate` decides who the caller is (after the JWT check when
  that is on too, and then receiving the verified user as `user`), its `@auth.on...` handlers authorize.
- Neither: the server is open, with one warning at start-up.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph_sdk import Auth
from robyn import Request, Response
from robyn.robyn import Identity

from robyn_server import serde
from robyn_server.auth import context as identity
from robyn_server.auth.api_keys import HEADER as API_KEY_HEADER
from robyn_server.auth.api_keys import ApiKeyStore, store_from_env
from robyn_server.auth.custom import authenticator, has_authorization_handlers, load_auth
from robyn_server.auth.policy import build_default_policy
from robyn_server.auth.tokens import TokenError, TokenVerifier, VerifierSettings, describe_jwks_error
from robyn_server.auth.users import ProxyUser, normalize_auth_result
from robyn_server.config import ConfigError, ServerConfig, env_float

logger = logging.getLogger("robyn_server.auth")

PUBLIC_PATHS = frozenset({"/", "/ok", "/info", "/docs", "/openapi.json", "/playground", "/metrics"})
PUBLIC_PREFIXES = ("/playground/",)
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
JWKS_PATH = "/auth/v1/.well-known/jwks.json"


def is_public(path: str, mount_prefix: str = "") -> bool:
    if mount_prefix and path.startswith(mount_prefix + "/"):
        path = path[len(mount_prefix) :]  # http.mount_prefix: /prefix/docs is as public as /docs
    trimmed = path.rstrip("/") or "/"
    return trimmed in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        headers={"content-type": "application/json", **(headers or {})},
        description=serde.dumps({"detail": detail}),
    )


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def verifier_settings_from_env() -> VerifierSettings | None:
    """The Supabase JWT settings, or None when neither a secret nor a project URL is set.

    `SUPABASE_JWT_SECRET` (HS256), `SUPABASE_URL` (keys at `{url}/auth/v1/.well-known/jwks.json`, or
    `SUPABASE_JWKS_URL`), `SUPABASE_JWT_AUDIENCE` (default `authenticated`, comma-separated, `*` = unchecked),
    `SUPABASE_JWT_ISSUER` (default `{SUPABASE_URL}/auth/v1` when the URL is set, `*` = unchecked),
    `SUPABASE_JWT_LEEWAY_SECONDS`, `AUTH_MAX_TOKEN_BYTES`, `SUPABASE_JWT_VERIFY=false` to switch it off."""
    verify = (_env("SUPABASE_JWT_VERIFY") or "auto").lower()
    if verify in ("0", "false", "no", "off"):
        return None
    secret = _env("SUPABASE_JWT_SECRET")
    url = _env("SUPABASE_URL")
    jwks_url = _env("SUPABASE_JWKS_URL") or (url.rstrip("/") + JWKS_PATH if url else None)
    leftovers = [n for n in ("SUPABASE_JWT_AUDIENCE", "SUPABASE_JWT_ISSUER", "SUPABASE_JWKS_URL") if _env(n)]
    if not secret and not url and not _env("SUPABASE_JWKS_URL"):
        if leftovers or verify in ("1", "true", "yes", "on"):
            raise ConfigError(
                f"{', '.join(leftovers) or 'SUPABASE_JWT_VERIFY'} is set but neither SUPABASE_JWT_SECRET nor "
                "SUPABASE_URL: cannot verify tokens"
            )
        return None
    audience_raw = _env("SUPABASE_JWT_AUDIENCE") or "authenticated"
    audience = None if audience_raw == "*" else [a.strip() for a in audience_raw.split(",") if a.strip()]
    issuer_raw = _env("SUPABASE_JWT_ISSUER") or (url.rstrip("/") + "/auth/v1" if url else None)
    issuer = None if issuer_raw in (None, "*") else issuer_raw
    max_bytes = int(env_float("AUTH_MAX_TOKEN_BYTES", 8192))
    return VerifierSettings(
        secret=secret,
        jwks_url=jwks_url,
        audience=audience,
        issuer=issuer,
        leeway=env_float("SUPABASE_JWT_LEEWAY_SECONDS", 0.0),
        max_token_bytes=max_bytes,
        jwks_ttl_seconds=env_float("SUPABASE_JWKS_TTL_SECONDS", 600.0),
        jwks_min_refresh_seconds=env_float("SUPABASE_JWKS_MIN_REFRESH_SECONDS", 5.0),
    )


@dataclass
class AuthGate:
    """The request hook. `policy` is the `Auth` whose `@auth.on` handlers authorize (None: allow all)."""

    verifier: TokenVerifier | None
    custom: Auth | None
    policy: Auth | None
    route_params: Callable[[str], dict[str, str]] | None = None
    api_keys: ApiKeyStore | None = None
    mount_prefix: str = ""  # http.mount_prefix, set by platform.apply_mount_prefix

    def __post_init__(self) -> None:
        self._authenticate: Callable[..., Any] | None = None
        self._params: tuple[str, ...] = ()
        if self.custom is not None:
            self._authenticate, self._params = authenticator(self.custom)

    @property
    def description(self) -> str:
        parts = []
        if self.verifier is not None:
            kinds = []
            if self.verifier.settings.secret:
                kinds.append("HS256 secret")
            if self.verifier.jwks is not None:
                kinds.append(f"JWKS {self.verifier.jwks.url}")
            parts.append("Supabase JWT (" + ", ".join(kinds) + ")")
        if self.custom is not None:
            parts.append("langgraph_sdk.Auth from auth.path")
        if self.api_keys is not None:
            parts.append(f"API keys ({len(self.api_keys.keys)})")
        return " + ".join(parts)

    async def __call__(self, request: Request) -> Response | None:
        if request.method == "OPTIONS" or is_public(request.url.path, self.mount_prefix):
            identity.set_current_user(None)
            return None
        try:
            user = await self.authenticate(request)
        except _Refusal as refusal:
            identity.set_current_user(None)
            return _json_error(refusal.status, refusal.detail, refusal.headers)
        identity.set_current_user(user)
        request.identity = Identity(claims={"sub": user.identity, "ref": user.ref})
        return None

    async def authenticate(self, request: Request) -> identity.AuthUser:
        if self.api_keys is not None:
            presented = request.headers.get(API_KEY_HEADER)
            if presented is not None:
                return self._api_key_user(presented)
            if self.verifier is None and self._authenticate is None:
                raise _Refusal(401, "Missing API key (X-Api-Key header)")
        authorization = request.headers.get("authorization")
        token = _bearer(authorization)
        claims: dict[str, Any] = {}
        jwt_user: ProxyUser | None = None
        if self.verifier is not None:
            if authorization is None or not authorization.strip():
                raise _Refusal(401, "Missing bearer token", BEARER_CHALLENGE)
            if token is None:
                raise _Refusal(401, "Invalid authorization header: expected 'Bearer <token>'", BEARER_CHALLENGE)
            try:
                claims = await self.verifier.verify(token)
            except TokenError as exc:
                raise _Refusal(401, str(exc), BEARER_CHALLENGE)
            jwt_user = _user_from_claims(claims)
        if self._authenticate is None:
            assert jwt_user is not None
            permissions = _claim_permissions(claims)
            return identity.AuthUser(jwt_user.identity, tuple(permissions), jwt_user, token, claims, _ref())
        kwargs = self._arguments(request, authorization, jwt_user)
        try:
            result = await self._authenticate(**kwargs)
            permissions, user = normalize_auth_result(result)
        except Auth.exceptions.HTTPException as exc:
            status = exc.status_code
            headers = dict(exc.headers) if exc.headers and status not in (401, 403) else None
            raise _Refusal(status, str(exc.detail), headers)
        except Exception as exc:  # a bug in the handler: the router's logged 500 with a request id
            raise RuntimeError("the @auth.authenticate handler failed") from exc
        return identity.AuthUser(user.identity, tuple(permissions), user, token, claims, _ref())

    def _api_key_user(self, presented: str) -> identity.AuthUser:
        """The identity of a configured key; its permissions go through the same policy as a JWT user's."""
        assert self.api_keys is not None
        key = self.api_keys.lookup(presented)
        if key is None:
            raise _Refusal(401, "Invalid API key")
        permissions = list(key.permissions)
        user = ProxyUser({"identity": key.identity, "display_name": key.identity, "permissions": permissions,
                          "auth_method": "api_key", "api_key_name": key.name})  # fmt: skip
        return identity.AuthUser(key.identity, tuple(permissions), user, None, {}, _ref())

    def _arguments(self, request: Request, authorization: str | None, user: ProxyUser | None) -> dict[str, Any]:
        names = self._params
        args: dict[str, Any] = {}
        if not names:
            return args
        path = request.url.path
        header_items = list(request.headers.items())
        query = {k: v[-1] if isinstance(v, list) and v else v for k, v in request.query_params.to_dict().items()}
        for name in names:
            if name == "request":
                args[name] = request
            elif name == "body":
                args[name] = _body(request)
            elif name == "user":
                args[name] = user
            elif name == "path":
                args[name] = path
            elif name == "method":
                args[name] = request.method
            elif name == "scopes":
                args[name] = []
            elif name == "path_params":
                args[name] = self.route_params(path) if self.route_params else {}
            elif name == "query_params":
                args[name] = query
            elif name == "headers":
                args[name] = {k.lower().encode(): v.encode() for k, v in header_items}
            elif name == "authorization":
                args[name] = authorization
            elif name == "scope":
                args[name] = {
                    "type": "http",
                    "method": request.method,
                    "path": path,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in header_items],
                    "query_string": "&".join(f"{k}={v}" for k, v in query.items()).encode(),
                    "path_params": self.route_params(path) if self.route_params else {},
                    "user": user,
                }
        return args


class _Refusal(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def _ref() -> str:
    return uuid.uuid4().hex


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _body(request: Request) -> Any:
    raw = request.body
    if not raw:
        return {}
    try:
        return serde.loads(raw)
    except Exception:
        return {}


def _user_from_claims(claims: dict[str, Any]) -> ProxyUser:
    user: dict[str, Any] = {"identity": claims["sub"]}
    for key in ("email", "phone", "role", "aud", "session_id", "is_anonymous"):
        if key in claims:
            user[key] = claims[key]
    for key in ("app_metadata", "user_metadata"):
        if isinstance(claims.get(key), dict):
            user[key] = claims[key]
    if claims.get("email"):
        user["display_name"] = claims["email"]
    user["permissions"] = _claim_permissions(claims)
    return ProxyUser(user)


def _claim_permissions(claims: dict[str, Any]) -> list[str]:
    value = claims.get("permissions")
    if value is None and isinstance(claims.get("app_metadata"), dict):
        value = claims["app_metadata"].get("permissions")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(p) for p in value]
    return []


def build_gate(config: ServerConfig, route_params: Callable[[str], dict[str, str]] | None = None) -> AuthGate | None:
    """The gate for this configuration; None (and one warning) when no auth is configured at all.

    Raises ConfigError for half configurations: a JWT setting without a key source, a JWKS with no usable
    key and no secret (unless `auth.path` guards the server), an `auth.path` that does not load."""
    auth_conf = config.auth or {}
    path = auth_conf.get("path") if isinstance(auth_conf, dict) else auth_conf
    custom = load_auth(path, config.base_dir) if path else None
    settings = verifier_settings_from_env()
    verifier = TokenVerifier(settings) if settings is not None else None
    if verifier is not None and verifier.jwks is not None:
        try:
            count = verifier.jwks.fetch()
            problem = None if count else "it holds no usable asymmetric signing key"
        except Exception as exc:
            problem = f"it could not be fetched ({describe_jwks_error(exc)})"
        if problem is not None and not verifier.settings.secret:
            message = (
                f"SUPABASE_URL is set but the project's JWKS at {verifier.jwks.url}: {problem}, and "
                "SUPABASE_JWT_SECRET is not set: no way to verify tokens"
            )
            if custom is None:
                raise ConfigError(message)
            logger.warning("%s; relying on auth.path alone", message)
            verifier = None
        elif problem is not None:
            logger.warning("the JWKS at %s: %s; HS256 tokens only until it can be fetched", verifier.jwks.url, problem)
    api_keys = store_from_env()
    if verifier is None and custom is None and api_keys is None:
        logger.warning(
            "authentication is OFF: no SUPABASE_JWT_SECRET, SUPABASE_URL, auth.path or API keys configured; every "
            "request is served without checking who sends it (fine for local development only)"
        )
        return None
    if custom is not None:
        policy: Auth | None = custom if has_authorization_handlers(custom) else None
    else:
        policy = build_default_policy()
    return AuthGate(verifier=verifier, custom=custom, policy=policy, route_params=route_params, api_keys=api_keys)

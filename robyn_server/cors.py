"""CORS the way the reference server answers it (Starlette's `CORSMiddleware` with the reference's defaults).

Defaults: any origin (`*`), no credentials, every method and request header allowed, `x-pagination-total`,
`x-pagination-next` and `content-location` exposed, preflight cached 600 s.

Settings, from weakest to strongest (later layers replace single keys of earlier ones):

1. the defaults above;
2. single environment variables: `CORS_ALLOW_ORIGINS` (comma-separated, the reference's name),
   `CORS_ALLOW_ORIGIN_REGEX`, `CORS_ALLOW_METHODS`, `CORS_ALLOW_HEADERS`, `CORS_EXPOSE_HEADERS` (comma-separated),
   `CORS_ALLOW_CREDENTIALS` (bool), `CORS_MAX_AGE` (seconds), `ALLOW_PRIVATE_NETWORK` (bool, the reference's name);
3. `langgraph.json` `http.cors`: `allow_origins`, `allow_origin_regex`, `allow_methods`, `allow_headers`,
   `expose_headers`, `allow_credentials`, `max_age`, `allow_private_network`;
4. `CORS_CONFIG`: the same object as JSON in the environment (the reference's name).

`allow_credentials`, when no layer sets it, is true exactly when the origins are an explicit list (the reference's
rule for `CORS_ALLOW_ORIGINS`). With credentials on, the request's origin is echoed instead of `*`.

Preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) are answered by a request hook placed
first, before authentication and routing, on every path. A disallowed origin gets no `Access-Control-Allow-Origin`
(preflight: 400 `Disallowed CORS origin`), which the browser rejects; the request itself is served as usual, as
Starlette does. Robyn's own `ALLOW_CORS` is not used: it answers 403 even to plain GETs from unlisted origins.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from robyn import Request, Response

from robyn_server.config import ConfigError

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
SAFELISTED_HEADERS = ("accept", "accept-language", "content-language", "content-type")
DEFAULT_EXPOSE_HEADERS = ("x-pagination-total", "x-pagination-next", "content-location")
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

_KEYS = {
    "allow_origins": list,
    "allow_origin_regex": str,
    "allow_methods": list,
    "allow_headers": list,
    "expose_headers": list,
    "allow_credentials": bool,
    "max_age": int,
    "allow_private_network": bool,
}


@dataclass
class CorsPolicy:
    allow_origins: list[str] = field(default_factory=lambda: ["*"])
    allow_origin_regex: str | None = None
    allow_methods: list[str] = field(default_factory=lambda: ["*"])
    allow_headers: list[str] = field(default_factory=lambda: ["*"])
    expose_headers: list[str] = field(default_factory=lambda: list(DEFAULT_EXPOSE_HEADERS))
    allow_credentials: bool = False
    max_age: int = 600
    allow_private_network: bool = False

    def __post_init__(self) -> None:
        self.allow_all_origins = "*" in self.allow_origins
        if self.allow_all_origins and self.allow_credentials:
            # echoing every origin (even `null`) with credentials lets any page act as the signed-in user
            raise ConfigError(
                "CORS allow_credentials needs an explicit list of allow_origins (or allow_origin_regex), not '*'"
            )
        self.allow_all_headers = "*" in self.allow_headers
        methods = ALL_METHODS if "*" in self.allow_methods else [m.upper() for m in self.allow_methods]
        self.methods = list(dict.fromkeys(methods))
        self.headers = list(dict.fromkeys([*SAFELISTED_HEADERS, *(h.lower() for h in self.allow_headers if h != "*")]))
        try:
            self.origin_regex = re.compile(self.allow_origin_regex) if self.allow_origin_regex else None
        except re.error as exc:
            raise ConfigError(f"CORS allow_origin_regex {self.allow_origin_regex!r} is not a valid regex: {exc}")

    def origin_allowed(self, origin: str) -> bool:
        if self.allow_all_origins:
            return True
        if self.origin_regex is not None and self.origin_regex.fullmatch(origin):
            return True
        return origin in self.allow_origins

    def allow_origin_value(self, origin: str) -> str:
        """`*` for any origin without credentials, else the request's own origin echoed."""
        if self.allow_all_origins and not self.allow_credentials:
            return "*"
        return origin

    # ------------------------------------------------------------------ answers

    def preflight(self, origin: str, method: str, requested_headers: str | None, private_network: bool) -> Response:
        headers: dict[str, str] = {
            "access-control-allow-methods": ", ".join(self.methods),
            "access-control-max-age": str(self.max_age),
            "vary": PREFLIGHT_VARY + (", Access-Control-Request-Private-Network" if private_network else ""),
        }
        failures = []
        if self.origin_allowed(origin):
            headers["access-control-allow-origin"] = self.allow_origin_value(origin)
        else:
            failures.append("origin")
        if method.upper() not in self.methods:
            failures.append("method")
        if requested_headers:
            names = [h.strip().lower() for h in requested_headers.split(",") if h.strip()]
            if self.allow_all_headers:
                headers["access-control-allow-headers"] = requested_headers
            else:
                if any(h not in self.headers for h in names):
                    failures.append("headers")
                headers["access-control-allow-headers"] = ", ".join(self.headers)
        elif not self.allow_all_headers:
            headers["access-control-allow-headers"] = ", ".join(self.headers)
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.allow_private_network:
            headers["access-control-allow-private-network"] = "true"
        if failures:
            headers["content-type"] = "text/plain; charset=utf-8"
            return Response(400, headers, "Disallowed CORS " + ", ".join(failures))
        headers["content-type"] = "text/plain; charset=utf-8"
        return Response(200, headers, "OK")

    def response_headers(self, origin: str) -> dict[str, str]:
        """Headers for an actual (non-preflight) response to a request from `origin`."""
        if not self.origin_allowed(origin):
            return {}
        headers = {"access-control-allow-origin": self.allow_origin_value(origin)}
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            headers["access-control-expose-headers"] = ", ".join(self.expose_headers)
        return headers


# ---------------------------------------------------------------------- settings


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _env_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"environment variable {name} must be true or false, got {value!r}")


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lists = {
        "CORS_ALLOW_ORIGINS": "allow_origins",
        "CORS_ALLOW_METHODS": "allow_methods",
        "CORS_ALLOW_HEADERS": "allow_headers",
        "CORS_EXPOSE_HEADERS": "expose_headers",
    }
    for name, key in lists.items():
        if environ.get(name) is not None:
            out[key] = _split(environ[name])
    if environ.get("CORS_ALLOW_ORIGIN_REGEX"):
        out["allow_origin_regex"] = environ["CORS_ALLOW_ORIGIN_REGEX"]
    for name, key in (
        ("CORS_ALLOW_CREDENTIALS", "allow_credentials"),
        ("ALLOW_PRIVATE_NETWORK", "allow_private_network"),
    ):
        if environ.get(name) is not None:
            out[key] = _env_bool(name, environ[name])
    if environ.get("CORS_MAX_AGE"):
        try:
            out["max_age"] = int(environ["CORS_MAX_AGE"])
        except ValueError:
            raise ConfigError(f"environment variable CORS_MAX_AGE must be an integer, got {environ['CORS_MAX_AGE']!r}")
    return out


def _checked(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        if kind is list:
            if isinstance(value, str):
                value = _split(value)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{key} must be a list of strings")
        elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where}.{key} must be an integer")
        elif kind is not int and not isinstance(value, kind):
            raise ConfigError(f"{where}.{key} must be a {kind.__name__}")
        out[key] = value
    return out


def load_policy(http_config: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> CorsPolicy:
    """The CORS policy from the environment and `langgraph.json` `http.cors` (see the module docstring)."""
    environ = dict(os.environ if environ is None else environ)
    settings = _from_env(environ)
    settings.update(_checked((http_config or {}).get("cors"), "langgraph.json http.cors"))
    if environ.get("CORS_CONFIG"):
        try:
            raw = json.loads(environ["CORS_CONFIG"])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"environment variable CORS_CONFIG is not valid JSON: {exc.msg}")
        settings.update(_checked(raw, "CORS_CONFIG"))
    if "allow_credentials" not in settings:
        settings["allow_credentials"] = "*" not in settings.get("allow_origins", ["*"])
    return CorsPolicy(**settings)


# ---------------------------------------------------------------------- hooks


def _is_preflight(request: Request) -> bool:
    headers = request.headers
    return (
        request.method == "OPTIONS"
        and bool(headers.get("origin"))
        and bool(headers.get("access-control-request-method"))
    )


def install(router: Any, http_config: dict[str, Any] | None = None, policy: CorsPolicy | None = None) -> CorsPolicy:
    """Answer preflights first (before auth and routing) and add CORS headers to every other response."""
    policy = policy or load_policy(http_config)

    async def answer_preflight(request: Request) -> Response | None:
        if not _is_preflight(request):
            return None
        headers = request.headers
        return policy.preflight(
            headers.get("origin") or "",
            headers.get("access-control-request-method") or "",
            headers.get("access-control-request-headers"),
            (headers.get("access-control-request-private-network") or "").lower() == "true",
        )

    def add_headers(request: Request, response: Any) -> None:
        origin = request.headers.get("origin")
        if not origin or _is_preflight(request):
            return
        target = getattr(response, "headers", None)
        if target is None:
            return
        for name, value in policy.response_headers(origin).items():
            if isinstance(target, dict):
                target[name] = value
            else:
                target.set(name, value)

    router.request_hooks.insert(0, answer_preflight)
    router.response_hooks.append(add_headers)
    return policy

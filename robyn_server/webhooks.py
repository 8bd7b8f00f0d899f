"""Webhooks: when a run with `webhook` ends, POST the run (with its status, final values and any error) to it.

The reference's URL policy (`webhooks.url` in langgraph.json, or `LANGGRAPH_WEBHOOKS` as JSON) is checked when
the run or cron is created and again before delivery: `require_https`, `allowed_domains` (exact hosts or
`*.domain`), `allowed_ports`, `max_url_length`; loopback (`disable_loopback`, default true) and private
(`disable_private_ips`, default true here, false in the reference) addresses are refused, after DNS resolution,
unless the host is listed in `allowed_domains` or the flag is false; the call then goes to the checked address
(DNS pinning). Link-local, multicast, reserved and cloud metadata addresses are always refused.
`webhooks.headers` are sent with every call (`${{ env.LG_WEBHOOK_X }}` templates resolved at start-up, limited
to `env_prefix`).

Delivery runs in the background: a timeout per attempt, up to `ROBYN_SERVER_WEBHOOK_ATTEMPTS` attempts on
network errors, timeouts, 429 and 5xx, with exponential backoff and full jitter. With
`ROBYN_SERVER_WEBHOOK_SECRET` set, each call carries `X-Webhook-Timestamp` and
`X-Webhook-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}." + body>`. A failing receiver is only logged:
it never changes the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import random
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from robyn_server import serde
from robyn_server.config import ConfigError, env_float, env_int
from robyn_server.errors import ApiError

logger = logging.getLogger("robyn_server.webhooks")

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
_TEMPLATE = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "host.docker.internal"})
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.amazonaws.com", "metadata", "instance-data"})
_METADATA_IPS = frozenset({"169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"})
_CGN = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True)
class WebhookPolicy:
    require_https: bool = False
    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    max_url_length: int = 4096
    disable_loopback: bool = True
    disable_private_ips: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    attempts: int = 3
    timeout: float = 30.0
    backoff: float = 1.0
    secret: str = field(default="", repr=False)

    def listed(self, host: str) -> bool:
        """Whether `host` is an exact `allowed_domains` entry (which also exempts it from address checks)."""
        return host in {d.lower() for d in self.allowed_domains if not d.startswith("*.")}

    def domain_allowed(self, host: str) -> bool:
        if not self.allowed_domains:
            return True
        bases = [d[2:].lower() for d in self.allowed_domains if d.startswith("*.")]
        return self.listed(host) or any(host.endswith("." + base) for base in bases)


_state: dict[str, Any] = {"policy": WebhookPolicy(), "tasks": set()}


def _render_headers(headers: Any, prefix: str) -> dict[str, str]:
    if not isinstance(headers, dict):
        raise ConfigError("webhooks.headers must be an object of header names to strings")
    rendered: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(value, str):
            raise ConfigError(f"webhooks.headers: the value of {name!r} must be a string")

        def env_value(match: re.Match[str]) -> str:
            expr = match.group(1).strip()
            var = expr[4:] if expr.startswith("env.") else ""
            if not var or "." in var:
                raise ConfigError(f"webhooks.headers: only ${{{{ env.{prefix}NAME }}}} references are allowed")
            if prefix and not var.startswith(prefix):
                raise ConfigError(f"webhooks.headers: environment variable {var!r} must start with {prefix!r}")
            found = os.environ.get(var)
            if found is None:
                raise ConfigError(f"webhooks.headers: environment variable {var!r} is not set")
            return found

        rendered[str(name)] = _TEMPLATE.sub(env_value, value)
    return rendered


def load_policy(webhooks: dict[str, Any] | None, http: dict[str, Any] | None = None) -> WebhookPolicy:
    """The policy from langgraph.json's `webhooks` (`LANGGRAPH_WEBHOOKS` JSON wins); bad values stop start-up."""
    raw_env = os.environ.get("LANGGRAPH_WEBHOOKS")
    if raw_env:
        try:
            webhooks = json.loads(raw_env)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"LANGGRAPH_WEBHOOKS is not valid JSON: {exc.msg}")
    cfg = webhooks or {}
    if not isinstance(cfg, dict):
        raise ConfigError("webhooks must be an object")
    url = cfg.get("url")
    if url is not None and not isinstance(url, dict):
        raise ConfigError("webhooks.url must be an object")
    domains = (url or {}).get("allowed_domains") or []
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise ConfigError("webhooks.url.allowed_domains must be a list of non-empty strings")
    if any("*" in d and not d.startswith("*.") for d in domains):
        raise ConfigError("webhooks.url.allowed_domains: a wildcard is only allowed as a '*.domain' prefix")
    ports = (url or {}).get("allowed_ports") or []
    if not isinstance(ports, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in ports):
        raise ConfigError("webhooks.url.allowed_ports must be a list of port numbers")
    configured = url is not None  # like the reference: an explicit url policy defaults to https and 2048 chars
    policy = url or {}
    return WebhookPolicy(
        require_https=bool(policy.get("require_https", configured)),
        allowed_domains=tuple(domains),
        allowed_ports=tuple(ports),
        max_url_length=int(policy.get("max_url_length", 2048 if configured else 4096)),
        disable_loopback=bool(policy.get("disable_loopback", True)),
        disable_private_ips=bool(policy.get("disable_private_ips", True)),
        headers=_render_headers(cfg.get("headers") or {}, cfg.get("env_prefix", "LG_WEBHOOK_") or ""),
        disabled=bool((http or {}).get("disable_webhooks", False)),
        attempts=max(1, env_int("ROBYN_SERVER_WEBHOOK_ATTEMPTS", 3)),
        timeout=env_float("ROBYN_SERVER_WEBHOOK_TIMEOUT_SECONDS", 30.0),
        backoff=env_float("ROBYN_SERVER_WEBHOOK_BACKOFF_SECONDS", 1.0),
        secret=os.environ.get("ROBYN_SERVER_WEBHOOK_SECRET") or "",
    )


def configure(webhooks: dict[str, Any] | None, http: dict[str, Any] | None = None) -> WebhookPolicy:
    """Load the process-wide policy at start-up (a ConfigError stops the server with one line)."""
    policy = _state["policy"] = load_policy(webhooks, http)
    return policy


def _address_problem(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: WebhookPolicy) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if str(addr) in _METADATA_IPS:
        return "cloud metadata endpoint"
    if addr.is_loopback:
        return "loopback address" if policy.disable_loopback else None
    if addr.is_link_local or addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return "blocked address range"
    if addr.is_private or (isinstance(addr, ipaddress.IPv4Address) and addr in _CGN):
        return "private address" if policy.disable_private_ips else None
    if not addr.is_global:
        return "blocked address range"
    return None


async def check_url(url: str, policy: WebhookPolicy | None = None) -> list[str]:
    """Raise ApiError 422 (the reference's details) when `url` may not receive webhooks; otherwise the vetted
    addresses a host name resolved to (empty for an IP literal or a host listed in `allowed_domains`)."""
    policy = policy or _state["policy"]
    if len(url) > policy.max_url_length:
        raise ApiError(422, "Webhook URL too long")
    if url.startswith("/"):
        raise ApiError(422, "Relative webhook URLs are not supported by this server; use an absolute http(s) URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ApiError(422, f"Webhook host blocked: scheme '{scheme}' not allowed" if scheme else
                       f"Invalid webhook hostname '{parts.hostname or ''}'")  # fmt: skip
    if policy.require_https and scheme != "https":
        raise ApiError(422, "Webhook must use https")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ApiError(422, "Invalid webhook port")
    if policy.allowed_ports and port not in policy.allowed_ports:
        raise ApiError(422, f"Webhook port {port} not allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise ApiError(422, f"Invalid webhook hostname '{host}'")
    if not policy.domain_allowed(host):
        raise ApiError(422, "Webhook domain not allowed")
    if policy.listed(host):
        return []
    if host in _METADATA_HOSTS:
        raise ApiError(422, "Webhook host blocked: cloud metadata endpoint")
    if host.endswith(".svc.cluster.local"):
        raise ApiError(422, "Webhook host blocked: cluster-internal host")
    if host in _LOCAL_NAMES and policy.disable_loopback:
        raise ApiError(422, "Webhook host blocked: localhost address")
    resolved = False
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        resolved = True
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise ApiError(422, "Webhook host blocked: DNS resolution failed")
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for addr in addresses:
        problem = _address_problem(addr, policy)
        if problem is not None:
            raise ApiError(422, f"Webhook host blocked: {problem}")
    return [str(a) for a in addresses] if resolved else []


# ------------------------------------------------------------------------------------------ delivery
def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _retriable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, TimeoutError))


async def deliver(url: str, payload: dict[str, Any], policy: WebhookPolicy | None = None) -> bool:
    """POST `payload` to `url` with retries; True once a receiver answered 2xx/3xx."""
    policy = policy or _state["policy"]
    attempts, timeout, backoff, secret = policy.attempts, policy.timeout, policy.backoff, policy.secret
    try:
        addresses = await check_url(url, policy)
    except ApiError as exc:
        logger.warning("webhook %s not called: %s", url, exc.detail)
        return False
    targets = [_pinned(url, address) for address in addresses] or [_pinned(url, None)]
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as client:
        for attempt in range(1, attempts + 1):
            body = serde.dumps({**payload, "webhook_sent_at": datetime.now(UTC).isoformat()})
            headers = {**policy.headers, "Content-Type": "application/json"}
            if secret:
                stamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = signature(secret, stamp, body)
            try:
                async with asyncio.timeout(timeout):
                    await _post(client, targets, body, headers)
                return True
            except Exception as exc:
                if attempt == attempts or not _retriable(exc):
                    logger.warning("webhook %s failed after %d attempt(s): %s", url, attempt, _describe(exc))
                    return False
                await asyncio.sleep(random.uniform(0, backoff * 2 ** (attempt - 1)))  # full jitter
    return False


async def _post(client: httpx.AsyncClient, targets: list[Pinned], body: bytes, headers: dict[str, str]) -> None:
    """One attempt: the first vetted address that accepts the connection gets the request."""
    for index, (target, host_headers, extensions) in enumerate(targets):
        try:
            response = await client.post(target, content=body, headers={**headers, **host_headers},
                                         extensions=extensions)  # fmt: skip
        except httpx.ConnectError:
            if index == len(targets) - 1:
                raise
            continue
        response.raise_for_status()
        return


Pinned = tuple[httpx.URL, dict[str, str], dict[str, Any]]


def _pinned(url: str, address: str | None) -> Pinned:
    """Connect to an address that was checked, not to whatever the name resolves to next (DNS rebinding):
    the request goes to the IP with the original `Host` header, and TLS verifies the original name (SNI)."""
    original = httpx.URL(url)
    if address is None:
        return original, {}, {}
    target = original.copy_with(host=address)
    extensions = {"sni_hostname": original.host} if original.scheme == "https" else {}
    return target, {"Host": original.netloc.decode("ascii")}, extensions


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def run_payload(run: dict[str, Any], status: str, result: Any, started_at: Any = None) -> dict[str, Any]:
    """The reference's webhook body: the run, its final status, timings, final values and any error."""
    errored = isinstance(result, dict) and "__error__" in result
    payload = {
        **run,
        "status": status,
        "run_started_at": started_at.isoformat() if isinstance(started_at, datetime) else started_at,
        "run_ended_at": datetime.now(UTC).isoformat(),
        "values": None if errored else result,
    }
    if errored:
        payload["error"] = result["__error__"]
    return payload


def started_at(log: Any) -> datetime | None:
    """When a run started: the time of the first event in its log (its `metadata` event), if it has one."""
    entries = getattr(log, "entries", None)
    key = getattr(entries[0], "key", None) if entries else None
    return datetime.fromtimestamp(key[0] / 1000, UTC) if isinstance(key, tuple) and key else None


def notify_run_end(run: dict[str, Any], status: str, result: Any, started_at: Any = None) -> None:
    """Called once when a run ends: deliver its webhook in the background (never awaited by the run)."""
    url = (run.get("kwargs") or {}).get("webhook")
    policy: WebhookPolicy = _state["policy"]
    if not url or policy.disabled:
        return
    task = asyncio.get_running_loop().create_task(deliver(url, run_payload(run, status, result, started_at), policy))
    _state["tasks"].add(task)
    task.add_done_callback(_state["tasks"].discard)

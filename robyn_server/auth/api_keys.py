"""API keys (`X-Api-Key`) for machine-to-machine callers, beside Supabase JWTs and `langgraph_sdk.Auth`.

Keys are configured as SHA-256 hashes, never in clear: `ROBYN_SERVER_API_KEYS` (a JSON array) and/or
`ROBYN_SERVER_API_KEYS_FILE` (a file holding the same array, read again when it changes, so keys are added and
revoked without a restart). Each entry maps a key to an identity and permissions:

    {"name": "ci-2026-12", "identity": "svc-ci", "permissions": ["runs"], "key_sha256": "<64 hex digits>"}

Several entries may share an identity: that is how a key is rotated (add the new one, move clients, remove
the old one). A presented key is hashed and compared with every configured hash in constant time.

    python -m robyn_server.auth.api_keys new --identity svc-ci [--name ci-2026-12] [--permission p ...]

prints `{"key": ..., "entry": ...}`: the fresh key (shown this once) and the entry to configure.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robyn_server.config import ConfigError, env_float

logger = logging.getLogger("robyn_server.auth")

HEADER = "x-api-key"
KEY_PREFIX = "rsk_"
MAX_KEY_BYTES = 512


@dataclass(frozen=True)
class ApiKey:
    name: str
    identity: str
    permissions: tuple[str, ...]
    digest: bytes

    def __repr__(self) -> str:  # the digest stays out of logs too
        return f"ApiKey(name={self.name!r}, identity={self.identity!r})"


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_entries(raw: Any, where: str) -> list[ApiKey]:
    """Entries from decoded JSON; ConfigError naming `where` for anything malformed or a key in clear."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a JSON array of API key entries")
    keys = []
    for index, entry in enumerate(raw):
        label = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: expected an object")
        if "key" in entry:
            raise ConfigError(
                f"{label}: holds a key in clear; store its hash as key_sha256 "
                "(python -m robyn_server.auth.api_keys hash)"
            )
        identity, hexdigest = entry.get("identity"), entry.get("key_sha256")
        if not isinstance(identity, str) or not identity.strip():
            raise ConfigError(f"{label}: 'identity' must be a non-empty string")
        try:
            digest = bytes.fromhex(hexdigest) if isinstance(hexdigest, str) else b""
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ConfigError(f"{label}: 'key_sha256' must be 64 hex digits (the SHA-256 of the key)")
        permissions = entry.get("permissions") or []
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise ConfigError(f"{label}: 'permissions' must be a list of strings")
        name = entry.get("name")
        keys.append(ApiKey(str(name) if name else f"key-{index}", identity.strip(), tuple(permissions), digest))
    return keys


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}")


class ApiKeyStore:
    """The configured keys; the file's entries are reloaded when its modification time changes."""

    def __init__(self, env_keys: list[ApiKey], path: Path | None, reload_seconds: float = 2.0) -> None:
        self.env_keys = env_keys
        self.path = path
        self.reload_seconds = reload_seconds
        self._file_keys: list[ApiKey] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if path is not None:
            self._file_keys = self._read_file()  # errors at start-up stop the server

    def _read_file(self) -> list[ApiKey]:
        assert self.path is not None
        try:
            stat = self.path.stat()
            text = self.path.read_text()
        except OSError as exc:
            raise ConfigError(f"ROBYN_SERVER_API_KEYS_FILE {self.path}: {exc.strerror or exc}")
        self._mtime = stat.st_mtime_ns
        return parse_entries(_load_json(text, f"ROBYN_SERVER_API_KEYS_FILE {self.path}"), str(self.path))

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < self.reload_seconds:
            return
        with self._lock:
            self._checked = now
            try:
                if self.path.stat().st_mtime_ns == self._mtime:
                    return
                self._file_keys = self._read_file()
                logger.warning("API keys reloaded from %s: %d key(s)", self.path, len(self._file_keys))
            except (OSError, ConfigError) as exc:  # a bad edit keeps the last good keys
                logger.error("API keys file not reloaded, keeping the previous keys: %s", exc)

    @property
    def keys(self) -> list[ApiKey]:
        self._refresh()
        return [*self.env_keys, *self._file_keys]

    def lookup(self, presented: str) -> ApiKey | None:
        """The entry of a presented key, or None. Every configured hash is compared, in constant time."""
        if not presented or len(presented) > MAX_KEY_BYTES:
            return None
        digest = digest_of(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def store_from_env() -> ApiKeyStore | None:
    """The key store, or None when no API keys are configured."""
    raw = (os.environ.get("ROBYN_SERVER_API_KEYS") or "").strip()
    path = (os.environ.get("ROBYN_SERVER_API_KEYS_FILE") or "").strip()
    if not raw and not path:
        return None
    env_keys = parse_entries(_load_json(raw, "ROBYN_SERVER_API_KEYS"), "ROBYN_SERVER_API_KEYS") if raw else []
    reload_seconds = env_float("ROBYN_SERVER_API_KEYS_RELOAD_SECONDS", 2.0)
    return ApiKeyStore(env_keys, Path(path).expanduser().resolve() if path else None, reload_seconds)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m robyn_server.auth.api_keys", description="Issue API keys")
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("new", help="make a key; prints it once, and the entry to configure")
    issue.add_argument("--identity", required=True)
    issue.add_argument("--name", default=None)
    issue.add_argument("--permission", action="append", default=[])
    sub.add_parser("hash", help="read a key on stdin, print its key_sha256")
    args = parser.parse_args(argv)
    if args.command == "hash":
        print(hashlib.sha256(sys.stdin.readline().strip().encode()).hexdigest())
        return
    key = new_key()
    entry = {
        "name": args.name or time.strftime("key-%Y%m%d-%H%M%S"),
        "identity": args.identity,
        "permissions": args.permission,
        "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
    }
    # the key is shown this once: the server only ever holds its hash
    print(json.dumps({"key": key, "entry": entry}))


if __name__ == "__main__":
    main()

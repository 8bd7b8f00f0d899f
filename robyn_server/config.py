"""Reading `langgraph.json` the way `langgraph dev` does, plus the server's own settings from the environment."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from robyn_server import gc_tuning

BUNDLED_CONFIG = Path(__file__).resolve().parent / "default_langgraph.json"


class ConfigError(Exception):
    """A configuration problem that must stop the server with a one-line message."""


@dataclass
class GraphSpec:
    """One entry of `graphs`: where the graph lives and how to name it."""

    graph_id: str
    target: str
    description: str | None = None


@dataclass
class ServerConfig:
    """Everything the server reads from `langgraph.json`."""

    path: Path
    graphs: list[GraphSpec]
    dependencies: list[Path]
    env: dict[str, str]
    auth: dict[str, Any] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    checkpointer: dict[str, Any] = field(default_factory=dict)
    webhooks: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def resolve_config_path(explicit: str | None) -> Path:
    """`--config` if given, else `./langgraph.json`, else the bundled tools-agent config."""
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    local = Path.cwd() / "langgraph.json"
    return local.resolve() if local.is_file() else BUNDLED_CONFIG


def load_config(path: Path) -> ServerConfig:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc.msg} at line {exc.lineno}")
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    graphs_raw = raw.get("graphs")
    if not isinstance(graphs_raw, dict) or not graphs_raw:
        raise ConfigError(f"config file {path} has no 'graphs' object")
    graphs = []
    for graph_id, spec in graphs_raw.items():
        if isinstance(spec, dict):
            target, description = spec.get("path"), spec.get("description")
        else:
            target, description = spec, None
        if not isinstance(target, str) or ":" not in target:
            raise ConfigError(f"graph '{graph_id}' in {path}: expected 'file.py:variable' or 'package.module:variable'")
        graphs.append(GraphSpec(graph_id, target, description))
    base = path.parent
    deps = [(base / d).resolve() for d in raw.get("dependencies", []) if isinstance(d, str)]
    env = _load_env(raw.get("env"), base)
    return ServerConfig(
        path=path,
        graphs=graphs,
        dependencies=deps,
        env=env,
        auth=raw.get("auth") or {},
        http=raw.get("http") or {},
        store=raw.get("store") or {},
        checkpointer=raw.get("checkpointer") or {},
        webhooks=raw.get("webhooks") or {},
    )


def _load_env(env: Any, base: Path) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    if isinstance(env, str):
        env_path = (base / env).resolve()
        if not env_path.is_file():
            raise ConfigError(f"env file not found: {env_path}")
        return {k: v for k, v in dotenv_values(env_path).items() if v is not None}
    raise ConfigError("'env' must be an object or a path to an env file")


def apply_config_environment(config: ServerConfig) -> None:
    """Put `dependencies` on sys.path and `env` into the environment (existing variables win)."""
    for dep in reversed(config.dependencies):
        if str(dep) not in sys.path:
            sys.path.insert(0, str(dep))
    # The bundled config lives inside the package: its folder on sys.path would shadow stdlib modules
    # (robyn_server/http.py as `http`); its graph is an installed package.
    if config.path != BUNDLED_CONFIG and str(config.base_dir) not in sys.path:
        sys.path.insert(0, str(config.base_dir))
    for key, value in config.env.items():
        os.environ.setdefault(key, value)


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment; a malformed value is a start-up error, never ignored."""
    value = (os.environ.get(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {value!r}")


def env_float(name: str, default: float) -> float:
    """A number setting from the environment; a malformed value is a start-up error, never ignored."""
    value = (os.environ.get(name) or "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {value!r}")


def _gc_thresholds() -> tuple[int, ...] | None:
    try:
        return gc_tuning.thresholds_from(os.environ.get("ROBYN_SERVER_GC_THRESHOLDS"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass
class Settings:
    """Server knobs read from the environment (names follow the reference server where one exists)."""

    max_body_bytes: int
    heartbeat_seconds: float
    max_concurrent_runs: int
    resumable_stream_ttl_seconds: float
    run_timeout_seconds: float
    max_attempts: int = 3
    shutdown_grace_seconds: float = 30.0
    redis_url: str | None = None
    gc_thresholds: tuple[int, ...] | None = None  # None: the interpreter's own (robyn_server.gc_tuning)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            max_body_bytes=env_int("HTTP_MAX_REQUEST_BODY_BYTES", 300 * 1024 * 1024),
            heartbeat_seconds=env_float("SSE_HEARTBEAT_SECONDS", 5.0),
            max_concurrent_runs=env_int("N_JOBS_PER_WORKER", 1024),
            resumable_stream_ttl_seconds=env_float("RESUMABLE_STREAM_TTL_SECONDS", 120.0),
            run_timeout_seconds=env_float("BG_JOB_TIMEOUT_SECS", 86400.0),
            max_attempts=max(1, env_int("BG_JOB_MAX_RETRIES", 3)),
            shutdown_grace_seconds=env_float("ROBYN_SERVER_SHUTDOWN_GRACE_SECONDS", 30.0),
            redis_url=(os.environ.get("REDIS_URL") or "").strip() or None,
            gc_thresholds=_gc_thresholds(),
        )

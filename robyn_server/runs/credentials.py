"""Credentials a run needs (the caller's bearer token) reach the graph at execution time only.

The token is never part of the stored run: `hold()` takes it out of the configurable that is stored and keeps it
in a ContextVar of the request that creates the run. The run manager creates the run's task from a copy of
that context, so `execution_config()` (called where the run starts) puts it back into the config handed to the
graph factory and the graph. LangGraph copies string `configurable` values into checkpoint metadata; the keys
below are added to its exclusion list, and stream payloads that carry a config lose them in `redact()`.

A run executed by another process than the one whose request created it (`--role worker`, replicas) asks for
the credentials over the bus when it starts: the creating process, which holds them in memory, answers over
Redis pub/sub (with none when it holds none); nothing is written to a Redis key.
A run started without the creating request's context and with its creator gone (recovered after a crash)
runs without the token.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.base import EXCLUDED_METADATA_KEYS

# `configurable` keys that hold credentials (Open Agent Platform's name for the caller's Supabase token).
TOKEN_KEY = "x-supabase-access-token"
CREDENTIAL_KEYS = frozenset({TOKEN_KEY})

# LangGraph's savers copy `configurable` strings into checkpoint metadata except for the keys in this set
# (langgraph.checkpoint.base.get_checkpoint_metadata reads it at call time), so checkpoints never hold them.
EXCLUDED_METADATA_KEYS.update(CREDENTIAL_KEYS)

_held: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("robyn_server_run_credentials")


def hold(configurable: dict[str, Any], token: str | None) -> None:
    """Remove credential keys from `configurable` (the stored copy) and keep them for the run's execution.

    `token` is the authenticated caller's token; it wins over one the client put in the configurable."""
    held = {key: configurable.pop(key) for key in CREDENTIAL_KEYS & configurable.keys()}
    if token is not None:
        held[TOKEN_KEY] = token
    _held.set({k: v for k, v in held.items() if v is not None} or None)


def held_in(context: contextvars.Context) -> dict[str, str]:
    """The credentials a creating request's context holds (to hand to the process executing its run)."""
    return context.get(_held) or {}


def put_back(context: contextvars.Context, held: dict[str, str]) -> None:
    """Give a run's execution context the credentials fetched from the process that created the run."""
    context.run(_held.set, dict(held))


def execution_config(config: dict[str, Any]) -> dict[str, Any]:
    """The stored run config with the held credentials put back, for the graph (never stored)."""
    held = _held.get(None)
    if not held:
        return config
    return {**config, "configurable": {**(config.get("configurable") or {}), **held}}


def redact(config: Any) -> Any:
    """A config (as found in debug/checkpoint stream payloads) without credential keys."""
    if not isinstance(config, Mapping):
        return config
    configurable = config.get("configurable")
    if not isinstance(configurable, Mapping) or not (CREDENTIAL_KEYS & configurable.keys()):
        return config
    return {**config, "configurable": {k: v for k, v in configurable.items() if k not in CREDENTIAL_KEYS}}

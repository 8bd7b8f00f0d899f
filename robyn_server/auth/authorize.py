"""What route handlers call to authorize: run the `@auth.on` handler for (resource, action), then apply the
filter it returned to the records involved. With no auth configured every call is a cheap no-op."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from robyn_server.auth import context as identity
from robyn_server.auth.custom import run_handler
from robyn_server.auth.filters import matches, merge_metadata
from robyn_server.errors import ApiError

logger = logging.getLogger("robyn_server.auth")

_state: dict[str, Any] = {"gate": None}
SEARCH_ALL = 1_000_000_000


def install_gate(gate: Any) -> None:
    """Make `gate` (an AuthGate) the one whose policy every route consults in this process."""
    _state["gate"] = gate


def auth_enabled() -> bool:
    return _state["gate"] is not None


def request_user(req: Any = None) -> identity.AuthUser:
    """The authenticated caller; with `req` (an ApiRequest) also checks that the identity in this context is
    the one the middleware attached to that very request, failing closed otherwise."""
    user = identity.get_current_user()
    if user is None:
        raise ApiError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    if req is not None:
        attached = getattr(req.raw, "identity", None)
        ref = attached.claims.get("ref") if attached is not None else None
        if ref != user.ref:
            raise RuntimeError(f"identity in context does not belong to this request ({req.method} {req.path})")
    return user


async def authorize(req: Any, resource: str, action: str, value: dict[str, Any]) -> dict[str, Any] | None:
    """Run the policy's handler for (resource, action) on `value` (which it may change). Returns the filter to
    apply (None: no filter); raises ApiError 403/401 when refused. No-op when auth is off."""
    gate = _state["gate"]
    if gate is None:
        return None
    user = request_user(req)
    if gate.policy is None:
        return None
    return await run_handler(gate.policy, resource, action, user.user, list(user.permissions), value)


def visible(record: dict[str, Any] | None, filters: dict[str, Any] | None) -> bool:
    """Whether a fetched record exists and passes the filter: callers answer 404 exactly as for a missing one."""
    return record is not None and matches(record.get("metadata"), filters)


async def filtered_search(
    search: Callable[..., Awaitable[tuple[list[dict[str, Any]], int]]],
    filters: dict[str, Any] | None,
    *,
    metadata: dict[str, Any] | None,
    limit: int,
    offset: int,
    **kwargs: Any,
) -> tuple[list[dict[str, Any]], int]:
    """A storage search (`thread_search`, `assistant_search`) restricted by an auth filter: pushed down into
    the metadata containment when it can be, else matched here over all candidates."""
    merged, residual = merge_metadata(metadata, filters)
    if not residual:
        return await search(metadata=merged, limit=limit, offset=offset, **kwargs)
    items, _ = await search(metadata=merged, limit=SEARCH_ALL, offset=0, **kwargs)
    kept = [item for item in items if matches(item.get("metadata"), filters)]
    return kept[offset : offset + limit], len(kept)


def store_filter(query: dict[str, Any] | None, filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """A store search filter combined with an auth filter (None when they contradict: nothing can match)."""
    if not filters:
        return query
    merged = dict(query or {})
    for key, value in filters.items():
        if key in merged and merged[key] != value:
            return None
        merged[key] = value
    return merged

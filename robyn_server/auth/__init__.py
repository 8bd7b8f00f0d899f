"""Authentication and per-user isolation: Supabase JWTs verified locally, `langgraph_sdk.Auth` handlers from
`auth.path`, and the request-scoped identity API.

    from robyn_server.auth import get_current_user
    user = get_current_user()   # AuthUser(identity, permissions, user, token, claims) or None

works in route handlers, in SSE bodies wrapped with `bind_iterator`, in graph nodes and in tools (async, and
sync ones run by LangChain in worker threads). `bind(fn)` carries the identity into threads you start yourself.
"""

from __future__ import annotations

from robyn_server.auth.context import (
    AuthUser,
    bind,
    bind_iterator,
    current_identity,
    get_current_user,
    require_current_user,
    user_config,
)

__all__ = [
    "AuthUser",
    "bind",
    "bind_iterator",
    "current_identity",
    "get_current_user",
    "require_current_user",
    "user_config",
]

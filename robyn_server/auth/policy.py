"""The built-in authorization policy used with Supabase JWTs when langgraph.json names no `auth.path`:
every assistant, thread (and so its runs) and cron is stamped with `metadata.owner` and visible to its owner only,
and the store is scoped to namespaces that start with the user's id. Assistants created by the server for
each graph (`metadata.created_by == "system"`) stay readable by everyone and writable by no one."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

OWNER_KEY = "owner"


def build_default_policy() -> Auth:
    auth = Auth()

    def own(ctx: Auth.types.AuthContext) -> dict[str, Any]:
        return {OWNER_KEY: ctx.user.identity}

    @auth.on.threads.create
    @auth.on.threads.create_run
    @auth.on.assistants.create
    @auth.on.crons.create
    async def stamp_owner(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
        metadata = value.get("metadata")
        if not isinstance(metadata, dict):
            metadata = value["metadata"] = {}
        metadata[OWNER_KEY] = ctx.user.identity
        return own(ctx)

    @auth.on.threads.update
    @auth.on.assistants.update
    @auth.on.crons.update
    async def keep_owner(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
        metadata = value.get("metadata")
        if isinstance(metadata, dict):  # an update cannot hand the resource to someone else
            metadata[OWNER_KEY] = ctx.user.identity
        return own(ctx)

    @auth.on.threads
    @auth.on.crons
    @auth.on.assistants.delete
    async def owner_only(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
        return own(ctx)

    @auth.on.assistants.read
    @auth.on.assistants.search
    async def owner_or_system(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
        return {"$or": [own(ctx), {"created_by": "system"}]}

    @auth.on.store
    async def own_namespace(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
        namespace = tuple(value.get("namespace") or ())
        if ctx.action in ("search", "list_namespaces") and not namespace:
            value["namespace"] = (ctx.user.identity,)
            return None
        if namespace[:1] != (ctx.user.identity,):
            # 404 like every other user's resource; whether such items exist is never confirmed
            raise Auth.exceptions.HTTPException(status_code=404, detail="Not Found")
        return None

    @auth.on
    async def deny_everything_else(ctx: Auth.types.AuthContext, value: Any) -> bool:
        return False

    return auth

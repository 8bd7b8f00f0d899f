"""Bearer token == user identity ("Bearer bad" and none are refused with 401); threads belong to their creator."""

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    if not authorization or not authorization.startswith("Bearer ") or authorization == "Bearer bad":
        raise Auth.exceptions.HTTPException(status_code=401, detail="missing or bad bearer token")
    return {"identity": authorization.split(" ", 1)[1], "permissions": ["read", "write"]}


@auth.on.threads.create
async def on_thread_create(ctx: Auth.types.AuthContext, value: dict):
    value.setdefault("metadata", {})["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.threads.create_run
async def on_create_run(ctx: Auth.types.AuthContext, value: dict):
    value.setdefault("metadata", {})["owner"] = ctx.user.identity  # seeds a thread the run creates
    return {"owner": ctx.user.identity}


@auth.on.threads
async def on_threads(ctx: Auth.types.AuthContext, value: dict):
    return {"owner": ctx.user.identity}

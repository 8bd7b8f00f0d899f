"""Bearer token == user identity; anything else is refused with 401."""

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    if not authorization or not authorization.startswith("Bearer ") or authorization == "Bearer bad":
        raise Auth.exceptions.HTTPException(status_code=401, detail="missing or bad bearer token")
    return {"identity": authorization.split(" ", 1)[1], "permissions": ["read", "write"]}

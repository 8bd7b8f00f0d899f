"""`langgraph_sdk.Auth` support: load `auth.path` from langgraph.json, call `@auth.authenticate` with the
parameters it names, and dispatch `@auth.on...` handlers with the reference server's precedence."""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph_sdk import Auth

from robyn_server.config import ConfigError
from robyn_server.errors import ApiError

logger = logging.getLogger("robyn_server.auth")

SUPPORTED_PARAMETERS = (
    "request", "body", "user", "path", "method", "scopes", "path_params", "query_params", "headers",
    "authorization", "scope",
)  # fmt: skip


def load_auth(path: str, base_dir: Path) -> Auth:
    """The `Auth` object named by `./file.py:name` (relative to langgraph.json) or `package.module:name`."""
    if ":" not in path:
        raise ConfigError(f"auth.path {path!r}: expected './file.py:name' or 'package.module:name'")
    module_name, attr = path.rsplit(":", 1)
    try:
        if "/" in module_name or module_name.endswith(".py"):
            file = (base_dir / module_name).resolve()
            if not file.is_file():
                raise ConfigError(f"auth.path: file not found: {file}")
            modname = f"robyn_server_auth_{abs(hash(str(file)))}"
            spec = importlib.util.spec_from_file_location(modname, file)
            if spec is None or spec.loader is None:
                raise ConfigError(f"auth.path: cannot load {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"auth.path {path!r} failed to import: {type(exc).__name__}: {exc}")
    auth = getattr(module, attr, None)
    if auth is None:
        raise ConfigError(f"auth.path {path!r}: no '{attr}' in {module_name}")
    if not isinstance(auth, Auth):
        raise ConfigError(f"auth.path {path!r}: expected a langgraph_sdk.Auth instance, got {type(auth).__name__}")
    return auth


def parameter_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The parameters `fn` takes among the supported ones; unsupported required parameters are an error."""
    signature = inspect.signature(fn)
    unsupported = [
        name
        for name, p in signature.parameters.items()
        if name not in SUPPORTED_PARAMETERS and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if unsupported:
        raise ConfigError(
            f"@auth.authenticate handler has unsupported required parameters: {', '.join(unsupported)} "
            f"(supported: {', '.join(SUPPORTED_PARAMETERS)})"
        )
    return tuple(name for name in signature.parameters if name in SUPPORTED_PARAMETERS)


def authenticator(auth: Auth) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """The `@auth.authenticate` handler as an async callable, and the parameter names it wants."""
    fn = auth._authenticate_handler
    if fn is None:
        raise ConfigError("auth.path: the Auth object has no @auth.authenticate handler")
    names = parameter_names(fn)
    if inspect.iscoroutinefunction(fn):
        return fn, names

    async def run_sync(**kwargs: Any) -> Any:
        # to_thread copies the context, so a sync authenticate sees the request's context as well
        return await asyncio.to_thread(functools.partial(fn, **kwargs))

    return run_sync, names


def find_handler(auth: Auth, resource: str, action: str) -> Callable[..., Any] | None:
    """The most specific handler: (resource, action), (resource, *), (*, action), (*, *), then `@auth.on`."""
    for key in ((resource, action), (resource, "*"), ("*", action), ("*", "*")):
        handlers = auth._handlers.get(key)
        if handlers:
            return handlers[-1]
    if auth._global_handlers:
        return auth._global_handlers[-1]
    return None


def has_authorization_handlers(auth: Auth) -> bool:
    return bool(auth._handlers or auth._global_handlers)


async def run_handler(
    auth: Auth, resource: str, action: str, user: Any, permissions: list[str], value: Any
) -> dict[str, Any] | None:
    """Run the handler for (resource, action): None to go on unfiltered, a filter dict, or an ApiError."""
    handler = find_handler(auth, resource, action)
    if handler is None:
        return None
    ctx = Auth.types.AuthContext(user=user, permissions=permissions, resource=resource, action=action)  # type: ignore[arg-type]
    try:
        result = handler(ctx=ctx, value=value)
        if inspect.isawaitable(result):
            result = await result
    except Auth.exceptions.HTTPException as exc:
        raise ApiError(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)
    except AssertionError as exc:
        raise ApiError(403, str(exc))
    if result is None or result is True:
        return None
    if result is False:
        raise ApiError(403, "Forbidden")
    if not isinstance(result, dict):
        raise ApiError(
            500,
            "Auth handler returned invalid result. Expected filter dict, None, or boolean. "
            f"Got {type(result)} instead.",
        )
    return result

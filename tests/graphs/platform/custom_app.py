"""The `http.app` of the platform test config: a Starlette app with plain, streamed, authenticated and shadowing
routes, its own middleware and a lifespan."""

from __future__ import annotations

import asyncio
import contextlib

import factory_graphs
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from robyn_server.auth import get_current_user

STATE = {"started": False}
RELEASE = asyncio.Event()


async def hello(request: Request) -> JSONResponse:
    """Say hello."""
    return JSONResponse({"hello": "world", "lifespan_started": STATE["started"]})


async def whoami(request: Request) -> JSONResponse:
    """The caller as the server authenticated it."""
    current = get_current_user()
    return JSONResponse(
        {
            "identity": request.user.identity,
            "scopes": list(request.auth.scopes),
            "current_user": current.identity if current else None,
        }
    )


async def echo(request: Request) -> JSONResponse:
    """Echo the body, path and query back."""
    body = await request.json()
    return JSONResponse(
        {"name": request.path_params["name"], "body": body, "query": request.query_params.getlist("q")},
        status_code=201,
        headers={"x-echo": "yes"},
    )


async def stream(request: Request) -> StreamingResponse:
    """One chunk now, the rest once /custom/release is called: only a real stream lets the client see the first."""

    async def chunks():
        RELEASE.clear()
        yield "first\n"
        await RELEASE.wait()
        yield "second\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def release(request: Request) -> JSONResponse:
    """Let the open stream finish."""
    RELEASE.set()
    return JSONResponse({"released": True})


async def factory_calls(request: Request) -> JSONResponse:
    """Every graph factory entry and exit so far."""
    return JSONResponse(factory_graphs.CALLS)


async def info(request: Request) -> JSONResponse:
    """Shadows the built-in /info."""
    return JSONResponse({"custom_info": True})


async def ok(request: Request) -> JSONResponse:
    """Cannot shadow the built-in /ok (nor /docs)."""
    return JSONResponse({"custom_ok": True})


class TagMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers["x-custom-middleware"] = "1"
        return response


@contextlib.asynccontextmanager
async def lifespan(app):
    STATE["started"] = True
    yield


app = Starlette(
    routes=[
        Route("/custom/hello", hello),
        Route("/custom/whoami", whoami),
        Route("/custom/echo/{name}", echo, methods=["POST"]),
        Route("/custom/stream", stream),
        Route("/custom/release", release, methods=["POST"]),
        Route("/custom/factory-calls", factory_calls),
        Route("/info", info),
        Route("/ok", ok),
        Route("/docs", ok),
    ],
    middleware=[Middleware(TagMiddleware)],
    lifespan=lifespan,
)

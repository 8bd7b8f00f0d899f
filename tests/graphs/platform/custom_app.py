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
    """Three chunks, sent one at a time."""

    async def chunks():
        for i in range(3):
            yield f"chunk {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/plain")


async def factory_calls(request: Request) -> JSONResponse:
    """Every graph factory entry and exit so far."""
    return JSONResponse(factory_graphs.CALLS)


async def info(request: Request) -> JSONResponse:
    """Shadows the built-in /info."""
    return JSONResponse({"custom_info": True})


async def ok(request: Request) -> JSONResponse:
    """Cannot shadow the built-in /ok."""
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
        Route("/custom/factory-calls", factory_calls),
        Route("/info", info),
        Route("/ok", ok),
    ],
    middleware=[Middleware(TagMiddleware)],
    lifespan=lifespan,
)

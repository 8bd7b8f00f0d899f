"""`http.app` in langgraph.json: the user's Starlette/FastAPI app answers its own paths on this Robyn server.

A small ASGI bridge: a request whose path one of the app's routes matches is turned into an ASGI `http` scope and
handed to the whole app (its middleware included); the response comes back as a plain Robyn response, or as a
streamed one when the app sends its body in several parts. Like the reference, the app's routes come before the
built-in ones (they may shadow them), except `/ok`, `/metrics`, `/docs` and `/openapi.json`.

With `http.enable_custom_route_auth` the server's authentication runs for these routes too, as an ASGI
middleware placed after the app's own middleware (`http.middleware_order: "middleware_first"`, the default) or
before it (`"auth_first"`); the app then reads the caller as `request.user` / `request.auth`, and
`robyn_server.auth.get_current_user()` works in its handlers. The app's routes are merged into `/openapi.json`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import queue
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from robyn import Headers, Request, Response
from robyn.responses import StreamingResponse

from robyn_server import serde
from robyn_server.config import ConfigError

logger = logging.getLogger("robyn_server.custom_app")

UNSHADOWABLE = frozenset({"/ok", "/metrics", "/docs", "/openapi.json"})
_BODY_KEY = "robyn_server.body"
_END = object()


def load_app(target: str, base_dir: Path) -> Any:
    """Import `./file.py:app` (relative to the config) or `package.module:app`; it must be a Starlette app."""
    from starlette.applications import Starlette

    module_ref, _, name = target.rpartition(":")
    if not module_ref or not name:
        raise ConfigError(f"http.app {target!r}: expected 'file.py:variable' or 'package.module:variable'")
    try:
        if module_ref.endswith(".py") or "/" in module_ref:
            path = (base_dir / module_ref).resolve()
            if not path.is_file():
                raise ConfigError(f"http.app file not found: {path}")
            spec = importlib.util.spec_from_file_location(f"_robyn_custom_app_{abs(hash(str(path)))}", path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"http.app: cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_ref)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"http.app: import of {module_ref} failed: {type(exc).__name__}: {exc}") from exc
    app = getattr(module, name, None)
    if app is None:
        raise ConfigError(f"http.app: variable {name!r} not found in {module_ref}")
    if not isinstance(app, Starlette):
        raise ConfigError(f"http.app: {target} is a {type(app).__name__}, expected a Starlette or FastAPI app")
    return app


class _ScopeRequest:
    """What the auth gate reads of a request, taken from an ASGI scope (after the app's middleware ran)."""

    class _Url:
        def __init__(self, path: str) -> None:
            self.path = path

    class _Query:
        def __init__(self, pairs: list[tuple[str, str]]) -> None:
            self._pairs = pairs

        def to_dict(self) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for key, value in self._pairs:
                out.setdefault(key, []).append(value)
            return out

    class _Headers:
        def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
            self._items = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]

        def get(self, name: str, default: str | None = None) -> str | None:
            name = name.lower()
            return next((v for k, v in self._items if k == name), default)

        def items(self) -> list[tuple[str, str]]:
            return list(self._items)

    def __init__(self, scope: dict[str, Any]) -> None:
        from urllib.parse import parse_qsl

        self.method = scope["method"]
        self.url = self._Url(scope["path"])
        self.headers = self._Headers(scope.get("headers") or [])
        self.query_params = self._Query(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        self.body = scope.get(_BODY_KEY, b"")


class AuthMiddleware:
    """The server's authentication as ASGI middleware around (or inside) the user app's own middleware."""

    def __init__(self, app: Any, gate: Any) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.authentication import AuthCredentials

        from robyn_server.auth import context as identity
        from robyn_server.auth.middleware import _Refusal, is_public

        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or is_public(scope["path"], scope.get("root_path", ""))
        ):
            await self.app(scope, receive, send)
            return
        try:
            user = await self.gate.authenticate(_ScopeRequest(scope))
        except _Refusal as refusal:
            headers = [(b"content-type", b"application/json")]
            headers += [(k.lower().encode(), v.encode()) for k, v in (refusal.headers or {}).items()]
            await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
            await send({"type": "http.response.body", "body": serde.dumps({"detail": refusal.detail})})
            return
        identity.set_current_user(user)
        scope["user"] = user.user
        scope["auth"] = AuthCredentials(list(user.permissions))
        await self.app(scope, receive, send)


class CustomApp:
    """The request hook serving the user app's routes."""

    def __init__(self, app: Any, *, gate: Any = None, middleware_order: str = "middleware_first") -> None:
        from starlette.middleware import Middleware

        self.app = app
        if gate is not None:
            own = list(app.user_middleware)
            auth = [Middleware(AuthMiddleware, gate=gate)]
            app.user_middleware = auth + own if middleware_order == "auth_first" else own + auth
            app.middleware_stack = None  # rebuilt with the auth middleware on the next call
        self._lifespan: asyncio.Task[None] | None = None
        self._routed: list[Any] = []  # the Robyn routes registered for the app's plain routes
        self.mount_prefix = ""  # http.mount_prefix: the app sees it as its root_path

    def serves(self, method: str, path: str) -> bool:
        from starlette.routing import Match

        prefix = self.mount_prefix
        if prefix:
            if not path.startswith(prefix + "/"):
                return False
            path = path[len(prefix) :]
        if path in UNSHADOWABLE:
            return False
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}
        return any(route.matches(scope)[0] != Match.NONE for route in self.app.routes)

    def register_routes(self, router: Any) -> None:
        """Give each plain route of the app (no path converter, not shadowing a built-in route) a Robyn route, so
        its responses can stream: Robyn streams only from route handlers, not from middleware."""
        from starlette.routing import Route

        builtin = list(router.routes)
        for route in self.app.routes:
            if not isinstance(route, Route) or ":" in route.path or route.path in UNSHADOWABLE:
                continue
            robyn_path = re.sub(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}", r":\1", route.path)
            sample = re.sub(r"\{[^}]+\}", "x", route.path)
            if any(r.regex.match(sample) for r in builtin):
                continue  # shadows a built-in route: answered by the request hook instead
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                router.add(method, robyn_path, self._route_handler, tags=["custom"])
                self._routed.append(router.routes[-1])

    async def _route_handler(self, req: Any) -> Any:
        return await self.handle(req.raw, stream=True)

    async def __call__(self, request: Request) -> Any:
        """The request hook: the request itself (go on to the app's Robyn route, past the server's auth hook),
        a buffered response (a route Robyn cannot serve directly), or None (not the app's path)."""
        method, path = request.method, request.url.path
        if method == "OPTIONS" or not self.serves(method, path):
            return None
        if any(r.method == method and r.regex.match(path) for r in self._routed):
            return request
        return await self.handle(request, stream=False)

    async def handle(self, request: Request, *, stream: bool) -> Any:
        return await call_asgi(self.app, request, stream=stream, root_path=self.mount_prefix)

    def openapi(self, document: dict[str, Any]) -> None:
        """Merge the app's routes into the server's OpenAPI document (the app's operations win on conflicts)."""
        spec = app_openapi(self.app)
        paths = document.setdefault("paths", {})
        for path, operations in (spec.get("paths") or {}).items():
            paths.setdefault(path, {}).update(operations)
        schemas = (spec.get("components") or {}).get("schemas") or {}
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)

    async def start_lifespan(self) -> None:
        """Run the app's lifespan startup (its shutdown half runs only if Robyn ever calls the shutdown hook)."""
        started = asyncio.get_running_loop().create_future()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def receive() -> dict[str, Any]:
            return await inbox.get()

        async def send(message: dict[str, Any]) -> None:
            kind = message["type"]
            if kind.startswith("lifespan.startup") and not started.done():
                if kind.endswith("failed"):
                    reason = message.get("message") or "no reason given"
                    started.set_exception(RuntimeError(f"http.app lifespan startup failed: {reason}"))
                else:
                    started.set_result(None)

        async def run() -> None:
            try:
                await self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(RuntimeError(f"http.app lifespan startup failed: {exc}"))

        self._lifespan = asyncio.get_running_loop().create_task(run())
        await started


async def call_asgi(app: Any, request: Request, *, stream: bool, root_path: str = "") -> Any:
    """Serve one Robyn request with an ASGI app: a Robyn Response, or a StreamingResponse fed as the app sends
    (`stream=True`, only from a route handler: Robyn middleware cannot stream)."""
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    scope = _scope(request, body, root_path)
    loop = asyncio.get_running_loop()
    messages: asyncio.Queue[Any] = asyncio.Queue()
    disconnected = asyncio.Event()
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await messages.put(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except Exception:
            logger.exception("http.app failed on %s %s", request.method, request.url.path)
            await messages.put(None)
        finally:
            await messages.put(_END)

    task = loop.create_task(run())
    start = await messages.get()
    if start is None or start is _END or start.get("type") != "http.response.start":
        task.cancel()
        return _json(500, {"detail": "Internal Server Error"})
    status = int(start["status"])
    headers = Headers({})
    content_type = "application/octet-stream"
    for key, value in start.get("headers") or []:
        name, text = key.decode("latin-1"), value.decode("latin-1")
        if name.lower() == "content-type":
            content_type = text
        headers.append(name, text)

    async def next_chunk() -> bytes | None:
        """The next body bytes; None once the body is complete (or the app failed)."""
        while True:
            message = await messages.get()
            if message is None or message is _END:
                return None
            if message.get("type") == "http.response.body":
                chunk = message.get("body", b"")
                if not message.get("more_body"):
                    await messages.put(_END)
                if chunk:
                    return chunk

    if not stream:
        parts = []
        while (part := await next_chunk()) is not None:
            parts.append(part)
        disconnected.set()  # the response is complete: an app still listening for the client is told it left
        return Response(status_code=status, headers=headers, description=b"".join(parts))
    # Robyn pulls the body from its own thread: the loop feeds a thread-safe queue
    chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()

    async def pump() -> None:
        try:
            while (part := await next_chunk()) is not None:
                chunks.put(part)
        finally:
            chunks.put(_END)

    pump_task = loop.create_task(pump())

    def body_iter() -> Iterator[bytes]:
        try:
            while (item := chunks.get()) is not _END:
                yield item
        finally:
            loop.call_soon_threadsafe(disconnected.set)
            loop.call_soon_threadsafe(pump_task.cancel)

    return StreamingResponse(content=body_iter(), status_code=status, headers=headers, media_type=content_type)


def _scope(request: Request, body: bytes, root_path: str = "") -> dict[str, Any]:
    path = request.url.path
    query = urlencode(list(request.query_params.multi_items()) if request.query_params else [])
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
    host = request.url.host or "127.0.0.1"
    hostname, _, port = host.partition(":")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.url.scheme or "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "client": (request.ip_addr or "127.0.0.1", 0),
        "server": (hostname, int(port) if port.isdigit() else 80),
        "state": {},
        _BODY_KEY: body,
    }


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, headers={"content-type": "application/json"}, description=serde.dumps(body))


def app_openapi(app: Any) -> dict[str, Any]:
    """The app's own OpenAPI document: FastAPI's, else one operation per Starlette route (YAML docstrings, as
    Starlette's SchemaGenerator reads them, add their details)."""
    openapi = getattr(app, "openapi", None)
    if callable(openapi):
        return openapi()
    from starlette.routing import Route
    from starlette.schemas import SchemaGenerator

    generated = SchemaGenerator({"openapi": "3.1.0", "info": {"title": "custom", "version": "0"}})
    try:
        spec = generated.get_schema(routes=app.routes)
    except Exception:
        spec = {"paths": {}}
    paths = spec.setdefault("paths", {})
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        summary = ((route.endpoint.__doc__ or "").strip().splitlines() or [route.name])[0]
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            operation = paths.setdefault(route.path, {}).setdefault(method.lower(), {})
            operation.setdefault("summary", summary)
            operation.setdefault("operationId", f"{method.lower()}_{route.name}")
            operation.setdefault("tags", ["custom"])
            operation.setdefault("responses", {"200": {"description": "Success"}})
    return spec


def install(router: Any, ctx: Any, gate: Any) -> CustomApp | None:
    """Put the app's hook in front of the built-in routes (before the server's own auth hook)."""
    http = ctx.config.http or {}
    target = http.get("app")
    if not target:
        return None
    order = http.get("middleware_order") or "middleware_first"
    app = load_app(str(target), ctx.config.base_dir)
    use_auth = bool(http.get("enable_custom_route_auth")) and gate is not None
    custom = CustomApp(app, gate=gate if use_auth else None, middleware_order=order)
    position = router.request_hooks.index(gate) if gate in router.request_hooks else len(router.request_hooks)
    router.request_hooks.insert(position, custom)
    custom.register_routes(router)
    router.openapi_extensions.append(custom.openapi)
    ctx.startup_hooks.append(custom.start_lifespan)
    return custom

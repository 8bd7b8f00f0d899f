"""Assembling the Robyn application: storage, graphs, run manager, routes and the 404/405 middleware."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from robyn import Request, Robyn

from robyn_server import cors
from robyn_server.auth.install import install as auth_install
from robyn_server.config import ServerConfig, Settings
from robyn_server.context import ServerContext
from robyn_server.graphs import GraphRegistry
from robyn_server.http import Router
from robyn_server.routes import assistants, meta, playground, runs, store, thread_events, threads
from robyn_server.runs.manager import RunManager
from robyn_server.storage.base import Storage

logger = logging.getLogger("robyn_server")


def build_context(config: ServerConfig, settings: Settings, storage: Storage, api_url: str) -> ServerContext:
    registry = GraphRegistry(storage)
    registry.load(config.graphs, config.base_dir)
    cors.load_policy(config.http)  # bad CORS settings stop the server here, with a one-line ConfigError
    manager = RunManager(
        storage, registry, max_concurrent=settings.max_concurrent_runs, timeout=settings.run_timeout_seconds
    )
    return ServerContext(config, settings, storage, registry, manager, api_url)


def build_router(ctx: ServerContext) -> Router:
    router = Router(ctx.settings.max_body_bytes)
    for module in (meta, assistants, threads, runs, store):
        module.register(router, ctx)
    thread_events.register(router, ctx)  # protocol v2
    playground.register(router, ctx)
    cors.install(router, ctx.config.http)
    auth_install(router, ctx)  # after CORS: preflights are answered before authentication
    return router


def build_app(
    ctx: ServerContext, robyn_config: object, on_loop: Callable[[asyncio.AbstractEventLoop], None] | None = None
) -> Robyn:
    """The Robyn app. `on_loop` receives the event loop that serves requests once it is running."""
    app = Robyn(__file__, config=robyn_config)  # type: ignore[arg-type]
    router = build_router(ctx)
    router.mount(app)
    thread_events.mount_websocket(app)

    @app.before_request()
    async def gate(request: Request) -> object:
        return await router.gate(request)

    @app.startup_handler
    async def startup() -> None:
        from robyn_server.runs.recovery import recover_at_startup
        from robyn_server.storage.errors import exit_on_startup_error

        try:
            await ctx.storage.setup()
            await assistants.ensure_system_assistants(ctx)
            await recover_at_startup(ctx)
        except Exception as exc:
            exit_on_startup_error(ctx.storage, exc)
        if on_loop is not None:
            on_loop(asyncio.get_running_loop())

    app.set_response_header("vary", "Origin")
    return app

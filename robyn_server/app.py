"""Assembling the Robyn application: storage, graphs, run manager, routes and the 404/405 middleware."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from robyn import Request, Robyn

from robyn_server import cors, gc_tuning, platform, store_config, webhooks
from robyn_server.auth.install import install as auth_install
from robyn_server.config import ServerConfig, Settings
from robyn_server.context import ServerContext
from robyn_server.crons import scheduler
from robyn_server.graphs import GraphRegistry
from robyn_server.http import Router
from robyn_server.ops import http_hooks
from robyn_server.routes import assistants, crons, meta, metrics, playground, runs, store, thread_events, threads
from robyn_server.runs.manager import RunManager
from robyn_server.storage.base import Storage
from robyn_server.streaming.bus import EventBus

logger = logging.getLogger("robyn_server")


def make_bus(settings: Settings) -> EventBus:
    """Redis when `REDIS_URL` is set (several processes share runs), else the in-process bus."""
    if settings.redis_url:
        from robyn_server.streaming.redis_bus import RedisBus

        prefix = os.environ.get("ROBYN_SERVER_REDIS_PREFIX", "robyn").strip() or "robyn"
        return RedisBus(settings.redis_url, settings.resumable_stream_ttl_seconds, prefix=prefix)
    return EventBus(settings.resumable_stream_ttl_seconds)


def build_context(
    config: ServerConfig, settings: Settings, storage: Storage, api_url: str, role: str = "all"
) -> ServerContext:
    platform.check_http_config(config.http)
    store_config.configure(config, storage)  # store.index/ttl, checkpointer.ttl (or a one-line stop)
    registry = GraphRegistry(storage)
    registry.load(config.graphs, config.base_dir)
    cors.load_policy(config.http)  # bad CORS settings stop the server here, with a one-line ConfigError
    webhooks.configure(config.webhooks, config.http)  # likewise the webhook URL policy and headers
    scheduler.settings()  # and the cron scheduler's timings
    manager = RunManager(
        storage,
        registry,
        max_concurrent=settings.max_concurrent_runs,
        timeout=settings.run_timeout_seconds,
        bus=make_bus(settings),
        max_attempts=settings.max_attempts,
        executes=role != "api",
    )
    return ServerContext(config, settings, storage, registry, manager, api_url)


def build_router(ctx: ServerContext) -> Router:
    router = Router(ctx.settings.max_body_bytes)
    http = ctx.config.http
    for module in platform.served_modules(http, (meta, metrics, assistants, threads, runs, crons, store)):
        module.register(router, ctx)
    if http.get("disable_meta"):
        platform.register_health_only(router)
    thread_events.register(router, ctx)  # protocol v2
    playground.register(router, ctx)
    cors.install(router, http)
    gate = auth_install(router, ctx)  # after CORS: preflights are answered before authentication
    ctx.custom_app = platform.install_extras(router, ctx, gate)  # http.app in front of the built-in routes
    platform.apply_mount_prefix(router, ctx, gate)
    http_hooks.install(router)  # first of all: request id, clock and span for every request
    return router


def build_app(
    ctx: ServerContext, robyn_config: object, on_loop: Callable[[asyncio.AbstractEventLoop], None] | None = None
) -> Robyn:
    """The Robyn app. `on_loop` receives the event loop that serves requests once it is running."""
    app = Robyn(__file__, config=robyn_config)  # type: ignore[arg-type]
    router = build_router(ctx)
    router.mount(app)
    app.api_router = router  # type: ignore[attr-defined]  # the request guard asks it for allowed methods
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
            await ctx.runs.bus.start()
            await assistants.ensure_system_assistants(ctx)
            await recover_at_startup(ctx)
            await store_config.start_sweeper(ctx.storage)
            for hook in ctx.startup_hooks:
                await hook()
        except Exception as exc:
            exit_on_startup_error(ctx.storage, exc)
        scheduler.start(ctx)
        gc_tuning.settle(ctx.settings.gc_thresholds)
        if on_loop is not None:
            on_loop(asyncio.get_running_loop())

    app.set_response_header("vary", "Origin")
    return app

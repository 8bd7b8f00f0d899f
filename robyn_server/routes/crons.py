"""Crons: create (stateless or on a thread), search, count, get, patch, delete."""

from __future__ import annotations

from typing import Any

from robyn_server.context import ServerContext
from robyn_server.crons import service
from robyn_server.crons.schemas import CronCount, CronCreate, CronPatch, CronSearch, ThreadCronCreate
from robyn_server.http import ApiRequest, JsonResponse, Router, empty
from robyn_server.routes.common import pagination_headers


def register(router: Router, ctx: ServerContext) -> None:
    async def create_cron(req: ApiRequest) -> Any:
        """Create a cron whose runs each get a fresh thread (deleted after the run unless `on_run_completed=keep`)."""
        return await service.create_cron(ctx, req, None)

    async def create_thread_cron(req: ApiRequest) -> Any:
        """Create a cron that runs on a thread."""
        return await service.create_cron(ctx, req, req.uuid_param("thread_id", "thread"))

    async def search_crons(req: ApiRequest) -> Any:
        """Search crons by assistant, thread, enabled and metadata."""
        items, offset, total = await service.search_crons(ctx, req)
        return JsonResponse(items, headers=pagination_headers(offset, len(items), total))

    async def count_crons(req: ApiRequest) -> Any:
        """Count crons."""
        return await service.count_crons(ctx, req)

    async def get_cron(req: ApiRequest) -> Any:
        """Get a cron."""
        return await service.get_cron(ctx, req)

    async def patch_cron(req: ApiRequest) -> Any:
        """Update a cron."""
        return await service.patch_cron(ctx, req)

    async def delete_cron(req: ApiRequest) -> Any:
        """Delete a cron."""
        await service.delete_cron(ctx, req)
        return empty(204)

    tags = ["crons"]
    router.add("POST", "/runs/crons", create_cron, tags=tags, body_model=CronCreate)
    router.add("POST", "/runs/crons/search", search_crons, tags=tags, body_model=CronSearch)
    router.add("POST", "/runs/crons/count", count_crons, tags=tags, body_model=CronCount)
    router.add("POST", "/threads/:thread_id/runs/crons", create_thread_cron, tags=tags, body_model=ThreadCronCreate)
    router.add("GET", "/runs/crons/:cron_id", get_cron, tags=tags)
    router.add("PATCH", "/runs/crons/:cron_id", patch_cron, tags=tags, body_model=CronPatch)
    router.add("DELETE", "/runs/crons/:cron_id", delete_cron, tags=tags)

"""Meta routes: health, server info, the OpenAPI document and its docs page."""

from __future__ import annotations

from typing import Any

import langgraph.version
from robyn import Response

from robyn_server import __version__
from robyn_server.context import ServerContext
from robyn_server.http import ApiRequest, JsonResponse, Router
from robyn_server.openapi import DOCS_HTML, build_openapi
from robyn_server.ops import health


def register(router: Router, ctx: ServerContext) -> None:
    async def ok(req: ApiRequest) -> Any:
        """Liveness; `?check_db=1` is readiness: database, Redis (when configured) and graphs, 503 naming the
        failing one."""
        if req.query_bool("check_db"):
            report, problem = await health.readiness(ctx)
            if problem is not None:
                return JsonResponse({"detail": problem, **report}, status_code=503)
            return report
        return {"ok": True, "services": {}}

    async def info(req: ApiRequest) -> Any:
        """Server version and feature flags."""
        return {
            "version": __version__,
            "langgraph_py_version": langgraph.version.__version__,
            "flags": {
                "assistants": True,
                "crons": True,
                "langsmith": False,
                "langsmith_tracing_replicas": False,
                "langsmith_tracing_session_on_runs": False,
            },
            "host": {
                "kind": "self-hosted",
                "project_id": None,
                "host_revision_id": None,
                "revision_id": None,
                "tenant_id": None,
            },
        }

    async def openapi(req: ApiRequest) -> Any:
        """The OpenAPI 3.1 document of the routes this server serves."""
        return build_openapi(router)

    async def docs(req: ApiRequest) -> Any:
        """A page listing the API."""
        return Response(status_code=200, headers={"content-type": "text/html; charset=utf-8"}, description=DOCS_HTML)

    router.add("GET", "/ok", ok, tags=["meta"])
    router.add("GET", "/", ok, tags=["meta"])
    router.add("GET", "/info", info, tags=["meta"])
    router.add("GET", "/openapi.json", openapi, tags=["meta"])
    router.add("GET", "/docs", docs, tags=["meta"])

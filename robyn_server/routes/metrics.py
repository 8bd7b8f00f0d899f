"""`GET /metrics`: Prometheus text (default, `?format=prometheus`) or the reference's JSON (`?format=json`).
Public, like the reference: auth does not apply."""

from __future__ import annotations

from typing import Any

from robyn import Response

from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, Router
from robyn_server.ops import metrics

FORMATS = ("prometheus", "json")


def register(router: Router, ctx: ServerContext) -> None:
    async def get_metrics(req: ApiRequest) -> Any:
        """Queue depth, runs, HTTP requests, open streams and pool use."""
        fmt = (req.query("format") or "prometheus").strip().lower()
        if fmt not in FORMATS:
            raise ApiError(422, f"Invalid format {fmt!r}: expected 'prometheus' or 'json'")
        values = await metrics.snapshot(ctx.storage, ctx.settings.max_concurrent_runs, ctx.runs.bus)
        if fmt == "json":
            return metrics.json_document(values)
        return Response(
            status_code=200,
            headers={"content-type": metrics.PROMETHEUS_CONTENT_TYPE},
            description=metrics.prometheus_text(values),
        )

    if metrics.ENABLED:
        router.add("GET", "/metrics", get_metrics, tags=["meta"])

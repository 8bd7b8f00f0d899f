"""The playground: a plain HTML/CSS/JS page (robyn_server/static/) that talks to this server's public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robyn import Response

from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, Router

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def _file_response(name: str) -> Response:
    path = (STATIC_DIR / name).resolve()
    content_type = CONTENT_TYPES.get(path.suffix)
    # Only plain files directly inside static/ with a known type; never anything outside it.
    if content_type is None or path.parent != STATIC_DIR or not path.is_file():
        raise ApiError(404, "Not Found")
    body: Any = path.read_text(encoding="utf-8") if content_type.startswith("text/") else path.read_bytes()
    return Response(
        status_code=200, headers={"content-type": content_type, "cache-control": "no-cache"}, description=body
    )


def register(router: Router, ctx: ServerContext) -> None:
    async def playground_page(req: ApiRequest) -> Any:
        """The playground page: chat with an assistant, stream runs, answer interrupts, cancel, reconnect."""
        return _file_response("playground.html")

    async def playground_asset(req: ApiRequest) -> Any:
        """A static file of the playground page (script, stylesheet)."""
        return _file_response(req.path_params["name"])

    router.add("GET", "/playground", playground_page, tags=["playground"])
    router.add("GET", "/playground/static/:name", playground_asset, tags=["playground"])

"""`/mcp`: the assistants as MCP tools over streamable HTTP (stateless, JSON responses), as the reference does.

The MCP server itself (routes/mcp_endpoint.py, on the official `mcp` package) is loaded and started at the first
MCP request: importing `mcp` costs about a second of CPU, which a server that never sees an MCP client should not
pay at every start.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from robyn_server.context import ServerContext
from robyn_server.custom_app import call_asgi
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, Router, empty

if TYPE_CHECKING:
    from robyn_server.routes.mcp_endpoint import McpEndpoint


class LazyMcp:
    """The MCP endpoint, made and started once, by the first request that needs it."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._endpoint: McpEndpoint | None = None
        self._lock = asyncio.Lock()

    async def endpoint(self) -> McpEndpoint:
        if self._endpoint is None:
            async with self._lock:
                if self._endpoint is None:
                    # the import runs on a thread, so the loop goes on serving other requests meanwhile
                    module = await asyncio.to_thread(importlib.import_module, "robyn_server.routes.mcp_endpoint")
                    endpoint = module.McpEndpoint(self.ctx)
                    await endpoint.start()
                    self._endpoint = endpoint
        return self._endpoint


def register(router: Router, ctx: ServerContext) -> LazyMcp:
    mcp = LazyMcp(ctx)

    async def mcp_endpoint(req: ApiRequest) -> Any:
        """MCP streamable HTTP: the assistants as tools (`initialize`, `tools/list`, `tools/call`)."""
        content_type = (req.header("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":  # the MCP package would answer this without a content type
            raise ApiError(415, "MCP requests must be JSON-RPC with Content-Type: application/json")
        endpoint = await mcp.endpoint()
        return await call_asgi(endpoint.asgi, req.raw, stream=False)

    async def mcp_stream(req: ApiRequest) -> Any:
        """MCP server-to-client stream: not offered (stateless server), 405 with no body like the reference."""
        return empty(405)

    async def mcp_end_session(req: ApiRequest) -> Any:
        """MCP session end: there are no sessions (stateless server), so 404 with no body like the reference."""
        return empty(404)

    router.add("POST", "/mcp", mcp_endpoint, tags=["mcp"])
    router.add("GET", "/mcp", mcp_stream, tags=["mcp"])
    router.add("DELETE", "/mcp", mcp_end_session, tags=["mcp"])
    return mcp

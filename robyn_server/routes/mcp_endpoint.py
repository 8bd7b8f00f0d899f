"""The MCP server behind `/mcp` (routes/mcp.py loads this module at the first MCP request).

Built on the official `mcp` package: its low-level `Server` answers the protocol and its
`StreamableHTTPSessionManager` the transport, served through the ASGI bridge. `tools/list` lists the assistants
the caller may see (name normalised to an MCP tool name, the graph's input schema as `inputSchema`);
`tools/call` runs the assistant on a temporary thread with the arguments as input and returns the final state
(`repr`, like the reference), or `isError` with the error's class. Auth applies like on every route.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from robyn_server import __version__
from robyn_server.auth.authorize import authorize, filtered_search
from robyn_server.context import ServerContext
from robyn_server.routes.assistants import graph_schemas
from robyn_server.runs.service import create_run
from robyn_server.schemas import RunCreateStateless

logger = logging.getLogger("robyn_server.mcp")

PAGE_SIZE = 100
MAX_ASSISTANTS = 1000
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_\-.]")
_MESSAGE_TYPES = {
    f"{kind}{suffix}"
    for kind in ("AI", "Human", "Chat", "System", "Function", "Tool")
    for suffix in ("Message", "MessageChunk")
}
_SUPPORT_TYPES = {"ToolCall", "ToolCallChunk", "InvalidToolCall", "UsageMetadata", "InputTokenDetails",
                  "OutputTokenDetails"}  # fmt: skip


def tool_name(assistant_name: str) -> str:
    """An assistant name as an MCP tool name (`^[a-zA-Z0-9_.-]{1,128}$`)."""
    return _INVALID_CHARS.sub("", re.sub(r"\s+", "_", assistant_name.strip()))[:128]


def simplify_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Message lists become one string (the user message), like the reference, so LLM clients can fill them."""
    defs = schema.get("$defs")
    if defs and set(defs) & _MESSAGE_TYPES:
        for name in _MESSAGE_TYPES | _SUPPORT_TYPES:
            defs.pop(name, None)
        if not defs:
            del schema["$defs"]
        for key, prop in (schema.get("properties") or {}).items():
            items = prop.get("items") or {} if prop.get("type") == "array" else {}
            refs = [c.get("$ref", "") for c in items.get("oneOf") or items.get("anyOf") or []]
            if any(r.startswith("#/$defs/") and r[8:] in _MESSAGE_TYPES for r in refs):
                schema["properties"][key] = {
                    "type": "string",
                    "title": prop.get("title", key),
                    "description": "The user message to send to the agent.",
                }
    schema.setdefault("type", "object")
    return schema


class McpEndpoint:
    """The MCP server and its transport; `start()` opens the session manager on the serving loop."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        server: Server[Any, Any] = Server("LangGraph", version=__version__)
        server.list_tools()(self.list_tools)
        server.call_tool(validate_input=False)(self.call_tool)
        self.manager = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True)
        self._running: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()

        async def hold() -> None:
            async with self.manager.run():
                ready.set()
                await asyncio.Event().wait()

        self._running = asyncio.get_running_loop().create_task(hold())
        await ready.wait()

    async def asgi(self, scope: Any, receive: Any, send: Any) -> None:
        await self.manager.handle_request(scope, receive, send)

    async def _assistants(self, limit: int, offset: int) -> list[dict[str, Any]]:
        value = {"graph_id": None, "metadata": None, "limit": limit, "offset": offset}
        filters = await authorize(None, "assistants", "search", value)
        items, _ = await filtered_search(
            self.ctx.storage.assistant_search, filters, graph_id=None, name=None, metadata=None, limit=limit,
            offset=offset, sort_by="created_at", sort_order="desc",
        )  # fmt: skip
        return items

    async def _tool(self, assistant: dict[str, Any], name: str) -> types.Tool | None:
        try:
            config = {"configurable": {**((assistant.get("config") or {}).get("configurable") or {})}}
            async with self.ctx.registry.graph(assistant["graph_id"], config, access="assistants.read") as graph:
                input_schema = graph_schemas(graph, assistant["graph_id"])["input_schema"]
            if input_schema is None:
                raise ValueError("the input schema could not be generated")
        except Exception as exc:
            logger.warning("assistant %s left out of the MCP tools: %s", assistant["assistant_id"], exc)
            return None
        return types.Tool(
            name=name,
            title=assistant["name"],
            description=assistant.get("description") or f"Tool based on the {assistant['name']} assistant",
            inputSchema=simplify_schema(input_schema),
            annotations=types.ToolAnnotations(
                readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
            ),
        )

    async def list_tools(self, request: types.ListToolsRequest) -> types.ListToolsResult:
        # (None when the mcp package refreshes its tool cache before a call)
        cursor = request.params.cursor if request is not None and request.params else None
        try:
            offset = int(cursor or 0)
        except ValueError:
            offset = 0
        assistants = await self._assistants(PAGE_SIZE, offset)
        seen: set[str] = set()
        unique = []
        for assistant in assistants:
            name = tool_name(assistant["name"])
            if name and name not in seen:
                seen.add(name)
                unique.append((assistant, name))
        tools = [t for t in await asyncio.gather(*(self._tool(a, n) for a, n in unique)) if t is not None]
        next_cursor = str(offset + PAGE_SIZE) if len(assistants) == PAGE_SIZE else None
        return types.ListToolsResult(tools=tools, nextCursor=next_cursor)

    async def call_tool(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        matching = [a for a in await self._assistants(MAX_ASSISTANTS, 0) if tool_name(a["name"]) == name]
        if len(matching) != 1:
            raise ValueError(f"Unknown tool: {name}" if not matching else "Multiple tools found with the same name.")
        body = RunCreateStateless(assistant_id=matching[0]["assistant_id"], input=arguments or {})
        handle = await create_run(self.ctx, body, thread_id=None)
        value = await self.ctx.runs.wait(handle)
        if isinstance(value, dict) and "__error__" in value:
            error = value["__error__"]
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=str(error.get("error")))], isError=True
            )
        return types.CallToolResult(content=[types.TextContent(type="text", text=repr(value))])

"""Tools from an MCP server over streamable HTTP, via `langchain-mcp-adapters`.

Listing the tools happens when the run's graph is built, so an unreachable or refusing server ends the run with
a clear error. A failure during a tool call becomes an error tool message the model can read and react to.
Every network step has a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from mcp.types import CallToolResult, TextContent

from tools_agent.config import MCPConfig, env_seconds

SERVER_NAME = "mcp"


def mcp_endpoint(url: str) -> str:
    """Open Agent Platform stores the server's base URL; the streamable HTTP endpoint is `{url}/mcp`."""
    url = url.rstrip("/")
    return url if url.endswith("/mcp") else f"{url}/mcp"


def _root_cause(exc: BaseException) -> BaseException:
    """The first real error inside the task groups the MCP client raises."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    cause = _root_cause(exc)
    text = (str(cause).splitlines() or [type(cause).__name__])[0]
    return f"{type(cause).__name__}: {text}" if type(cause).__name__ not in text else text


class _ToolCallGuard:
    """Interceptor: a call that fails or hangs returns an MCP error result instead of crashing the run."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    async def __call__(
        self,
        request: MCPToolCallRequest,
        handler: Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]],
    ) -> MCPToolCallResult:
        try:
            return await asyncio.wait_for(handler(request), self.timeout)
        except TimeoutError:
            text = f"MCP tool {request.name!r} at {self.endpoint} did not answer within {self.timeout:g}s"
        except Exception as exc:
            text = f"MCP tool {request.name!r} at {self.endpoint} failed: {_describe(exc)}"
        return CallToolResult(content=[TextContent(type="text", text=text)], isError=True)


async def load_mcp_tools(config: MCPConfig, token: str | None) -> list[BaseTool]:
    """The server's tools, filtered by `config.tools`; raises a clear error if the server cannot be used."""
    if not config.url:
        return []
    if config.tools is not None and not config.tools:
        return []
    endpoint = mcp_endpoint(config.url)
    headers: dict[str, str] = {}
    if config.auth_required:
        if not token:
            raise ValueError(
                f"mcp_config.auth_required is set but the run has no user token "
                f"(configurable.x-supabase-access-token) to send to {endpoint}"
            )
        headers["Authorization"] = f"Bearer {token}"
    timeout = env_seconds("TOOLS_AGENT_HTTP_TIMEOUT", 10.0)
    call_timeout = env_seconds("TOOLS_AGENT_TOOL_TIMEOUT", 60.0)
    client = MultiServerMCPClient(
        {
            SERVER_NAME: {
                "transport": "streamable_http",
                "url": endpoint,
                "headers": headers,
                "timeout": timedelta(seconds=timeout),
                "sse_read_timeout": timedelta(seconds=call_timeout),
            }
        },
        tool_interceptors=[_ToolCallGuard(endpoint, call_timeout)],
    )
    try:
        tools = await asyncio.wait_for(client.get_tools(), timeout * 2)
    except TimeoutError:
        raise TimeoutError(f"The MCP server at {endpoint} did not list its tools within {timeout * 2:g}s")
    except Exception as exc:
        raise RuntimeError(f"Could not load tools from the MCP server at {endpoint}: {_describe(exc)}")
    if config.tools is None:
        return tools
    offered = {t.name: t for t in tools}
    missing = [name for name in config.tools if name not in offered]
    if missing:
        raise ValueError(
            f"mcp_config.tools names {missing} that the MCP server at {endpoint} does not offer "
            f"(it offers {sorted(offered)})"
        )
    return [offered[name] for name in config.tools]

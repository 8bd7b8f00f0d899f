"""`graph(config)`: the default graph, a ReAct tools agent built from the run's merged configuration.

The model is `ChatOpenAI` (OpenAI, vLLM or any OpenAI-compatible endpoint via `base_url`); tools come from an
MCP server (`mcp_config`) and LangConnect RAG collections (`rag`), called with the user's token
(`configurable["x-supabase-access-token"]`).
"""

from __future__ import annotations

import warnings
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import create_react_agent
from langgraph.warnings import LangGraphDeprecatedSinceV10

from tools_agent.config import AgentConfig, load_settings, user_token
from tools_agent.mcp_tools import load_mcp_tools
from tools_agent.model import build_model
from tools_agent.rag_tools import load_rag_tools

__all__ = ["AgentConfig", "graph", "load_tools"]


def is_run(configurable: dict[str, Any]) -> bool:
    """The server also builds the graph for its schema and drawing routes, with only the assistant's config;
    those builds must not need a model key or reach MCP/RAG services. Only a run's config carries `run_id`."""
    return bool(configurable.get("run_id"))


async def load_tools(settings: AgentConfig, configurable: dict[str, Any]) -> list[BaseTool]:
    """MCP tools first, then one RAG search tool per collection, with names kept unique."""
    token = user_token(configurable)
    tools: list[BaseTool] = []
    if settings.mcp_config:
        tools.extend(await load_mcp_tools(settings.mcp_config, token))
    if settings.rag:
        taken = {t.name for t in tools}
        tools.extend(await load_rag_tools(settings.rag, token, taken))
    return tools


async def graph(config: RunnableConfig) -> CompiledStateGraph:
    """Build the agent; a missing model configuration or an unusable tool service raises a clear error."""
    configurable = dict((config or {}).get("configurable") or {})
    settings = load_settings(configurable)
    run = is_run(configurable)
    model = build_model(configurable, settings, require_key=run)
    tools = await load_tools(settings, configurable) if run else []
    with warnings.catch_warnings():
        # The prebuilt agent is what the issue asks for; its successor lives in the `langchain` package.
        warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
        return create_react_agent(model, tools=tools, prompt=settings.system_prompt, context_schema=AgentConfig)

"""A graph that reports who it runs for, as seen from an async node, a sync node, an async tool and a sync tool
(run by LangChain in a worker thread), and from the injected `config.configurable` keys."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode

from robyn_server.auth import get_current_user


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class State(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    seen: Annotated[dict, _merge]


def _who() -> str | None:
    user = get_current_user()
    return user.identity if user is not None else None


@tool
async def async_whoami(tag: str) -> str:
    """Report the caller as seen by an async tool."""
    await asyncio.sleep(random.random() * 0.005)
    return f"{tag}:{_who()}"


@tool
def sync_whoami(tag: str) -> str:
    """Report the caller as seen by a sync tool (runs in a worker thread)."""
    time.sleep(random.random() * 0.005)
    return f"{tag}:{_who()}"


async def start(state: State, config: RunnableConfig) -> dict[str, Any]:
    await asyncio.sleep(random.random() * 0.01)
    configurable = config.get("configurable") or {}
    auth_user = configurable.get("langgraph_auth_user") or {}
    user = get_current_user()
    seen = {
        "node": _who(),
        "config_user_id": configurable.get("langgraph_auth_user_id"),
        "config_user": auth_user.get("identity") if hasattr(auth_user, "get") else None,
        "config_token_matches": bool(user is not None and configurable.get("x-supabase-access-token") == user.token),
        # a digest, never the token itself: a process that executes a run created elsewhere must get it too
        "config_token_sha256": hashlib.sha256(str(configurable.get("x-supabase-access-token")).encode()).hexdigest(),
    }
    call = AIMessage(
        content="",
        tool_calls=[
            {"name": "async_whoami", "args": {"tag": "async_tool"}, "id": "call_async"},
            {"name": "sync_whoami", "args": {"tag": "sync_tool"}, "id": "call_sync"},
        ],
    )
    return {"seen": seen, "messages": [call]}


def sync_node(state: State) -> dict[str, Any]:
    time.sleep(random.random() * 0.003)
    return {"seen": {"sync_node": _who()}}


async def collect(state: State) -> dict[str, Any]:
    seen: dict[str, Any] = {"collect": _who()}
    for message in state.get("messages", []):
        if isinstance(message, ToolMessage):
            tag, _, who = str(message.content).partition(":")
            seen[tag] = who
    return {"seen": seen}


builder = StateGraph(State)
builder.add_node("start", start)
builder.add_node("tools", ToolNode([async_whoami, sync_whoami]))
builder.add_node("sync_node", sync_node)
builder.add_node("collect", collect)
builder.add_edge(START, "start")
builder.add_edge("start", "tools")
builder.add_edge("tools", "sync_node")
builder.add_edge("sync_node", "collect")
builder.add_edge("collect", END)
graph = builder.compile()

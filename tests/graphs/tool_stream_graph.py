"""A graph that calls a real LangChain tool through ToolNode, for the `tools` stream mode."""

from __future__ import annotations

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"boom: {reason}")


def ask(state: MessagesState) -> dict:
    calls = [
        {"name": "add", "args": {"a": 2, "b": 3}, "id": "call-add"},
        {"name": "explode", "args": {"reason": "test"}, "id": "call-explode"},
    ]
    return {"messages": [AIMessage(content="", tool_calls=calls)]}


_builder = StateGraph(MessagesState)
_builder.add_node("ask", ask)
_builder.add_node("tools", ToolNode([add, explode], handle_tool_errors=True))
_builder.add_edge(START, "ask")
_builder.add_edge("ask", "tools")
_builder.add_edge("tools", END)
graph = _builder.compile()

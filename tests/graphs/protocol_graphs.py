"""Graphs for the protocol-v2 tests: a ReAct loop whose tool runs in LangGraph's ToolNode (so the `tools`
channel has tool-started/finished events) and a subgraph that stops for input (namespaced interrupts)."""

from __future__ import annotations

from anchor_graph import FakeToolChatModel, interrupt_graph
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

model = FakeToolChatModel()


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"It's sunny in {city}"


def call_model(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


def route(state: MessagesState) -> str:
    return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END


_tools = StateGraph(MessagesState)
_tools.add_node("model", call_model)
_tools.add_node("tools", ToolNode([get_weather]))
_tools.add_edge(START, "model")
_tools.add_conditional_edges("model", route, ["tools", END])
_tools.add_edge("tools", "model")
tool_agent = _tools.compile(name="tool_agent")

_outer = StateGraph(interrupt_graph.builder.state_schema)
_outer.add_node("approval", interrupt_graph)
_outer.add_edge(START, "approval")
_outer.add_edge("approval", END)
nested_interrupt = _outer.compile(name="nested_interrupt")

"""Deterministic, offline graphs for the langgraph dev anchor server.

No network: the chat model is a tiny BaseChatModel subclass that streams fixed
tokens and, on its first turn, emits exactly one tool call.

Graphs (registered in langgraph.json):
  agent      - model -> tools -> model loop (messages, custom, tool call)
  interrupt  - node calls interrupt(); resume with command={"resume": ...}
  fail       - node raises ValueError (error event / status=error)
  slow       - sleeps `delay` seconds per step (busy-thread / cancel tests)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

TOOL_CALL_ID = "call_weather_1"
ANSWER_TOKENS = ["The ", "weather ", "in ", "sf ", "is ", "sunny."]


class FakeToolChatModel(BaseChatModel):
    """Streams ANSWER_TOKENS; emits one get_weather tool call first."""

    @property
    def _llm_type(self) -> str:
        return "fake-tool-chat"

    def _wants_tool(self, messages: list[BaseMessage]) -> bool:
        return not any(isinstance(m, ToolMessage) for m in messages)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self._wants_tool(messages):
            chunks = [
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[{"name": "get_weather", "args": "", "id": TOOL_CALL_ID, "index": 0}],
                ),
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[{"name": None, "args": json.dumps({"city": "sf"}), "id": None, "index": 0}],
                ),
            ]
        else:
            chunks = [AIMessageChunk(content=t) for t in ANSWER_TOKENS]
        # BaseChatModel fires on_llm_new_token for each yielded chunk itself.
        for c in chunks:
            yield ChatGenerationChunk(message=c)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._wants_tool(messages):
            msg = AIMessage(
                content="",
                tool_calls=[{"name": "get_weather", "args": {"city": "sf"}, "id": TOOL_CALL_ID}],
            )
        else:
            msg = AIMessage(content="".join(ANSWER_TOKENS))
        return ChatResult(generations=[ChatGeneration(message=msg)])


model = FakeToolChatModel()


def call_model(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


def call_tools(state: MessagesState) -> dict:
    writer = get_stream_writer()
    last = state["messages"][-1]
    out = []
    for tc in getattr(last, "tool_calls", []) or []:
        writer({"progress": f"calling {tc['name']}", "args": tc["args"]})
        out.append(
            ToolMessage(content=f"It's sunny in {tc['args'].get('city')}", tool_call_id=tc["id"], name=tc["name"])
        )
    return {"messages": out}


def route(state: MessagesState) -> str:
    last = state["messages"][-1]
    return "tools" if getattr(last, "tool_calls", None) else END


_agent = StateGraph(MessagesState)
_agent.add_node("model", call_model)
_agent.add_node("tools", call_tools)
_agent.add_edge(START, "model")
_agent.add_conditional_edges("model", route, ["tools", END])
_agent.add_edge("tools", "model")
agent = _agent.compile(name="agent")


class ApprovalState(TypedDict, total=False):
    request: str
    answer: str
    result: str


def ask(state: ApprovalState) -> dict:
    answer = interrupt({"question": f"approve {state.get('request', '?')}?"})
    return {"answer": answer}


def finish(state: ApprovalState) -> dict:
    return {"result": f"{state.get('request')} -> {state.get('answer')}"}


_ig = StateGraph(ApprovalState)
_ig.add_node("ask", ask)
_ig.add_node("finish", finish)
_ig.add_edge(START, "ask")
_ig.add_edge("ask", "finish")
_ig.add_edge("finish", END)
interrupt_graph = _ig.compile(name="interrupt_graph")


class CounterState(TypedDict, total=False):
    count: int
    delay: float


def boom(state: CounterState) -> dict:
    raise ValueError("boom: deliberate failure")


_fg = StateGraph(CounterState)
_fg.add_node("boom", boom)
_fg.add_edge(START, "boom")
_fg.add_edge("boom", END)
fail_graph = _fg.compile(name="fail_graph")


async def tick(state: CounterState) -> dict:
    await asyncio.sleep(float(state.get("delay", 1.0)))
    return {"count": state.get("count", 0) + 1}


def again(state: CounterState) -> str:
    return "tick" if state.get("count", 0) < 3 else END


_sg = StateGraph(CounterState)
_sg.add_node("tick", tick)
_sg.add_edge(START, "tick")
_sg.add_conditional_edges("tick", again, ["tick", END])
slow_graph = _sg.compile(name="slow_graph")


# Parent graph that runs `agent` as a subgraph node (for stream_subgraphs=true:
# event names become e.g. "updates|inner:<task-id>").
_ng = StateGraph(MessagesState)
_ng.add_node("inner", agent)
_ng.add_edge(START, "inner")
_ng.add_edge("inner", END)
nested_graph = _ng.compile(name="nested_graph")

"""Graphs for the browser tests: the anchor agent, but its model waits between tokens.

`typing` streams the anchor answer (6 tokens) TOKEN_DELAY seconds apart, so a browser can tell tokens that
arrive one by one from tokens buffered to the end; `typing_long` streams 40 tokens, long enough to cancel a
run or reload a page in the middle of it. Both make one get_weather tool call first, like the anchor agent.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from anchor_graph import ANSWER_TOKENS, FakeToolChatModel, call_tools, route
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.graph import START, MessagesState, StateGraph

TOKEN_DELAY = float(os.environ.get("BROWSER_TEST_TOKEN_DELAY", "0.15"))
LONG_TOKENS = [f"word{i} " for i in range(39)] + ["end."]


class TypingModel(FakeToolChatModel):
    tokens: list[str] = ANSWER_TOKENS

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self._wants_tool(messages):
            for chunk in self._stream(messages, stop):
                yield chunk
            return
        for token in self.tokens:
            await asyncio.sleep(TOKEN_DELAY)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))


def _build(model: TypingModel, name: str) -> Any:
    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", call_tools)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", "__end__"])
    graph.add_edge("tools", "model")
    return graph.compile(name=name)


typing_agent = _build(TypingModel(), "typing")
typing_long = _build(TypingModel(tokens=LONG_TOKENS), "typing_long")

"""Deterministic, offline benchmark graphs served by both servers from `benchmarks/langgraph.json`.

No network and no randomness, so every server streams exactly the same events and the numbers compare the
servers, not the model. The chat model implements `_astream` natively: the default `BaseChatModel._astream`
falls back to a thread executor per call, which would measure thread hand-offs rather than the server.

Knobs (read from the input state first, then from `config["configurable"]`, then the defaults):
  n_tokens  number of streamed tokens (default 50; paced default 20)
  ttft_ms   delay before the first token (paced graph only; default 1000)
  token_ms  delay between tokens (paced graph only; default 250)

Graphs:
  tokens  START -> model -> END, the model streams n_tokens tokens
  react   model -> tools -> model: one get_weather tool call, then n_tokens tokens
  paced   like tokens, with asyncio.sleep before the first and between tokens (a slow LLM)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

DEFAULT_TOKENS = 50
PACED_DEFAULTS = {"n_tokens": 20, "ttft_ms": 1000.0, "token_ms": 250.0}
TOOL_CALL_ID = "call_bench_1"


class BenchState(MessagesState, total=False):
    """Messages plus the optional knobs, so clients can set them in the run input."""

    n_tokens: int
    ttft_ms: float
    token_ms: float


class BenchChatModel(BaseChatModel):
    """Streams `n_tokens` fixed tokens; optionally asks for one tool call first; optionally paced."""

    n_tokens: int = DEFAULT_TOKENS
    ttft_ms: float = 0.0
    token_ms: float = 0.0
    use_tools: bool = False

    @property
    def _llm_type(self) -> str:
        return "bench-chat"

    def _wants_tool(self, messages: list[BaseMessage]) -> bool:
        return self.use_tools and not any(isinstance(m, ToolMessage) for m in messages)

    def _chunks(self, messages: list[BaseMessage]) -> list[AIMessageChunk]:
        if self._wants_tool(messages):
            return [
                AIMessageChunk(
                    content="", tool_call_chunks=[{"name": "get_weather", "args": "", "id": TOOL_CALL_ID, "index": 0}]
                ),
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[{"name": None, "args": json.dumps({"city": "sf"}), "id": None, "index": 0}],
                ),
            ]
        return [AIMessageChunk(content=f"tok{i} ") for i in range(self.n_tokens)]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        paced = self.ttft_ms > 0 or self.token_ms > 0
        for i, chunk in enumerate(self._chunks(messages)):
            if paced:
                await asyncio.sleep((self.ttft_ms if i == 0 else self.token_ms) / 1000)
            yield ChatGenerationChunk(message=chunk)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._wants_tool(messages):
            call = {"name": "get_weather", "args": {"city": "sf"}, "id": TOOL_CALL_ID}
            msg = AIMessage(content="", tool_calls=[call])
        else:
            msg = AIMessage(content="".join(f"tok{i} " for i in range(self.n_tokens)))
        return ChatResult(generations=[ChatGeneration(message=msg)])


@tool
def get_weather(city: str) -> str:
    """Return a fixed forecast (no network)."""
    return f"It is always sunny in {city}."


def _knob(state: BenchState, config: RunnableConfig, name: str, default: float) -> float:
    """Input state wins over `configurable`, which wins over the default."""
    if state.get(name) is not None:
        return state[name]  # type: ignore[literal-required]
    value = (config.get("configurable") or {}).get(name)
    return default if value is None else value


def _model_node(*, paced: bool, use_tools: bool) -> Any:
    """A node that builds the model from the knobs and calls it with the node's config (so tokens stream)."""

    async def call_model(state: BenchState, config: RunnableConfig) -> dict[str, Any]:
        defaults = PACED_DEFAULTS if paced else {"n_tokens": DEFAULT_TOKENS, "ttft_ms": 0.0, "token_ms": 0.0}
        model = BenchChatModel(
            n_tokens=int(_knob(state, config, "n_tokens", defaults["n_tokens"])),
            ttft_ms=float(_knob(state, config, "ttft_ms", defaults["ttft_ms"])) if paced else 0.0,
            token_ms=float(_knob(state, config, "token_ms", defaults["token_ms"])) if paced else 0.0,
            use_tools=use_tools,
        )
        return {"messages": [await model.ainvoke(state["messages"], config)]}

    return call_model


def _route(state: BenchState) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


def _single(paced: bool) -> Any:
    builder = StateGraph(BenchState)
    builder.add_node("model", _model_node(paced=paced, use_tools=False))
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile()


def _react() -> Any:
    builder = StateGraph(BenchState)
    builder.add_node("model", _model_node(paced=False, use_tools=True))
    builder.add_node("tools", ToolNode([get_weather]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", _route, ["tools", END])
    builder.add_edge("tools", "model")
    return builder.compile()


tokens = _single(paced=False)
paced = _single(paced=True)
react = _react()

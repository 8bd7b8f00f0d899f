"""`graph(config)`: a ReAct agent whose model and prompt come from the run's configuration.

Works with OpenAI or any OpenAI-compatible endpoint (vLLM, the project's mock LLM) via `base_url`.
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent
from pydantic import BaseModel, Field

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


class AgentConfig(BaseModel):
    """Settings an assistant or a run may set under `config.configurable`."""

    model_name: str = Field("openai:gpt-4o-mini", description="Model, optionally prefixed with its provider")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(4000, ge=1)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. a vLLM server")
    custom_model_name: str | None = None
    custom_api_key: str | None = None


def _api_key(configurable: dict[str, Any], settings: AgentConfig) -> str | None:
    if settings.custom_api_key:
        return settings.custom_api_key
    keys = configurable.get("apiKeys") or {}
    return keys.get("OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")


def build_model(configurable: dict[str, Any]) -> ChatOpenAI:
    settings = AgentConfig.model_validate({k: v for k, v in configurable.items() if k in AgentConfig.model_fields})
    api_key = _api_key(configurable, settings)
    if not api_key and not settings.base_url:
        raise ValueError(
            "No model is configured: set OPENAI_API_KEY in the environment or configurable.apiKeys.OPENAI_API_KEY, "
            "or point configurable.base_url at an OpenAI-compatible endpoint"
        )
    model = settings.custom_model_name or settings.model_name.split(":", 1)[-1]
    return ChatOpenAI(
        model=model,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        base_url=settings.base_url,
        api_key=api_key or "not-needed",
        max_retries=2,
        timeout=60,
    )


async def graph(config: RunnableConfig) -> Any:
    configurable = dict((config or {}).get("configurable") or {})
    model = build_model(configurable)
    prompt = configurable.get("system_prompt") or DEFAULT_SYSTEM_PROMPT
    return create_react_agent(model, tools=[], prompt=prompt, config_schema=AgentConfig)

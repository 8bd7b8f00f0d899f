"""The agent's settings model: what an assistant or run may put under `config.configurable`.

Each field carries `metadata.x_oap_ui_config` in its JSON schema, which is what Open Agent Platform reads
(`config_schema.properties[field].metadata.x_oap_ui_config`) to render the assistant's settings form.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant that has access to a variety of tools."
DEFAULT_MODEL = "openai:gpt-4o-mini"
MODEL_OPTIONS = ["openai:gpt-4o-mini", "openai:gpt-4o", "openai:gpt-4.1", "openai:gpt-4.1-mini", "openai:o4-mini"]
TOKEN_KEY = "x-supabase-access-token"


def _ui(**ui: Any) -> dict[str, Any]:
    """Schema extra that Open Agent Platform turns into a form control."""
    return {"metadata": {"x_oap_ui_config": ui}}


class MCPConfig(BaseModel):
    """An MCP server reached over streamable HTTP at `{url}/mcp`."""

    url: str | None = Field(None, description="Base URL of the MCP server; `/mcp` is appended")
    tools: list[str] | None = Field(None, description="Tool names to use; null means every tool the server offers")
    auth_required: bool = Field(False, description="Send the user's access token as a bearer token")


class RagConfig(BaseModel):
    """A LangConnect-compatible RAG service and the collections to search."""

    rag_url: str | None = Field(None, description="Base URL of the LangConnect service")
    collections: list[str] | None = Field(None, description="Collection ids; one search tool per collection")


class AgentConfig(BaseModel):
    """Settings an assistant or a run may set under `config.configurable` (the run's values win)."""

    model_config = ConfigDict(extra="ignore")

    model_name: str = Field(
        DEFAULT_MODEL,
        description="OpenAI model as `openai:<name>`; ignored when `custom_model_name` is set",
        json_schema_extra=_ui(
            type="select",
            default=DEFAULT_MODEL,
            description="The model to use in all generations",
            options=[{"label": m.split(":", 1)[1], "value": m} for m in MODEL_OPTIONS],
        ),
    )
    temperature: float = Field(
        0.7,
        ge=0,
        le=2,
        description="Sampling temperature",
        json_schema_extra=_ui(
            type="slider", default=0.7, min=0, max=2, step=0.1, description="Controls randomness (0 = deterministic)"
        ),
    )
    max_tokens: int = Field(
        4000,
        ge=1,
        description="Most tokens the model may generate per call",
        json_schema_extra=_ui(type="number", default=4000, min=1, description="The maximum number of tokens"),
    )
    system_prompt: str = Field(
        DEFAULT_SYSTEM_PROMPT,
        description="The system prompt for every model call",
        json_schema_extra=_ui(
            type="textarea",
            default=DEFAULT_SYSTEM_PROMPT,
            placeholder="Enter a system prompt...",
            description="The system prompt to use in all generations",
        ),  # fmt: skip
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint (vLLM, a proxy, the mock LLM), e.g. http://localhost:8000/v1",
        json_schema_extra=_ui(
            type="text",
            placeholder="http://localhost:8000/v1",
            description="Base URL of an OpenAI-compatible endpoint such as vLLM; empty for OpenAI",
        ),  # fmt: skip
    )
    custom_model_name: str | None = Field(
        None,
        description="Model name served at `base_url`, e.g. the vLLM `--model` value",
        json_schema_extra=_ui(
            type="text", placeholder="meta-llama/Llama-3.1-8B-Instruct", description="Model name at the custom endpoint"
        ),  # fmt: skip
    )
    custom_api_key: str | None = Field(
        None,
        description="API key for `base_url`; if unset the OpenAI key is used",
        json_schema_extra=_ui(type="text", placeholder="sk-...", description="API key for the custom endpoint"),
    )
    mcp_config: MCPConfig | None = Field(
        None, description="MCP server whose tools the agent may call", json_schema_extra=_ui(type="mcp")
    )
    rag: RagConfig | None = Field(
        None, description="RAG collections the agent may search", json_schema_extra=_ui(type="rag")
    )


def load_settings(configurable: dict[str, Any]) -> AgentConfig:
    """Validate the known keys of a run's merged `configurable`; empty strings count as unset."""
    known = {k: v for k, v in configurable.items() if k in AgentConfig.model_fields and v not in (None, "")}
    return AgentConfig.model_validate(known)


def user_token(configurable: dict[str, Any]) -> str | None:
    """The caller's access token, injected by the server's auth layer (or passed by the run)."""
    token = configurable.get(TOKEN_KEY)
    return token if isinstance(token, str) and token else None


def env_seconds(name: str, default: float) -> float:
    """A timeout from the environment, so operators can tune it without code changes."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default

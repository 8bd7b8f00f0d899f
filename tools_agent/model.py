"""The chat model: `ChatOpenAI` for OpenAI or any OpenAI-compatible endpoint (vLLM, the mock LLM).

Provider errors are re-raised as ValueError/RuntimeError/TimeoutError with a message saying what to fix,
because the server only shows messages of those classes in a run's `error` event.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from tools_agent.config import AgentConfig, env_seconds

NO_MODEL_MESSAGE = (
    "No model is configured for this assistant. Set configurable.base_url (plus custom_model_name and, if the "
    "endpoint needs one, custom_api_key) to use an OpenAI-compatible endpoint such as vLLM, or give an OpenAI key "
    "in configurable.apiKeys.OPENAI_API_KEY or the server's OPENAI_API_KEY environment variable."
)
KEY_HINT = (
    "set configurable.custom_api_key for a custom base_url, or configurable.apiKeys.OPENAI_API_KEY / the server's "
    "OPENAI_API_KEY for OpenAI"
)


class ExplainedChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` whose failures (after the client's retries with backoff) name the endpoint and the fix."""

    def _where(self) -> str:
        return self.openai_api_base or "https://api.openai.com/v1"

    def _explain(self, exc: openai.OpenAIError) -> Exception:
        where = self._where()
        if isinstance(exc, openai.APITimeoutError):
            return TimeoutError(f"The model endpoint {where} did not answer within {self.request_timeout}s")
        if isinstance(exc, openai.APIConnectionError):
            return RuntimeError(f"Could not connect to the model endpoint {where} ({exc}); check configurable.base_url")
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ValueError(f"The model endpoint {where} rejected the API key (HTTP {exc.status_code}): {KEY_HINT}")
        if isinstance(exc, openai.NotFoundError):
            return ValueError(
                f"Model {self.model_name!r} was not found at {where} (HTTP 404): check model_name or custom_model_name"
            )
        if isinstance(exc, openai.APIStatusError):
            return RuntimeError(f"The model endpoint {where} answered HTTP {exc.status_code}: {exc.message}")
        return RuntimeError(f"The model call to {where} failed: {exc}")

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except openai.OpenAIError as exc:
            raise self._explain(exc) from exc

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except openai.OpenAIError as exc:
            raise self._explain(exc) from exc

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except openai.OpenAIError as exc:
            raise self._explain(exc) from exc

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except openai.OpenAIError as exc:
            raise self._explain(exc) from exc


def resolve_model_name(settings: AgentConfig) -> str:
    """`custom_model_name` for a custom endpoint, else `model_name` without its `openai:` prefix."""
    if settings.base_url and settings.custom_model_name:
        return settings.custom_model_name
    provider, sep, name = settings.model_name.partition(":")
    if not sep:
        return settings.model_name
    if provider != "openai" and not settings.base_url:
        raise ValueError(
            f"model_name {settings.model_name!r}: only OpenAI models (openai:<name>) are supported; for other "
            "models set configurable.base_url to an OpenAI-compatible endpoint and custom_model_name"
        )
    return name


def resolve_api_key(configurable: dict[str, Any], settings: AgentConfig) -> str | None:
    """The key to send; a custom endpoint never receives the OpenAI key unless given as `custom_api_key`."""
    if settings.base_url:
        return settings.custom_api_key or "EMPTY"
    keys = configurable.get("apiKeys") or {}
    key = keys.get("OPENAI_API_KEY") if isinstance(keys, dict) else None
    return key or os.environ.get("OPENAI_API_KEY") or None


def build_model(configurable: dict[str, Any], settings: AgentConfig, *, require_key: bool = True) -> ChatOpenAI:
    """The run's chat model; raises ValueError naming what to set when nothing is configured."""
    api_key = resolve_api_key(configurable, settings)
    if api_key is None:
        if require_key:
            raise ValueError(NO_MODEL_MESSAGE)
        api_key = "unset"  # building for schemas or drawing only; never called
    retries = os.environ.get("TOOLS_AGENT_MODEL_RETRIES", "2")
    return ExplainedChatOpenAI(
        model=resolve_model_name(settings),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        base_url=settings.base_url,
        api_key=api_key,
        max_retries=int(retries) if retries.isdigit() else 2,  # the openai client backs off between tries
        timeout=env_seconds("TOOLS_AGENT_MODEL_TIMEOUT", 120.0),
        stream_usage=True,
    )

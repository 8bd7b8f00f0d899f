"""`scripts/mock_llm.py` speaks the Chat Completions wire format the real `openai` client expects."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.agent_services import MockLLM

KEY = "k-test"
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockLLM]:
    llm = MockLLM(api_key=KEY).start()
    yield llm
    llm.stop()


@pytest.fixture
def client(mock: MockLLM) -> Iterator[openai.OpenAI]:
    mock.set_rules([])
    with openai.OpenAI(base_url=mock.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def test_non_streaming_answer_with_usage(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hi there"}])
    assert done.choices[0].message.content == "You said: hi there"
    assert done.choices[0].finish_reason == "stop"
    assert done.model == "m1"
    assert done.usage is not None and done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    again = client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hi there"}])
    assert again.id == done.id  # deterministic


def test_streaming_sse_ends_with_done_and_usage(mock: MockLLM) -> None:
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "one two"}]}  # fmt: skip
    with httpx.stream("POST", f"{mock.base_url}/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEY}"}) as resp:  # fmt: skip
        assert resp.headers["content-type"] == "text/event-stream"
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "You said: one two"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_tool_calls_streamed_and_not(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "please add 4 and 5"}]
    done = client.chat.completions.create(model="m", messages=messages, tools=[ADD_TOOL])
    (call,) = done.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("add", {"a": 4, "b": 5})
    assert done.choices[0].finish_reason == "tool_calls"
    stream = client.chat.completions.create(model="m", messages=messages, tools=[ADD_TOOL], stream=True)
    deltas = [c.choices[0].delta for c in stream if c.choices]
    parts = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert parts[0].id == call.id and parts[0].function.name == "add"
    assert json.loads("".join(p.function.arguments or "" for p in parts)) == {"a": 4, "b": 5}
    follow = messages + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "9"},
    ]
    final = client.chat.completions.create(model="m", messages=follow, tools=[ADD_TOOL])
    assert final.choices[0].message.content == "The tool returned: 9"


def test_scripted_rules_and_failures(mock: MockLLM, client: openai.OpenAI) -> None:
    mock.set_rules([
        {"match": "weather", "after_tool": False, "tool_calls": [{"name": "forecast", "arguments": {"city": "sf"}}]},
        {"match": "weather", "after_tool": True, "reply": "Forecast for you: {tool_result}"},
        {"match": "explode", "status": 503},
    ])  # fmt: skip
    first = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "weather?"}])
    (call,) = first.choices[0].message.tool_calls
    assert call.function.name == "forecast" and json.loads(call.function.arguments) == {"city": "sf"}
    second = client.chat.completions.create(model="m", messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ])  # fmt: skip
    assert second.choices[0].message.content == "Forecast for you: sunny"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "explode"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=mock.base_url, api_key="nope", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    recorded = mock.requests()
    assert recorded[-1]["messages"][-1]["content"] == "explode"  # the 401 request was refused before recording

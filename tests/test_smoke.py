"""The server starts on the test graphs and answers the SDK."""


async def test_ok_and_system_assistants(client, http):
    assert http.get("/ok").json() == {"ok": True, "services": {}}
    found = await client.assistants.search(graph_id="agent", metadata={"created_by": "system"})
    assert [a["assistant_id"] for a in found] == ["fe096781-5601-53d2-b2f6-0d3403f7e9ca"]


async def test_stream_a_run(client):
    thread = await client.threads.create()
    events = [
        part.event
        async for part in client.runs.stream(
            thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "weather in sf?"}]}
        )
    ]
    assert events[0] == "metadata"
    assert events.count("values") == 4  # input, model, tools, model
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["messages"][-1]["content"] == "The weather in sf is sunny."

"""The in-memory checkpointer's per-thread key index (robyn_server/storage/thread_keyed.py): deleting a thread
removes exactly its checkpoints, writes and blobs, however they were written or changed."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from robyn_server.storage.checkpoint_metadata import MemoryCheckpointer


class State(TypedDict):
    items: Annotated[list[str], operator.add]


def add(state: State) -> dict[str, list[str]]:
    return {"items": [f"item{len(state['items'])}"]}


def test_deleting_a_thread_removes_its_keys_and_only_its_keys() -> None:
    saver = MemoryCheckpointer()
    builder = StateGraph(State)
    builder.add_node("add", add)
    builder.add_edge(START, "add")
    builder.add_edge("add", END)
    graph = builder.compile(checkpointer=saver)

    async def scenario() -> None:
        for thread in ("a", "b", "c"):
            for _ in range(3):
                await graph.ainvoke({"items": ["x"]}, {"configurable": {"thread_id": thread}})
        saver.writes.update({("c", "", "extra"): {}})  # the ways storage/history.py changes the dicts
        saver.blobs.pop(next(k for k in saver.blobs if k[0] == "c"))
        await saver.adelete_thread("b")
        await saver.adelete_thread("c")

    asyncio.run(scenario())
    assert {k[0] for k in saver.writes} == {"a"} and {k[0] for k in saver.blobs} == {"a"}
    assert set(saver.storage) == {"a"}
    assert saver.writes.keys_of("b") == [] and saver.blobs.keys_of("c") == []  # type: ignore[attr-defined]
    assert sorted(saver.blobs.keys_of("a")) == sorted(k for k in saver.blobs if k[0] == "a")  # type: ignore[attr-defined]
    state = asyncio.run(graph.aget_state({"configurable": {"thread_id": "a"}}))
    assert state.values["items"] == ["x", "item1", "x", "item3", "x", "item5"]

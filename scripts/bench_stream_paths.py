"""Compare the two ways of driving a graph for SSE: `astream` vs `astream_events(version="v2")`.

Runs the test agent graph (fake model, one tool call, streamed tokens) in-process through the server's own
StreamMapper with `values`, `messages-tuple` and `updates`, and prints runs/s for each path. Usage:

    .venv/bin/python scripts/bench_stream_paths.py [--runs 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "graphs"))

from anchor_graph import agent  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from robyn_server.streaming.modes import StreamMapper  # noqa: E402

MODES = ["values", "messages-tuple", "updates"]
INPUT = {"messages": [{"role": "user", "content": "weather in sf?"}]}


async def one_run(graph, use_events: bool, n: int) -> int:
    mapper = StreamMapper(MODES, subgraphs=False)
    config = {"configurable": {"thread_id": f"t{n}-{use_events}"}}
    events = 0
    if use_events:
        async for ev in graph.astream_events(INPUT, config, version="v2", stream_mode=mapper.langgraph_modes()):
            events += len(list(mapper.map_langgraph_event(ev)))
    else:
        async for mode, chunk in graph.astream(INPUT, config, stream_mode=mapper.langgraph_modes()):
            events += len(list(mapper.map((), mode, chunk)))
    return events


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    graph = agent.copy(update={"checkpointer": InMemorySaver()})
    for use_events in (False, True):
        await one_run(graph, use_events, -1)  # warm up
        start = time.perf_counter()
        events = 0
        for n in range(args.runs):
            events += await one_run(graph, use_events, n)
        elapsed = time.perf_counter() - start
        name = "astream_events v2" if use_events else "astream"
        print(
            f"{name:18s} {args.runs / elapsed:8.1f} runs/s  {elapsed / args.runs * 1000:6.2f} ms/run  "
            f"{events // args.runs} events/run"
        )


if __name__ == "__main__":
    asyncio.run(main())

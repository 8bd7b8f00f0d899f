"""Differential check of protocol v2: the same command sequences against this server and a live `langgraph dev`
(both serving tests/graphs/langgraph.protocol.json), comparing event methods, channels, namespaces and data shapes
(ids, seqs and timestamps aside) and the command answers.

    .venv/bin/python scripts/protocol_v2_diff.py --ours http://127.0.0.1:8081 --reference http://127.0.0.1:2024

Compared channels are those both servers fill for these graphs (`values`, `messages`, `lifecycle`, `input`);
the script also lists, per scenario, the events of the other channels each server sent. Exit status 1 when a
compared sequence differs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import uuid
from typing import Any

import httpx

COMPARED = ["values", "messages", "lifecycle", "input"]
EXTRA = ["updates", "checkpoints", "custom", "tools", "tasks"]
AGENT_INPUT = {"messages": [{"role": "user", "content": "weather in sf?"}]}
SCENARIOS: dict[str, tuple[str, Any, Any]] = {
    "agent": ("agent", AGENT_INPUT, None),
    "tool_agent": ("tool_agent", AGENT_INPUT, None),
    "interrupt": ("interrupt", {"request": "deploy"}, "yes"),
    "fail": ("fail", {"count": 1}, None),
    "nested": ("nested", AGENT_INPUT, None),
    "nested_interrupt": ("nested_interrupt", {"request": "x"}, "ok"),
}
ERROR_COMMANDS = [
    {"method": "state.teleport", "params": {}},
    {"method": "run.start", "params": {}},
    {"method": "input.respond", "params": {"interrupt_id": "nope", "namespace": [], "response": 1}},
    {"method": "input.respond", "params": {"interrupt_id": "x", "namespace": "root"}},
    {"method": "subscription.subscribe", "params": {"channels": ["telepathy"]}},
    {"method": "subscription.subscribe", "params": {"channels": ["values"]}},
    {"method": "subscription.unsubscribe", "params": {"subscription_id": "nope"}},
    {"method": "subscription.reconnect", "params": {"run_id": "x"}},
]
_TASK_ID = re.compile(r":[0-9a-f-]{36}$")


def shape(value: Any) -> Any:
    """The structure of a value: dict keys with their shapes, list item shapes, scalar type names."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items()) if k not in ("id", "tool_call_id", "interrupt_id")}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def summary(event: dict[str, Any]) -> tuple[str, str, str]:
    params = event["params"]
    namespace = "/".join(_TASK_ID.sub("", s) for s in params["namespace"])
    data = params["data"]
    if event["method"] == "messages":
        detail: Any = {"event": data.get("event"), **({"content": shape(data["content"])} if "content" in data else {}),
                       **({"delta": shape(data["delta"])} if "delta" in data else {})}  # fmt: skip
    elif event["method"] == "lifecycle":
        detail = {k: v for k, v in data.items() if k not in ("namespace", "trigger_call_id")}
        detail = {k: (_TASK_ID.sub("", v) if isinstance(v, str) else v) for k, v in detail.items()}
    else:
        detail = shape(data)
    return event["method"], namespace, json.dumps(detail, sort_keys=True)


async def read(http: httpx.AsyncClient, thread_id: str, channels: list[str], ends: int) -> list[dict[str, Any]]:
    """Events of the thread until `ends` root runs have completed or failed (or a quiet second)."""
    events: list[dict[str, Any]] = []
    done = 0
    try:
        async with asyncio.timeout(30):
            async with http.stream("POST", f"/threads/{thread_id}/stream/events", json={"channels": channels}) as r:
                async for line in r.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line[6:])
                    events.append(event)
                    data = event["params"]["data"]
                    if event["method"] == "lifecycle" and not event["params"]["namespace"]:
                        if data.get("event") in ("completed", "failed"):
                            done += 1
                            if done >= ends:
                                return events
    except TimeoutError:
        pass
    return events


async def command(http: httpx.AsyncClient, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"/threads/{thread_id}/commands", json={"id": 1, **body})
    answer = response.json()
    return {"status": response.status_code, "type": answer.get("type"), "error": answer.get("error")}


async def scenario(url: str, graph: str, graph_input: Any, answer: Any,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """One scenario on a fresh thread. With `headers` (auth on), the thread is created with POST /threads first, so
    that the auth module's `threads.create` handler stamps its owner (a thread `run.start` creates gets none)."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        thread_id = str(uuid.uuid4())
        if headers:
            (await http.post("/threads", json={"thread_id": thread_id})).raise_for_status()
        start = await command(http, thread_id, {"method": "run.start", "params": {"assistant_id": graph,
                                                                                   "input": graph_input}})  # fmt: skip
        commands = [start]
        if answer is not None:
            async with asyncio.timeout(30):
                while True:
                    seen = await read_until_input(http, thread_id)
                    if seen is not None:
                        break
            params = {"interrupt_id": seen["params"]["data"]["interrupt_id"], "namespace": seen["params"]["namespace"],
                      "response": answer}  # fmt: skip
            commands.append(await command(http, thread_id, {"method": "input.respond", "params": params}))
        events = await read(http, thread_id, COMPARED + EXTRA, 1)
        compared = [summary(e) for e in events if e["method"] in ("values", "messages", "lifecycle", "input.requested")]
        extra: dict[str, int] = {}
        for e in events:
            if e["method"] in EXTRA:
                extra[e["method"]] = extra.get(e["method"], 0) + 1
        return {"commands": commands, "events": compared, "extra": extra}


async def read_until_input(http: httpx.AsyncClient, thread_id: str) -> dict[str, Any] | None:
    async with http.stream("POST", f"/threads/{thread_id}/stream/events", json={"channels": ["input"]}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                return json.loads(line[6:])
    return None


async def errors(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        thread_id = str(uuid.uuid4())
        return [await command(http, thread_id, body) for body in ERROR_COMMANDS]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ours", required=True)
    parser.add_argument("--reference", required=True)
    args = parser.parse_args()
    differing = 0
    for name, (graph, graph_input, answer) in SCENARIOS.items():
        ours = await scenario(args.ours, graph, graph_input, answer)
        ref = await scenario(args.reference, graph, graph_input, answer)
        same_events = ours["events"] == ref["events"]
        same_commands = ours["commands"] == ref["commands"]
        print(f"{name}: events {'same' if same_events else 'DIFFER'} ({len(ours['events'])} vs {len(ref['events'])}),"
              f" commands {'same' if same_commands else 'DIFFER'}; other channels ours {ours['extra']},"
              f" reference {ref['extra']}")  # fmt: skip
        if not same_events:
            differing += 1
            import difflib

            lines = difflib.unified_diff([" ".join(e) for e in ref["events"]], [" ".join(e) for e in ours["events"]],
                                         "reference", "ours", lineterm="", n=1)  # fmt: skip
            print("\n".join("    " + line for line in lines))
        if not same_commands:
            differing += 1
            print(f"    reference {ref['commands']}\n    ours      {ours['commands']}")
    ours_errors, ref_errors = await errors(args.ours), await errors(args.reference)
    for body, mine, theirs in zip(ERROR_COMMANDS, ours_errors, ref_errors, strict=True):
        same = mine == theirs
        differing += not same
        print(f"command {body['method']} {json.dumps(body['params'])}: {'same' if same else 'DIFFER'} "
              f"(ours {mine}, reference {theirs})")  # fmt: skip
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""The garbage collector as the server sets it once started (`robyn_server/gc_tuning.py`), read from inside a
run of a real server process: start-up objects frozen and the server's thresholds, or the interpreter's own
with `ROBYN_SERVER_GC_THRESHOLDS=python`; a malformed value stops the start with one line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from robyn_server import gc_tuning
from tests.server import ServerProcess, refuses_to_start

PROBE = """
import gc
from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    frozen: int
    thresholds: list[int]


def read(state: State) -> State:
    return {"frozen": gc.get_freeze_count(), "thresholds": list(gc.get_threshold())}


builder = StateGraph(State)
builder.add_node("read", read)
builder.add_edge(START, "read")
builder.add_edge("read", END)
graph = builder.compile()
"""


def probe_config(tmp_path: Path) -> Path:
    (tmp_path / "gc_probe.py").write_text(PROBE)
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": {"probe": "./gc_probe.py:graph"}}))
    return config


def gc_state_in_a_run(server: ServerProcess) -> dict:
    response = httpx.post(f"{server.url}/runs/wait", json={"assistant_id": "probe", "input": {}}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("setting", "frozen", "thresholds"),
    [(None, True, list(gc_tuning.DEFAULT_THRESHOLDS)), ("30000,5", True, [30000, 5, 10]),
     ("python", False, [700, 10, 10])],
)  # fmt: skip
def test_the_server_sets_the_collector_once_started(
    tmp_path: Path, setting: str | None, frozen: bool, thresholds: list[int]
) -> None:
    server = ServerProcess(config=probe_config(tmp_path), env={"ROBYN_SERVER_GC_THRESHOLDS": setting}).start()
    try:
        state = gc_state_in_a_run(server)
    finally:
        server.stop()
    assert state["thresholds"] == thresholds
    # frozen: what importing the graphs, LangGraph and the server left (over 100,000 objects); else nothing
    assert (state["frozen"] > 100_000) if frozen else state["frozen"] == 0


@pytest.mark.parametrize("value", ["0,10,10", "a,b", "1,2,3,4", "-5"])
def test_a_malformed_setting_stops_the_start(tmp_path: Path, value: str) -> None:
    server = ServerProcess(config=probe_config(tmp_path), env={"ROBYN_SERVER_GC_THRESHOLDS": value})
    refuses_to_start(server, "ROBYN_SERVER_GC_THRESHOLDS must be 'python' or one to three positive integers")


def test_settings_parse() -> None:
    assert gc_tuning.thresholds_from(None) == gc_tuning.DEFAULT_THRESHOLDS
    assert gc_tuning.thresholds_from(" Python ") is None
    assert gc_tuning.thresholds_from("1000") == (1000,)
    with pytest.raises(ValueError, match="got '7,x'"):
        gc_tuning.thresholds_from("7,x")

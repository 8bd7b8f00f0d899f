"""This server against the official one (`langgraph dev`, pinned in scripts/setup_reference.sh, installed in
.venv-reference/): the same request sequences on the same graphs and auth module, compared after ids and times
are normalised. Every difference must be listed, with its reason, in tests/differential/differences.py.

Without the reference installed the module skips locally and fails in CI (CI=true).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from scripts import protocol_v2_diff as v2
from tests.differential.compare import Difference, Recorder, diff_values, differences, normalised
from tests.differential.differences import KEPT
from tests.differential.reference import LANGGRAPH, ReferenceServer, write_config
from tests.differential.scenarios import run_all
from tests.server import ROOT, ServerProcess


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(reference URL, our URL): both serving the same config, each in memory."""
    if not LANGGRAPH.exists():
        reason = f"the official server is not installed ({LANGGRAPH} missing): run scripts/setup_reference.sh"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = Path(tmp_path_factory.mktemp("reference"))
    config = write_config(folder)
    reference = ReferenceServer(config, folder).launch()  # starts while ours does
    ours = ServerProcess(config=config, env={"ROBYN_SERVER_STORAGE": "memory"})
    ours.env = {k: v for k, v in ours.env.items() if not k.startswith("SUPABASE_")}
    try:
        ours.start()
        reference.wait_ready()
        yield reference.url, ours.url
    finally:
        ours.stop()
        reference.stop()


def test_every_reference_operation_is_served(servers: tuple[str, str]) -> None:
    reference_url, our_url = servers

    def operations(url: str) -> set[tuple[str, str]]:
        paths = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]
        methods = {"get", "post", "put", "patch", "delete"}
        # the reference documents its mounted MCP app as `/mcp/` (which only redirects to `/mcp`)
        return {(m.upper(), p.rstrip("/") or "/") for p, item in paths.items() for m in item if m in methods}

    reference, ours = operations(reference_url), operations(our_url)
    assert len(reference) == 64  # langgraph-api 0.16.7
    assert sorted(reference - ours) == []


def test_same_answers_as_the_reference_or_a_listed_difference(servers: tuple[str, str]) -> None:
    reference_url, our_url = servers
    with ThreadPoolExecutor(2) as pool:
        recorded = list(pool.map(lambda url: run_all(Recorder(url)), (reference_url, our_url)))
    for recorder in recorded:
        recorder.close()
    reference, ours = normalised(recorded[0]), normalised(recorded[1])
    for name, recording in (("reference", reference), ("ours", ours)):
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / f"differential-{name}.json").write_text(json.dumps(recording, indent=1))
    found = list(differences(reference, ours))
    unlisted = [d for d in found if not any(fnmatch(d.where, pattern) for pattern in KEPT)]
    stale = [p for p in KEPT if not any(fnmatch(d.where, p) for d in found)]
    report(found, recorded)
    assert not unlisted, "differences from the reference not in tests/differential/differences.py:\n" + "\n".join(
        map(str, unlisted)
    )
    assert not stale, f"patterns in tests/differential/differences.py that match no difference any more: {stale}"


async def test_protocol_v2_same_events_as_the_reference(servers: tuple[str, str]) -> None:
    """scripts/protocol_v2_diff.py's scenarios and error commands, on both servers at once."""
    reference_url, our_url = servers
    auth = {"Authorization": "Bearer alice"}
    names = list(v2.SCENARIOS)
    runs = [v2.scenario(url, *v2.SCENARIOS[name], headers=auth) for name in names for url in (reference_url, our_url)]
    results = await asyncio.gather(*runs, v2.errors(reference_url, auth), v2.errors(our_url, auth))
    found: list[Difference] = []
    for i, name in enumerate(names):
        ref, ours = results[2 * i], results[2 * i + 1]
        events = ([list(e) for e in ref["events"]], [list(e) for e in ours["events"]])
        found += [Difference(f"v2.{name} events{d.where}", d.reference, d.ours) for d in diff_values("", *events)]
        commands = diff_values("", ref["commands"], ours["commands"])
        found += [Difference(f"v2.{name} commands{d.where}", d.reference, d.ours) for d in commands]
    errors = diff_values("", results[-2], results[-1])
    found += [Difference(f"v2.errors {d.where}", d.reference, d.ours) for d in errors]
    unlisted = [d for d in found if not any(fnmatch(d.where, pattern) for pattern in KEPT)]
    assert not unlisted, "protocol v2 differences not in tests/differential/differences.py:\n" + "\n".join(
        map(str, unlisted)
    )


def report(found: list[Difference], recorded: list[Recorder]) -> None:
    """Every difference and the reason it is kept, and the slowest exchanges, in test-artifacts/differential.txt."""
    lines = []
    for name, recorder in zip(("reference", "ours"), recorded, strict=True):
        slow = sorted(recorder.exchanges, key=lambda e: -e.seconds)[:5]
        lines.append(f"slowest on {name}: " + ", ".join(f"{e.label} {e.seconds:.2f}s" for e in slow))
    for d in found:
        reason = next((KEPT[p] for p in KEPT if fnmatch(d.where, p)), "NOT LISTED")
        lines.append(f"{d}\n    -> {reason}")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "differential.txt").write_text("\n".join(lines) + "\n")

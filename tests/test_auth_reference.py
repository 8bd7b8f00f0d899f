"""The reference's custom auth module (`auth.py`, copied unchanged to tests/graphs/auth_reference.py) against the
reference server's `auth_*` transcripts: same statuses, same bytes (ids and times aside), same key headers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.runs_helpers import TRANSCRIPTS
from tests.server import ROOT, ServerProcess

CONFIG = ROOT / "tests" / "graphs" / "langgraph.auth_reference.json"
AUTH_COPY = ROOT / "tests" / "graphs" / "auth_reference.py"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00")
CASES = sorted(p.name[: -len(".request")] for p in TRANSCRIPTS.glob("auth_*.request"))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess(config=Path(CONFIG), env={"ROBYN_SERVER_STORAGE": "memory"})
    proc.env = {k: v for k, v in proc.env.items() if not k.startswith("SUPABASE_")}
    proc.start()
    yield proc
    proc.stop()


def _normalize(text: str, ids: dict[str, str]) -> str:
    def sub_id(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(0), f"<id{len(ids)}>")

    return TIME.sub("<time>", UUID.sub(sub_id, text))


def _request(name: str) -> tuple[str, str, dict[str, str], bytes | None]:
    lines = (TRANSCRIPTS / f"{name}.request").read_text().splitlines()
    method, path = lines[0].split(" ", 1)
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(": ")
        if key.lower() == "authorization" and value != "<none>":
            headers["Authorization"] = value
    body_path = TRANSCRIPTS / f"{name}.request.json"
    return method, path, headers, body_path.read_bytes() if body_path.exists() else None


def _status_and_headers(name: str) -> tuple[int, dict[str, str]]:
    lines = (TRANSCRIPTS / f"{name}.headers").read_text().splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ": " in line:
            key, value = line.split(": ", 1)
            headers[key.lower()] = value
    return status, headers


def test_the_module_is_the_reference_one_unchanged() -> None:
    reference = TRANSCRIPTS.parent / "auth.py"
    if reference.exists():
        assert AUTH_COPY.read_bytes() == reference.read_bytes()
    assert len(CASES) >= 12


def test_transcripts_replay_byte_for_byte(server: ServerProcess) -> None:
    ref_ids: dict[str, str] = {}
    our_ids: dict[str, str] = {}
    ref_to_ours: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for name in CASES:
            method, path, headers, body = _request(name)
            for ref_id, ours in ref_to_ours.items():
                path = path.replace(ref_id, ours)
            if body is not None:
                headers["content-type"] = "application/json"
            response = client.request(method, path, content=body, headers=headers)
            status, ref_headers = _status_and_headers(name)
            assert response.status_code == status, (name, response.text)
            ref_body = (TRANSCRIPTS / f"{name}.body").read_text() if (TRANSCRIPTS / f"{name}.body").exists() else ""
            if name == "auth_11_info_no_token":
                assert response.status_code == 200 and "version" in response.json()
                continue
            # learn the mapping of the reference's ids to ours from the thread created by alice
            if name == "auth_02_alice_create":
                ref_to_ours[json.loads(ref_body)["thread_id"]] = response.json()["thread_id"]
            assert _normalize(response.text, our_ids) == _normalize(ref_body, ref_ids), name
            for key in ("content-type", "x-pagination-total", "www-authenticate"):
                assert response.headers.get(key) == ref_headers.get(key), (name, key)
            for key in ("location", "content-location"):
                if key in ref_headers:
                    assert _normalize(response.headers[key], our_ids) == _normalize(ref_headers[key], ref_ids)

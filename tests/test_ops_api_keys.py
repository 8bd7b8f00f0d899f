"""API keys (`X-Api-Key`): issued by the CLI, configured as hashes, mapped to identities that go through the
same ownership rules as JWT users; rotation with two keys valid at once, and revocation, without a restart."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jwt
import pytest

from tests.ops_helpers import AGENT_RUN, issue, wait_for
from tests.server import ServerProcess


def write_keys(path: Path, *entries: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(entries)))
    tmp.replace(path)


def test_keys_authenticate_isolate_rotate_and_revoke(tmp_path: Path) -> None:
    key_a, entry_a = issue("svc-a", "runs:write")
    key_b, entry_b = issue("svc-b")
    keys_file = tmp_path / "keys.json"
    write_keys(keys_file, entry_a, entry_b)
    env = {"ROBYN_SERVER_API_KEYS_FILE": str(keys_file), "ROBYN_SERVER_API_KEYS_RELOAD_SECONDS": "0.1"}
    proc = ServerProcess(env=env).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            a, b = {"X-Api-Key": key_a}, {"X-Api-Key": key_b}
            thread = http.post("/threads", json={}, headers=a)
            assert thread.status_code == 200 and thread.json()["metadata"]["owner"] == "svc-a"
            tid = thread.json()["thread_id"]
            assert http.get(f"/threads/{tid}", headers=b).status_code == 404  # another identity's thread
            assert http.post("/threads/search", json={}, headers=b).json() == []
            run = http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN, headers=a)
            assert run.status_code == 200
            stored = http.get(f"/threads/{tid}/runs", headers=a).json()[0]["kwargs"]["config"]["configurable"]
            assert stored["langgraph_auth_user_id"] == "svc-a"
            assert stored["langgraph_auth_permissions"] == ["runs:write"]
            assert "x-supabase-access-token" not in stored

            missing = http.post("/threads", json={})
            assert missing.status_code == 401 and missing.json() == {"detail": "Missing API key (X-Api-Key header)"}
            bad = http.post("/threads", json={}, headers={"X-Api-Key": key_a + "x"})
            assert bad.status_code == 401 and bad.json() == {"detail": "Invalid API key"}

            # rotation: a second key for svc-a, both valid at once
            key_a2, entry_a2 = issue("svc-a", "runs:write")
            write_keys(keys_file, entry_a, entry_b, entry_a2)
            wait_for(lambda: http.get(f"/threads/{tid}", headers={"X-Api-Key": key_a2}).status_code == 200, "new key")
            assert http.get(f"/threads/{tid}", headers=a).status_code == 200
            # revocation of the old key
            write_keys(keys_file, entry_b, entry_a2)
            revoked = wait_for(
                lambda: (r := http.get(f"/threads/{tid}", headers=a)).status_code == 401 and r, "old key revoked"
            )
            assert revoked.json() == {"detail": "Invalid API key"}
            assert http.get(f"/threads/{tid}", headers={"X-Api-Key": key_a2}).status_code == 200
            # a broken edit keeps the last good keys
            keys_file.write_text("[{not json")
            assert http.get(f"/threads/{tid}", headers={"X-Api-Key": key_a2}).status_code == 200
        log = proc.log_path.read_text()
        assert key_a not in log and key_a2 not in log and key_b not in log
    finally:
        proc.stop()


def test_keys_beside_supabase_jwts() -> None:
    secret = "ops-keys-secret-0123456789abcdef0123456789abcdef"
    key, entry = issue("svc-jobs")
    env = {"SUPABASE_JWT_SECRET": secret, "ROBYN_SERVER_API_KEYS": json.dumps([entry])}
    proc = ServerProcess(env=env).start()
    try:
        token = jwt.encode({"sub": "user-1", "aud": "authenticated", "exp": 4102444800}, secret, algorithm="HS256")
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            by_key = http.post("/threads", json={}, headers={"X-Api-Key": key})
            by_jwt = http.post("/threads", json={}, headers={"Authorization": f"Bearer {token}"})
            assert by_key.json()["metadata"]["owner"] == "svc-jobs" and by_jwt.json()["metadata"]["owner"] == "user-1"
            tid = by_key.json()["thread_id"]
            assert http.get(f"/threads/{tid}", headers={"Authorization": f"Bearer {token}"}).status_code == 404
            assert http.post("/threads", json={}).status_code == 401  # neither: the JWT rules answer
            assert http.post("/threads", json={}, headers={"X-Api-Key": "nope"}).json() == {"detail": "Invalid API key"}
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"identity": "x", "key": "rsk_plain"}]', "holds a key in clear"),
        ('[{"identity": "x", "key_sha256": "abc"}]', "must be 64 hex digits"),
        ("{nope", "ROBYN_SERVER_API_KEYS is not valid JSON"),
    ],
)
def test_bad_key_configuration_stops_the_start(value: str, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        ServerProcess(env={"ROBYN_SERVER_API_KEYS": value}).start()

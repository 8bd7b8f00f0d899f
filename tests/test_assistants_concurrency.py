"""Concurrent `PATCH /assistants/{id}` against the session server: no lost metadata, no duplicate versions."""

from __future__ import annotations

import asyncio

import httpx

CONCURRENT_PATCHES = 20


async def test_concurrent_patches_keep_all_metadata_keys_and_unique_versions(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        created = await http.post("/assistants", json={"graph_id": "agent", "metadata": {"base": True}})
        assert created.status_code == 200, created.text
        assistant_id = created.json()["assistant_id"]
        try:
            responses = await asyncio.gather(
                *(
                    http.patch(f"/assistants/{assistant_id}", json={"metadata": {f"k{i}": i}})
                    for i in range(CONCURRENT_PATCHES)
                )
            )
            assert [r.status_code for r in responses] == [200] * CONCURRENT_PATCHES
            expected_versions = list(range(2, CONCURRENT_PATCHES + 2))
            assert sorted(r.json()["version"] for r in responses) == expected_versions

            current = (await http.get(f"/assistants/{assistant_id}")).json()
            assert current["metadata"] == {"base": True, **{f"k{i}": i for i in range(CONCURRENT_PATCHES)}}
            assert current["version"] == CONCURRENT_PATCHES + 1

            resp = await http.post(f"/assistants/{assistant_id}/versions", json={"limit": 100})
            assert resp.status_code == 200, resp.text
            versions = [v["version"] for v in resp.json()]
            assert len(versions) == len(set(versions)) == CONCURRENT_PATCHES + 1
            assert sorted(v for v in versions if v != 1) == expected_versions
        finally:
            await http.delete(f"/assistants/{assistant_id}")

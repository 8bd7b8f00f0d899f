"""In-memory storage: the semantics every backend must match, and the explicit choice for tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langgraph.store.memory import InMemoryStore

from robyn_server.storage.base import (
    Record,
    RunLimitReached,
    Storage,
    patched_assistant,
    pick_next_run,
    run_creator,
    start_at_creation,
    thread_for_run,
)
from robyn_server.storage.checkpoint_metadata import MemoryCheckpointer
from robyn_server.storage.crons import MemoryCrons
from robyn_server.storage.filters import contains, sort_and_page


class MemoryStorage(MemoryCrons, Storage):
    """Dicts in this process, LangGraph's in-memory checkpointer and store."""

    kind = "memory"

    def __init__(self) -> None:
        self.checkpointer = MemoryCheckpointer()
        self.store = InMemoryStore()
        self._assistants: dict[str, Record] = {}
        self._versions: dict[str, list[Record]] = {}
        self._threads: dict[str, Record] = {}
        self._runs: dict[str, Record] = {}
        self._thread_index: dict[str, dict[str, Record]] = {}  # thread id -> its runs (the same records)
        self._owners: dict[str, str | None] = {}
        self._ttls: dict[str, Record] = {}
        self._instances: dict[str, Record] = {}
        self._crons: dict[str, Record] = {}

    # assistants ---------------------------------------------------------------------------
    async def assistant_put(self, assistant: Record) -> None:
        self._assistants[assistant["assistant_id"]] = dict(assistant)
        self._versions[assistant["assistant_id"]] = [dict(assistant)]

    async def assistant_get(self, assistant_id: str) -> Record | None:
        found = self._assistants.get(assistant_id)
        return dict(found) if found else None

    async def assistant_add_version(self, assistant: Record) -> None:
        self._assistants[assistant["assistant_id"]] = dict(assistant)
        self._versions.setdefault(assistant["assistant_id"], []).append(dict(assistant))

    async def assistant_patch(
        self, assistant_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        # No await between the read and the write, so no other task can interleave. A new record and a new
        # metadata dict, never mutated in place: earlier snapshots and stored versions share the old ones.
        found = self._assistants.get(assistant_id)
        if found is None:
            return None
        versions = self._versions.setdefault(assistant_id, [])
        latest = max([v["version"] for v in versions] + [found["version"]])
        updated = patched_assistant(found, fields, metadata_patch, latest + 1)
        self._assistants[assistant_id] = updated
        versions.append(dict(updated))
        return dict(updated)

    async def assistant_delete(self, assistant_id: str) -> bool:
        self._versions.pop(assistant_id, None)
        return self._assistants.pop(assistant_id, None) is not None

    async def assistant_search(
        self,
        *,
        graph_id: str | None,
        name: str | None,
        metadata: dict[str, Any] | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        items = [
            dict(a)
            for a in self._assistants.values()
            if (graph_id is None or a["graph_id"] == graph_id)
            and (name is None or name.lower() in (a.get("name") or "").lower())
            and (not metadata or contains(a.get("metadata") or {}, metadata))
        ]
        return sort_and_page(items, sort_by, sort_order, limit, offset)

    async def assistant_versions(
        self, assistant_id: str, metadata: dict[str, Any] | None, limit: int, offset: int
    ) -> list[Record]:
        versions = [
            dict(v)
            for v in reversed(self._versions.get(assistant_id, []))
            if not metadata or contains(v.get("metadata") or {}, metadata)
        ]
        return versions[offset : offset + limit]

    async def assistant_set_latest(self, assistant_id: str, version: int) -> Record | None:
        for v in self._versions.get(assistant_id, []):
            if v["version"] == version:
                self._assistants[assistant_id] = dict(v)
                return dict(v)
        return None

    # threads ------------------------------------------------------------------------------
    async def thread_put(self, thread: Record) -> None:
        self._threads[thread["thread_id"]] = dict(thread)

    async def thread_get(self, thread_id: str) -> Record | None:
        found = self._threads.get(thread_id)
        return dict(found) if found else None

    async def thread_update(self, thread_id: str, fields: dict[str, Any]) -> Record | None:
        found = self._threads.get(thread_id)
        if found is None:
            return None
        found.update(fields)
        return dict(found)

    async def thread_merge_metadata(
        self, thread_id: str, patch: dict[str, Any], fields: dict[str, Any] | None = None
    ) -> Record | None:
        # No await between the read and the write, so no other task can interleave. A new metadata dict,
        # never mutated in place: earlier snapshots handed out share the old one.
        found = self._threads.get(thread_id)
        if found is None:
            return None
        found.update({k: v for k, v in (fields or {}).items() if k != "metadata"})
        found["metadata"] = {**(found.get("metadata") or {}), **patch}
        return dict(found)

    async def thread_delete(self, thread_id: str) -> bool:
        existed = self._threads.pop(thread_id, None) is not None
        self._ttls.pop(thread_id, None)
        self._drop_thread_crons(thread_id)
        for run_id in self._thread_index.pop(thread_id, {}):
            del self._runs[run_id]
            self._owners.pop(run_id, None)
        await self.checkpointer.adelete_thread(thread_id)
        return existed

    async def thread_search(
        self,
        *,
        ids: list[str] | None,
        metadata: dict[str, Any] | None,
        values: dict[str, Any] | None,
        status: str | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]:
        wanted = set(ids) if ids else None
        items = [
            dict(t)
            for t in self._threads.values()
            if (wanted is None or t["thread_id"] in wanted)
            and (status is None or t["status"] == status)
            and (not metadata or contains(t.get("metadata") or {}, metadata))
            and (not values or contains(t.get("values") or {}, values))
        ]
        return sort_and_page(items, sort_by, sort_order, limit, offset)

    # runs ---------------------------------------------------------------------------------
    async def run_put(self, run: Record) -> None:
        self._owners.setdefault(run["run_id"], self.instance_id)
        self._insert_run(dict(run))

    async def run_get(self, run_id: str) -> Record | None:
        found = self._runs.get(run_id)
        return dict(found) if found else None

    async def run_update(self, run_id: str, fields: dict[str, Any]) -> Record | None:
        found = self._runs.get(run_id)
        if found is None:
            return None
        found.update(fields)
        return dict(found)

    async def run_delete(self, run_id: str) -> bool:
        self._owners.pop(run_id, None)
        run = self._runs.pop(run_id, None)
        if run is None:
            return False
        runs = self._thread_index.get(run["thread_id"])
        if runs is not None:
            runs.pop(run_id, None)
            if not runs:
                del self._thread_index[run["thread_id"]]
        return True

    def _insert_run(self, run: Record) -> None:
        self._runs[run["run_id"]] = run
        self._thread_index.setdefault(run["thread_id"], {})[run["run_id"]] = run

    async def run_list(self, thread_id: str, *, limit: int, offset: int, status: str | None = None) -> list[Record]:
        runs = [dict(r) for r in self._thread_runs(thread_id) if status is None or r["status"] == status]
        runs.sort(key=lambda r: r["created_at"], reverse=True)
        return runs[offset : offset + limit]

    async def run_list_by_status(self, statuses: list[str]) -> list[Record]:
        return [dict(r) for r in self._runs.values() if r["status"] in statuses]

    # run engine ---------------------------------------------------------------------------
    # No await inside these methods, so each is atomic with respect to every other task.
    def _thread_runs(self, thread_id: str) -> list[Record]:
        return list(self._thread_index.get(thread_id, {}).values())

    async def run_create(
        self,
        run: Record,
        thread_metadata: dict[str, Any],
        thread_fields: dict[str, Any],
        *,
        reject: bool,
        max_creator_runs: int = 0,
        start_at: datetime | None = None,
        new_thread: Record | None = None,
    ) -> list[Record] | None:
        # no await from the count to the insert: one step of the event loop, so atomic in this process
        inflight = [dict(r) for r in self._thread_runs(run["thread_id"]) if r["status"] in ("pending", "running")]
        if reject and inflight:
            return None
        creator = run_creator(run) if max_creator_runs > 0 else None
        if creator is not None:
            mine = sum(r["status"] in ("pending", "running") and run_creator(r) == creator for r in self._runs.values())
            if mine >= max_creator_runs:
                raise RunLimitReached(creator)
        start_at_creation(run, inflight, start_at)
        self._owners[run["run_id"]] = self.instance_id
        self._insert_run(dict(run))
        thread = self._threads.get(run["thread_id"])
        if thread is None and new_thread is not None:
            thread = self._threads[run["thread_id"]] = dict(new_thread)
        if thread is not None:
            thread.update(thread_for_run(thread, thread_fields, thread_metadata))
        inflight.sort(key=lambda r: r["created_at"])
        return inflight

    async def run_start_next(self, thread_id: str, owner: str, at: datetime) -> tuple[Record | None, datetime | None]:
        run, wake = pick_next_run(self._thread_runs(thread_id), at)
        if run is None:
            return None, wake
        run.update({"status": "running", "updated_at": at})
        self._owners[run["run_id"]] = owner
        return dict(run), None

    async def run_cancel_pending(self, run_id: str, fields: dict[str, Any] | None) -> Record | None:
        found = self._runs.get(run_id)
        if found is None or found["status"] != "pending":
            return None
        if fields is None:
            await self.run_delete(run_id)
        else:
            found.update(fields)
        return dict(found)

    async def run_inflight(self, thread_id: str) -> list[Record]:
        runs = [dict(r) for r in self._thread_runs(thread_id) if r["status"] in ("pending", "running")]
        runs.sort(key=lambda r: r["created_at"])
        return runs

    async def run_finish(
        self, thread_id: str, run_id: str, thread_fields: dict[str, Any], run_fields: dict[str, Any] | None
    ) -> None:
        thread = self._threads.get(thread_id)
        if thread is not None:
            thread.update(thread_fields)
            others = (r for r in self._thread_runs(thread_id) if r["run_id"] != run_id)
            if any(r["status"] in ("pending", "running") for r in others):
                thread["status"] = "busy"
        run = self._runs.get(run_id)
        if run is not None and run_fields is not None:
            run.update(run_fields)

    # run ownership ------------------------------------------------------------------------
    async def run_list_inflight(self) -> list[tuple[Record, str | None]]:
        inflight = [r for r in self._runs.values() if r["status"] in ("pending", "running")]
        inflight.sort(key=lambda r: r["created_at"])
        return [(dict(r), self._owners.get(r["run_id"])) for r in inflight]

    async def run_owner(self, run_id: str) -> str | None:
        return self._owners.get(run_id) if run_id in self._runs else None

    async def run_claim(self, run_id: str, owner: str | None, new_owner: str) -> bool:
        if run_id not in self._runs or self._owners.get(run_id) != owner:
            return False
        self._owners[run_id] = new_owner
        return True

    async def instance_beat(self, instance_id: str, host: str, pid: int, at: datetime) -> None:
        self._instances[instance_id] = {"instance_id": instance_id, "host": host, "pid": pid, "heartbeat_at": at}

    async def instance_forget(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    async def instance_list(self) -> list[Record]:
        return [dict(i) for i in self._instances.values()]

    # thread TTL ---------------------------------------------------------------------------
    async def thread_set_ttl(self, thread_id: str, ttl: Record | None) -> None:
        if ttl is None:
            self._ttls.pop(thread_id, None)
        elif thread_id in self._threads:
            self._ttls[thread_id] = dict(ttl)

    async def thread_get_ttl(self, thread_id: str) -> Record | None:
        found = self._ttls.get(thread_id)
        return dict(found) if found else None

    async def thread_expired(self, at: datetime, limit: int = 100) -> list[tuple[str, str]]:
        due = sorted((t["expires_at"], i, t["strategy"]) for i, t in self._ttls.items() if t["expires_at"] <= at)
        return [(i, strategy) for _, i, strategy in due[:limit]]

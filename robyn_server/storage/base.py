"""The storage contract every backend implements (memory here; SQLite and Postgres build on it).

Records are plain dicts shaped like the API's JSON (datetimes as `datetime`), so routes return them as-is.
Callers treat returned records as read-only snapshots.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

Record = dict[str, Any]

# Keys `Storage.assistant_patch` never takes from `fields`: the id is fixed, the version is computed, and
# metadata is merged from `metadata_patch`.
_ASSISTANT_PATCH_FIXED = frozenset({"assistant_id", "version", "metadata"})


def patched_assistant(
    current: Record, fields: dict[str, Any], metadata_patch: dict[str, Any] | None, version: int
) -> Record:
    """The new version `assistant_patch` stores: a new dict (`current` and its metadata are left untouched)."""
    updated = {**current, **{k: v for k, v in fields.items() if k not in _ASSISTANT_PATCH_FIXED}}
    if metadata_patch is not None:
        updated["metadata"] = {**(current.get("metadata") or {}), **metadata_patch}
    updated["version"] = version
    return updated


class Storage(ABC):
    """Assistants, threads and runs, plus the LangGraph checkpointer and store that share their lifetime."""

    checkpointer: BaseCheckpointSaver
    store: BaseStore
    kind: str = "storage"
    store_options: dict[str, Any] = {}  # `index`/`ttl` for LangGraph's store, set by store_config.configure

    async def setup(self) -> None:  # noqa: B027 - optional hook, a no-op for backends without connections
        """Open connections and apply migrations."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @property
    def instance_id(self) -> str:
        """This server process's id: stored with the runs it creates, so crash recovery knows their owner."""
        found = self.__dict__.get("_instance_id")
        if found is None:
            found = self.__dict__["_instance_id"] = uuid.uuid4().hex
        return found

    async def ping(self) -> dict[str, Any]:
        """Check the database answers; returns what `GET /ok?check_db=1` reports (raises when it is down)."""
        return {"backend": self.kind}

    # assistants ---------------------------------------------------------------------------
    @abstractmethod
    async def assistant_put(self, assistant: Record) -> None: ...

    @abstractmethod
    async def assistant_get(self, assistant_id: str) -> Record | None: ...

    @abstractmethod
    async def assistant_add_version(self, assistant: Record) -> None:
        """Store `assistant` as its new current version (its `version` already incremented)."""

    @abstractmethod
    async def assistant_patch(
        self, assistant_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        """Atomically add a new version and make it current: the current assistant with `fields` set (never
        `assistant_id`, `version` or `metadata`), `metadata_patch` merged into its metadata (top-level keys) and
        `version` one above the highest stored version, so concurrent patches neither lose each other's keys nor
        share a version number. Returns the new version; None when the assistant is missing."""

    @abstractmethod
    async def assistant_delete(self, assistant_id: str) -> bool: ...

    @abstractmethod
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
    ) -> tuple[list[Record], int]: ...

    @abstractmethod
    async def assistant_versions(
        self, assistant_id: str, metadata: dict[str, Any] | None, limit: int, offset: int
    ) -> list[Record]: ...

    @abstractmethod
    async def assistant_set_latest(self, assistant_id: str, version: int) -> Record | None: ...

    # threads ------------------------------------------------------------------------------
    @abstractmethod
    async def thread_put(self, thread: Record) -> None: ...

    @abstractmethod
    async def thread_get(self, thread_id: str) -> Record | None: ...

    @abstractmethod
    async def thread_update(self, thread_id: str, fields: dict[str, Any]) -> Record | None: ...

    @abstractmethod
    async def thread_merge_metadata(
        self, thread_id: str, patch: dict[str, Any], fields: dict[str, Any] | None = None
    ) -> Record | None:
        """Atomically set `fields` (never `metadata`) and merge `patch` into the stored metadata (top-level keys,
        like `{**metadata, **patch}`), so concurrent merges of different keys all survive. None when missing."""

    @abstractmethod
    async def thread_delete(self, thread_id: str) -> bool:
        """Delete the thread with its runs and checkpoints."""

    @abstractmethod
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
    ) -> tuple[list[Record], int]: ...

    # runs ---------------------------------------------------------------------------------
    @abstractmethod
    async def run_put(self, run: Record) -> None: ...

    @abstractmethod
    async def run_get(self, run_id: str) -> Record | None: ...

    @abstractmethod
    async def run_update(self, run_id: str, fields: dict[str, Any]) -> Record | None: ...

    @abstractmethod
    async def run_delete(self, run_id: str) -> bool: ...

    @abstractmethod
    async def run_list(self, thread_id: str, *, limit: int, offset: int, status: str | None = None) -> list[Record]:
        """Runs of a thread, newest first."""

    @abstractmethod
    async def run_list_by_status(self, statuses: list[str]) -> list[Record]: ...

    # run ownership (crash recovery) -------------------------------------------------------
    @abstractmethod
    async def run_list_inflight(self) -> list[tuple[Record, str | None]]:
        """`pending` and `running` runs, oldest first, each with the instance id of the process that owns it."""

    @abstractmethod
    async def run_claim(self, run_id: str, owner: str | None, new_owner: str) -> bool:
        """Move a run from `owner` to `new_owner` if `owner` still holds it (compare-and-set)."""

    @abstractmethod
    async def instance_beat(self, instance_id: str, host: str, pid: int, at: datetime) -> None:
        """Record that server process `pid` on `host`, known as `instance_id`, is alive at `at`."""

    @abstractmethod
    async def instance_forget(self, instance_id: str) -> None:
        """The process `instance_id` stopped (cleanly, or was found dead)."""

    @abstractmethod
    async def instance_list(self) -> list[Record]:
        """Known server processes: `{"instance_id", "host", "pid", "heartbeat_at"}`."""

    # thread TTL ---------------------------------------------------------------------------
    @abstractmethod
    async def thread_set_ttl(self, thread_id: str, ttl: Record | None) -> None:
        """Set (`{"strategy", "ttl_minutes", "expires_at"}`) or clear the thread's time to live."""

    @abstractmethod
    async def thread_get_ttl(self, thread_id: str) -> Record | None: ...

    @abstractmethod
    async def thread_expired(self, at: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """`(thread_id, strategy)` of threads whose TTL expired at or before `at`, soonest first."""

"""The storage contract every backend implements (memory here; SQLite and Postgres build on it).

Records are plain dicts shaped like the API's JSON (datetimes as `datetime`), so routes return them as-is.
Callers treat returned records as read-only snapshots.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

Record = dict[str, Any]
# Computes a cron's next run date after a datetime (the scheduler's croniter rule, handed to `cron_claim_due`).
NextRun = Callable[[Record, datetime], datetime]

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


class RunLimitReached(Exception):
    """`run_create` stored nothing: the run's creator already has `max_creator_runs` pending or running runs."""


def run_creator(run: Record) -> str | None:
    """The identity that created a run (its stored `langgraph_auth_user_id`), None without auth."""
    configurable = ((run.get("kwargs") or {}).get("config") or {}).get("configurable") or {}
    return configurable.get("langgraph_auth_user_id") or None


# Where `run_creator` is in a stored run's JSON doc (records.Layout keeps non-column keys under `rest`).
RUN_CREATOR_PATH = ("rest", "kwargs", "config", "configurable", "langgraph_auth_user_id")


def run_due_at(run: Record) -> datetime:
    """When a pending run may start: its creation plus its `after_seconds` delay."""
    configurable = ((run.get("kwargs") or {}).get("config") or {}).get("configurable") or {}
    delay = configurable.get("__after_seconds__") or 0
    return run["created_at"] + timedelta(seconds=float(delay))


def start_at_creation(run: Record, inflight: list[Record], at: datetime | None) -> None:
    """For `run_create(start_at=...)`: a run created on a thread with no run in flight, and due, is the one
    `run_start_next` would start next, so it is stored `running` (claimed by the creating instance) at once,
    which saves the start's own transaction."""
    if at is not None and not inflight and run_due_at(run) <= at:
        run.update({"status": "running", "updated_at": at})


def thread_for_run(thread: Record, thread_fields: dict[str, Any], thread_metadata: dict[str, Any]) -> Record:
    """The thread as `run_create` leaves it: `thread_fields` set and `thread_metadata` merged into its metadata."""
    return {**thread, **thread_fields, "metadata": {**(thread.get("metadata") or {}), **thread_metadata}}


def pick_next_run(runs: list[Record], at: datetime) -> tuple[Record | None, datetime | None]:
    """The run a free thread starts next: the oldest due `pending` run (enqueue order), none while a run of the
    thread is `running`. Also returns when the earliest not-yet-due run becomes due (to set a timer)."""
    if any(r["status"] == "running" for r in runs):
        return None, None
    wake: datetime | None = None
    for run in sorted((r for r in runs if r["status"] == "pending"), key=lambda r: r["created_at"]):
        due = run_due_at(run)
        if due <= at:
            return run, None
        wake = due if wake is None else min(wake, due)
    return None, wake


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
        """Delete the thread with its runs, crons and checkpoints."""

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

    # run engine: atomic steps that hold across processes --------------------------------
    @abstractmethod
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
        """In one transaction that locks the thread: read its `pending`/`running` runs; with `reject` and any
        found, store nothing and return None; else store `run` (owned by this instance), merge
        `thread_metadata` into the thread's metadata, set `thread_fields`, and return the runs found.
        With `new_thread` (the run's thread when the caller found none), the thread is inserted by the same
        transaction when it still does not exist (then with nothing in flight; an existing one is kept), so a
        new thread and its first run are stored together or not at all.
        With `start_at` (this instance executes runs), a due run on a thread with none in flight is stored
        `running` instead of `pending` (`start_at_creation`, which updates `run`).
        With `max_creator_runs` > 0 and a creator (`run_creator`), the creator's `pending`/`running` runs on
        every thread are counted in the same transaction, under a lock per creator that holds across
        processes; at the maximum nothing is stored and `RunLimitReached` is raised."""

    @abstractmethod
    async def run_start_next(self, thread_id: str, owner: str, at: datetime) -> tuple[Record | None, datetime | None]:
        """In one transaction that locks the thread: when none of its runs is `running`, mark the oldest due
        `pending` run `running`, owned by `owner`, and return it (see `pick_next_run`); also return when the
        next delayed run becomes due."""

    @abstractmethod
    async def run_cancel_pending(self, run_id: str, fields: dict[str, Any] | None) -> Record | None:
        """If the run is still `pending`: set `fields` on it (None deletes it) and return it, else None."""

    @abstractmethod
    async def run_inflight(self, thread_id: str) -> list[Record]:
        """The thread's `pending` and `running` runs, oldest first, in one query."""

    @abstractmethod
    async def run_finish(
        self, thread_id: str, run_id: str, thread_fields: dict[str, Any], run_fields: dict[str, Any] | None
    ) -> None:
        """In one transaction that locks the thread: set `thread_fields` on the thread, with `status` `busy`
        instead when a `pending` or `running` run other than `run_id` remains (one created meanwhile included),
        then `run_fields` on the run (None leaves it alone). So a run's end never marks a thread idle that has
        another run to do, and whoever sees the run ended sees the thread as the run left it."""

    # run ownership (crash recovery) -------------------------------------------------------
    @abstractmethod
    async def run_list_inflight(self) -> list[tuple[Record, str | None]]:
        """`pending` and `running` runs, oldest first, each with the instance id of the process that owns it."""

    @abstractmethod
    async def run_owner(self, run_id: str) -> str | None:
        """The instance id of the process that owns the run (None: nobody, or no such run)."""

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

    # crons --------------------------------------------------------------------------------
    @abstractmethod
    async def cron_put(self, cron: Record) -> None:
        """Store a new cron (`cron_id`, `assistant_id`, `thread_id`, `user_id`, `enabled`, `next_run_date`, ...)."""

    @abstractmethod
    async def cron_get(self, cron_id: str) -> Record | None: ...

    @abstractmethod
    async def cron_update(
        self, cron_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        """Atomically set `fields` and merge `metadata_patch` into the cron's metadata. None when missing."""

    @abstractmethod
    async def cron_delete(self, cron_id: str) -> bool: ...

    @abstractmethod
    async def cron_search(
        self,
        *,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: dict[str, Any] | None,
        limit: int,
        offset: int,
        sort_by: str,
        sort_order: str,
    ) -> tuple[list[Record], int]: ...

    @abstractmethod
    async def cron_claim_due(self, at: datetime, next_run: NextRun, limit: int = 100) -> list[Record]:
        """Claim the enabled crons due at `at` (`next_run_date <= at`, `end_time` unset or not passed): in one
        transaction each claimed cron's `next_run_date` becomes `next_run(cron, at)`, so with any number of
        processes on one database each due date is handed out exactly once. Returns the crons as they were
        before the claim (their `next_run_date` is the date that fired)."""

    @abstractmethod
    async def cron_next_due(self, at: datetime) -> datetime | None:
        """The earliest `next_run_date` of an enabled cron that will still fire after `at` (not beyond its
        `end_time`): the scheduler's alarm."""

"""Cron storage shared by the backends: the table layout and the in-memory implementation.

A cron's `enabled` flag lives in a JSON column (true/false), so the SQL backends filter it as JSON and the
shared record codec needs no boolean kind. Claiming due crons advances `next_run_date` in the same atomic step
that selects them, which is what makes a due date fire exactly once across processes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from robyn_server.storage.base import NextRun, Record
from robyn_server.storage.filters import contains, sort_and_page
from robyn_server.storage.records import Layout

CRONS = Layout(
    "cron_id",
    {
        "assistant_id": "text",
        "thread_id": "text",
        "user_id": "text",
        "enabled": "json",
        "next_run_date": "time",
        "end_time": "time",
        "created_at": "time",
        "updated_at": "time",
        "metadata": "json",
    },
)
CRON_SORT_FIELDS = ("cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at")
# Keys `cron_update` never takes from `fields`.
_FIXED = frozenset({"cron_id", "metadata"})


def updated_cron(current: Record, fields: dict[str, Any], metadata_patch: dict[str, Any] | None) -> Record:
    """A new record: `current` with `fields` set and `metadata_patch` merged (top-level keys)."""
    updated = {**current, **{k: v for k, v in fields.items() if k not in _FIXED}}
    if metadata_patch is not None:
        updated["metadata"] = {**(current.get("metadata") or {}), **metadata_patch}
    return updated


def is_due(cron: Record, at: datetime) -> bool:
    """Enabled, its next run date reached, and its end time (if any) not passed."""
    if cron.get("enabled") is not True or cron.get("next_run_date") is None:
        return False
    end = cron.get("end_time")
    return cron["next_run_date"] <= at and (end is None or end >= at)


def is_pending(cron: Record, at: datetime) -> bool:
    """Enabled and will still fire (its next run date not beyond its end time, which has not passed)."""
    end = cron.get("end_time")
    return (
        cron.get("enabled") is True
        and cron.get("next_run_date") is not None
        and (end is None or (end >= at and cron["next_run_date"] <= end))
    )


class MemoryCrons:
    """The cron methods of MemoryStorage (no await between read and write, so each call is atomic)."""

    _crons: dict[str, Record]

    async def cron_put(self, cron: Record) -> None:
        self._crons[cron["cron_id"]] = dict(cron)

    async def cron_get(self, cron_id: str) -> Record | None:
        found = self._crons.get(cron_id)
        return dict(found) if found else None

    async def cron_update(
        self, cron_id: str, fields: dict[str, Any], metadata_patch: dict[str, Any] | None = None
    ) -> Record | None:
        found = self._crons.get(cron_id)
        if found is None:
            return None
        updated = self._crons[cron_id] = updated_cron(found, fields, metadata_patch)
        return dict(updated)

    async def cron_delete(self, cron_id: str) -> bool:
        return self._crons.pop(cron_id, None) is not None

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
    ) -> tuple[list[Record], int]:
        items = [
            dict(c)
            for c in self._crons.values()
            if (assistant_id is None or c["assistant_id"] == assistant_id)
            and (thread_id is None or c.get("thread_id") == thread_id)
            and (enabled is None or c.get("enabled") is enabled)
            and (not metadata or contains(c.get("metadata") or {}, metadata))
        ]
        return sort_and_page(items, sort_by, sort_order, limit, offset)

    async def cron_claim_due(self, at: datetime, next_run: NextRun, limit: int = 100) -> list[Record]:
        due = sorted((c for c in self._crons.values() if is_due(c, at)), key=lambda c: c["next_run_date"])[:limit]
        claimed = [dict(c) for c in due]
        for cron in due:
            cron["next_run_date"] = next_run(cron, at)
        return claimed

    async def cron_next_due(self, at: datetime) -> datetime | None:
        return min((c["next_run_date"] for c in self._crons.values() if is_pending(c, at)), default=None)

    def _drop_thread_crons(self, thread_id: str) -> None:
        for cron_id in [i for i, c in self._crons.items() if c.get("thread_id") == thread_id]:
            del self._crons[cron_id]

"""Request bodies of the cron routes (the reference's CronCreate, ThreadCronCreate, CronPatch, CronSearch)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from robyn_server.schemas import Config, SortOrder, StreamModeName, _Body

CronSortBy = Literal["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"]
CRON_FIELDS = {
    "cron_id", "assistant_id", "thread_id", "user_id", "end_time", "schedule", "timezone", "payload",
    "next_run_date", "metadata", "on_run_completed", "enabled", "created_at", "updated_at",
}  # fmt: skip


class _CronRun(_Body):
    """What each run of the cron is created with."""

    input: Any = None
    metadata: dict[str, Any] | None = None
    config: Config | None = None
    context: dict[str, Any] | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    stream_mode: StreamModeName | list[StreamModeName] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    checkpoint_during: bool | None = None


class CronCreate(_CronRun):
    schedule: str
    assistant_id: str
    timezone: str | None = None
    end_time: datetime | None = None
    on_run_completed: Literal["delete", "keep"] = "delete"
    enabled: bool = True


class ThreadCronCreate(_CronRun):
    schedule: str
    assistant_id: str
    timezone: str | None = None
    end_time: datetime | None = None
    multitask_strategy: Literal["reject", "rollback", "interrupt", "enqueue"] | None = None
    enabled: bool = True


class CronPatch(_CronRun):
    schedule: str | None = None
    timezone: str | None = None
    end_time: datetime | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: bool | None = None


class CronSearch(_Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: CronSortBy | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class CronCount(_Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: dict[str, Any] | None = None

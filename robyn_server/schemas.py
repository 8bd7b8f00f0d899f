"""Request bodies of the LangGraph Server API as pydantic models (validation and the OpenAPI document).

Unknown top-level fields are accepted like the reference (the SDK sends some the server has no use for);
known fields this server does not implement are refused with 422 rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

StreamModeName = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints", "tools"
]
SortOrder = Literal["asc", "desc", "ASC", "DESC"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class Config(_Body):
    tags: list[str] | None = None
    recursion_limit: int | None = None
    configurable: dict[str, Any] | None = None


class AssistantCreate(_Body):
    graph_id: str
    assistant_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(_Body):
    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class AssistantCount(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None


class AssistantVersions(_Body):
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class AssistantLatest(_Body):
    version: int


class ThreadCreate(_Body):
    thread_id: str | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: dict[str, Any] | None = None
    supersteps: list[dict[str, Any]] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] | None = None
    ttl: dict[str, Any] | None = None


ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


class ThreadSearch(_Body):
    ids: list[str] | None = None
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None
    extract: dict[str, str] | None = None
    exclude_metadata: dict[str, Any] | None = None


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    exclude_metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatus | None = None


class CheckpointRef(_Body):
    checkpoint_id: str | None = None
    checkpoint_ns: str | None = ""
    thread_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class ThreadStateUpdate(_Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None


class ThreadStateCheckpoint(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class ThreadHistory(_Body):
    limit: int = Field(1, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: list[str] | None = None


class ThreadPrune(_Body):
    thread_ids: list[str]
    strategy: Literal["delete", "keep_latest"] = "delete"


class Command(_Body):
    update: dict[str, Any] | list[Any] | None = None
    resume: Any = None
    goto: Any = None


class RunCreateStateless(_Body):
    assistant_id: str
    input: Any = None
    command: Command | None = None
    metadata: dict[str, Any] | None = None
    config: Config | None = None
    context: dict[str, Any] | None = None
    webhook: str | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    on_completion: Literal["delete", "keep"] = "delete"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    after_seconds: float | None = Field(None, ge=0)
    feedback_keys: list[str] | None = None
    checkpoint_during: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    langsmith_tracer: dict[str, Any] | None = None

    @field_validator("feedback_keys")
    @classmethod
    def _no_feedback(cls, value: list[str] | None) -> list[str] | None:
        if value:
            raise ValueError("feedback_keys need LangSmith, which this server does not use")
        return value

    @field_validator("langsmith_tracer")
    @classmethod
    def _no_tracer(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value:
            raise ValueError("langsmith_tracer is not supported by this server")
        return value


class RunCreateStateful(RunCreateStateless):
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_completion: Literal["delete", "keep"] = "keep"


class RunsCancel(_Body):
    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


class StorePut(_Body):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None


class StoreDelete(_Body):
    namespace: list[str]
    key: str


class StoreSearch(_Body):
    namespace_prefix: list[str] | None = None
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(_Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)

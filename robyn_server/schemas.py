"""Request bodies of the LangGraph Server API as pydantic models (validation and the OpenAPI document).

Unknown top-level fields are accepted like the reference (the SDK sends some the server has no use for);
known fields this server does not implement are refused with 422 rather than silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

StreamModeName = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints", "tools"
]
SortOrder = Literal["asc", "desc", "ASC", "DESC"]

# Bounds every backend can store and use (Postgres INTEGER columns, SQLite's and JSON's 64-bit integers).
MAX_INT32 = 2**31 - 1
MAX_JSON_DEPTH = 100  # request bodies nested deeper are refused (the JSON encoder stops at 254 levels)
MAX_TTL_MINUTES = 100 * 365 * 24 * 60  # 100 years
MAX_AFTER_SECONDS = 365 * 24 * 3600  # one year
# Store keys and namespaces (as UTF-8 bytes): Postgres indexes (prefix, key) and refuses index rows over ~2.7 kB.
MAX_STORE_KEY_BYTES = 1024
MAX_NAMESPACE_BYTES = 1024
MAX_NAMESPACE_LABELS = 64

Offset = Annotated[int, Field(ge=0, le=MAX_INT32)]


def check_store_key(key: str) -> str:
    if len(key.encode()) > MAX_STORE_KEY_BYTES:
        raise ValueError(f"store keys are at most {MAX_STORE_KEY_BYTES} bytes")
    return key


def check_namespace(labels: list[str] | None) -> list[str] | None:
    if labels is None:
        return None
    if len(labels) > MAX_NAMESPACE_LABELS:
        raise ValueError(f"namespaces have at most {MAX_NAMESPACE_LABELS} labels")
    if len(".".join(labels).encode()) > MAX_NAMESPACE_BYTES:
        raise ValueError(f"namespaces are at most {MAX_NAMESPACE_BYTES} bytes (labels joined with '.')")
    return labels


StoreKey = Annotated[str, AfterValidator(check_store_key)]
Namespace = Annotated[list[str], AfterValidator(check_namespace)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class Config(_Body):
    tags: list[str] | None = None
    recursion_limit: int | None = Field(None, ge=1, le=MAX_INT32)
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
    offset: Offset = 0
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
    offset: Offset = 0


class AssistantLatest(_Body):
    version: int = Field(ge=1, le=MAX_INT32)


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
    offset: Offset = 0
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
    after_seconds: float | None = Field(None, ge=0, le=MAX_AFTER_SECONDS)
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
    namespace: Namespace
    key: StoreKey
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = Field(None, gt=0, le=MAX_TTL_MINUTES)


class StoreDelete(_Body):
    namespace: Namespace
    key: StoreKey


class StoreSearch(_Body):
    namespace_prefix: Namespace | None = None
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: Offset = 0
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(_Body):
    prefix: Namespace | None = None
    suffix: Namespace | None = None
    max_depth: int | None = Field(None, ge=1, le=MAX_INT32)
    limit: int = Field(100, ge=1, le=1000)
    offset: Offset = 0

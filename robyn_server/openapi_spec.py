"""What the route table alone does not say about each operation, for the OpenAPI document: query parameters,
path parameter formats, response schemas and every status code it can answer.

Kept apart from the routes so that handlers stay HTTP shapes only; `tests/test_openapi_fuzz.py` runs
schemathesis against the document, so a response that disagrees with what is written here fails CI.
"""

from __future__ import annotations

from typing import Any

from robyn_server.schemas import MAX_INT32

Schema = dict[str, Any]

ANY: Schema = {}
OBJECT: Schema = {"type": "object"}
NULLABLE_OBJECT: Schema = {"type": ["object", "null"]}
TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}

CHECKPOINT_REF: Schema = {
    "type": ["object", "null"],
    "properties": {
        "thread_id": {"type": ["string", "null"]},
        "checkpoint_ns": {"type": ["string", "null"]},
        "checkpoint_id": {"type": ["string", "null"]},
        "checkpoint_map": NULLABLE_OBJECT,
    },
}

COUNT_BYTES: Schema = {
    "type": "object",
    "required": ["count", "bytes"],
    "properties": {"count": {"type": "integer"}, "bytes": {"type": "integer"}},
}

# Response bodies. `required` lists only keys present in every answer (searches may `select` fewer fields).
COMPONENTS: dict[str, Schema] = {
    "ErrorResponse": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}, "request_id": {"type": "string"}},
    },
    "Assistant": {
        "type": "object",
        "properties": {
            "assistant_id": {"type": "string", "format": "uuid"},
            "graph_id": {"type": "string"},
            "config": OBJECT,
            "context": OBJECT,
            "metadata": OBJECT,
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "version": {"type": "integer"},
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "Thread": {
        "type": "object",
        "properties": {
            "thread_id": {"type": "string", "format": "uuid"},
            "created_at": TIME,
            "updated_at": TIME,
            "state_updated_at": NULLABLE_TIME,
            "metadata": OBJECT,
            "status": {"enum": ["idle", "busy", "interrupted", "error"]},
            "config": NULLABLE_OBJECT,
            "values": ANY,
            "interrupts": ANY,
            "error": ANY,
            "ttl": NULLABLE_OBJECT,
        },
    },
    "ThreadState": {
        "type": "object",
        "required": ["values", "next", "tasks", "checkpoint"],
        "properties": {
            "values": {"type": ["object", "array", "null"]},
            "next": {"type": "array", "items": {"type": "string"}},
            "tasks": {"type": "array", "items": OBJECT},
            "metadata": NULLABLE_OBJECT,
            "created_at": NULLABLE_TIME,
            "checkpoint": CHECKPOINT_REF,
            "parent_checkpoint": CHECKPOINT_REF,
            "interrupts": {"type": "array"},
            "checkpoint_id": {"type": ["string", "null"]},
            "parent_checkpoint_id": {"type": ["string", "null"]},
        },
    },
    "Run": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string", "format": "uuid"},
            "thread_id": {"type": "string", "format": "uuid"},
            "assistant_id": {"type": "string", "format": "uuid"},
            "status": {"enum": ["pending", "running", "error", "success", "timeout", "interrupted"]},
            "metadata": OBJECT,
            "kwargs": OBJECT,
            "multitask_strategy": {"type": ["string", "null"]},
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "ThreadStorage": {
        "type": "object",
        "required": ["thread_id", "total_bytes", "checkpoints", "channel_values", "pending_writes"],
        "properties": {
            "thread_id": {"type": "string", "format": "uuid"},
            "total_bytes": {"type": "integer"},
            "checkpoints": COUNT_BYTES,
            "channel_values": {
                "type": "object",
                "required": ["count", "bytes", "by_channel"],
                "properties": {
                    "count": {"type": "integer"},
                    "bytes": {"type": "integer"},
                    "by_channel": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["versions", "bytes"],
                            "properties": {"versions": {"type": "integer"}, "bytes": {"type": "integer"}},
                        },
                    },
                },
            },
            "pending_writes": COUNT_BYTES,
        },
    },
    "Item": {
        "type": "object",
        "required": ["namespace", "key", "value", "created_at", "updated_at"],
        "properties": {
            "namespace": {"type": "array", "items": {"type": "string"}},
            "key": {"type": "string"},
            "value": OBJECT,
            "created_at": TIME,
            "updated_at": TIME,
            "score": {"type": ["number", "null"]},
        },
    },
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array_of(name: str) -> Schema:
    return {"type": "array", "items": ref(name)}


SSE = "text/event-stream"
SSE_EVENT: Schema = {"type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"}}}
JSON = "application/json"
HTML = "text/html"

# Path parameters that are UUIDs (others, like a graph id in place of an assistant id, stay plain strings).
UUID_PARAMS = {"thread_id", "run_id"}
ASSISTANT_ID_IS_UUID_EXCEPT = {"/assistants/:assistant_id/graph"}


def query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": description}


BOOL = {"type": "boolean"}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}
OFFSET = {"type": "integer", "minimum": 0, "maximum": MAX_INT32}
RUN_STATUS = {"enum": ["pending", "running", "error", "success", "timeout", "interrupted"]}
CANCEL_ACTION = query("action", {"enum": ["interrupt", "rollback"]}, "what happens to the run's checkpoints")
LAST_EVENT_ID = header("Last-Event-ID", "resume after this event id")


class Op:
    """One operation's documented success answer, extra status codes and query/header parameters."""

    def __init__(
        self,
        status: int = 200,
        schema: Schema | None = ANY,
        media: str | tuple[str, ...] = JSON,
        errors: tuple[int, ...] = (),
        params: tuple[dict[str, Any], ...] = (),
        body: Schema | None = None,
        also: dict[int, Schema | None] | None = None,
    ) -> None:
        self.status, self.schema, self.media = status, schema, media
        self.errors, self.params, self.body, self.also = errors, params, body, also or {}


STATE_PARAMS = (query("subgraphs", BOOL, "include subgraph states"),)

# Keyed by (METHOD, route path as registered). Every operation also answers 401/403 (auth on), 413 (body over
# the limit), 422 (invalid input) and 503 (database unavailable); ones with path parameters also 404.
OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/ok"): Op(params=(query("check_db", BOOL, "also query the database"),), schema=OBJECT),
    ("GET", "/"): Op(params=(query("check_db", BOOL, "also query the database"),), schema=OBJECT),
    ("GET", "/info"): Op(schema=OBJECT),
    ("GET", "/openapi.json"): Op(schema=OBJECT),
    ("GET", "/docs"): Op(schema={"type": "string"}, media=HTML),
    ("GET", "/playground"): Op(schema={"type": "string"}, media=HTML),
    ("GET", "/playground/static/:name"): Op(schema={"type": "string"}, media="*/*"),
    # assistants
    ("POST", "/assistants"): Op(schema=ref("Assistant"), errors=(404, 409)),
    ("POST", "/assistants/search"): Op(schema=array_of("Assistant")),
    ("POST", "/assistants/count"): Op(schema={"type": "integer"}),
    ("GET", "/assistants/:assistant_id"): Op(schema=ref("Assistant")),
    ("PATCH", "/assistants/:assistant_id"): Op(schema=ref("Assistant")),
    ("DELETE", "/assistants/:assistant_id"): Op(
        status=204, schema=None, params=(query("delete_threads", BOOL, "also delete its threads"),)
    ),
    ("GET", "/assistants/:assistant_id/graph"): Op(
        schema=OBJECT, params=(query("xray", {"type": "string"}, "true, false or a depth"),)
    ),
    ("GET", "/assistants/:assistant_id/schemas"): Op(schema=OBJECT),
    ("GET", "/assistants/:assistant_id/subgraphs"): Op(schema=OBJECT, params=(query("recurse", BOOL),)),
    ("GET", "/assistants/:assistant_id/subgraphs/:namespace"): Op(schema=OBJECT, params=(query("recurse", BOOL),)),
    ("POST", "/assistants/:assistant_id/versions"): Op(schema=array_of("Assistant")),
    ("POST", "/assistants/:assistant_id/latest"): Op(schema=ref("Assistant")),
    # threads
    ("POST", "/threads"): Op(schema=ref("Thread"), errors=(409,)),
    ("POST", "/threads/prune"): Op(schema=OBJECT),
    ("POST", "/threads/search"): Op(schema=array_of("Thread")),
    ("POST", "/threads/count"): Op(schema={"type": "integer"}),
    ("GET", "/threads/:thread_id"): Op(schema=ref("Thread"), params=(query("include", {"type": "string"}, "ttl"),)),
    ("PATCH", "/threads/:thread_id"): Op(
        schema=ref("Thread"), params=(header("Prefer", "return=minimal answers 204"),), also={204: None}
    ),
    ("DELETE", "/threads/:thread_id"): Op(status=204, schema=None),
    ("POST", "/threads/:thread_id/copy"): Op(schema=ref("Thread")),
    ("GET", "/threads/:thread_id/state"): Op(schema=ref("ThreadState"), params=STATE_PARAMS, errors=(400,)),
    ("POST", "/threads/:thread_id/state"): Op(schema=OBJECT, errors=(400, 409)),
    ("GET", "/threads/:thread_id/state/:checkpoint_id"): Op(
        schema=ref("ThreadState"), params=STATE_PARAMS, errors=(400,)
    ),
    ("POST", "/threads/:thread_id/state/checkpoint"): Op(schema=ref("ThreadState"), errors=(400,)),
    ("GET", "/threads/:thread_id/history"): Op(
        schema=array_of("ThreadState"),
        params=(query("limit", LIMIT), query("before", {"type": "string"}, "a checkpoint id")),
        errors=(400,),
    ),
    ("POST", "/threads/:thread_id/history"): Op(schema=array_of("ThreadState"), errors=(400,)),
    ("GET", "/threads/:thread_id/storage"): Op(schema=ref("ThreadStorage"), errors=(501,)),
    ("GET", "/threads/:thread_id/stream"): Op(
        schema=SSE_EVENT,
        media=SSE,
        params=(
            query("stream_modes", {"type": "string"}, "comma-separated: run_modes, lifecycle, state_update"),
            LAST_EVENT_ID,
        ),
    ),
    # runs
    ("POST", "/threads/:thread_id/runs/stream"): Op(schema=SSE_EVENT, media=SSE, errors=(400, 409)),
    ("POST", "/threads/:thread_id/runs/wait"): Op(errors=(400, 409)),
    ("POST", "/threads/:thread_id/runs"): Op(schema=ref("Run"), errors=(400, 409)),
    ("GET", "/threads/:thread_id/runs"): Op(
        schema=array_of("Run"),
        params=(
            query("limit", LIMIT),
            query("offset", OFFSET),
            query("status", RUN_STATUS),
            query("select", {"type": "string"}, "fields to return, comma-separated"),
        ),
    ),
    ("GET", "/threads/:thread_id/runs/:run_id"): Op(schema=ref("Run")),
    ("DELETE", "/threads/:thread_id/runs/:run_id"): Op(status=204, schema=None, errors=(409,)),
    ("GET", "/threads/:thread_id/runs/:run_id/stream"): Op(
        schema=SSE_EVENT,
        media=SSE,
        params=(
            query("stream_mode", {"type": "string"}, "a mode or a JSON list of modes"),
            query("cancel_on_disconnect", BOOL),
            LAST_EVENT_ID,
        ),
    ),
    ("GET", "/threads/:thread_id/runs/:run_id/join"): Op(),
    ("POST", "/threads/:thread_id/runs/:run_id/cancel"): Op(
        status=202,
        schema=None,
        params=(CANCEL_ACTION, query("wait", BOOL, "answer with the run's result once it stopped")),
        also={200: ANY},
    ),
    ("POST", "/runs/stream"): Op(schema=SSE_EVENT, media=SSE, errors=(400, 404)),
    ("POST", "/runs/wait"): Op(errors=(400, 404)),
    ("POST", "/runs"): Op(schema=ref("Run"), errors=(400, 404)),
    ("POST", "/runs/batch"): Op(
        schema=array_of("Run"), errors=(400, 404), body={"type": "array", "items": ref("RunCreateStateless")}
    ),
    ("POST", "/runs/cancel"): Op(status=204, schema=None, errors=(404,), params=(CANCEL_ACTION,)),
    # store
    ("PUT", "/store/items"): Op(status=204, schema=None),
    ("GET", "/store/items"): Op(
        schema={"oneOf": [ref("Item"), {"type": "null"}]},
        params=(
            query("namespace", {"type": "string"}, "labels joined with '.'"),
            query("key", {"type": "string"}),
            query("refresh_ttl", BOOL),
        ),
        also={400: OBJECT},
    ),
    ("DELETE", "/store/items"): Op(status=204, schema=None),
    ("POST", "/store/items/search"): Op(
        schema={"type": "object", "required": ["items"], "properties": {"items": array_of("Item")}}
    ),
    ("POST", "/store/namespaces"): Op(
        schema={
            "type": "object",
            "required": ["namespaces"],
            "properties": {"namespaces": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}},
        }
    ),
}

OPERATIONS.update(
    {
        # Prometheus text by default, JSON with ?format=json (the reference's shapes)
        ("GET", "/metrics"): Op(
            schema={"type": ["string", "object"]},
            media=("text/plain", JSON),
            params=(query("format", {"enum": ["prometheus", "json"]}, "prometheus text (default) or JSON"),),
        ),
        # the official MCP transport answers a bad request itself, in plain text
        ("POST", "/mcp"): Op(schema=OBJECT, errors=(400, 406, 415)),
        # stateless MCP, as the reference: no server-to-client stream (405) and no session to end (404), no body
        ("GET", "/mcp"): Op(status=405, schema=None),
        ("DELETE", "/mcp"): Op(status=404, schema=None),
        # an unknown assistant's card is the reference's JSON-RPC error, with status 400
        ("GET", "/a2a/:assistant_id/.well-known/agent-card.json"): Op(schema=OBJECT, also={400: OBJECT}),
        ("GET", "/a2a/:assistant_id/.well-known/agent.json"): Op(schema=OBJECT, also={400: OBJECT}),
        ("GET", "/.well-known/agent-card.json"): Op(
            schema=OBJECT,
            also={400: OBJECT},
            params=(query("assistant_id", {"type": "string"}, "the assistant whose card to answer"),),
        ),
        # protocol v2: a malformed command envelope is a 400 carrying the protocol's own error envelope
        ("POST", "/threads/:thread_id/commands"): Op(schema=OBJECT, also={400: OBJECT}),
        ("POST", "/threads/:thread_id/stream/events"): Op(schema=SSE_EVENT, media=SSE, errors=(400,)),
    }
)

# Bad store namespace labels get the reference's plain-text 422.
PLAIN_TEXT_422 = {("PUT", "/store/items"), ("DELETE", "/store/items")}
# Answers produced by libraries in plain text (status codes per operation).
PLAIN_TEXT_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {("POST", "/mcp"): (400, 406, 415)}

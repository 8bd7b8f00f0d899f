"""Assistants: create, search, count, get, patch (versions), delete, graph, schemas, subgraphs."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.pregel import Pregel
from pydantic import create_model

from robyn_server.auth.authorize import authorize, filtered_search, visible
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.graphs import system_assistant_id
from robyn_server.http import ApiRequest, JsonResponse, Router, empty, validate_uuid
from robyn_server.routes.common import pagination_headers, select_fields
from robyn_server.runs.manager import now
from robyn_server.schemas import (
    AssistantCount,
    AssistantCreate,
    AssistantLatest,
    AssistantPatch,
    AssistantSearch,
    AssistantVersions,
)

ASSISTANT_FIELDS = {
    "assistant_id", "graph_id", "config", "context", "metadata", "name", "created_at", "updated_at", "version",
    "description",
}  # fmt: skip


def graph_not_found(ctx: ServerContext, graph_id: str) -> ApiError:
    return ApiError(404, f"Graph '{graph_id}' not found. Expected one of: {sorted(ctx.registry.graph_ids)}")


def new_assistant(
    ctx: ServerContext,
    *,
    graph_id: str,
    assistant_id: str,
    config: dict[str, Any] | None,
    context: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    name: str,
    description: str | None,
) -> dict[str, Any]:
    config = dict(config or {})
    if context is None:
        context = dict(config.get("configurable") or {})
    elif context and not config.get("configurable"):  # kept in step with each other, as the reference does
        config["configurable"] = dict(context)
    created = now()
    return {
        "assistant_id": assistant_id,
        "graph_id": graph_id,
        "config": config,
        "context": context,
        "metadata": metadata or {},
        "name": name,
        "created_at": created,
        "updated_at": created,
        "version": 1,
        "description": description,
    }


async def ensure_system_assistants(ctx: ServerContext) -> None:
    """One assistant per graph with the reference's deterministic id, created at start-up if missing."""
    for graph_id in ctx.registry.graph_ids:
        assistant_id = system_assistant_id(graph_id)
        if await ctx.storage.assistant_get(assistant_id) is None:
            await ctx.storage.assistant_put(
                new_assistant(
                    ctx,
                    graph_id=graph_id,
                    assistant_id=assistant_id,
                    config={},
                    context={},
                    metadata={"created_by": "system"},
                    name=ctx.registry.default_name(graph_id),
                    description=ctx.registry.get(graph_id).spec.description,
                )
            )


async def get_assistant(ctx: ServerContext, raw_id: str, action: str = "read", **value: Any) -> dict[str, Any]:
    """An assistant the caller may `action` (404 `Not Found` for a missing one and for another user's)."""
    assistant_id = validate_uuid(raw_id, "assistant")
    filters = await authorize(None, "assistants", action, {"assistant_id": assistant_id, **value})
    assistant = await ctx.storage.assistant_get(assistant_id)
    if assistant is None or not visible(assistant, filters):
        raise ApiError(404, "Not Found")
    return assistant


async def resolve_assistant_ref(ctx: ServerContext, ref: str) -> dict[str, Any] | None:
    """An assistant by UUID or by graph id (its system assistant); None if unknown, 422 if neither form."""
    if ref in ctx.registry:
        return await ctx.storage.assistant_get(system_assistant_id(ref))
    try:
        assistant_id = str(uuid.UUID(ref))
    except (ValueError, AttributeError):
        graphs = ", ".join(ctx.registry.graph_ids)
        raise ApiError(
            422,
            f"Invalid assistant: '{ref}'. Must be either:\n- A valid assistant UUID, or\n"
            f"- One of the registered graphs: {graphs}",
        )
    return await ctx.storage.assistant_get(assistant_id)


def state_jsonschema(graph: Pregel) -> dict[str, Any] | None:
    fields: dict[str, Any] = {}
    for key in graph.stream_channels_list:
        channel = graph.channels.get(key)
        if channel is None:
            continue
        try:
            create_model(key, value=(channel.UpdateType, None)).model_json_schema()
            fields[key] = (channel.UpdateType, None)
        except Exception:
            fields[key] = (Any, None)
    try:
        return create_model(f"{graph.name}_state", **fields).model_json_schema()
    except Exception:
        return None


def graph_schemas(graph: Pregel, graph_id: str) -> dict[str, Any]:
    def safe(fn: Any) -> Any:
        try:
            return fn()
        except Exception:
            return None

    config_schema = safe(graph.get_config_jsonschema) or {}
    configurable = (config_schema.get("properties") or {}).get("configurable") or {}
    if isinstance(configurable.get("$ref"), str):
        # Like the reference, serve the configurable model itself: clients (Open Agent Platform) read
        # `config_schema.properties[field]`, e.g. `.metadata.x_oap_ui_config`.
        defs = dict(config_schema.get("$defs") or {})
        config_schema = defs.pop(configurable["$ref"].rsplit("/", 1)[-1], {})
        if defs:
            config_schema = {**config_schema, "$defs": defs}
    if not config_schema.get("properties"):
        config_schema = {}
    return {
        "graph_id": graph_id,
        "input_schema": safe(graph.get_input_jsonschema),
        "output_schema": safe(graph.get_output_jsonschema),
        "state_schema": state_jsonschema(graph),
        "config_schema": config_schema,
        "context_schema": safe(graph.get_context_jsonschema),
    }


def register(router: Router, ctx: ServerContext) -> None:
    async def create_assistant(req: ApiRequest) -> Any:
        """Create an assistant for a graph."""
        body = req.body(AssistantCreate)
        if body.graph_id not in ctx.registry:
            raise graph_not_found(ctx, body.graph_id)
        assistant_id = validate_uuid(body.assistant_id, "assistant") if body.assistant_id else str(uuid.uuid4())
        value = {"assistant_id": assistant_id, "graph_id": body.graph_id, "config": body.config,
                 "context": body.context, "metadata": dict(body.metadata or {}), "name": body.name}  # fmt: skip
        filters = await authorize(req, "assistants", "create", value)
        existing = await ctx.storage.assistant_get(assistant_id)
        if existing is not None:
            if not visible(existing, filters):  # another user's: a 409 would confirm that the id exists
                raise ApiError(403, "Forbidden: choose another assistant ID")
            if body.if_exists == "do_nothing":
                return existing
            raise ApiError(409, f"Assistant {assistant_id} already exists")
        assistant = new_assistant(
            ctx,
            graph_id=body.graph_id,
            assistant_id=assistant_id,
            config=body.config,
            context=body.context,
            metadata=value["metadata"],
            name=body.name or "Untitled",
            description=body.description,
        )
        await ctx.storage.assistant_put(assistant)
        return assistant

    async def search_assistants(req: ApiRequest) -> Any:
        """Search assistants by graph, name and metadata."""
        body = req.body(AssistantSearch)
        value = {"graph_id": body.graph_id, "metadata": body.metadata, "limit": body.limit, "offset": body.offset}
        filters = await authorize(req, "assistants", "search", value)
        items, total = await filtered_search(
            ctx.storage.assistant_search,
            filters,
            graph_id=body.graph_id,
            name=body.name,
            metadata=body.metadata,
            limit=body.limit,
            offset=body.offset,
            sort_by=body.sort_by or "created_at",
            sort_order=body.sort_order or "desc",
        )
        headers = pagination_headers(body.offset, len(items), total)
        return JsonResponse(select_fields(items, body.select, ASSISTANT_FIELDS), headers=headers)

    async def count_assistants(req: ApiRequest) -> Any:
        """Count assistants matching the filters."""
        body = req.body(AssistantCount)
        value = {"graph_id": body.graph_id, "metadata": body.metadata, "limit": 0, "offset": 0}
        filters = await authorize(req, "assistants", "search", value)
        _, total = await filtered_search(
            ctx.storage.assistant_search, filters, graph_id=body.graph_id, name=body.name, metadata=body.metadata,
            limit=0, offset=0,
            sort_by="created_at", sort_order="desc",
        )  # fmt: skip
        return total

    async def read_assistant(req: ApiRequest) -> Any:
        """Get an assistant."""
        return await get_assistant(ctx, req.path_params["assistant_id"])

    async def patch_assistant(req: ApiRequest) -> Any:
        """Update an assistant, creating a new version."""
        body = req.body(AssistantPatch)
        assistant = await get_assistant(ctx, req.path_params["assistant_id"], "update", metadata=body.metadata)
        if body.graph_id is not None and body.graph_id not in ctx.registry:
            raise graph_not_found(ctx, body.graph_id)
        fields: dict[str, Any] = {}
        if body.graph_id is not None:
            fields["graph_id"] = body.graph_id
        if body.config is not None:
            fields["config"] = body.config
            if body.context is None:
                fields["context"] = dict(body.config.get("configurable") or {})
        if body.context is not None:
            fields["context"] = body.context
            config = body.config if body.config is not None else assistant.get("config") or {}
            if body.context and not config.get("configurable"):
                fields["config"] = {**config, "configurable": dict(body.context)}
        if body.name is not None:
            fields["name"] = body.name
        if body.description is not None:
            fields["description"] = body.description
        fields["updated_at"] = now()
        # One atomic step in storage (read, next version number, metadata merge, write): concurrent PATCHes
        # keep each other's metadata keys and get distinct versions. `body.metadata` as changed in place by
        # the auth handler (which may stamp `owner`).
        updated = await ctx.storage.assistant_patch(assistant["assistant_id"], fields, body.metadata)
        if updated is None:  # deleted since it was read
            raise ApiError(404, "Not Found")
        return updated

    async def delete_assistant(req: ApiRequest) -> Any:
        """Delete an assistant (and with `?delete_threads=true` its threads)."""
        assistant = await get_assistant(ctx, req.path_params["assistant_id"], "delete")
        if req.query_bool("delete_threads"):
            thread_filters = await authorize(req, "threads", "delete", {"assistant_id": assistant["assistant_id"]})
            threads, _ = await filtered_search(
                ctx.storage.thread_search, thread_filters, ids=None,
                metadata={"assistant_id": assistant["assistant_id"]}, values=None, status=None,
                limit=1_000_000, offset=0, sort_by="created_at", sort_order="desc",
            )  # fmt: skip
            for thread in threads:
                await ctx.storage.thread_delete(thread["thread_id"])
        await ctx.storage.assistant_delete(assistant["assistant_id"])
        return empty(204)

    async def assistant_for_graph_route(req: ApiRequest) -> dict[str, Any]:
        ref = req.path_params["assistant_id"]
        if ref in ctx.registry:
            return await get_assistant(ctx, system_assistant_id(ref))
        return await get_assistant(ctx, ref)

    def _graph_config(assistant: dict[str, Any]) -> dict[str, Any]:
        config = dict(assistant.get("config") or {})
        configurable = {**(config.get("configurable") or {}), "assistant_id": assistant["assistant_id"]}
        configurable["graph_id"] = assistant["graph_id"]
        return {**config, "configurable": configurable}

    async def assistant_graph(req: ApiRequest) -> Any:
        """The graph's nodes and edges (`?xray=true|N` expands subgraphs)."""
        assistant = await assistant_for_graph_route(req)
        xray_raw = req.query("xray", "false") or "false"
        xray: bool | int
        if xray_raw.lower() in ("true", "false"):
            xray = xray_raw.lower() == "true"
        else:
            try:
                xray = int(xray_raw)
            except ValueError:
                raise ApiError(422, "Invalid xray value: expected true, false or an integer")
        async with ctx.registry.graph(
            assistant["graph_id"], _graph_config(assistant), access="assistants.read"
        ) as graph:
            drawable = await graph.aget_graph(xray=xray)
        json_graph = drawable.to_json()
        for node in json_graph.get("nodes", []):
            # the reference drops the runnable's import path (`data.id`), keeping only the name
            if isinstance(data := node.get("data"), dict):
                data.pop("id", None)
        return json_graph

    async def assistant_schemas(req: ApiRequest) -> Any:
        """Input, output, state, config and context JSON schemas of the assistant's graph."""
        assistant = await get_assistant(ctx, req.path_params["assistant_id"])
        async with ctx.registry.graph(
            assistant["graph_id"], _graph_config(assistant), access="assistants.read"
        ) as graph:
            return graph_schemas(graph, assistant["graph_id"])

    async def assistant_subgraphs(req: ApiRequest) -> Any:
        """Schemas of the graph's subgraphs, by namespace."""
        assistant = await get_assistant(ctx, req.path_params["assistant_id"])
        namespace = req.path_params.get("namespace")
        recurse = req.query_bool("recurse")
        async with ctx.registry.graph(
            assistant["graph_id"], _graph_config(assistant), access="assistants.read"
        ) as graph:
            result = {}
            async for ns, subgraph in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
                result[ns] = graph_schemas(subgraph, assistant["graph_id"])
                result[ns].pop("graph_id", None)
            return result

    async def assistant_versions(req: ApiRequest) -> Any:
        """All versions of an assistant, newest first."""
        assistant = await get_assistant(ctx, req.path_params["assistant_id"])
        body = req.body(AssistantVersions)
        versions = await ctx.storage.assistant_versions(assistant["assistant_id"], body.metadata, body.limit,
                                                        body.offset)  # fmt: skip
        return [{k: v for k, v in version.items() if k != "updated_at"} for version in versions]  # as the reference

    async def assistant_latest(req: ApiRequest) -> Any:
        """Make one version of an assistant the current one."""
        assistant = await get_assistant(ctx, req.path_params["assistant_id"], "update")
        body = req.body(AssistantLatest)
        updated = await ctx.storage.assistant_set_latest(assistant["assistant_id"], body.version)
        if updated is None:
            raise ApiError(404, f"Version {body.version} of assistant {assistant['assistant_id']} not found")
        return updated

    tags = ["assistants"]
    router.add("POST", "/assistants", create_assistant, tags=tags, body_model=AssistantCreate)
    router.add("POST", "/assistants/search", search_assistants, tags=tags, body_model=AssistantSearch)
    router.add("POST", "/assistants/count", count_assistants, tags=tags, body_model=AssistantCount)
    router.add("GET", "/assistants/:assistant_id", read_assistant, tags=tags)
    router.add("PATCH", "/assistants/:assistant_id", patch_assistant, tags=tags, body_model=AssistantPatch)
    router.add("DELETE", "/assistants/:assistant_id", delete_assistant, tags=tags)
    router.add("GET", "/assistants/:assistant_id/graph", assistant_graph, tags=tags)
    router.add("GET", "/assistants/:assistant_id/schemas", assistant_schemas, tags=tags)
    router.add("GET", "/assistants/:assistant_id/subgraphs", assistant_subgraphs, tags=tags)
    router.add("GET", "/assistants/:assistant_id/subgraphs/:namespace", assistant_subgraphs, tags=tags)
    router.add(
        "POST", "/assistants/:assistant_id/versions", assistant_versions, tags=tags, body_model=AssistantVersions
    )
    router.add("POST", "/assistants/:assistant_id/latest", assistant_latest, tags=tags, body_model=AssistantLatest)

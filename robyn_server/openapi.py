"""An OpenAPI 3.1 document generated from the route table and the request models actually served."""

from __future__ import annotations

import re
from typing import Any

from robyn_server import __version__
from robyn_server.http import Router
from robyn_server.openapi_spec import (
    ASSISTANT_ID_IS_UUID_EXCEPT,
    COMPONENTS,
    JSON,
    OPERATIONS,
    PLAIN_TEXT_422,
    PLAIN_TEXT_ERRORS,
    UUID_PARAMS,
    Op,
)
from robyn_server.schemas import RunCreateStateless

ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated (auth on)",
    403: "Forbidden by the auth policy (auth on)",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    413: "Request body too large",
    422: "Validation error",
    501: "Not implemented for this checkpointer",
    503: "Database unavailable, retry",
}


def _path_params(route_path: str) -> list[dict[str, Any]]:
    params = []
    for name in re.findall(r":([a-zA-Z_]+)", route_path):
        uuid = name in UUID_PARAMS or (name == "assistant_id" and route_path not in ASSISTANT_ID_IS_UUID_EXCEPT)
        schema: dict[str, Any] = {"type": "string", "format": "uuid"} if uuid else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _content(media: str | tuple[str, ...], schema: dict[str, Any] | None) -> dict[str, Any]:
    medias = (media,) if isinstance(media, str) else media
    return {m: {"schema": schema if schema is not None else {}} for m in medias}


def _responses(method: str, route_path: str, op: Op) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    success = {op.status: op.schema, **op.also}
    for status, schema in success.items():
        entry: dict[str, Any] = {"description": "Success" if status < 300 else ERROR_DESCRIPTIONS.get(status, "")}
        if schema is not None:
            entry["content"] = _content(op.media if status == op.status else JSON, schema)
        if status in (202, 204) and schema is None:
            entry["description"] = "No content"
        responses[str(status)] = entry
    codes = {401, 403, 413, 422, 503, *op.errors}
    if ":" in route_path:
        codes.add(404)
    error = {"content": _content(JSON, {"$ref": "#/components/schemas/ErrorResponse"})}
    for status in sorted(codes):
        if str(status) in responses:
            continue
        entry = {"description": ERROR_DESCRIPTIONS[status], **error}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if (status == 422 and (method, route_path) in PLAIN_TEXT_422) or status in PLAIN_TEXT_ERRORS.get(
            (method, route_path), ()
        ):
            entry = {**entry, "content": {**error["content"], "text/plain": {"schema": {"type": "string"}}}}
        responses[str(status)] = entry
    return responses


def _unique(name: str, seen: set[str]) -> str:
    candidate, n = name, 1
    while candidate in seen:
        n += 1
        candidate = f"{name}_{n}"
    seen.add(candidate)
    return candidate


def build_openapi(router: Router) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = dict(COMPONENTS)
    seen_ids: set[str] = set()
    for route in router.routes:
        path = re.sub(r":([a-zA-Z_]+)", r"{\1}", route.path)
        op = OPERATIONS.get((route.method, route.path)) or Op()
        operation: dict[str, Any] = {
            "summary": (route.summary or "").strip().splitlines()[0] if route.summary else route.path,
            "operationId": _unique(f"{route.method.lower()}_{route.handler.__name__}", seen_ids),
            "tags": route.tags,
            "parameters": _path_params(route.path) + list(op.params),
            "responses": _responses(route.method, route.path, op),
        }
        body_schema = op.body
        if route.body_model is not None:
            model_schema = route.body_model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in model_schema.pop("$defs", {}).items():
                schemas[name] = definition
            schemas[route.body_model.__name__] = model_schema
            body_schema = {"$ref": f"#/components/schemas/{route.body_model.__name__}"}
        if body_schema is not None:
            operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body_schema}}}
        paths.setdefault(path, {})[route.method.lower()] = operation
    if "RunCreateStateless" not in schemas:  # referenced by /runs/batch
        schemas["RunCreateStateless"] = RunCreateStateless.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Robyn LangGraph Server", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    for extend in router.openapi_extensions:
        extend(document)
    return document


DOCS_HTML = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>Robyn LangGraph Server API</title></head>
<body>
<h1>Robyn LangGraph Server API</h1>
<p>The OpenAPI 3.1 document is at <a href="/openapi.json">/openapi.json</a>.</p>
<ul id="routes"></ul>
<script>
fetch("/openapi.json").then(r => r.json()).then(doc => {
  const list = document.getElementById("routes");
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const li = document.createElement("li");
      li.textContent = method.toUpperCase() + " " + path + " - " + op.summary;
      list.appendChild(li);
    }
  }
});
</script>
</body>
</html>
"""

"""An OpenAPI 3.1 document generated from the route table and the request models actually served."""

from __future__ import annotations

import re
from typing import Any

from robyn_server import __version__
from robyn_server.http import Router


def build_openapi(router: Router) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for route in router.routes:
        path = re.sub(r":([a-zA-Z_]+)", r"{\1}", route.path)
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r":([a-zA-Z_]+)", route.path)
        ]
        operation: dict[str, Any] = {
            "summary": (route.summary or "").strip().splitlines()[0] if route.summary else route.path,
            "operationId": f"{route.method.lower()}_{route.handler.__name__}",
            "tags": route.tags,
            "parameters": params,
            "responses": {
                "200": {"description": "Success"},
                "404": {"description": "Not found"},
                "422": {"description": "Validation error"},
            },
        }
        if route.body_model is not None:
            model_schema = route.body_model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in model_schema.pop("$defs", {}).items():
                schemas[name] = definition
            schemas[route.body_model.__name__] = model_schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{route.body_model.__name__}"}}
                },
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
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

"""The long-term memory store: put, get, delete, search items and list namespaces."""

from __future__ import annotations

from typing import Any

from robyn import Response

from robyn_server.auth.authorize import authorize, store_filter
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, JsonResponse, Router, empty
from robyn_server.schemas import (
    StoreDelete,
    StoreNamespaces,
    StorePut,
    StoreSearch,
    check_namespace,
    check_store_key,
)

PLAIN_TEXT = {"content-type": "text/plain; charset=utf-8"}


def namespace_error(namespace: Any) -> Response | None:
    """Bad namespace labels get the reference's plain-text 422 (it sends no content type; this one says text)."""
    if not isinstance(namespace, list) or not namespace:
        return Response(422, dict(PLAIN_TEXT), b"Namespace must be a non-empty list of strings")
    for label in namespace:
        if not isinstance(label, str) or not label or "." in label:
            text = f"Namespace label '{label}' must be a non-empty string without periods"
            return Response(status_code=422, headers=dict(PLAIN_TEXT), description=text.encode())
    return None


def item_json(item: Any) -> dict[str, Any]:
    data = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": item.value,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }
    if hasattr(item, "score"):
        data["score"] = item.score
    return data


def register(router: Router, ctx: ServerContext) -> None:
    async def put_item(req: ApiRequest) -> Any:
        """Store or replace an item."""
        body = req.body(StorePut)
        if (rejected := namespace_error(body.namespace)) is not None:
            return rejected
        kwargs: dict[str, Any] = {}
        if body.index is not None:
            kwargs["index"] = body.index
        if body.ttl is not None:
            if not getattr(ctx.storage.store, "supports_ttl", False):
                raise ApiError(422, "Item TTL is not supported by this server's store")
            kwargs["ttl"] = body.ttl
        value = {"namespace": tuple(body.namespace), "key": body.key, "value": body.value, "index": body.index,
                 "ttl": body.ttl}  # fmt: skip
        await authorize(req, "store", "put", value)  # may refuse (403) or rewrite the namespace
        if (rejected := namespace_error(list(value["namespace"] or ()))) is not None:
            return rejected
        await ctx.storage.store.aput(tuple(value["namespace"]), value["key"], value["value"], **kwargs)
        return empty(204)

    async def get_item(req: ApiRequest) -> Any:
        """Get one item by namespace (dot-separated) and key; `null` when absent."""
        key = req.query("key")
        if not key:
            return JsonResponse({"error": "Key is required"}, status_code=400)
        namespace = [p for p in (req.query("namespace") or "").split(".") if p]
        try:
            check_namespace(namespace)
            check_store_key(key)
        except ValueError as exc:
            raise ApiError(422, str(exc))
        refresh = req.query("refresh_ttl")
        kwargs = {"refresh_ttl": refresh.lower() == "true"} if refresh else {}
        value = {"namespace": tuple(namespace), "key": key, "refresh_ttl": kwargs.get("refresh_ttl")}
        await authorize(req, "store", "get", value)
        item = await ctx.storage.store.aget(tuple(value["namespace"] or ()), value["key"], **kwargs)
        return item_json(item) if item is not None else None

    async def delete_item(req: ApiRequest) -> Any:
        """Delete one item."""
        body = req.body(StoreDelete)
        if (rejected := namespace_error(body.namespace)) is not None:
            return rejected
        value = {"namespace": tuple(body.namespace), "key": body.key}
        await authorize(req, "store", "delete", value)
        if (rejected := namespace_error(list(value["namespace"] or ()))) is not None:
            return rejected
        await ctx.storage.store.adelete(tuple(value["namespace"]), value["key"])
        return empty(204)

    async def search_items(req: ApiRequest) -> Any:
        """Search items under a namespace prefix, by filter or semantic query."""
        body = req.body(StoreSearch)
        kwargs: dict[str, Any] = {"filter": body.filter, "limit": body.limit, "offset": body.offset}
        if body.query:
            kwargs["query"] = body.query
        if body.refresh_ttl is not None:
            kwargs["refresh_ttl"] = body.refresh_ttl
        value = {"namespace": tuple(body.namespace_prefix or ()), "filter": body.filter, "limit": body.limit,
                 "offset": body.offset, "query": body.query, "refresh_ttl": body.refresh_ttl}  # fmt: skip
        auth_filter = await authorize(req, "store", "search", value)
        kwargs["filter"] = store_filter(body.filter, auth_filter)
        if auth_filter and kwargs["filter"] is None:
            return {"items": []}  # the query contradicts the caller's filter: nothing of theirs matches
        items = await ctx.storage.store.asearch(tuple(value["namespace"] or ()), **kwargs)
        return {"items": [item_json(i) for i in items]}

    async def list_namespaces(req: ApiRequest) -> Any:
        """List namespaces by prefix, suffix and depth."""
        body = req.body(StoreNamespaces)
        if body.max_depth is not None and body.max_depth < 1:
            raise ApiError(422, "max_depth must be at least 1")
        value = {"namespace": tuple(body.prefix) if body.prefix else None,
                 "suffix": tuple(body.suffix) if body.suffix else None, "max_depth": body.max_depth,
                 "limit": body.limit, "offset": body.offset}  # fmt: skip
        await authorize(req, "store", "list_namespaces", value)
        namespaces = await ctx.storage.store.alist_namespaces(
            prefix=tuple(value["namespace"]) if value["namespace"] else None,
            suffix=tuple(value["suffix"]) if value["suffix"] else None,
            max_depth=body.max_depth,
            limit=body.limit,
            offset=body.offset,
        )
        return {"namespaces": [list(ns) for ns in namespaces]}

    tags = ["store"]
    router.add("PUT", "/store/items", put_item, tags=tags, body_model=StorePut)
    router.add("GET", "/store/items", get_item, tags=tags)
    router.add("DELETE", "/store/items", delete_item, tags=tags, body_model=StoreDelete)
    router.add("POST", "/store/items/search", search_items, tags=tags, body_model=StoreSearch)
    router.add("POST", "/store/namespaces", list_namespaces, tags=tags, body_model=StoreNamespaces)

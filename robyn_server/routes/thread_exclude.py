"""`exclude_metadata` on thread search and count (0.17): leave out threads whose metadata contains it (the
negation of the `metadata` containment filter), applied before paging so pages and counts stay right."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from robyn_server.auth.authorize import SEARCH_ALL, filtered_search
from robyn_server.storage.filters import contains


async def search_threads_excluding(
    search: Callable[..., Awaitable[tuple[list[dict[str, Any]], int]]],
    filters: dict[str, Any] | None,
    exclude: dict[str, Any] | None,
    *,
    limit: int,
    offset: int,
    **kwargs: Any,
) -> tuple[list[dict[str, Any]], int]:
    if not exclude:
        return await filtered_search(search, filters, limit=limit, offset=offset, **kwargs)
    items, _ = await filtered_search(search, filters, limit=SEARCH_ALL, offset=0, **kwargs)
    kept = [item for item in items if not contains(item.get("metadata") or {}, exclude)]
    return kept[offset : offset + limit], len(kept)

"""JSON containment, sorting and paging shared by the storage backends that filter in Python."""

from __future__ import annotations

from typing import Any


def contains(document: Any, query: Any) -> bool:
    """JSONB-style containment: every key of `query` is in `document` with a containing value."""
    if isinstance(query, dict):
        if not isinstance(document, dict):
            return False
        return all(k in document and contains(document[k], v) for k, v in query.items())
    if isinstance(query, list):
        if not isinstance(document, list):
            return False
        return all(any(contains(d, q) for d in document) for q in query)
    return document == query


def sort_and_page(
    items: list[dict[str, Any]], sort_by: str, sort_order: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Sort by one field (None last), then cut a page; returns the page and the total count."""
    reverse = sort_order.lower() != "asc"
    present = [i for i in items if i.get(sort_by) is not None]
    missing = [i for i in items if i.get(sort_by) is None]
    present.sort(key=lambda i: i[sort_by], reverse=reverse)
    ordered = present + missing
    return ordered[offset : offset + limit], len(ordered)

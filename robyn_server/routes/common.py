"""Small helpers shared by route modules."""

from __future__ import annotations

from typing import Any

from robyn_server.errors import ApiError


def pagination_headers(offset: int, returned: int, total: int) -> dict[str, str]:
    """`X-Pagination-Total` and, when more items exist, `X-Pagination-Next`, as the reference sends them."""
    next_offset = offset + returned
    if total > next_offset:
        return {"X-Pagination-Total": str(next_offset + 1), "X-Pagination-Next": str(next_offset)}
    return {"X-Pagination-Total": str(next_offset)}


def select_fields(items: list[dict[str, Any]], select: list[str] | None, allowed: set[str]) -> list[dict[str, Any]]:
    if not select:
        return items
    unknown = [f for f in select if f not in allowed]
    if unknown:
        raise ApiError(422, f"Invalid select field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}")
    return [{k: item.get(k) for k in select} for item in items]


def merge_dicts(*parts: dict[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        if part:
            merged.update(part)
    return merged

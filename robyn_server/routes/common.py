"""Small helpers shared by route modules, and the limits every request body is checked against."""

from __future__ import annotations

import re
from typing import Any

from robyn_server.errors import ApiError
from robyn_server.schemas import MAX_JSON_DEPTH

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LONG_NUMBER = re.compile(rb"\d{19}")  # only a number this long can leave the signed 64-bit range
_NUL_ESCAPE = b"\\u0000"


def check_json_limits(raw: bytes, data: Any) -> None:
    """Refuse (422) what no backend stores the same way: integers outside the signed 64-bit range, NUL
    characters in strings or keys (Postgres refuses them), nesting deeper than MAX_JSON_DEPTH (the JSON encoder
    and the SQL JSON functions stop at a few hundred levels). The parsed `data` is walked only when the raw
    bytes show that one of these may be present, so ordinary bodies cost three byte scans."""
    want_int = _LONG_NUMBER.search(raw) is not None
    want_nul = _NUL_ESCAPE in raw
    want_depth = raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH
    if want_int or want_nul or want_depth:
        _walk(data, want_int, want_nul, want_depth)


def _walk(data: Any, want_int: bool, want_nul: bool, want_depth: bool) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if want_depth and depth > MAX_JSON_DEPTH:
                raise ApiError(422, f"JSON body is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
            for key, item in value.items():
                if want_nul and "\x00" in key:
                    raise ApiError(422, "NUL characters (\\u0000) are not allowed in JSON keys")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if want_depth and depth > MAX_JSON_DEPTH:
                raise ApiError(422, f"JSON body is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            if want_nul and "\x00" in value:
                raise ApiError(422, "NUL characters (\\u0000) are not allowed in strings")
        elif want_int and isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise ApiError(422, f"Integer {value} is out of range (signed 64-bit)")


def check_text(name: str, value: str | None) -> str | None:
    """A query or path value: NUL characters are refused like in bodies."""
    if value is not None and "\x00" in value:
        raise ApiError(422, f"NUL characters are not allowed in '{name}'")
    return value


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

"""Auth filters returned by handlers (`{"owner": "alice"}`, `{"k": {"$eq": v}}`, `{"k": {"$contains": v}}`,
`$or` / `$and` groups): matching one record, and turning them into the storage layer's metadata containment."""

from __future__ import annotations

from typing import Any

from robyn_server.errors import ApiError

MAX_NESTING = 2


def _too_deep() -> ApiError:
    return ApiError(
        500,
        "Your auth handler returned a filter with too many nested operators. The maximum depth for nested "
        "operators is 2. Please simplify your filter.",
    )


def _groups(filters: dict[str, Any], op: str) -> list[dict[str, Any]]:
    groups = filters[op]
    if not isinstance(groups, list) or len(groups) < 2:
        raise ApiError(
            500,
            f"Your auth handler returned a filter with an invalid {op} operator. The {op} operator must be a "
            "list of at least 2 filter objects. Check the filter returned by your auth handler.",
        )
    return groups


def matches(metadata: dict[str, Any] | None, filters: dict[str, Any] | None, level: int = 0) -> bool:
    """Whether a record's metadata satisfies an auth filter (the reference's `_check_filter_match`)."""
    if level > MAX_NESTING:
        raise _too_deep()
    if not filters:
        return True
    metadata = metadata or {}
    rest = dict(filters)
    if "$or" in rest:
        groups = _groups(rest, "$or")
        del rest["$or"]
        if not any(matches(metadata, g, level + 1) for g in groups):
            return False
    if "$and" in rest:
        groups = _groups(rest, "$and")
        del rest["$and"]
        if not all(matches(metadata, g, level + 1) for g in groups):
            return False
    for key, value in rest.items():
        if isinstance(value, dict) and value:
            op = next(iter(value))
            operand = value[op]
            if op == "$eq":
                if key not in metadata or metadata[key] != operand:
                    return False
            elif op == "$contains":
                present = metadata.get(key)
                if not isinstance(present, list):
                    return False
                wanted = operand if isinstance(operand, list) else [operand]
                if any(w not in present for w in wanted):
                    return False
            else:
                raise ApiError(500, f"Your auth handler returned a filter with an unknown operator: {op}")
        elif key not in metadata or metadata[key] != value:
            return False
    return True


def to_containment(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """The filter as one JSON containment document, or None when it cannot be expressed that way ($or)."""
    if not filters:
        return {}
    out: dict[str, Any] = {}
    parts: list[dict[str, Any]] = [filters]
    while parts:
        part = parts.pop()
        for key, value in part.items():
            if key == "$or":
                return None
            if key == "$and":
                parts.extend(_groups(part, "$and"))
                continue
            if isinstance(value, dict) and value:
                op = next(iter(value))
                operand = value[op]
                if op == "$eq":
                    if isinstance(operand, (dict, list)):
                        return None  # equality of a structure is stricter than containment
                    term: Any = operand
                elif op == "$contains":
                    term = operand if isinstance(operand, list) else [operand]
                else:
                    return None
            elif isinstance(value, (dict, list)):
                return None
            else:
                term = value
            if key in out:
                if isinstance(out[key], list) and isinstance(term, list):
                    out[key] = out[key] + term
                elif out[key] != term:
                    return None  # two different values for one key: leave it to `matches`
            else:
                out[key] = term
    return out


def merge_metadata(query: dict[str, Any] | None, filters: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    """The metadata containment to pass to storage search for a user query plus an auth filter, and whether
    results still need `matches()` in Python (filters that containment cannot express or that conflict)."""
    if not filters:
        return query, False
    containment = to_containment(filters)
    if containment is None:
        return query, True
    merged = dict(query or {})
    for key, term in containment.items():
        if key in merged and merged[key] != term:
            return query, True
        merged[key] = term
    return merged, False

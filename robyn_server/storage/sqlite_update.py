"""One-statement updates of a stored SQLite record, instead of a read-modify-write transaction.

Most updates on a run's path (`status`, `updated_at`, merging `graph_id`/`assistant_id` into metadata) only
change typed columns, keys the record already has, and top-level metadata keys. Those become one
`UPDATE ... RETURNING *` that SQLite applies atomically: JSON values and doc entries are set with `json_set`,
which keeps existing keys in place and appends new ones, exactly like a Python dict update. Anything else
(a new key, a value that moves between a column and the doc, an unusual key) returns None, and the caller
does the general read-modify-write.
"""

from __future__ import annotations

from typing import Any

from robyn_server.storage.records import Layout, json_text, time_text


def _path(key: str) -> str | None:
    """A JSON path for a top-level object key, or None when the key needs escaping we do not attempt."""
    if not key or any(c in key for c in '"\\.[]$') or not key.isprintable():
        return None
    return f'$."{key}"'


def in_place_update(
    table: str, layout: Layout, key: str, fields: dict[str, Any], metadata: dict[str, Any] | None = None
) -> tuple[str, list[Any]] | None:
    """`(sql, params)` updating `key`'s row in place, matching no row unless the record already has every key
    in `fields` (and `metadata` when it is patched) and none of its column fields is held in the doc."""
    if layout.key in fields or (metadata is not None and "metadata" in fields):
        return None
    cols, doc = layout.split({layout.key: key, **fields})
    rest: dict[str, Any] = doc["rest"]
    sets: list[str] = []
    params: list[Any] = []
    doc_paths: list[Any] = []
    guards: list[str] = []
    guard_params: list[Any] = []
    for name in fields:
        path = _path(name)
        if path is None:
            return None
        if name in rest:
            if name in layout.columns:
                return None  # a column value kept in the doc: the general path clears the column
            doc_paths += [f"$.rest.{path[2:]}", json_text(rest[name])]
            continue
        value = cols[name]
        kind = layout.columns[name]
        if value is not None and kind == "time":
            value = time_text(value)
        elif value is not None and kind == "json":
            value = json_text(value)
        sets.append(f'"{name}" = ?')
        params.append(value)
        guards.append("json_type(doc, ?) IS NULL")  # not shadowed by a doc entry of the same name
        guard_params.append(f"$.rest.{path[2:]}")
    names = list(fields)
    if metadata is not None:
        pairs: list[Any] = []
        for name, value in metadata.items():
            path = _path(name)
            if path is None:
                return None
            pairs += [path, json_text(value)]
        if pairs:
            placeholders = ", ".join("?, json(?)" for _ in metadata)
            sets.append(f"metadata = json_set(COALESCE(metadata, '{{}}'), {placeholders})")
            params += pairs
        names.append("metadata")
        guards.append("json_type(doc, '$.rest.metadata') IS NULL")
    if doc_paths:
        sets.append(f"doc = json_set(doc, {', '.join('?, json(?)' for _ in range(len(doc_paths) // 2))})")
        params += doc_paths
    if not sets:
        return None
    unique = list(dict.fromkeys(names))
    guards.append(
        f"(SELECT COUNT(DISTINCT value) FROM json_each(doc, '$.keys') WHERE value IN ({', '.join('?' * len(unique))}))"
        " = ?"
    )
    guard_params += [*unique, len(unique)]
    sql = f"UPDATE {table} SET {', '.join(sets)} WHERE {layout.key} = ? AND {' AND '.join(guards)} RETURNING *"
    return sql, [*params, key, *guard_params]

"""Splitting API records into typed SQL columns plus a JSON remainder, shared by the SQL backends.

Records are open-ended dicts (routes add keys such as `error` or `interrupts` later), so a table holds the
fields it filters and sorts on as real columns and everything else in a JSON `doc`. The doc also keeps the
record's key order and which keys exist, so a stored record reads back equal to what was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from robyn_server import serde

Record = dict[str, Any]
Kind = Literal["text", "time", "int", "json"]

_DATETIME_TAG = "$datetime"


def to_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken to be UTC already (the server only makes UTC times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_text(value: datetime) -> str:
    """Fixed-width UTC ISO text, so text order equals time order (SQLite stores times as text)."""
    return (value if value.tzinfo is UTC else to_utc(value)).isoformat(timespec="microseconds")


def parse_time_text(value: str) -> datetime:
    """Inverse of `time_text`."""
    return to_utc(datetime.fromisoformat(value))


def json_text(value: Any) -> str:
    """Compact JSON text with the server's encoder (datetimes nested in values become ISO strings)."""
    return serde.dumps(value).decode()


def _accepts(kind: Kind, value: Any) -> bool:
    if value is None or kind == "json":
        return True
    if kind == "text":
        return isinstance(value, str)
    if kind == "time":
        return isinstance(value, datetime)
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Layout:
    """Which record keys of one table live in typed columns; `key` is the primary id column."""

    key: str
    columns: dict[str, Kind] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """All column names in a fixed order, key first, ending with `doc`."""
        return [self.key, *self.columns, "doc"]

    def sortable(self, name: str) -> bool:
        """Whether `sort_by=name` can be ordered in SQL (JSON columns sort in Python instead)."""
        return name == self.key or self.columns.get(name) in ("text", "time", "int")

    def split(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], Record]:
        """Column values (plain Python, None where absent) and the JSON doc holding everything else."""
        cols: dict[str, Any] = {name: None for name in self.columns}
        cols[self.key] = record[self.key]
        rest: Record = {}
        for name, value in record.items():
            if name == self.key:
                continue
            kind = self.columns.get(name)
            if kind is not None and _accepts(kind, value):
                cols[name] = to_utc(value) if isinstance(value, datetime) else value
            else:
                rest[name] = {_DATETIME_TAG: time_text(value)} if isinstance(value, datetime) else value
        return cols, {"keys": list(record), "rest": rest}

    def join(self, cols: Mapping[str, Any], doc: Mapping[str, Any]) -> Record:
        """Rebuild the record from decoded column values and its doc, in the original key order."""
        rest = doc.get("rest") or {}
        record: Record = {}
        for name in doc.get("keys") or [self.key]:
            if name in rest:
                value = rest[name]
                if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_DATETIME_TAG), str):
                    value = parse_time_text(value[_DATETIME_TAG])
                record[name] = value
            else:
                record[name] = cols.get(name)
        return record


ASSISTANTS = Layout(
    "assistant_id",
    {
        "graph_id": "text",
        "name": "text",
        "version": "int",
        "created_at": "time",
        "updated_at": "time",
        "metadata": "json",
    },
)
THREADS = Layout(
    "thread_id",
    {
        "status": "text",
        "created_at": "time",
        "updated_at": "time",
        "state_updated_at": "time",
        "metadata": "json",
        "values": "json",
    },
)
RUNS = Layout(
    "run_id",
    {
        "thread_id": "text",
        "assistant_id": "text",
        "status": "text",
        "created_at": "time",
        "updated_at": "time",
        "metadata": "json",
    },
)

"""JSON encoding shared by every response and stream frame (orjson, one place)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel


def _default(obj: Any) -> Any:
    """Encode what orjson cannot: LangChain messages, pydantic models, sets, Commands..."""
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    if hasattr(obj, "to_json") and hasattr(obj, "lc_id"):
        # LangChain Serializable objects that are not pydantic-backed.
        return obj.to_json()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return repr(obj)


_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(obj: Any) -> bytes:
    """Serialize to compact JSON bytes, the way the reference server does."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def loads(data: str | bytes) -> Any:
    """Parse JSON text or bytes."""
    return orjson.loads(data)


def to_jsonable(obj: Any) -> Any:
    """Round-trip through JSON so stored values hold plain data only."""
    return orjson.loads(dumps(obj))

"""The one JSON encoder for every model object.

A model is a dataclass with a class attribute `json_type` (the NDJSON "type"). Fields are
emitted in declaration order; field metadata can rename (`{"json": "from"}`) or hide
(`{"json": None}`) a field. Nested dataclasses, lists, tuples, dicts, enums and
ipaddress-like objects are converted; numbers stay numbers. Models whose `json_type` is
None are text-only (e.g. an interim status line) and produce no JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

_MISSING = object()


def to_jsonable(value: Any) -> Any:
    """Convert a model (or any value inside one) to plain JSON types."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value else None  # NaN is not JSON
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_dict(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)  # addresses, networks, paths


def _dataclass_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = getattr(obj, "json_type", None)
    if kind is not None:
        out["type"] = kind
    for f in dataclasses.fields(obj):
        name = f.metadata.get("json", _MISSING)
        if name is None:
            continue
        key = f.name if name is _MISSING else name
        out[key] = to_jsonable(getattr(obj, f.name))
    return out


def encode(obj: Any) -> str | None:
    """One NDJSON line for a model object, or None for a text-only model."""
    if getattr(obj, "json_type", None) is None:
        return None
    return json.dumps(to_jsonable(obj), separators=(", ", ": "), ensure_ascii=False)

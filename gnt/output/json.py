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


_LAYOUTS: dict[type, tuple[tuple[str, str], ...]] = {}  # class -> ((attribute, json key), ...)


def _layout(cls: type) -> tuple[tuple[str, str], ...]:
    """The (attribute, key) pairs of a model class, worked out once per class (hot in big dumps)."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        pairs = []
        for f in dataclasses.fields(cls):
            name = f.metadata.get("json", _MISSING)
            if name is None:
                continue
            pairs.append((f.name, f.name if name is _MISSING else name))
        layout = _LAYOUTS[cls] = tuple(pairs)
    return layout


def _dataclass_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = getattr(obj, "json_type", None)
    if kind is not None:
        out["type"] = kind
    for attribute, key in _layout(type(obj)):
        value = getattr(obj, attribute)
        # Plain values are by far the most common: skip the generic conversion for them.
        out[key] = value if value is None or type(value) in _PLAIN else to_jsonable(value)
    return out


_PLAIN = frozenset({bool, int, str})


def encode(obj: Any) -> str | None:
    """One NDJSON line for a model object, or None for a text-only model."""
    if getattr(obj, "json_type", None) is None:
        return None
    return json.dumps(to_jsonable(obj), separators=(", ", ": "), ensure_ascii=False)

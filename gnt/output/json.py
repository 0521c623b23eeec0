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
    if getattr(obj, "json_flat", False):
        line = _flat_entry(obj)
        if line is not None:
            return line
    return json.dumps(to_jsonable(obj), separators=(", ", ": "), ensure_ascii=False)


# ---- the flat fast path -------------------------------------------------------------------
#
# A conntrack dump is a million objects of one shape (a model class with `json_flat = True`):
# the fields of gnt.conntrack.models.Entry, in its order, whose values are plain identifiers,
# addresses and numbers. They are written with one format string instead of a dict per object
# and json.dumps; whatever this path is not sure of (a string that could need escaping, a float,
# counters, labels) returns None and takes the generic path. Tests hold both paths equal.

_SAFE_TEXT = frozenset("0123456789abcdefABCDEF:._-ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ")
_names_json: dict[tuple[str, ...], str] = {}


def _names(values: tuple[str, ...]) -> str | None:
    text = _names_json.get(values)
    if text is None:
        if not all(v and _SAFE_TEXT.issuperset(v) for v in values):
            return None
        text = "[" + ", ".join(f'"{v}"' for v in values) + "]"
        if len(_names_json) < 4096:
            _names_json[values] = text
    return text


def _flat_tuple(t: Any) -> str | None:
    kind = type(t).__name__
    src, dst = t.src, t.dst
    if not (_SAFE_TEXT.issuperset(src) and _SAFE_TEXT.issuperset(dst)):
        return None
    if kind == "PortTuple":
        return f'{{"src": "{src}", "dst": "{dst}", "sport": {t.sport}, "dport": {t.dport}}}'
    if kind == "IcmpTuple":
        return f'{{"src": "{src}", "dst": "{dst}", "type": {t.type}, "code": {t.code}, "id": {t.id}}}'
    if kind == "AddrTuple":
        return f'{{"src": "{src}", "dst": "{dst}"}}'
    return None


def _opt(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _flat_entry(e: Any) -> str | None:
    if (e.start is not None or e.stop is not None or e.counters is not None or e.helper is not None
            or e.labels is not None):
        return None
    status, nat = _names(e.status), _names(e.nat)
    original, reply = _flat_tuple(e.original), _flat_tuple(e.reply)
    state = e.state
    if status is None or nat is None or original is None or reply is None \
            or not (_SAFE_TEXT.issuperset(e.family) and _SAFE_TEXT.issuperset(e.proto)) \
            or (state is not None and not (state and _SAFE_TEXT.issuperset(state))):
        return None
    return (f'{{"type": "{e.json_type}", "family": "{e.family}", "proto": "{e.proto}", '
            f'"state": {"null" if state is None else chr(34) + state + chr(34)}, "status": {status}, '
            f'"original": {original}, "reply": {reply}, "nat": {nat}, "mark": {_opt(e.mark)}, '
            f'"zone": {int(e.zone)}, "timeout": {_opt(e.timeout)}, "id": {_opt(e.id)}, "start": null, '
            f'"stop": null, "counters": null, "helper": null, "use": {_opt(e.use)}, '
            f'"orig_zone": {_opt(e.orig_zone)}, "reply_zone": {_opt(e.reply_zone)}, "labels": null}}')



def entry_json_render(f: dict[str, str]) -> str | None:
    """The expression of an entry's JSON line over a compiled conntrack layout's fields (see
    gnt.conntrack.entries.compile_builder; the same text as `encode`, held equal by the tests),
    or None when the layout has fields this form does not write (counters, timestamps)."""
    if f["counters"] != "None" or f["start"] != "None" or f["stop"] != "None" or f["kind"] != "ports":
        return None
    if "None" in (f["o_sport"], f["o_dport"], f["r_sport"], f["r_dport"]):
        return None

    def opt(expr: str) -> str:
        return "null" if expr == "None" else "{_opt(" + expr + ")}"

    def ports(prefix: str) -> str:
        return ('{{"src": "{' + prefix + 'src}", "dst": "{' + prefix + 'dst}", "sport": {' + f[prefix + "sport"]
                + '}, "dport": {' + f[prefix + "dport"] + '}}}')

    state = "null" if f["state"] == "None" else "{_quoted(" + f["state"] + ")}"
    return ("(f'{{\"type\": \"entry\", \"family\": \"" + f["family"] + "\", "
            "\"proto\": {_quoted(PROTO_NAMES.get(proto) or str(proto))}, \"state\": " + state + ", "
            "\"status\": {_names_text(" + f["names"] + ")}, \"original\": " + ports("o_") + ", "
            "\"reply\": " + ports("r_") + ", \"nat\": {_names_text(" + f["nat"] + ")}, "
            "\"mark\": " + opt(f["mark"]) + ", \"zone\": {" + f["zone"] + "}, "
            "\"timeout\": " + opt(f["timeout"]) + ", \"id\": " + opt(f["id"]) + ", \"start\": null, "
            "\"stop\": null, \"counters\": null, \"helper\": null, \"use\": " + opt(f["use"]) + ", "
            "\"orig_zone\": " + opt(f["o_zone"]) + ", \"reply_zone\": " + opt(f["r_zone"]) + ", "
            "\"labels\": null}}' if proto in PORT_PROTOS else None)")


def _quoted(text: str) -> str:
    return f'"{text}"' if text and _SAFE_TEXT.issuperset(text) else json.dumps(text, ensure_ascii=False)


def _names_text(values: tuple[str, ...]) -> str:
    return _names(values) or json.dumps(list(values), ensure_ascii=False)


ENTRY_JSON_HELPERS = {"_names_text": _names_text, "_opt": _opt, "_quoted": _quoted}

"""Write the JSON Schemas of every object gnt prints: gnt/fleet/schema/v1/<command>.json.

Generated from the model dataclasses themselves (their `json_type`, fields and type hints,
through the same field layout the JSON encoder uses), so a schema cannot drift from what is
printed; tests/unit/test_schemas.py fails when the committed files are out of date, and the
test helpers validate every JSON line the test suite makes gnt print against them.

    python build/gen_schemas.py          # rewrite the files
    python build/gen_schemas.py --check  # exit 1 when a file would change
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import ipaddress
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gnt.fleet.envelope import SCHEMA, StreamMeta  # noqa: E402
from gnt.fleet.schema import COMMAND_MODELS, schema_path  # noqa: E402
from gnt.output.json import _layout  # noqa: E402

DRAFT = "https://json-schema.org/draft/2020-12/schema"


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def model(self, cls: type) -> dict[str, Any]:
        """A $ref to the object schema of dataclass `cls` (defined once in $defs)."""
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: recursive models
            hints = typing.get_type_hints(cls, include_extras=False)
            properties: dict[str, Any] = {}
            kind = getattr(cls, "json_type", None)
            if kind is not None:
                properties["type"] = {"const": kind}
            for attribute, key in _layout(cls):
                properties[key] = self.hint(hints.get(attribute, Any))
            self.defs[name] = {
                "type": "object",
                "description": _description(cls),
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            }
        return {"$ref": f"#/$defs/{name}"}

    def hint(self, hint: Any) -> dict[str, Any]:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is Any or hint is object:
            return {}
        if hint is type(None) or hint is None:
            return {"type": "null"}
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.hint(a) for a in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "items": self.hint(args[0]) if args else {}}
        if origin is tuple:
            return {"type": "array", "prefixItems": [self.hint(a) for a in args], "items": False}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.hint(args[1]) if args else {}}
        if origin is typing.ClassVar:
            return {}
        if hint is bool:
            return {"type": "boolean"}
        if hint is int:
            return {"type": "integer"}
        if hint is float:
            return {"type": "number"}
        if hint in (str, bytes, bytearray):
            return {"type": "string"}
        if inspect.isclass(hint) and issubclass(hint, enum.Enum):
            return {"enum": [m.value for m in hint]}
        if inspect.isclass(hint) and dataclasses.is_dataclass(hint):
            return self.model(hint)
        if inspect.isclass(hint) and issubclass(hint, (ipaddress._BaseAddress, ipaddress._BaseNetwork)):
            return {"type": "string"}
        if hint in (list, tuple, set):
            return {"type": "array"}
        if hint is dict:
            return {"type": "object"}
        return {"type": "string"}  # anything else is printed as str()


def _description(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    if not doc or doc.startswith(f"{cls.__name__}("):  # dataclass's generated signature: no docstring
        kind = getattr(cls, "json_type", None)
        return f"a `{kind}` object" if kind else f"{cls.__name__}"
    return doc.split("\n\n")[0].replace("\n", " ")


def models_of(module_name: str) -> list[type]:
    """The printed models of a module: dataclasses defined there with a json_type."""
    module = importlib.import_module(module_name)
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if obj.__module__ == module.__name__ and dataclasses.is_dataclass(obj) and getattr(obj, "json_type", None):
            found.append(obj)
    return sorted(found, key=lambda c: inspect.getsourcelines(c)[1])


def command_schema(command: str, modules: tuple[str, ...]) -> dict[str, Any]:
    builder = _Builder()
    refs = [builder.model(StreamMeta)]
    for module_name in modules:
        refs.extend(builder.model(cls) for cls in models_of(module_name))
    return {
        "$schema": DRAFT,
        "$id": f"{SCHEMA}/{command}.json",
        "title": f"gnt {command} --json: one object per line",
        "description": f"Every line of `gnt {command} --json` is one of these objects; the first is `meta`.",
        "anyOf": refs,
        "$defs": builder.defs,
    }


def render(command: str) -> str:
    return json.dumps(command_schema(command, COMMAND_MODELS[command]), indent=2, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for command in COMMAND_MODELS:
        path = schema_path(command)
        text = render(command)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

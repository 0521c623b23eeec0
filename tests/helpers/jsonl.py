"""Read gnt's --json streams in tests, checking every line against the published schema.

`records(stdout)` is what a test wants: the objects after the `meta` line. Every stream the
test helpers see (in-process `run_gnt`, `Namespace.run`) is checked by `check_stream` when
its command line has --json: the first line is `meta`, every line validates against
gnt/fleet/schema/v1/<command>.json, so a field the schema does not declare fails the test.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any


@functools.cache
def _validator(command: str) -> Any:
    from jsonschema import Draft202012Validator

    from gnt.fleet.schema import schema_path

    path = schema_path(command)
    if not path.exists():
        return None
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def check_stream(stdout: str) -> list[dict[str, Any]]:
    """Every object of a --json stream, validated; raises AssertionError naming the bad line."""
    objects = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    if not objects:
        return objects
    meta = objects[0]
    assert meta.get("type") == "meta", f"a --json stream must open with its meta object, got {meta!r}"
    assert sum(o.get("type") == "meta" for o in objects) == 1, "one meta object per stream"
    validator = _validator(str(meta.get("command")))
    if validator is not None:
        for number, obj in enumerate(objects, 1):
            errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
            assert not errors, f"line {number} does not match the {meta['command']} schema: {errors[0].message}: {obj}"
    return objects


def records(stdout: str) -> list[dict[str, Any]]:
    """The objects of a --json stream after its meta object (validated)."""
    return [o for o in check_stream(stdout) if o.get("type") != "meta"]


def is_json_run(argv: Sequence[str]) -> bool:
    """Whether a gnt command line asks for --json (and is not --npd, which prints one line)."""
    return "--json" in argv and "--npd" not in argv

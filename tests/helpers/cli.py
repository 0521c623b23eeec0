"""Run gnt in-process with an injected environment, as the in-process CLI tests do."""

from __future__ import annotations

import io

from gnt.__main__ import main
from gnt.output.env import Environment
from helpers.jsonl import check_stream, is_json_run


def run_gnt(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """`gnt ARGV`: its exit code, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(argv), Environment(stdout=stdout, stderr=stderr, stdin=io.StringIO(stdin)))
    if is_json_run(argv):
        check_stream(stdout.getvalue())
    return code, stdout.getvalue(), stderr.getvalue()

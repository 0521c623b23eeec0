"""`gnt merge`: many nodes' `--json` streams in, one fleet view out.

A stream is everything from one `meta` object to the next; streams come from files, from
every file of a directory, or several of them concatenated on stdin (`cat *.json | gnt merge -`).
Each stream is judged as it is read (verdicts.py) and only its one-line result is kept, so
memory does not grow with the streams' length. A line that is not a JSON object with a
"type", or objects before any `meta`, are reported with their file and line and skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

from gnt.errors import GntError
from gnt.fleet.models import FleetCommand, MergeSummary, NodeResult, StreamProblem
from gnt.fleet.verdicts import Judge, judge_for

MAX_LINE = 1 << 20  # 1 MiB: no gnt object comes near; a longer "line" is not a gnt stream


class _Stream:
    def __init__(self, meta: dict[str, Any], source: str) -> None:
        self.meta = meta
        self.source = source
        self.judge: Judge = judge_for(meta)

    def result(self) -> NodeResult:
        verdict, bad, detail = self.judge.finish()
        return NodeResult(
            node=str(self.meta.get("node") or "?"), command=self.judge.label, verdict=verdict, bad=bad,
            detail=detail, source=self.source, boot_id=self.meta.get("boot_id"),
            started=self.meta.get("started"), metrics=dict(self.judge.metrics),
        )


def _lines(handle: IO[Any]) -> Iterator[tuple[int, str | None]]:
    """(line number, text) pairs; text None for a line over MAX_LINE (the rest of it skipped)."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE)
        if not line:
            return
        number += 1
        if len(line) >= MAX_LINE and not line.endswith(("\n", b"\n")):
            while True:  # skip to the end of the over-long line, in bounded pieces
                rest = handle.readline(MAX_LINE)
                if not rest or rest.endswith(("\n", b"\n")):
                    break
            yield number, None
            continue
        yield number, line.decode("utf-8", "replace") if isinstance(line, bytes) else line


def expand_sources(paths: Iterable[str]) -> Iterator[str]:
    """Files as given, directories as their regular files in name order, `-` as stdin."""
    for path in paths:
        if path != "-" and os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full) and not name.startswith("."):
                    yield full
        else:
            yield path


class Merger:
    """Feed it sources; it yields problems as they are met, and keeps one result per node and command."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str], NodeResult] = {}
        self.streams = 0
        self.malformed = 0

    def _close(self, stream: _Stream | None) -> None:
        if stream is None:
            return
        result = stream.result()
        key = (result.command, result.node)
        previous = self.results.get(key)
        if previous is None or (result.started or "") >= (previous.started or ""):
            self.results[key] = result  # the newest run of a command on a node stands

    def read(self, name: str, handle: IO[Any]) -> Iterator[StreamProblem]:
        stream: _Stream | None = None
        for number, line in _lines(handle):
            where = f"{name}:{number}"
            if line is None:
                self.malformed += 1
                yield StreamProblem(where, f"a line longer than {MAX_LINE} bytes")
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
                self.malformed += 1
                yield StreamProblem(where, "not a JSON object with a \"type\"")
                continue
            if obj["type"] == "meta":
                self._close(stream)
                stream = _Stream(obj, where)
                self.streams += 1
                continue
            if stream is None:
                self.malformed += 1
                yield StreamProblem(where, f"a {obj['type']!r} object before any meta object (not a gnt stream?)")
                continue
            stream.judge.feed(obj)
        self._close(stream)

    def fleet(self) -> Iterator[FleetCommand | NodeResult]:
        """Per command (alphabetical): the fleet line, then its nodes, bad ones first."""
        by_command: dict[str, list[NodeResult]] = {}
        for result in self.results.values():
            by_command.setdefault(result.command, []).append(result)
        for command in sorted(by_command):
            nodes = sorted(by_command[command], key=lambda r: (not r.bad, r.verdict, r.node))
            verdicts: dict[str, list[str]] = {}
            for r in nodes:
                verdicts.setdefault(r.verdict, []).append(r.node)
            yield FleetCommand(command=command, nodes=len(nodes), bad=sum(r.bad for r in nodes),
                               verdicts={v: sorted(n) for v, n in verdicts.items()})
            yield from nodes

    def summary(self) -> MergeSummary:
        commands = {r.command for r in self.results.values()}
        return MergeSummary(streams=self.streams, nodes=len({r.node for r in self.results.values()}),
                            bad_nodes=len({r.node for r in self.results.values() if r.bad}),
                            malformed_lines=self.malformed, commands=len(commands))


def open_source(path: str, stdin: IO[Any]) -> IO[Any]:
    if path == "-":
        return getattr(stdin, "buffer", stdin)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise GntError(f"cannot read {path}: {exc.strerror}", errno=exc.errno) from None

"""What `gnt merge` prints: one `node` object per node stream, one `fleet` object per command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(slots=True)
class NodeResult:
    """One node's run of one command, judged by its own result objects."""

    json_type: ClassVar[str] = "node"

    node: str
    command: str  # the command as the fleet view groups it: `ping 10.0.0.1`, `vxlan-csum audit`
    verdict: str  # `ok`, or the command's own word for what is wrong (`AT RISK`, `down`, ...)
    bad: bool  # a negative result: the node needs a look
    detail: str  # one line: loss and RTT, finding ids, drop reasons, ...
    source: str  # file:line where the node's stream starts
    boot_id: str | None
    started: str | None
    metrics: dict[str, float] = field(default_factory=dict)  # the figures behind `detail`


@dataclass(slots=True)
class FleetCommand:
    """All nodes that ran one command, grouped by verdict."""

    json_type: ClassVar[str] = "fleet"

    command: str
    nodes: int
    bad: int
    verdicts: dict[str, list[str]]  # verdict -> node names, sorted


@dataclass(slots=True)
class StreamProblem:
    """A line that is not part of a well-formed stream (reported, then skipped)."""

    json_type: ClassVar[str] = "malformed"

    source: str  # file:line
    problem: str


@dataclass(slots=True)
class MergeSummary:
    json_type: ClassVar[str] = "merge_summary"

    streams: int
    nodes: int
    bad_nodes: int
    malformed_lines: int
    commands: int

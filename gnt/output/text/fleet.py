"""Text for `gnt merge`: per command, the nodes by verdict; then each bad node's detail line."""

from __future__ import annotations

from gnt.fleet.models import FleetCommand, MergeSummary, NodeResult, StreamProblem
from gnt.output import ToStderr

MAX_NAMED = 20  # node names listed on a verdict line; the rest are counted ("and 480 more")


def _names(nodes: list[str]) -> str:
    shown = ", ".join(nodes[:MAX_NAMED])
    return shown + (f" and {len(nodes) - MAX_NAMED} more" if len(nodes) > MAX_NAMED else "")


class FleetText:
    """Formatter; `all_nodes` prints every node's line, not only the bad ones."""

    def __init__(self, *, all_nodes: bool = False) -> None:
        self.all_nodes = all_nodes
        self.first = True

    def __call__(self, obj: object) -> str | None:
        if isinstance(obj, StreamProblem):
            return ToStderr(f"gnt merge: {obj.source}: {obj.problem}; skipped")
        if isinstance(obj, FleetCommand):
            lead = "" if self.first else "\n"
            self.first = False
            lines = []
            for verdict, nodes in sorted(obj.verdicts.items(), key=lambda kv: (verdict_rank(kv[0]), kv[0])):
                if verdict == "ok":
                    lines.append(f"  {len(nodes)} ok")
                else:
                    lines.append(f"  {len(nodes)} {verdict}: {_names(nodes)}")
            head = (f"{obj.command}: {obj.bad} of {_count(obj.nodes, 'node')} need a look" if obj.bad
                    else f"{obj.command}: {'the one node' if obj.nodes == 1 else f'all {obj.nodes} nodes'} ok")
            return lead + "\n".join([head, *lines])
        if isinstance(obj, NodeResult):
            if not (obj.bad or self.all_nodes):
                return None
            return f"    {obj.node:<24} {obj.verdict + ':':<15} {obj.detail}"
        if isinstance(obj, MergeSummary):
            return (f"\n{_count(obj.nodes, 'node')}, {_count(obj.streams, 'stream')}, "
                    f"{_count(obj.commands, 'command')}; {_count(obj.bad_nodes, 'node')} need a look"
                    + (f"; {obj.malformed_lines} malformed lines skipped" if obj.malformed_lines else ""))
        return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def verdict_rank(verdict: str) -> int:
    return 1 if verdict == "ok" else 0

"""What `gnt why` yields: one `Check` per thing it looked at, then one `Verdict`.

A check's `status` is ok, warn, fail or skipped; `evidence` is what was seen (the route the
kernel chose, the rule text, the counters), one line each; `fix` the command that repairs it,
where there is one. The verdict names the cause and where, chosen from the checks by the
ordered rules of gnt/why/verdict.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

OK = "ok"  # the thing checked is as it should be
WARN = "warn"  # unusual, may matter, is not the cause on its own
FAIL = "fail"  # this stops the traffic
SKIPPED = "skipped"  # could not be checked here (evidence says why)

HIGH = "high"  # the probe itself was seen dying there (trace, drop reason, kernel answer)
MEDIUM = "medium"  # the configuration explains the failure; nothing saw the packet die
LOW = "low"  # nothing explains it: gnt says so instead of guessing


@dataclass(slots=True)
class Check:
    """One look at one layer of the path."""

    json_type: ClassVar[str] = "check"

    name: str  # route, neighbour, sysctl, firewall, conntrack, mtu, overlay, probe, netfilter-trace, drops, ...
    status: str  # OK, WARN, FAIL or SKIPPED
    summary: str  # one line: what was found
    evidence: list[str] = field(default_factory=list)
    fix: str | None = None


@dataclass(slots=True)
class Verdict:
    """The answer: the cause and where it is, or that the destination answers, or that gnt cannot tell."""

    json_type: ClassVar[str] = "verdict"

    cause: str | None  # one line naming the cause; None when nothing is wrong
    where: str | None  # the node/interface/chain where the traffic dies
    fix: str | None
    confidence: str  # HIGH, MEDIUM or LOW
    reachable: bool  # the destination answered the probe (or passive traffic crossed cleanly)
    line: str = field(metadata={"json": None})  # the first line of the text output
    rule: str = ""  # the verdict rule that decided (gnt/why/verdict.py), for readers and tests


@dataclass(slots=True)
class Query:
    """What to diagnose: the flow as the kernel would see it."""

    dest: str  # an address (the CLI resolves names)
    family: int  # 4 or 6
    proto: str  # tcp, udp or icmp
    port: int | None = None
    source: str | None = None  # -s/--from: the sender's address (ours or a forwarded host's)
    iif: str | None = None  # -i/--iif: where forwarded traffic comes in
    mark: int | None = None  # -m: the fwmark the traffic carries

    @property
    def forwarded(self) -> bool:
        """Traffic this node forwards (an input interface was given), rather than sends."""
        return self.iif is not None

    def flow(self) -> str:
        """`src → dst:port` as the verdict lines print it."""
        from gnt.output.text import endpoint

        target = endpoint(self.dest, self.port)
        return f"{self.source} → {target}" if self.source else target

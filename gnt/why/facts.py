"""The facts the checks gather and the verdict rules read: structured, so no rule parses a line of text.

Each check fills in its part and returns a `Check` for the reader; `verdict.decide` reads
only these facts and the checks' statuses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gnt.why.models import Check, Query


@dataclass
class RouteFacts:
    """The kernel's answer to RTM_GETROUTE for the flow."""

    error: int | None = None  # errno the kernel answered (ENETUNREACH, EHOSTUNREACH, EACCES, EINVAL)
    kind: str | None = None  # unicast, local, unreachable, blackhole, prohibit, no-route, ...
    oif: str | None = None
    gateway: str | None = None
    prefsrc: str | None = None
    table: str | None = None  # "main", "local", or the number
    tables: list[str] = field(default_factory=list)  # tables the policy rules send this lookup to
    default_route: bool | None = None  # table main has a default route
    mtu: int | None = None  # the route's own MTU metric (or the learned PMTU), when set

    @property
    def next_hop(self) -> str | None:
        return self.gateway


@dataclass
class NeighbourFacts:
    address: str
    ifname: str
    state: str  # REACHABLE, STALE, FAILED, INCOMPLETE, ... or NONE
    lladdr: str | None = None
    probed: bool = False

    @property
    def failed(self) -> bool:
        return self.state in ("FAILED", "INCOMPLETE", "NONE")


@dataclass
class ProbeFacts:
    """What the real probe saw."""

    sent: bool = False
    answered: bool = False  # the destination (or its port) answered
    outcome: str = ""  # "connected", "reset", "echo reply", "port unreachable", "timeout", "icmp ...", ...
    error_from: str | None = None  # the address an ICMP error came from
    error_text: str | None = None  # what it said, as iputils words it ("Destination Net Unreachable")
    local_error: str | None = None  # the kernel refused to send (errno text)
    source: str | None = None
    sport: int | None = None
    seconds: float = 0.0


@dataclass
class TraceFacts:
    """The netfilter path of the probe (or of the watched traffic)."""

    available: bool = False
    packets: int = 0
    dropped: int = 0  # packets a rule or policy dropped/rejected
    accepted: int = 0
    drop_step: str | None = None  # "filter FORWARD policy drop", "filter INPUT rule #3 (tcp dport 80 drop)"
    drop_chain: str | None = None  # "filter FORWARD"
    drop_kind: str | None = None  # "policy" or "rule"
    drop_rule: str | None = None
    drop_flow: str | None = None  # "198.18.1.1 → 198.18.2.2:80"
    oifs: list[str] = field(default_factory=list)
    backend: str = ""  # "nft" or "legacy"
    notices: list[str] = field(default_factory=list)  # what the tracer said about what it can see
    blind: bool = False  # nothing traced and the tracer warned it may not see anything here


@dataclass
class Facts:
    query: Query
    local_source: bool = True  # the source (ours or unset) is an address of this node
    route: RouteFacts = field(default_factory=RouteFacts)
    neighbour: NeighbourFacts | None = None
    forwarding: bool | None = None  # effective forwarding on the in interface (forwarded traffic only)
    forwarding_key: str | None = None
    rp_filter_drops: list[str] = field(default_factory=list)  # interfaces where the kernel's input route
    rp_filter_back: str | None = None  # the interface the route back leaves by
    policy_drops: list[str] = field(default_factory=list)  # "filter FORWARD" chains on the path with policy drop
    bridges_nf: bool = False  # bridges exist and bridge-nf-call-iptables is on
    conntrack_full: bool = False
    conntrack_stale: list[str] = field(default_factory=list)  # existing entries for the flow, as lines
    dnat_target: str | None = None  # where DNAT sends the flow ("198.18.2.2:80")
    dnat_neighbour: NeighbourFacts | None = None
    out_mtu: int | None = None
    overlay: str | None = None  # the overlay device the route leaves by (vxlan0)
    overlay_kind: str | None = None  # vxlan, geneve, wireguard
    overlay_peer: str | None = None  # the underlay address of the node behind the overlay
    mtu_black_hole: tuple[int, int] | None = None  # (largest size that passed, smallest that vanished)
    path_mtu: int | None = None
    mtu_checked: bool = False
    probe: ProbeFacts = field(default_factory=ProbeFacts)
    trace: TraceFacts = field(default_factory=TraceFacts)
    drop_reasons: Counter[str] = field(default_factory=Counter)  # kernel drop reason -> count while probing
    drops_available: bool = False
    drops_lost: int = 0  # drop events the kernel's trace buffers lost while watching
    counters: dict[str, int] = field(default_factory=dict)  # node counters that rose while probing
    checks: list[Check] = field(default_factory=list)
    watch_seconds: float | None = None  # passive mode: how long it watched
    passive: bool = False  # --watch: send nothing, not even a neighbour solicitation

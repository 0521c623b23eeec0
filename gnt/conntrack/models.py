"""What `gnt conntrack` yields: entries (with NAT spelled out), events, losses, statistics.

The JSON shapes follow from these dataclasses through gnt/output/json.py: an `entry` has
proto, state, status [...], original {src, dst, sport, dport} (ICMP: type, code, id),
reply {...}, nat [subset of "snat", "dnat"], mark, zone, timeout, id, start/stop, counters,
helper, use, orig_zone/reply_zone (per-direction zones), labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(slots=True)
class PortTuple:
    """One direction of a TCP/UDP/SCTP/DCCP/UDP-Lite entry (GRE: the keys sit in the ports)."""

    src: str
    dst: str
    sport: int
    dport: int


@dataclass(slots=True)
class IcmpTuple:
    """One direction of an ICMP or ICMPv6 entry."""

    src: str
    dst: str
    type: int
    code: int
    id: int


@dataclass(slots=True)
class AddrTuple:
    """One direction of an entry of a protocol conntrack tracks by address only."""

    src: str
    dst: str


Tuple = PortTuple | IcmpTuple | AddrTuple


@dataclass(slots=True)
class Counters:
    """Packets and bytes per direction (net.netfilter.nf_conntrack_acct=1)."""

    original_packets: int
    original_bytes: int
    reply_packets: int
    reply_bytes: int


@dataclass(slots=True)
class Entry:
    """One connection-tracking entry. Fields the kernel did not send are None."""

    json_type: ClassVar[str] = "entry"
    json_flat: ClassVar[bool] = True  # gnt.output.json writes these fields without a dict (a dump's hot path)

    family: str  # "ipv4" or "ipv6"
    proto: str  # "tcp", "udp", "icmp", ... or the number as text
    state: str | None  # TCP/SCTP/DCCP state name; None for stateless protocols
    status: tuple[str, ...]  # IPS_* flag names: ASSURED, SEEN_REPLY, SRC_NAT, ...
    original: Tuple
    reply: Tuple
    nat: tuple[str, ...]  # "snat" and/or "dnat": the kernel translated (SRC_NAT_DONE/DST_NAT_DONE) an address or port
    mark: int | None
    zone: int  # the zone of both directions (conntrack --zone); 0, the default zone, when the kernel sends none
    timeout: int | None  # seconds left
    id: int | None
    start: float | None = None  # kernel timestamp, seconds since the epoch (nf_conntrack_timestamp=1)
    stop: float | None = None
    counters: Counters | None = None
    helper: str | None = None
    protonum: int = field(default=0, metadata={"json": None})
    status_bits: int | None = field(default=None, metadata={"json": None})
    use: int | None = None  # the kernel's reference count of the entry
    secctx: str | None = field(default=None, metadata={"json": None})
    orig_zone: int | None = None  # zone of the original direction alone (conntrack --orig-zone), when set
    reply_zone: int | None = None  # zone of the reply direction alone (conntrack --reply-zone), when set
    labels: tuple[str, ...] | None = None  # connlabel names (connlabel.conf), bit numbers where unnamed


@dataclass(slots=True)
class EventEntry(Entry):
    """An entry as an event announced it (`gnt conntrack watch`)."""

    json_flat: ClassVar[bool] = False  # more fields than the flat path writes

    event: str = "new"  # "new", "update" or "destroy"
    timestamp: float = 0.0  # when gnt received it, seconds since the epoch
    portid: int | None = None  # netlink port of the program that caused it; None when the kernel did
    program: str | None = None  # that program's name, when it could be found


@dataclass(slots=True)
class Lost:
    """The kernel dropped events for us (ENOBUFS): the socket buffer overflowed."""

    json_type: ClassVar[str] = "lost"

    overflows: int  # ENOBUFS seen in this report
    total: int  # since watch started
    timestamp: float
    events: int | None = None  # events lost so far: the kernel's drop count for the socket (None: unknown)


@dataclass(slots=True)
class ListSummary:
    """End of a listing: how many entries matched out of how many were read."""

    json_type: ClassVar[str] = "summary"

    shown: int
    scanned: int
    filtered: bool = field(default=False, metadata={"json": None})


@dataclass(slots=True)
class WatchSummary:
    """End of a watch: events shown and events the kernel dropped."""

    json_type: ClassVar[str] = "summary"

    events: int
    lost: int  # ENOBUFS overflows (each one a burst of events)
    duration: float
    lost_events: int | None = None  # events lost: the kernel's drop count for the socket (None: unknown)
    filtered: bool = field(default=False, metadata={"json": None})


@dataclass(slots=True)
class CpuStats:
    """Per-CPU conntrack counters (what `conntrack -S` shows)."""

    json_type: ClassVar[str] = "cpu"

    cpu: int
    found: int
    invalid: int
    insert: int
    insert_failed: int
    drop: int
    early_drop: int
    error: int
    search_restart: int
    clash_resolve: int | None = None  # kernel 5.9+
    chain_toolong: int | None = None  # kernel 6.2+


@dataclass(slots=True)
class Stats:
    """Totals over all CPUs, the table's fill, and what deserves a look."""

    json_type: ClassVar[str] = "stats"

    entries: int | None
    max_entries: int | None
    found: int
    invalid: int
    insert: int
    insert_failed: int
    drop: int
    early_drop: int
    error: int
    search_restart: int
    clash_resolve: int | None
    chain_toolong: int | None
    warnings: list[str] = field(default_factory=list)

"""What `gnt mtu` yields: the start line, the result (one `mtu` JSON object) and overlay findings."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import ClassVar

OK = "ok"  # the local MTU reaches HOST
PMTU = "pmtu"  # a hop reported a smaller MTU (ICMP fragmentation needed / packet too big)
BLACK_HOLE = "black-hole"  # sizes above N vanish and nobody says why
LOCAL_MISMATCH = "local-mismatch"  # the local device (an overlay) is set larger than its underlay carries
UNREACHABLE = "unreachable"  # not even the smallest size got an answer
VERDICTS = (OK, PMTU, BLACK_HOLE, LOCAL_MISMATCH, UNREACHABLE)


@dataclass(slots=True)
class MtuOptions:
    """Everything `run()` needs; the CLI validates values before building one."""

    host: str
    protocol: str = "udp"  # "udp", "icmp" or "tcp"
    family: int = socket.AF_UNSPEC
    port: int | None = None  # udp: first destination port (33434); tcp: an OPEN port (80)
    min_size: int | None = None  # bytes (whole IP packet); None: 68 for IPv4, 1280 for IPv6
    max_size: int | None = None  # bytes; None: the MTU of the device the route leaves through
    wait: float = 1.0  # seconds to wait for an answer at most (less once RTTs are known)
    source: str | None = None
    interface: str | None = None
    find_hop: bool = True  # walk the TTLs to name the hop of a pmtu or black hole
    overlay: bool = False  # also check the node's vxlan/geneve/wireguard devices


@dataclass(slots=True)
class MtuStart:
    """The header line (text only)."""

    json_type: ClassVar[str | None] = None
    host: str
    address: str
    protocol: str
    local_mtu: int
    device: str | None
    max_size: int


@dataclass(slots=True)
class HopRef:
    """A router on the path: its TTL distance (None: not walked) and address (None: the local stack)."""

    ttl: int | None
    address: str | None


@dataclass(slots=True)
class OverlayFinding:
    """One overlay device judged against its underlay."""

    json_type: ClassVar[str] = "overlay"
    device: str
    kind: str  # "vxlan", "geneve", "wireguard"
    mtu: int
    underlay: str | None  # underlay device (or None when unknown)
    underlay_family: int  # 4 or 6: what the encapsulation is sent over
    underlay_mtu: int | None  # MTU the underlay carries (measured path MTU when known, else the device's)
    overhead: int  # bytes of encapsulation
    max_mtu: int | None  # the largest overlay MTU the underlay carries: underlay_mtu - overhead
    too_large: bool
    measured: bool = False  # underlay_mtu is a measured path MTU (not just a device MTU)


@dataclass(slots=True)
class MtuResult:
    """The verdict (the JSON `mtu` object)."""

    json_type: ClassVar[str] = "mtu"
    host: str
    address: str
    protocol: str
    verdict: str  # one of VERDICTS
    path_mtu: int | None  # the largest size that reaches HOST
    largest_ok: int | None  # the largest size seen to pass
    smallest_lost: int | None  # the smallest size that did not (refused by a hop, or vanished)
    hop: HopRef | None  # pmtu: who reported; black-hole: the last hop the large size reached
    probes: int  # packets sent (size tests, confirmations, the TTL walk)
    local_mtu: int  # MTU of the device the route leaves through
    device: str | None
    reported_mtu: int | None = None  # the MTU a hop reported (pmtu)
    elapsed_ms: int = 0
    mismatch: OverlayFinding | None = None  # local-mismatch: the device set too large
    overlay: list[OverlayFinding] = field(default_factory=list)  # --overlay: every overlay device

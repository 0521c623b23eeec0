"""What a trace yields: the start line, one `Hop` per TTL as soon as it is complete, a `Summary`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TraceOptions:
    """Everything `trace()` needs; the CLI validates values before building one."""

    host: str
    family: int = 0  # socket.AF_UNSPEC: whatever the resolver prefers
    method: str = "udp"  # "udp" (port grows), "udp-port" (-U, constant port), "icmp", "tcp"
    port: int | None = None  # None: 33434 (udp), 53 (-U), 80 (-T); unused for icmp
    first_ttl: int = 1
    max_ttl: int = 30
    queries: int = 3
    simultaneous: int = 16
    wait_max: float = 5.0  # -w MAX: seconds to wait for a probe at most
    wait_here: float = 3.0  # -w HERE: times the RTT of an answer from the same hop
    wait_near: float = 10.0  # -w NEAR: times the RTT of an answer from a later hop
    send_wait: float = 0.0  # -z: seconds between probes
    source: str | None = None
    interface: str | None = None
    numeric: bool = False
    paris: bool = False
    paths: int = 0  # --paths N: N flows, every distinct router per hop (0: off)
    packet_len: int | None = None  # total IP packet length; None: 60 (IPv4) / 80 (IPv6)
    name_timeout: float = 1.0  # seconds a reverse lookup may take before the hop prints without it
    dont_fragment: bool = False  # -F: DF set, the kernel's cached PMTU ignored (IP_PMTUDISC_PROBE)
    mtu: bool = False  # --mtu: shrink the probes as hops report, note the new size as F=<mtu> (implies -F -N 1)


@dataclass(slots=True)
class TraceStart:
    """The header line. Text only: JSON consumers get the same facts in `summary`."""

    json_type = None

    host: str
    address: str
    max_hops: int
    packet_len: int


@dataclass(slots=True)
class ProbeResult:
    """One query slot of a hop: who answered (None: nobody), how fast, and the annotation."""

    address: str | None
    rtt_ms: float | None
    annotation: str | None = None  # "!H", "!N", "!P", "!S", "!X", "!F-<mtu>", "!<code>", "F=<mtu>" (--mtu)
    name: str | None = field(default=None, metadata={"json": "name"})
    flow: int = field(default=0, metadata={"json": None})


@dataclass(slots=True)
class Hop:
    """All query slots of one TTL, printed as one line."""

    json_type = "hop"

    ttl: int
    probes: list[ProbeResult]


@dataclass(slots=True)
class Summary:
    """The end of a trace."""

    json_type = "summary"

    destination: str
    address: str
    reached: bool
    hops: int
    method: str

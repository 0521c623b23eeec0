"""What the IPv6 helpers yield: one dataclass per thing a user sees, rendered by gnt.output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class Soliciting:
    """A solicitation is about to be sent (text only, as ndisc6/rdisc6 announce it)."""

    json_type: ClassVar[str | None] = None
    target: str
    ifname: str
    dad: bool = False


@dataclass
class TimedOut:
    """One try ended without a valid answer (text only)."""

    json_type: ClassVar[str | None] = None


@dataclass
class NoResponse:
    """Every try ended without a valid answer (text only; the exit code says it to scripts)."""

    json_type: ClassVar[str | None] = None


@dataclass
class Ignored:
    """A packet that arrived and was rejected (bad hop limit, malformed options); text only."""

    json_type: ClassVar[str | None] = None
    source: str
    reason: str


@dataclass
class Neighbor:
    """A Neighbor Advertisement that answered `gnt ndisc`."""

    json_type: ClassVar[str | None] = "neighbor"
    address: str  # the target that was resolved
    lladdr: str | None  # its link-layer address (target link-layer address option)
    router: bool  # the R flag: the responder is a router
    source: str = ""  # who answered (the IPv6 source of the advertisement)
    ifname: str = ""
    solicited: bool = True
    override: bool = True


@dataclass
class DadResult:
    """The outcome of duplicate address detection for one address."""

    json_type: ClassVar[str | None] = "dad"
    address: str
    ifname: str
    duplicate: bool
    lladdr: str | None = None  # link-layer address of the node that defends (or also probes) it
    source: str | None = None  # IPv6 source of that answer (:: for a concurrent probe)
    probes: int = 0  # solicitations sent


@dataclass
class Prefix:
    """A Prefix Information option (RFC 4861 §4.6.2)."""

    prefix: str
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int
    router_address: bool = False


@dataclass
class RouteInfo:
    """A Route Information option (RFC 4191 §2.3)."""

    prefix: str
    preference: str
    lifetime: int


@dataclass
class Rdnss:
    """One recursive DNS server of an RDNSS option (RFC 8106 §5.1)."""

    address: str
    lifetime: int


@dataclass
class Dnssl:
    """One domain of a DNSSL option (RFC 8106 §5.2)."""

    domain: str
    lifetime: int


class MTUItem(int):
    """The MTU option's value, kept in `Router.options` so the text shows it where it came."""


class LinkLayerItem(str):
    """The source link-layer address, kept in `Router.options` so the text shows it where it came."""


@dataclass
class Router:
    """A Router Advertisement, decoded field by field."""

    json_type: ClassVar[str | None] = "router"
    source: str
    hop_limit: int
    managed: bool
    other: bool
    preference: str
    router_lifetime: int
    reachable_time: int
    retrans_timer: int
    mtu: int | None
    prefixes: list[Prefix] = field(default_factory=list)
    rdnss: list[Rdnss] = field(default_factory=list)
    dnssl: list[Dnssl] = field(default_factory=list)
    routes: list[RouteInfo] = field(default_factory=list)
    lladdr: str | None = None
    home_agent: bool = False
    proxy: bool = False
    ifname: str = ""
    # The options in the order they came, for the text renderer (rdisc6 prints them so).
    options: list[object] = field(default_factory=list, metadata={"json": None})


@dataclass
class AddressFacts:
    """What `gnt ip6` knows about one address."""

    json_type: ClassVar[str | None] = "address"
    input: str
    compressed: str
    full: str
    kind: str
    scope: str
    multicast_scope: str | None = None
    multicast_flags: list[str] | None = None
    solicited_node: str | None = None
    solicited_node_mac: str | None = None
    multicast_mac: str | None = None  # the Ethernet group a multicast address maps to (RFC 2464 §7)
    eui64_mac: str | None = None  # the MAC inside a modified EUI-64 interface id (RFC 4291 App. A)
    embedded_ipv4: str | None = None  # IPv4-mapped, 6to4 and Teredo addresses carry one
    teredo_server: str | None = None
    reverse_dns: str = ""
    mac: str | None = None  # with --mac: the MAC the address was made from
    prefix: str | None = None  # with --prefix: the prefix it was made on


@dataclass
class NeighborEntry:
    """One entry of the kernel neighbour table."""

    json_type: ClassVar[str | None] = "neighbor"
    address: str
    lladdr: str | None
    ifname: str
    state: str
    router: bool
    family: int = field(default=6, metadata={"json": None})


@dataclass
class NeighborChange:
    """A state transition of a neighbour table entry, seen live (`neigh --watch`)."""

    json_type: ClassVar[str | None] = "neighbor_change"
    time: float  # seconds since the epoch
    event: str  # "new" (added or changed) or "delete"
    address: str
    lladdr: str | None
    ifname: str
    state: str
    previous_state: str | None  # None when the entry was not in the table before
    router: bool


@dataclass
class NeighborWatchEnd:
    """The end of `neigh --watch` (also on Ctrl-C/SIGTERM): how many transitions were shown, over how long."""

    json_type: ClassVar[str | None] = "summary"
    changes: int
    duration: float  # seconds
    interrupted: bool

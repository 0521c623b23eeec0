"""Entry filters for list and watch: parsed from option values, combined with AND.

Every parse_* raises UsageError with one sentence naming the bad value.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from gnt.conntrack.entries import (
    AF_INET,
    AF_INET6,
    DCCP_STATES,
    IPPROTO_DCCP,
    IPPROTO_GRE,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPS_ASSURED,
    IPS_DST_NAT_DONE,
    IPS_EXPECTED,
    IPS_FIXED_TIMEOUT,
    IPS_HW_OFFLOAD,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    IPS_SRC_NAT_DONE,
    PORT_PROTOS,
    PROTO_NUMBERS,
    SCTP_STATES,
    TCP_STATES,
    label_bits_by_name,
)
from gnt.conntrack.models import Entry, PortTuple
from gnt.conntrack.netlink import dump_filter
from gnt.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EVENT_NAMES = ("new", "update", "destroy")
STATE_ALIASES = {"LISTEN": "SYN_SENT2"}  # conntrack-tools' name for the kernel's SYN_SENT2
STATE_TABLES = {IPPROTO_TCP: TCP_STATES, IPPROTO_SCTP: SCTP_STATES, IPPROTO_DCCP: DCCP_STATES}  # -p -> --state names
STATUS_NAMES = {  # what -u/--status takes (conntrack-tools' names); "!NAME" asks for the bit clear
    "ASSURED": IPS_ASSURED, "SEEN_REPLY": IPS_SEEN_REPLY, "UNSET": 0, "FIXED_TIMEOUT": IPS_FIXED_TIMEOUT,
    "EXPECTED": IPS_EXPECTED, "OFFLOAD": IPS_OFFLOAD, "HW_OFFLOAD": IPS_HW_OFFLOAD,
}
MATCH_CACHE_MAX = 1 << 14  # address -> matched, per network filter; cleared past this


def _decimal(value: str, maximum: int) -> int | None:
    """`value` as a number 0..maximum, or None (ASCII digits only: the command line's one parser)."""
    from gnt.cli.numbers import int_value

    try:
        return int_value(value.strip(), 0, maximum)
    except ValueError:
        return None


def parse_proto(value: str) -> int:
    """A protocol name (conntrack-tools' own, or any in /etc/protocols) or a number 0-255."""
    text = value.strip().lower()
    if text in PROTO_NUMBERS:
        return PROTO_NUMBERS[text]
    if text == "ipv6-icmp":
        return PROTO_NUMBERS["icmpv6"]
    number = _decimal(text, 255)
    if number is not None:
        return number
    if text and text.isascii() and text.isprintable() and len(text) < 64:
        try:
            return socket.getprotobyname(text)  # /etc/protocols, as conntrack -p reads it
        except OSError:
            pass
    raise UsageError(f"unknown protocol {value!r}: use tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite, "
                     "a name from /etc/protocols or a number 0-255")


def parse_network(value: str, option: str) -> Network:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not an IPv4/IPv6 address or CIDR prefix") from None


def parse_port(value: str, option: str) -> int:
    port = _decimal(value, 65535)
    if port is not None:
        return port
    raise UsageError(f"{option}: {value!r} is not a port number 0-65535")


def parse_mark(value: str) -> tuple[int, int]:
    """VALUE[/MASK], decimal or 0x-hex, each 32 bits."""
    from gnt.cli.numbers import int_value, shown

    text, _, mask_text = value.strip().partition("/")
    try:
        mark = int_value(text, None, None, hex_ok=True)
        mask = int_value(mask_text, None, None, hex_ok=True) if mask_text else 0xFFFFFFFF
    except ValueError:
        raise UsageError(f"--mark: {shown(value)} is not VALUE[/MASK] (decimal or 0x hex)") from None
    if not (0 <= mark <= 0xFFFFFFFF and 0 <= mask <= 0xFFFFFFFF):
        raise UsageError(f"--mark: {shown(value)} does not fit in 32 bits")
    return mark & mask, mask


def parse_zone(value: str, option: str = "--zone") -> int:
    zone = _decimal(value, 65535)
    if zone is not None:
        return zone
    raise UsageError(f"{option}: {value!r} is not a zone number 0-65535")


def parse_states(value: str, proto: int | None) -> frozenset[str]:
    """--state names of the protocol given with -p (conntrack-tools needs -p for --state too)."""
    table = STATE_TABLES.get(proto) if proto is not None else None
    if table is None:
        raise UsageError("--state needs -p tcp, -p sctp or -p dccp (states belong to a protocol)")
    states: set[str] = set()
    for part in value.split(","):
        name = part.strip().upper()
        if not name:
            continue
        if proto == IPPROTO_TCP:
            name = STATE_ALIASES.get(name, name)
        if name not in table:
            raise UsageError(f"--state: unknown state {part.strip()!r} for this protocol "
                             f"(one of {', '.join(table[1:])})")
        states.add(name)
    if not states:
        raise UsageError("--state: give at least one state")
    return frozenset(states)


def parse_status(value: str) -> tuple[int, int]:
    """-u NAME[,...]: (bits that must be set, bits that must be clear); "!NAME" and UNREPLIED ask for clear."""
    must, clear = 0, 0
    for part in value.split(","):
        name = part.strip().upper()
        negated = name.startswith("!")
        name = name.lstrip("!").strip()
        if name == "UNREPLIED" and not negated:
            clear |= IPS_SEEN_REPLY
            continue
        if name not in STATUS_NAMES:
            raise UsageError(f"--status: unknown status {part.strip()!r} "
                             f"(use {', '.join(STATUS_NAMES)}, UNREPLIED, or !NAME)")
        if negated:
            clear |= STATUS_NAMES[name]
        else:
            must |= STATUS_NAMES[name]
    if must & clear:
        raise UsageError(f"--status {value!r}: a status cannot be both set and clear")
    return must, clear


def parse_labels(values: list[str]) -> frozenset[int]:
    """-l NAME[,...] (repeatable): the label bits an entry must all carry (names from connlabel.conf)."""
    by_name = label_bits_by_name()
    bits: set[int] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name in by_name:
                bits.add(by_name[name])
            elif name.isdecimal() and len(name) <= 3 and int(name) < 128:
                bits.add(int(name))
            else:
                raise UsageError(f"--label: unknown label {name!r}: use a name from /etc/xtables/connlabel.conf "
                                 "or a bit number 0-127")
    if not bits:
        raise UsageError("--label: give at least one label")
    return frozenset(bits)


def parse_nat(value: str, option: str) -> NatFilter:
    """--snat/--dnat/--nat [ADDR[:PORT]] ("" = any translation), IPv6 with a port as [ADDR]:PORT."""
    text = value.strip()
    if not text:
        return NatFilter()
    from gnt.core.resolve import split_host_port

    try:
        address, port_text = split_host_port(text)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not ADDR, ADDR:PORT or [IPv6]:PORT") from None
    port = None
    if port_text is not None:
        port = parse_port(port_text, option)
    parsed = None
    if address:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise UsageError(f"{option}: {value!r} is not ADDR, ADDR:PORT or [IPv6]:PORT") from None
    return NatFilter(None if parsed is None else str(parsed), port)


def parse_events(value: str) -> frozenset[str]:
    events: set[str] = set()
    for part in value.split(","):
        name = part.strip().lower()
        if name == "all":
            events.update(EVENT_NAMES)
        elif name in EVENT_NAMES:
            events.add(name)
        elif name:
            raise UsageError(f"-e: unknown event {part.strip()!r}: use new, update, destroy (comma-separated)")
    if not events:
        raise UsageError("-e: give at least one of new, update, destroy")
    return frozenset(events)


@dataclass(frozen=True)
class NatFilter:
    """One NAT filter: any translation, or one to this address and/or port."""

    address: str | None = None
    port: int | None = None


def _nat_matches(want: NatFilter, done: bool, addr_from: str, addr_to: str, port_from: int | None,
                 port_to: int | None) -> bool:
    """conntrack's rule for one direction: translated (the *_NAT_DONE bit and a changed address
    or port) and, when asked, to this address and/or port (the port must change for a port to match)."""
    if not done:
        return False
    addr_changed = addr_from != addr_to
    port_changed = port_from is not None and port_from != port_to
    if want.address is None and want.port is None:
        return addr_changed or port_changed
    if want.address is not None and not (addr_changed and addr_to == want.address):
        return False
    return want.port is None or (port_changed and port_to == want.port)


@dataclass
class EntryFilter:
    """All the filters of a command; an unset one (None) matches everything. Zero is a value."""

    family: int | None = None  # AF_INET / AF_INET6
    proto: int | None = None
    src: Network | None = None
    dst: Network | None = None
    sport: int | None = None
    dport: int | None = None
    reply_src: Network | None = None
    reply_dst: Network | None = None
    states: frozenset[str] | None = None
    mark: tuple[int, int] | None = None  # (value & mask, mask)
    zone: int | None = None  # either direction in this zone
    orig_zone: int | None = None  # the original direction in this zone
    reply_zone: int | None = None  # the reply direction in this zone
    status: tuple[int, int] | None = None  # (bits set, bits clear)
    labels: frozenset[int] | None = None  # label bits all present
    snat: NatFilter | None = None
    dnat: NatFilter | None = None
    nat: NatFilter | None = None  # either
    _caches: dict[str, dict[str, bool]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Contradictions are usage errors (as conntrack-tools makes them), not "nothing matched"."""
        if self.nat is not None and (self.snat is not None or self.dnat is not None):
            raise UsageError("--nat excludes --snat and --dnat (use --snat --dnat for both)")
        families = {self.family} if self.family is not None else set()
        for network in (self.src, self.dst, self.reply_src, self.reply_dst):
            if network is not None:
                families.add(AF_INET if network.version == 4 else AF_INET6)
        for nat in (self.snat, self.dnat, self.nat):
            if nat is not None and nat.address is not None:
                families.add(AF_INET if ":" not in nat.address else AF_INET6)
        if len(families) > 1:
            raise UsageError("the address filters mix IPv4 and IPv6 (and -4/-6): no entry can match them all")
        if families and self.family is None:
            self.family = families.pop()
        if (self.sport is not None or self.dport is not None) and self.proto is not None \
                and self.proto not in PORT_PROTOS and self.proto != IPPROTO_GRE:
            raise UsageError("--sport/--dport need a protocol with ports (tcp, udp, sctp, dccp, udplite, gre)")

    @property
    def active(self) -> bool:
        """True when any filter is set (an empty result then means "nothing matched")."""
        return any(
            v is not None
            for v in (self.family, self.proto, self.src, self.dst, self.sport, self.dport, self.reply_src,
                      self.reply_dst, self.states, self.mark, self.zone, self.orig_zone, self.reply_zone,
                      self.status, self.labels, self.snat, self.dnat, self.nat)
        )

    def dump_requests(self) -> list[tuple[int, bytes]]:
        """(nfgen_family, attributes) of the dumps that make the kernel send only what may match
        (gnt.conntrack.netlink.dump_filter). The kernel filters on the original tuple (CTA_FILTER)
        only within one family: without -4/-6 or an address that is one dump per family."""
        def exact(network: Network | None) -> bytes | None:
            if network is None or network.prefixlen != network.max_prefixlen:
                return None  # prefixes: the kernel compares whole addresses only
            return network.network_address.packed

        # Any direction's zone N (not 0) puts the kernel's zone id at N: the kernel's test is a superset.
        zone = next((z for z in (self.zone, self.orig_zone, self.reply_zone) if z), None)
        common = dump_filter(
            mark=self.mark, zone=zone,
            status=None if self.status is None else (self.status[0], self.status[0] | self.status[1]),
        )
        by_tuple = dump_filter(
            src=exact(self.src), dst=exact(self.dst), proto=self.proto,
            sport=self.sport if self.proto in PORT_PROTOS else None,
            dport=self.dport if self.proto in PORT_PROTOS else None,
        )
        if by_tuple and self.family is None:
            return [(AF_INET, common + by_tuple), (AF_INET6, common + by_tuple)]
        return [(self.family or 0, common + by_tuple)]

    @property
    def kernel_exact(self) -> bool:
        """True when the kernel can apply every filter set here exactly (dump_requests): then,
        once it is seen doing so, the entries it sends need no second look."""
        def exact(network: Network | None) -> bool:
            return network is None or network.prefixlen == network.max_prefixlen

        ports_ok = (self.sport is None and self.dport is None) or self.proto in PORT_PROTOS
        return (exact(self.src) and exact(self.dst) and ports_ok and self.zone != 0
                and (self.status is None or bool(self.status[1]))
                and all(v is None for v in (self.reply_src, self.reply_dst, self.states, self.orig_zone,
                                            self.reply_zone, self.labels, self.snat, self.dnat, self.nat)))

    def _in(self, which: str, network: Network, address: str) -> bool:
        cache = self._caches.setdefault(which, {})
        hit = cache.get(address)
        if hit is None:
            try:
                hit = ipaddress.ip_address(address) in network
            except ValueError:
                hit = False
            if len(cache) >= MATCH_CACHE_MAX:
                cache.clear()
            cache[address] = hit
        return hit

    def matches(self, entry: Entry) -> bool:
        if self.family is not None and entry.family != ("ipv4" if self.family == AF_INET else "ipv6"):
            return False
        if self.proto is not None and entry.protonum != self.proto:
            return False
        original, reply = entry.original, entry.reply
        if self.src is not None and not self._in("src", self.src, original.src):
            return False
        if self.dst is not None and not self._in("dst", self.dst, original.dst):
            return False
        if self.reply_src is not None and not self._in("reply_src", self.reply_src, reply.src):
            return False
        if self.reply_dst is not None and not self._in("reply_dst", self.reply_dst, reply.dst):
            return False
        if self.sport is not None and not (isinstance(original, PortTuple) and original.sport == self.sport):
            return False
        if self.dport is not None and not (isinstance(original, PortTuple) and original.dport == self.dport):
            return False
        if self.states is not None and entry.state not in self.states:
            return False
        if self.mark is not None and (entry.mark is None or entry.mark & self.mark[1] != self.mark[0]):
            return False
        if self.zone is not None or self.orig_zone is not None or self.reply_zone is not None:
            # A per-direction zone replaces the entry's zone in its direction only.
            orig_zone = entry.zone if entry.orig_zone is None else entry.orig_zone
            reply_zone = entry.zone if entry.reply_zone is None else entry.reply_zone
            if self.zone is not None and self.zone not in (orig_zone, reply_zone):
                return False
            if self.orig_zone is not None and orig_zone != self.orig_zone:
                return False
            if self.reply_zone is not None and reply_zone != self.reply_zone:
                return False
        if self.status is not None:
            bits = entry.status_bits or 0
            must, clear = self.status
            if bits & must != must or bits & clear:
                return False
        if self.labels is not None and not self.labels <= _label_bits(entry):
            return False
        if self.snat is not None or self.dnat is not None or self.nat is not None:
            return self._nat(entry)
        return True

    def _nat(self, entry: Entry) -> bool:
        o, r = entry.original, entry.reply
        bits = entry.status_bits
        # As entries.nat_of (and libnetfilter_conntrack's IS_SPAT/IS_DPAT): GRE keys sit in the ports
        # and a translated key is port translation too.
        ports = type(o) is PortTuple and type(r) is PortTuple
        if not r.src and not r.dst:
            return False  # no reply tuple (a cut message): no translation to see, as entries.nat_of

        def snat(want: NatFilter) -> bool:
            return _nat_matches(want, bits is None or bool(bits & IPS_SRC_NAT_DONE), o.src, r.dst,
                                o.sport if ports else None, r.dport if ports else None)  # type: ignore[union-attr]

        def dnat(want: NatFilter) -> bool:
            return _nat_matches(want, bits is None or bool(bits & IPS_DST_NAT_DONE), o.dst, r.src,
                                o.dport if ports else None, r.sport if ports else None)  # type: ignore[union-attr]

        if self.nat is not None:
            return snat(self.nat) or dnat(self.nat)
        return (self.snat is None or snat(self.snat)) and (self.dnat is None or dnat(self.dnat))


def _label_bits(entry: Entry) -> frozenset[int]:
    if not entry.labels:
        return frozenset()
    names = label_bits_by_name()
    return frozenset(names[n] if n in names else int(n) for n in entry.labels if n in names or n.isdecimal())


def family_of(ipv4: bool, ipv6: bool) -> int | None:
    if ipv4 and ipv6:
        raise UsageError("-4 and -6 exclude each other")
    return AF_INET if ipv4 else AF_INET6 if ipv6 else None

"""Entry filters for list and watch: parsed from option values, combined with AND.

Every parse_* raises UsageError with one sentence naming the bad value.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from gnt.conntrack.entries import (
    AF_INET,
    AF_INET6,
    DCCP_STATES,
    PROTO_NUMBERS,
    SCTP_STATES,
    TCP_STATES,
)
from gnt.conntrack.models import Entry, PortTuple
from gnt.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EVENT_NAMES = ("new", "update", "destroy")
STATE_ALIASES = {"LISTEN": "SYN_SENT2"}  # conntrack-tools' name for the kernel's SYN_SENT2
KNOWN_STATES = frozenset(TCP_STATES) | frozenset(SCTP_STATES) | frozenset(DCCP_STATES)
MATCH_CACHE_MAX = 1 << 14  # address -> matched, per network filter; cleared past this


def _decimal(value: str, maximum: int) -> int | None:
    """`value` as a number 0..maximum, or None (ASCII digits only: the command line's one parser)."""
    from gnt.cli.numbers import int_value

    try:
        return int_value(value.strip(), 0, maximum)
    except ValueError:
        return None


def parse_proto(value: str) -> int:
    text = value.strip().lower()
    if text in PROTO_NUMBERS:
        return PROTO_NUMBERS[text]
    if text == "ipv6-icmp":
        return PROTO_NUMBERS["icmpv6"]
    number = _decimal(text, 255)
    if number is not None:
        return number
    raise UsageError(f"unknown protocol {value!r}: use tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite "
                     "or a number 0-255")


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


def parse_zone(value: str) -> int:
    zone = _decimal(value, 65535)
    if zone is not None:
        return zone
    raise UsageError(f"--zone: {value!r} is not a zone number 0-65535")


def parse_states(value: str) -> frozenset[str]:
    states: set[str] = set()
    for part in value.split(","):
        name = part.strip().upper()
        if not name:
            continue
        name = STATE_ALIASES.get(name, name)
        if name not in KNOWN_STATES:
            raise UsageError(f"--state: unknown state {part.strip()!r} (e.g. ESTABLISHED, SYN_SENT, TIME_WAIT)")
        states.add(name)
    if not states:
        raise UsageError("--state: give at least one state")
    return frozenset(states)


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


@dataclass
class EntryFilter:
    """All the filters of a command; an unset one matches everything."""

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
    zone: int | None = None
    snat: bool = False
    dnat: bool = False
    nat: bool = False
    _caches: dict[str, dict[str, bool]] = field(default_factory=dict, repr=False)

    @property
    def active(self) -> bool:
        """True when any filter is set (an empty result then means "nothing matched")."""
        return any(
            v not in (None, False)
            for v in (self.family, self.proto, self.src, self.dst, self.sport, self.dport, self.reply_src,
                      self.reply_dst, self.states, self.mark, self.zone, self.snat, self.dnat, self.nat)
        )

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
        if self.zone is not None and entry.zone != self.zone:
            return False
        if self.snat and "snat" not in entry.nat:
            return False
        if self.dnat and "dnat" not in entry.nat:
            return False
        return not (self.nat and not entry.nat)


def family_of(ipv4: bool, ipv6: bool) -> int | None:
    if ipv4 and ipv6:
        raise UsageError("-4 and -6 exclude each other")
    return AF_INET if ipv4 else AF_INET6 if ipv6 else None

"""Text for the IPv6 helpers: ndisc6's and rdisc6's formats, `ip neigh`'s lines, `gnt ip6`'s table."""

from __future__ import annotations

import time

from gnt.ndisc.models import (
    AddressFacts,
    DadResult,
    Dnssl,
    Ignored,
    LinkLayerItem,
    MTUItem,
    Neighbor,
    NeighborChange,
    NeighborEntry,
    NeighborWatchEnd,
    NoResponse,
    Prefix,
    Rdnss,
    RouteInfo,
    Router,
    Soliciting,
    TimedOut,
)
from gnt.output import Formatter, ToStderr

LABEL_WIDTH = 26  # rdisc6 pads every field label to this width before the colon
INFINITY = 0xFFFFFFFF  # a lifetime that never expires, RFC 4861 §4.6.2
IPV6_MIN_MTU = 1280  # RFC 8200 §5: a smaller advertised MTU is invalid


def _field(label: str, value: str) -> str:
    return f"{label:<{LABEL_WIDTH}}: {value}"


def _yes_no(value: bool) -> str:
    return f"{'Yes' if value else 'No':>12}"


def _lifetime(value: int, unit: str = "seconds") -> str:
    if value == INFINITY:
        return f"{'infinite':>12} (0x{value:08x})"
    return f"{value:>12} (0x{value:08x}) {unit}"


def _timer(value: int) -> str:
    if value == 0:
        return f"{'unspecified':>12} (0x{value:08x})"
    return f"{value:>12} (0x{value:08x}) milliseconds"


def _soliciting(obj: Soliciting) -> str:
    if obj.dad:
        return f"Probing {obj.target} for duplicates on {obj.ifname}..."
    return f"Soliciting {obj.target} ({obj.target}) on {obj.ifname}..."


def format_neighbor(obj: Neighbor) -> str:
    router = " (router)" if obj.router else ""
    return f"Target link-layer address: {obj.lladdr}\n from {obj.source}{router}"


def format_dad(obj: DadResult) -> str:
    if not obj.duplicate:
        plural = "" if obj.probes == 1 else "s"
        return f"{obj.address} is unique on {obj.ifname}: no answer to {obj.probes} probe{plural}."
    if obj.source == "::":
        return f"Duplicate: {obj.address} is being probed by another node at the same time."
    who = obj.lladdr or "a node without a link-layer address option"
    return f"Duplicate: {obj.address} is in use by {who}\n from {obj.source}"


def _progress(obj: object, *, quiet: bool, verbose: bool) -> str | None:
    """What ndisc6 and rdisc6 both print around the answers: rejected packets (-v), progress (not -q)."""
    if isinstance(obj, Ignored):
        return ToStderr(f"ignored a packet from {obj.source}: {obj.reason}") if verbose else None
    if quiet:
        return None
    if isinstance(obj, Soliciting):
        return _soliciting(obj)
    if isinstance(obj, TimedOut):
        return "Timed out."
    if isinstance(obj, NoResponse):
        return "No response."
    return None


def ndisc_formatter(*, quiet: bool = False, verbose: bool = False) -> Formatter:
    """ndisc6's output: `Target link-layer address: ...` and ` from ...`; -q prints only the MAC."""

    def fmt(obj: object) -> str | None:
        if isinstance(obj, Neighbor):
            return obj.lladdr if quiet else format_neighbor(obj)
        if isinstance(obj, DadResult):
            return ("duplicate" if obj.duplicate else "unique") if quiet else format_dad(obj)
        return _progress(obj, quiet=quiet, verbose=verbose)

    return fmt


def _router_option(item: object) -> list[str]:
    if isinstance(item, Prefix):
        return [
            _field(" Prefix", item.prefix),
            _field("  On-link", _yes_no(item.on_link)),
            _field("  Autonomous address conf.", _yes_no(item.autonomous)),
            _field("  Valid time", _lifetime(item.valid_lifetime)),
            _field("  Pref. time", _lifetime(item.preferred_lifetime)),
        ]
    if isinstance(item, RouteInfo):
        return [
            _field(" Route", item.prefix),
            _field("  Route preference", f"{item.preference:>12}"),
            _field("  Route lifetime", _lifetime(item.lifetime)),
        ]
    if isinstance(item, list) and item and isinstance(item[0], Rdnss):
        lines = [_field(" Recursive DNS server", s.address) for s in item]
        label = "  DNS server lifetime" if len(item) == 1 else "  DNS servers lifetime"
        return [*lines, _field(label, _lifetime(item[0].lifetime))]
    if isinstance(item, list) and item and isinstance(item[0], Dnssl):
        names = "".join(f"{d.domain} " for d in item)
        lifetime = _lifetime(item[0].lifetime)
        return [_field(" DNS search list", names), _field("  DNS search list lifetime", lifetime)]
    if isinstance(item, MTUItem):
        validity = "valid" if item >= IPV6_MIN_MTU else "invalid"
        return [_field(" MTU", f"{item:>12} bytes ({validity})")]
    if isinstance(item, LinkLayerItem):
        return [_field(" Source link-layer address", item)]
    return []


def format_router(obj: Router) -> str:
    """One advertisement in rdisc6's layout, options in the order they came."""
    hop = f"{'undefined':>12}" if obj.hop_limit == 0 else f"{obj.hop_limit:>12}"
    lines = [
        "",
        _field("Hop limit", f"{hop} (      0x{obj.hop_limit:02x})"),
        _field("Stateful address conf.", _yes_no(obj.managed)),
        _field("Stateful other conf.", _yes_no(obj.other)),
        _field("Mobile home agent", _yes_no(obj.home_agent)),
        _field("Router preference", f"{obj.preference:>12}"),
        _field("Neighbor discovery proxy", _yes_no(obj.proxy)),
        _field("Router lifetime", f"{obj.router_lifetime:>12} (0x{obj.router_lifetime:08x}) seconds"),
        _field("Reachable time", _timer(obj.reachable_time)),
        _field("Retransmit time", _timer(obj.retrans_timer)),
    ]
    for item in obj.options:
        lines.extend(_router_option(item))
    lines.append(f" from {obj.source}")
    return "\n".join(lines)


def rdisc_formatter(*, quiet: bool = False, verbose: bool = False) -> Formatter:
    """rdisc6's output; -q prints only the advertised prefixes."""

    def fmt(obj: object) -> str | None:
        if isinstance(obj, Router):
            if quiet:
                return "\n".join(p.prefix for p in obj.prefixes) if obj.prefixes else None
            return format_router(obj)
        return _progress(obj, quiet=quiet, verbose=verbose)

    return fmt


def format_address(obj: AddressFacts) -> str:
    flags = (" ".join(obj.multicast_flags or []) or "none") if obj.kind == "multicast" else None
    rows: list[tuple[str, str | None]] = [
        ("MAC", obj.mac),
        ("Prefix", obj.prefix),
        ("Address", obj.compressed),
        ("Full form", obj.full),
        ("Kind", obj.kind),
        ("Scope", obj.scope),
        ("Multicast flags", flags),
        ("Multicast MAC", obj.multicast_mac),
        ("Solicited-node multicast", obj.solicited_node),
        ("Solicited-node MAC", obj.solicited_node_mac),
        ("EUI-64 MAC", obj.eui64_mac),
        ("Embedded IPv4", obj.embedded_ipv4),
        ("Teredo server", obj.teredo_server),
        ("Reverse DNS", obj.reverse_dns),
    ]
    return "\n".join(_field(label, value) for label, value in rows if value is not None)


def ip6_formatter() -> Formatter:
    """One block per address, a blank line between blocks."""
    count = 0

    def fmt(obj: object) -> str | None:
        nonlocal count
        if not isinstance(obj, AddressFacts):
            return None
        count += 1
        text = format_address(obj)
        return text if count == 1 else "\n" + text

    return fmt


def _neighbor_line(address: str, ifname: str, lladdr: str | None, router: bool) -> str:
    parts = [address, "dev", ifname]
    if lladdr:
        parts += ["lladdr", lladdr]
    if router:
        parts.append("router")
    return " ".join(parts)


def format_entry(obj: NeighborEntry) -> str:
    """`ip neigh`'s line: ADDRESS dev IFACE lladdr MAC [router] STATE."""
    return f"{_neighbor_line(obj.address, obj.ifname, obj.lladdr, obj.router)} {obj.state}"


def format_change(obj: NeighborChange) -> str:
    """A timestamped transition: [HH:MM:SS.mmm] ADDRESS dev IFACE lladdr MAC [router] OLD -> NEW."""
    stamp = time.strftime("%H:%M:%S", time.localtime(obj.time)) + f".{int(obj.time * 1000) % 1000:03d}"
    line = _neighbor_line(obj.address, obj.ifname, obj.lladdr, obj.router)
    if obj.event == "delete":
        return f"[{stamp}] {line} {obj.previous_state or obj.state} -> deleted"
    return f"[{stamp}] {line} {obj.previous_state or 'none'} -> {obj.state}"


def neigh_formatter() -> Formatter:
    def fmt(obj: object) -> str | None:
        if isinstance(obj, NeighborEntry):
            return format_entry(obj)
        if isinstance(obj, NeighborChange):
            return format_change(obj)
        if isinstance(obj, NeighborWatchEnd):
            return ToStderr(f"gnt neigh: {obj.changes} change{'s' if obj.changes != 1 else ''} shown"
                            f" in {obj.duration:.1f}s{' (interrupted)' if obj.interrupted else ''}")
        return None

    return fmt

"""Neighbor Solicitation: resolve a link-layer address, or detect a duplicate address.

Resolution (RFC 4861 §7.2.2): a Neighbor Solicitation for the target goes to its
solicited-node multicast group with hop limit 255 and our source link-layer address; the
answer is a Neighbor Advertisement for that target, accepted only when it passes the checks
of RFC 4861 §7.1.2 (hop limit 255, code 0, length, well-formed options).

Duplicate address detection (RFC 4862 §5.4): the solicitation leaves from the unspecified
address and carries no link-layer option; any advertisement for the target means another
node holds the address, and so does another node's own probe for it (a solicitation from
the unspecified address for the same target, §5.4.3).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

from gnt.core.checksum import PROTO_ICMPV6
from gnt.core.packets import icmpv6
from gnt.core.packets.ipv6 import IPv6, multicast_mac, solicited_node
from gnt.core.sockets import (
    NDP_HOP_LIMIT,
    LinkSender,
    NDPSocket,
    interface_mac,
)
from gnt.core.sockets import (
    NdpReceived as Received,
)
from gnt.errors import DecodeError, UsageError
from gnt.ndisc.models import DadResult, Ignored, Neighbor, NoResponse, Soliciting, TimedOut

UNSPECIFIED = bytes(16)  # ::, the source of a DAD probe


def parse_ipv6(text: str) -> ipaddress.IPv6Address:
    """An IPv6 address given on the command line (a `%zone` is dropped); anything else is a UsageError."""
    try:
        return ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError as exc:
        raise UsageError(f"{text!r} is not an IPv6 address") from exc


def parse_target(text: str) -> bytes:
    """The packed form of a unicast IPv6 target; anything else is a UsageError."""
    address = parse_ipv6(text)
    if address.is_multicast or address.is_unspecified:
        raise UsageError(f"{text} is not a unicast address")
    return address.packed


def _decode_ndp(received: Received) -> icmpv6.NDPMessage | str:
    """The NDP message in `received` if it came with hop limit 255 and decodes, else why not (RFC 4861 §7.1)."""
    if received.hop_limit != NDP_HOP_LIMIT:
        return f"hop limit {received.hop_limit}, not 255"
    try:
        return icmpv6.decode_ndp(received.data)
    except DecodeError as exc:
        return exc.reason


def check_advertisement(received: Received, target: bytes) -> icmpv6.NeighborAdvertisement | str:
    """The advertisement in `received` if it is a valid one for `target` (RFC 4861 §7.1.2), else why not."""
    message = _decode_ndp(received)
    if isinstance(message, str):
        return message
    if not isinstance(message, icmpv6.NeighborAdvertisement):
        return "not a neighbor advertisement"
    if message.code != 0:
        return f"code {message.code}, not 0"
    if message.target[0] == 0xFF:
        return "multicast target"
    if message.solicited and received.destination and received.destination.startswith("ff"):
        return "solicited flag set on a multicast advertisement"
    if message.target != target:
        return f"advertisement for {message.target_text}"
    return message


def resolve(target_text: str, ifname: str, *, retries: int = 3, wait_ms: int = 1000,
            multiple: bool = False) -> Iterator[object]:
    """Solicit `target_text` on `ifname`; yields Soliciting, Neighbor per answer, TimedOut, NoResponse."""
    target = parse_target(target_text)
    with NDPSocket(ifname, accept=[icmpv6.NEIGHBOR_ADVERT]) as sock:
        mac = interface_mac(ifname)
        options: list[icmpv6.NDOption] = [icmpv6.LinkLayerOption.source(mac)] if mac else []
        solicitation = icmpv6.NeighborSolicitation(target=target, options=options).encode()
        target_str = icmpv6.addr_text(target)
        yield Soliciting(target_str, ifname)
        for _ in range(retries):
            sock.send(solicitation, solicited_node(target))
            answered = False
            deadline = time.monotonic() + wait_ms / 1000
            while (packet := sock.receive(deadline - time.monotonic())) is not None:
                checked = check_advertisement(packet, target)
                if isinstance(checked, str):
                    yield Ignored(packet.source, checked)
                    continue
                lladdr = checked.target_lladdr
                if lladdr is None:
                    yield Ignored(packet.source, "no target link-layer address option")
                    continue
                answered = True
                yield Neighbor(
                    address=target_str, lladdr=icmpv6.mac_text(lladdr), router=checked.router,
                    source=packet.source, ifname=ifname, solicited=checked.solicited,
                    override=checked.override,
                )
                if not multiple:
                    return
            if answered:
                return
            yield TimedOut()
        yield NoResponse()


def _dad_conflict(received: Received, target: bytes) -> tuple[str | None, str] | str:
    """(lladdr, source) when `received` shows `target` in use or probed by another node, else why not."""
    message = _decode_ndp(received)
    if isinstance(message, str):
        return message
    if message.code != 0:
        return f"code {message.code}, not 0"
    if isinstance(message, icmpv6.NeighborAdvertisement) and message.target == target:
        lladdr = message.target_lladdr
        return (icmpv6.mac_text(lladdr) if lladdr else None, received.source)
    if (isinstance(message, icmpv6.NeighborSolicitation) and message.target == target
            and received.source == "::"):
        return (None, "::")
    return "not about this address"


def detect_duplicate(target_text: str, ifname: str, *, retries: int = 3,
                     wait_ms: int = 1000) -> Iterator[object]:
    """Duplicate address detection for `target_text` on `ifname`; yields Soliciting, Ignored, DadResult."""
    target = parse_target(target_text)
    target_str = icmpv6.addr_text(target)
    group = solicited_node(target)
    probe = icmpv6.NeighborSolicitation(target=target).encode(UNSPECIFIED, group)
    packet = IPv6(src=UNSPECIFIED, dst=group, proto=PROTO_ICMPV6, hop_limit=NDP_HOP_LIMIT).encode(probe)
    with NDPSocket(ifname, accept=[icmpv6.NEIGHBOR_ADVERT, icmpv6.NEIGHBOR_SOLICIT]) as sock, \
            LinkSender(ifname) as sender:
        sock.join(group)
        yield Soliciting(target_str, ifname, dad=True)
        for probes in range(1, retries + 1):
            sender.send(packet, multicast_mac(group))
            deadline = time.monotonic() + wait_ms / 1000
            while (received := sock.receive(deadline - time.monotonic())) is not None:
                conflict = _dad_conflict(received, target)
                if isinstance(conflict, str):
                    if conflict != "not about this address":
                        yield Ignored(received.source, conflict)
                    continue
                lladdr, source = conflict
                yield DadResult(target_str, ifname, duplicate=True, lladdr=lladdr, source=source,
                                probes=probes)
                return
        yield DadResult(target_str, ifname, duplicate=False, probes=retries)

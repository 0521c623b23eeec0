"""Overlay devices (vxlan, geneve, wireguard) against the underlay that carries them, via rtnetlink.

An overlay device's MTU plus its encapsulation must fit the underlay: VXLAN and Geneve add 50
bytes over IPv4 and 70 over IPv6 (outer IP 20/40 + UDP 8 + VXLAN/Geneve 8 + inner Ethernet 14;
Geneve options add more), WireGuard 60 / 80 (outer IP + UDP 8 + its 32-byte header and tag, no
inner Ethernet). The underlay MTU is the MTU of the device the encapsulated packets leave
through (the device's `dev`, or the route to its remote), or a measured path MTU to the remote
when the caller has one. Read-only: nothing on the node changes.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass
from typing import Any

from gnt.core.netlink import NLM_F_REQUEST, NLMSG_ERROR, NLMSGHDR, error_errno, iter_attrs, nla
from gnt.core.sockets import interface_index
from gnt.errors import DecodeError, InterfaceError
from gnt.mtu.models import OverlayFinding

# rtnetlink (include/uapi/linux/rtnetlink.h, if_link.h): the route and link of one destination,
# read without pyroute2 so a plain `gnt mtu` does not pay for importing it.
NETLINK_ROUTE = 0  # the rtnetlink protocol
RTM_GETLINK = 18  # get one link by ifindex
RTM_GETROUTE = 26  # resolve a route (like `ip route get`)
RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
IFINFOMSG = struct.Struct("=BxHiII")  # struct ifinfomsg: family, pad, type, index, flags, change
RTA_DST = 1  # route attribute: destination address
RTA_SRC = 2  # route attribute: source address
RTA_OIF = 4  # route attribute: output ifindex (u32)
IFLA_IFNAME = 3  # link attribute: name (NUL-terminated)
IFLA_MTU = 4  # link attribute: MTU (u32)
IFLA_LINKINFO = 18  # link attribute: nested kind and kind-specific data
IFLA_INFO_KIND = 1  # inside IFLA_LINKINFO: "vxlan", "geneve", "wireguard", ...
_U32 = struct.Struct("=I")

OVERHEAD = {  # (kind, underlay IP version) -> bytes of encapsulation
    ("vxlan", 4): 50, ("vxlan", 6): 70,
    ("geneve", 4): 50, ("geneve", 6): 70,
    ("wireguard", 4): 60, ("wireguard", 6): 80,
}
KINDS = ("vxlan", "geneve", "wireguard")


@dataclass(slots=True)
class Link:
    """A device as rtnetlink describes it (the part the MTU checks need)."""

    index: int
    name: str
    kind: str | None
    mtu: int
    underlay_index: int | None = None  # vxlan `dev`
    remote: str | None = None  # vxlan/geneve remote (unicast) or group
    family: int = 4  # 4 or 6: the underlay IP version


def _rtnl(msg_type: int, body: bytes) -> bytes:
    """One rtnetlink request; the reply message's payload (its header stripped). OSError on failure."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST, 1, 0) + body)
        data = sock.recv(65536)
    if len(data) < NLMSGHDR.size:
        raise OSError(errno.EPROTO, "short rtnetlink reply")
    length, kind, _flags, _seq, _pid = NLMSGHDR.unpack_from(data)
    if kind == NLMSG_ERROR:
        try:
            code = error_errno(data, 0, length)
        except DecodeError:
            code = errno.EPROTO
        raise OSError(code, "rtnetlink request refused")
    return data[NLMSGHDR.size:length]


def _route_oif(address: str, source: str | None = None) -> int | None:
    """The ifindex the route to `address` (from `source`) leaves through (`ip route get`); None: no route."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    attrs = nla(RTA_DST, packed)
    src_len = 0
    if source:
        try:
            packed_source = socket.inet_pton(family, source)
        except OSError:
            return None
        attrs += nla(RTA_SRC, packed_source)
        src_len = len(packed_source) * 8
    try:
        route = _rtnl(RTM_GETROUTE, RTMSG.pack(family, len(packed) * 8, src_len, 0, 0, 0, 0, 0, 0) + attrs)
    except OSError:
        return None
    oif = None
    for kind, start, end in iter_attrs(route, RTMSG.size, len(route)):
        if kind == RTA_OIF and end - start >= 4:
            oif = int(_U32.unpack_from(route, start)[0])
    return oif


def egress_link(address: str, *, source: str | None = None,
                device: str | None = None) -> tuple[int, str, str | None, int] | None:
    """(ifindex, name, kind, MTU) of the device toward `address`: `device` when given (SO_BINDTODEVICE
    sends through it), else where the route from `source` leaves; None: no route (or no such device)."""
    if device:
        try:
            oif: int | None = interface_index(device)
        except InterfaceError:
            return None
    else:
        oif = _route_oif(address, source)
    if oif is None:
        return None
    link = _rtnl(RTM_GETLINK, IFINFOMSG.pack(socket.AF_UNSPEC, 0, oif, 0, 0))
    name, link_kind, mtu = f"if{oif}", None, 0
    for kind, start, end in iter_attrs(link, IFINFOMSG.size, len(link)):
        if kind == IFLA_IFNAME:
            name = link[start:end].rstrip(b"\0").decode()
        elif kind == IFLA_MTU and end - start >= 4:
            mtu = int(_U32.unpack_from(link, start)[0])
        elif kind == IFLA_LINKINFO:
            for inner, istart, iend in iter_attrs(link, start, end):
                if inner == IFLA_INFO_KIND:
                    link_kind = link[istart:iend].rstrip(b"\0").decode()
    return oif, name, link_kind, mtu


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name) if msg is not None else None


def _link(msg: Any) -> Link:
    info = _attr(msg, "IFLA_LINKINFO")
    kind = _attr(info, "IFLA_INFO_KIND")
    data = _attr(info, "IFLA_INFO_DATA")
    link = Link(int(msg["index"]), str(_attr(msg, "IFLA_IFNAME")), kind, int(_attr(msg, "IFLA_MTU") or 0))
    if kind == "vxlan" and data is not None:
        link.underlay_index = _attr(data, "IFLA_VXLAN_LINK") or None
        remote6 = _attr(data, "IFLA_VXLAN_GROUP6") or _attr(data, "IFLA_VXLAN_LOCAL6")
        link.remote = _attr(data, "IFLA_VXLAN_GROUP6") or _attr(data, "IFLA_VXLAN_GROUP")
        link.family = 6 if remote6 else 4
    elif kind == "geneve" and data is not None:
        link.remote = _attr(data, "IFLA_GENEVE_REMOTE6") or _attr(data, "IFLA_GENEVE_REMOTE")
        link.family = 6 if _attr(data, "IFLA_GENEVE_REMOTE6") else 4
    return link


def links(ipr: Any = None) -> dict[int, Link]:
    """Every device of this network namespace, by ifindex (through `ipr`, an open IPRoute, if given)."""
    if ipr is not None:
        return {link.index: link for link in map(_link, ipr.get_links())}
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    with IPRoute() as own:
        return {link.index: link for link in map(_link, own.get_links())}


def egress(address: str, all_links: dict[int, Link] | None = None) -> Link | None:
    """The device the route to `address` leaves through, from `all_links` (None: no route)."""
    oif = _route_oif(address)
    if oif is None:
        return None
    all_links = all_links if all_links is not None else links()
    return all_links.get(oif)


def _default_family(all_links: dict[int, Link]) -> int:
    """The underlay IP version of a WireGuard device (its peers are not in rtnetlink): IPv4 when
    the node has an IPv4 default route, else IPv6."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("198.18.0.1", 9))  # route lookup only: nothing is sent
        return 4
    except OSError:
        return 6


def judge(link: Link, all_links: dict[int, Link], measured: dict[str, int] | None = None) -> OverlayFinding:
    """One overlay device against its underlay (`measured`: path MTUs to remotes, when known)."""
    kind = link.kind or ""
    family = link.family if kind != "wireguard" else _default_family(all_links)
    under: Link | None = all_links.get(link.underlay_index) if link.underlay_index else None
    if under is None and link.remote and not _is_multicast(link.remote):
        under = egress(link.remote, all_links)
    underlay_mtu = under.mtu if under is not None else None
    was_measured = False
    if measured and link.remote in measured:
        underlay_mtu = measured[link.remote]
        was_measured = True
    overhead = OVERHEAD[(kind, family)]
    max_mtu = underlay_mtu - overhead if underlay_mtu is not None else None
    return OverlayFinding(link.name, kind, link.mtu, under.name if under else None, family, underlay_mtu,
                          overhead, max_mtu, max_mtu is not None and link.mtu > max_mtu, was_measured)


def judge_index(index: int, ipr: Any = None) -> OverlayFinding | None:
    """`judge` for the one device `index` (its underlay found among all links); None: no such link."""
    all_links = links(ipr)
    return judge(all_links[index], all_links) if index in all_links else None


def _is_multicast(address: str) -> bool:
    return address.startswith("ff") or (address.count(".") == 3 and 224 <= int(address.split(".")[0]) <= 239)


def check_overlays(measured: dict[str, int] | None = None) -> list[OverlayFinding]:
    """Every vxlan/geneve/wireguard device of this namespace judged against its underlay MTU."""
    all_links = links()
    return [judge(link, all_links, measured) for link in all_links.values() if link.kind in KINDS]

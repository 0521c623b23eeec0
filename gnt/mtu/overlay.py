"""Overlay devices (vxlan, geneve, wireguard) against the underlay that carries them, via rtnetlink.

An overlay device's MTU plus its encapsulation must fit the underlay: VXLAN and Geneve add 50
bytes over IPv4 and 70 over IPv6 (outer IP 20/40 + UDP 8 + VXLAN/Geneve 8 + inner Ethernet 14;
Geneve options add more), WireGuard 60 / 80 (outer IP + UDP 8 + its 32-byte header and tag, no
inner Ethernet). The underlay MTU is the MTU of the device the encapsulated packets leave
through (the device's `dev`, or the route to its remote), or a measured path MTU to the remote
when the caller has one. Read-only: nothing on the node changes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from gnt.mtu.models import OverlayFinding

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


def links() -> dict[int, Link]:
    """Every device of this network namespace, by ifindex."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    with IPRoute() as ipr:
        return {link.index: link for link in map(_link, ipr.get_links())}


def egress(address: str, all_links: dict[int, Link] | None = None) -> Link | None:
    """The device the route to `address` leaves through (None: no route)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

    all_links = all_links if all_links is not None else links()
    with IPRoute() as ipr:
        try:
            routes = ipr.route("get", dst=address)
        except NetlinkError:
            return None
    for route in routes:
        oif = route.get_attr("RTA_OIF")
        if oif in all_links:
            return all_links[oif]
    return None


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


def _is_multicast(address: str) -> bool:
    return address.startswith("ff") or (address.count(".") == 3 and 224 <= int(address.split(".")[0]) <= 239)


def check_overlays(measured: dict[str, int] | None = None) -> list[OverlayFinding]:
    """Every vxlan/geneve/wireguard device of this namespace judged against its underlay MTU."""
    all_links = links()
    return [judge(link, all_links, measured) for link in all_links.values() if link.kind in KINDS]

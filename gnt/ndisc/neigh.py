"""The kernel neighbour table (ARP and NDP caches) through rtnetlink, and its changes live.

`table` dumps it (RTM_GETNEIGH); `watch` subscribes to RTNLGRP_NEIGH and yields one
`NeighborChange` per state transition, remembering each entry's previous state from a
dump taken first. pyroute2 provides the sockets and message parsing.

As `ip neigh` does, entries in state NOARP or NONE (the multicast mappings the kernel keeps
for itself) are left out unless `all_states` is asked for.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

from gnt.core.sockets import interface_index
from gnt.errors import GntError
from gnt.ndisc.models import NeighborChange, NeighborEntry

# NUD states, <linux/neighbour.h>
NUD_STATES = {
    0x01: "INCOMPLETE",  # NUD_INCOMPLETE: resolution in progress
    0x02: "REACHABLE",  # NUD_REACHABLE: confirmed recently
    0x04: "STALE",  # NUD_STALE: usable, not confirmed lately
    0x08: "DELAY",  # NUD_DELAY: waiting for upper-layer confirmation before probing
    0x10: "PROBE",  # NUD_PROBE: sending unicast probes
    0x20: "FAILED",  # NUD_FAILED: resolution failed
    0x40: "NOARP",  # NUD_NOARP: no resolution needed (multicast, point-to-point)
    0x80: "PERMANENT",  # NUD_PERMANENT: static entry
}
NUD_NONE = 0x00  # no state
NUD_HIDDEN = 0x40  # NOARP: hidden by default, as `ip neigh` does
NTF_ROUTER = 0x80  # <linux/neighbour.h>: the neighbour is a router (IPv6)
RTM_NEWNEIGH = "RTM_NEWNEIGH"  # pyroute2's event name for an added or changed entry
RTM_DELNEIGH = "RTM_DELNEIGH"  # and for a removed one


def state_text(state: int) -> str:
    if state == NUD_NONE:
        return "NONE"
    names = [name for bit, name in NUD_STATES.items() if state & bit]
    return "+".join(names) if names else f"0x{state:02x}"


def _family(ipv4: bool, ipv6: bool) -> int:
    if ipv4 and not ipv6:
        return socket.AF_INET
    if ipv6 and not ipv4:
        return socket.AF_INET6
    return socket.AF_UNSPEC


def _interface_names(ipr: Any) -> dict[int, str]:
    return {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def _entry(msg: Any, names: dict[int, str]) -> NeighborEntry | None:
    address = msg.get_attr("NDA_DST")
    if address is None:
        return None
    lladdr = msg.get_attr("NDA_LLADDR")
    return NeighborEntry(
        address=str(address), lladdr=str(lladdr) if lladdr else None,
        ifname=names.get(msg["ifindex"], str(msg["ifindex"])), state=state_text(msg["state"]),
        router=bool(msg["flags"] & NTF_ROUTER), family=msg["family"],
    )


def _visible(msg: Any, all_states: bool) -> bool:
    return all_states or not (msg["state"] == NUD_NONE or msg["state"] & NUD_HIDDEN)


def _open() -> Any:
    from pyroute2 import IPRoute

    try:
        return IPRoute()
    except OSError as exc:
        raise GntError(f"cannot open a netlink socket: {exc.strerror}", errno=exc.errno) from exc


def table(ifname: str | None = None, *, ipv4: bool = False, ipv6: bool = False,
          all_states: bool = False) -> Iterator[NeighborEntry]:
    """Every neighbour entry (of one interface, of one family), in the kernel's order."""
    ifindex = None if ifname is None else interface_index(ifname)
    family = _family(ipv4, ipv6)
    ipr = _open()
    try:
        names = _interface_names(ipr)
        for msg in ipr.get_neighbours(family=family):
            if ifindex is not None and msg["ifindex"] != ifindex:
                continue
            if not _visible(msg, all_states):
                continue
            entry = _entry(msg, names)
            if entry is not None:
                yield entry
    finally:
        ipr.close()


def watch(ifname: str | None = None, *, ipv4: bool = False, ipv6: bool = False, all_states: bool = False,
          count: int | None = None, duration: float | None = None) -> Iterator[NeighborChange]:
    """Yield neighbour state transitions as the kernel reports them, until interrupted.

    `count` stops after that many changes, `duration` after that many seconds (for scripts
    and tests); by default it runs until Ctrl-C.
    """
    import select

    from pyroute2.netlink.rtnl import RTMGRP_LINK, RTMGRP_NEIGH

    ifindex = None if ifname is None else interface_index(ifname)
    family = _family(ipv4, ipv6)
    ipr = _open()
    try:
        ipr.bind(groups=RTMGRP_NEIGH | RTMGRP_LINK)
        names = _interface_names(ipr)
        known: dict[tuple[int, str], str] = {}
        for msg in ipr.get_neighbours(family=family):
            address = msg.get_attr("NDA_DST")
            if address is not None:
                known[(msg["ifindex"], str(address))] = state_text(msg["state"])
        seen = 0
        deadline = None if duration is None else time.monotonic() + duration
        while count is None or seen < count:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return
            ready, _, _ = select.select([ipr], [], [], timeout)
            if not ready:
                continue
            for msg in ipr.get():
                event = msg.get("event")
                if event == "RTM_NEWLINK":
                    names[msg["index"]] = msg.get_attr("IFLA_IFNAME")
                    continue
                if event not in (RTM_NEWNEIGH, RTM_DELNEIGH):
                    continue
                if family != socket.AF_UNSPEC and msg["family"] != family:
                    continue
                if ifindex is not None and msg["ifindex"] != ifindex:
                    continue
                entry = _entry(msg, names)
                if entry is None:
                    continue
                key = (msg["ifindex"], entry.address)
                previous = known.get(key)
                if event == RTM_DELNEIGH:
                    known.pop(key, None)
                    kind = "delete"
                else:
                    known[key] = entry.state
                    if previous == entry.state:
                        continue  # a refresh (new "used" times), not a transition
                    kind = "new"
                if not _visible(msg, all_states) and (previous is None or previous == "NOARP"):
                    continue
                seen += 1
                yield NeighborChange(
                    time=time.time(), event=kind, address=entry.address, lladdr=entry.lladdr,
                    ifname=entry.ifname, state=entry.state, previous_state=previous, router=entry.router,
                )
                if count is not None and seen >= count:
                    return
    finally:
        ipr.close()


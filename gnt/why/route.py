"""Route and neighbour: the kernel's own answer (RTM_GETROUTE) and the next hop's ARP/NDP state.

The route is asked of the kernel with everything that changes its answer (source, input
interface, mark), so policy rules, `unreachable`/`blackhole`/`prohibit` routes and
forwarding apply exactly as they will to the traffic. A refused lookup's errno is the
kernel's verdict: ENETUNREACH no route, EHOSTUNREACH an unreachable route (or forwarding
off, for an input lookup), EACCES prohibit, EINVAL blackhole (or, for an input lookup, a
martian or reverse-path failure).
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

from gnt.core.sockets import interface_index
from gnt.errors import GntError
from gnt.why.facts import Facts, NeighbourFacts, RouteFacts
from gnt.why.models import FAIL, OK, SKIPPED, WARN, Check

RT_TABLES = {253: "default", 254: "main", 255: "local"}  # <linux/rtnetlink.h> RT_TABLE_*
RTN_TYPES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
             7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat"}  # <linux/rtnetlink.h> RTN_*
LOOKUP_ERRORS = {  # errno of a refused output lookup -> the route type behind it
    errno.ENETUNREACH: "no-route",
    errno.EHOSTUNREACH: "unreachable",
    errno.EACCES: "prohibit",
    errno.EINVAL: "blackhole",
}
NEIGH_PROBE_SECONDS = 1.2  # how long to wait for ARP/NDP to resolve a next hop (first retransmit at 1 s)
NEIGH_POLL = 0.05  # seconds between reads of the neighbour table while it resolves
DISCARD_PORT = 9  # RFC 863: the datagram that makes the kernel resolve the next hop


def open_netlink() -> Any:
    from pyroute2 import IPRoute

    try:
        return IPRoute()
    except OSError as exc:
        raise GntError(f"cannot open a netlink socket: {exc.strerror}", errno=exc.errno) from exc


def table_name(number: int | None) -> str | None:
    return None if number is None else RT_TABLES.get(number, str(number))


def ifname_of(ipr: Any, index: int | None) -> str | None:
    if not index:
        return None
    links = ipr.get_links(index)
    return links[0].get_attr("IFLA_IFNAME") if links else str(index)


def is_local_address(ipr: Any, address: str, family: int) -> bool:
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    return any(a.get_attr("IFA_ADDRESS") == address or a.get_attr("IFA_LOCAL") == address
               for a in ipr.get_addr(family=af))


def _rule_tables(ipr: Any, family: int) -> list[str]:
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    tables = []
    for rule in ipr.get_rules(family=af):
        number = rule.get_attr("FRA_TABLE") or rule["table"]
        name = table_name(number)
        if name and name not in tables and name != "local":
            if name == "default" and not ipr.get_routes(family=af, table=253):
                continue  # the empty table every node's last rule looks up
            tables.append(name)
    return tables


def _has_default(ipr: Any, family: int, table: int = 254) -> bool:
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    return any(r["dst_len"] == 0 for r in ipr.get_routes(family=af, table=table))


def lookup(ipr: Any, facts: Facts, dest: str | None = None) -> RouteFacts:
    """RTM_GETROUTE for the query's flow (or for `dest` instead, e.g. a DNAT target)."""
    from pyroute2.netlink.exceptions import NetlinkError

    q = facts.query
    args: dict[str, Any] = {"dst": dest or q.dest}
    if q.source:
        args["src"] = q.source
    if q.iif:
        args["iif"] = interface_index(q.iif)
    if q.mark is not None:
        args["mark"] = q.mark
    out = RouteFacts()
    try:
        answer = ipr.route("get", **args)
    except NetlinkError as exc:
        out.tables = _rule_tables(ipr, q.family)  # only a failed lookup is explained by the tables it tried
        out.error = exc.code
        out.kind = LOOKUP_ERRORS.get(exc.code, f"error {exc.code}")
        if exc.code == errno.EHOSTUNREACH and q.iif:
            out.kind = "unreachable-input"  # an unreachable route, or forwarding off: the sysctl check tells
        if exc.code == errno.EINVAL and q.iif:
            out.kind = "martian-input"  # a martian source or a reverse-path failure
        out.default_route = _has_default(ipr, q.family)
        return out
    msg = answer[0]
    out.kind = RTN_TYPES.get(msg["type"], str(msg["type"]))
    out.oif = ifname_of(ipr, msg.get_attr("RTA_OIF"))
    out.gateway = msg.get_attr("RTA_GATEWAY")
    via = msg.get_attr("RTA_VIA")
    if out.gateway is None and isinstance(via, dict):
        out.gateway = via.get("addr")
    out.prefsrc = msg.get_attr("RTA_PREFSRC")
    out.table = table_name(msg.get_attr("RTA_TABLE") or msg["table"])
    metrics = msg.get_attr("RTA_METRICS")
    if metrics:
        out.mtu = metrics.get_attr("RTAX_MTU")
    return out


def check_route(ipr: Any, facts: Facts) -> Check:
    q = facts.query
    r = facts.route = lookup(ipr, facts)
    asked = f"route get {q.dest}" + (f" from {q.source}" if q.source else "") + (f" iif {q.iif}" if q.iif else "") \
        + (f" mark {q.mark:#x}" if q.mark is not None else "")
    if r.error is not None:
        evidence = [f"{asked}: {errno.errorcode.get(r.error, r.error)} ({_strerror(r.error)})",
                    f"policy rules look up tables: {', '.join(r.tables) or 'none'}"]
        if r.kind == "no-route":
            evidence.append(f"table main {'has' if r.default_route else 'has no'} default route")
            fix = f"ip route add default via <gateway>   # or: ip route add {q.dest} via <gateway>"
            return Check("route", FAIL, f"no route to {q.dest}", evidence, None if r.default_route else fix)
        if r.kind in ("unreachable-input", "martian-input"):
            return Check("route", FAIL, f"the kernel would not route {q.flow()} arriving on {q.iif}", evidence)
        return Check("route", FAIL, f"route to {q.dest} is of type {r.kind}", evidence,
                     f"ip route show table all type {r.kind}   # then remove or replace it")
    where = f"via {r.gateway} " if r.gateway else ""
    line = f"{q.dest} {where}dev {r.oif} src {r.prefsrc} table {r.table} ({r.kind})"
    evidence = [f"asked the kernel: ip {asked}"]
    if r.kind in ("unicast", "local"):
        return Check("route", OK, line, evidence)
    return Check("route", WARN, line, evidence)


def _strerror(code: int) -> str:
    import os

    return os.strerror(code)


def _neighbour_state(ipr: Any, address: str, ifindex: int, family: int) -> tuple[str, str | None]:
    from gnt.ndisc.neigh import state_text

    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    for msg in ipr.get_neighbours(family=af, ifindex=ifindex):
        if msg.get_attr("NDA_DST") == address:
            return state_text(msg["state"]), msg.get_attr("NDA_LLADDR")
    return "NONE", None


def _solicit(address: str, ifname: str, family: int) -> None:
    """Make the kernel resolve `address`: a datagram to its discard port, bound to the interface."""
    from gnt.core.sockets import bind_device

    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    with socket.socket(af, socket.SOCK_DGRAM) as sock:
        try:
            bind_device(sock, ifname)
        except GntError:
            pass  # unprivileged: the route picks the same interface
        try:
            sock.sendto(b"", (address, DISCARD_PORT))
        except OSError:
            pass  # EHOSTUNREACH from an earlier failed resolution: the state says it


def neighbour(ipr: Any, address: str, ifname: str, family: int, *, wait: float = NEIGH_PROBE_SECONDS,
              clock: Any = time.monotonic, solicit: bool = True) -> NeighbourFacts:
    """The neighbour entry of `address`; probed (and waited for) when it is not usable as it stands."""
    ifindex = interface_index(ifname)
    state, lladdr = _neighbour_state(ipr, address, ifindex, family)
    facts = NeighbourFacts(address, ifname, state, lladdr)
    if not solicit:
        return facts
    if state in ("REACHABLE", "PERMANENT", "NOARP", "STALE", "DELAY", "PROBE"):
        return facts  # usable: the probe confirms it (STALE/DELAY/PROBE are re-confirmed by traffic)
    _solicit(address, ifname, family)
    facts.probed = True
    deadline = clock() + wait
    while True:
        state, lladdr = _neighbour_state(ipr, address, ifindex, family)
        facts.state, facts.lladdr = state, lladdr
        if state in ("REACHABLE", "PERMANENT", "NOARP", "STALE", "FAILED") or clock() >= deadline:
            return facts
        time.sleep(NEIGH_POLL)


def neighbour_check(n: NeighbourFacts, role: str, family: int) -> Check:
    proto = "NDP" if family == 6 else "ARP"
    line = f"{role} {n.address} on {n.ifname}: {n.state}" + (f" ({n.lladdr})" if n.lladdr else "")
    evidence = ["probed: a datagram was sent to make the kernel resolve it"] if n.probed else []
    if n.failed:
        return Check("neighbour", FAIL, f"{role} {n.address} does not answer {proto} on {n.ifname} "
                     f"(neighbour {n.state})", evidence,
                     f"check that {n.address} is up and on the {n.ifname} segment; ip neigh show dev {n.ifname}")
    return Check("neighbour", OK, line, evidence)


def check_neighbour(ipr: Any, facts: Facts) -> Check:
    r = facts.route
    if r.error is not None or r.oif is None:
        return Check("neighbour", SKIPPED, "no next hop (no usable route)")
    if r.kind != "unicast":
        return Check("neighbour", SKIPPED, f"no next hop for a {r.kind} route")
    if r.oif == "lo":
        return Check("neighbour", SKIPPED, "the destination is this node")
    address = r.gateway or facts.query.dest
    role = "gateway" if r.gateway else "destination"
    if not _resolves(ipr, r.oif):
        return Check("neighbour", SKIPPED, f"{r.oif} resolves no neighbours (point-to-point or NOARP)")
    found = neighbour(ipr, address, r.oif, facts.query.family, solicit=not facts.passive)
    if facts.passive and found.state in ("NONE", "INCOMPLETE"):
        return Check("neighbour", OK, f"{role} {address} on {r.oif}: {found.state} (passive: not probed)")
    facts.neighbour = found
    return neighbour_check(found, role, facts.query.family)


IFF_NOARP = 0x80  # <linux/if.h>
IFF_POINTOPOINT = 0x10  # <linux/if.h>


def _resolves(ipr: Any, ifname: str) -> bool:
    links = ipr.get_links(interface_index(ifname))
    return bool(links) and not links[0]["flags"] & (IFF_NOARP | IFF_POINTOPOINT)

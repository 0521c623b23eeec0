"""The node's settings on the path: sysctls, firewall chain policies, conntrack, MTU and overlays.

Read-only. Firewall rules are read with the commands `gnt iptrace` already runs (nft, and
iptables-legacy-save where the legacy tables hold rules); conntrack through `gnt.conntrack`.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
from typing import Any

from gnt.core.sockets import interface_index
from gnt.errors import GntError
from gnt.mtu import overlay as ov
from gnt.why.facts import Facts
from gnt.why.models import FAIL, OK, SKIPPED, WARN, Check
from gnt.why.route import ifname_of, neighbour, neighbour_check

PROC_SYS = "/proc/sys/net"  # sysctls of this network namespace
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"  # exists once br_netfilter is loaded
BRIDGE_NF6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
RP_STRICT = 1  # rp_filter=1: strict reverse-path check (2 is loose)
PATH_HOOKS = {  # the netfilter hooks a packet passes, by where it comes from and goes
    "output": ("output", "postrouting"),
    "forward": ("prerouting", "forward", "postrouting"),
    "input": ("prerouting", "input"),
}
MAX_CT_LINES = 5  # conntrack entries shown per check


def read_sysctl(path: str) -> int | None:
    try:
        with open(f"{PROC_SYS}/{path}") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- sysctls ---------------------------------------------------------------------------------------

def check_forwarding(facts: Facts) -> Check:
    q = facts.query
    if not q.forwarded and not (facts.passive and facts.route.kind == "unicast"):
        return Check("forwarding", SKIPPED, "traffic this node sends itself (give -i/--iif for forwarded traffic)")
    if q.iif is None:  # passive, sender unknown: the switch every interface inherits
        key = "ipv6/conf/all/forwarding" if q.family == 6 else "ipv4/conf/all/forwarding"
        value = read_sysctl(key)
        facts.forwarding = bool(value)
        facts.forwarding_key = key.replace("/", ".")
        if value == 0:
            return Check("forwarding", FAIL, "forwarding is off on this node", [f"net.{facts.forwarding_key}=0"],
                         f"sysctl -w net.{facts.forwarding_key}=1")
        return Check("forwarding", OK, "forwarding is on", [f"net.{facts.forwarding_key}={value}"])
    if q.family == 4:
        key = f"ipv4/conf/{q.iif}/forwarding"
        value = read_sysctl(key)
        shown = [f"net.ipv4.conf.{q.iif}.forwarding={value}", f"net.ipv4.ip_forward={read_sysctl('ipv4/ip_forward')}"]
        fix = f"sysctl -w net.ipv4.conf.{q.iif}.forwarding=1   # or net.ipv4.ip_forward=1 for every interface"
    else:
        key = "ipv6/conf/all/forwarding"
        value = read_sysctl(key)
        shown = [f"net.ipv6.conf.all.forwarding={value}"]
        fix = "sysctl -w net.ipv6.conf.all.forwarding=1"
    facts.forwarding = bool(value)
    facts.forwarding_key = key.replace("/", ".")
    if value == 0:
        return Check("forwarding", FAIL, f"forwarding is off on {q.iif}", shown, fix)
    return Check("forwarding", OK, f"forwarding is on for {q.iif}", shown)


def _rp_effective(ifname: str) -> int:
    """The rp_filter the kernel applies on `ifname`: the larger of conf/all and the interface's."""
    return max(read_sysctl("ipv4/conf/all/rp_filter") or 0, read_sysctl(f"ipv4/conf/{ifname}/rp_filter") or 0)


def check_rp_filter(ipr: Any, facts: Facts) -> Check:
    """Would the kernel's reverse-path check drop the traffic (forwarded) or its replies (ours)?

    Asked of the kernel: an input route lookup as the packet would arrive. For traffic we send, the
    replies come back from DEST to our source; every interface with strict rp_filter is asked
    "would a reply arriving here pass?" — the ones where the kernel says no are where replies
    die if they arrive there (the probe then tells whether they do)."""
    from pyroute2.netlink.exceptions import NetlinkError

    q = facts.query
    if q.family == 6:
        return Check("rp_filter", SKIPPED, "IPv6 has no rp_filter sysctl (reverse-path checks are firewall rules)")
    all_value = read_sysctl("ipv4/conf/all/rp_filter")
    if q.forwarded:
        assert q.iif is not None
        value = _rp_effective(q.iif)
        evidence = [f"net.ipv4.conf.all.rp_filter={all_value}",
                    f"net.ipv4.conf.{q.iif}.rp_filter={read_sysctl(f'ipv4/conf/{q.iif}/rp_filter')}"]
        back = _route_back(ipr, q.source, q.family) if q.source else None
        if back:
            evidence.append(f"route back to {q.source} leaves by {back}")
        facts.rp_filter_back = back
        if value == RP_STRICT and back and back != q.iif:
            facts.rp_filter_drops = [q.iif]
            return Check("rp_filter", FAIL, f"rp_filter=1 on {q.iif} drops {q.source}: the route back leaves by "
                         f"{back}", evidence, f"sysctl -w net.ipv4.conf.{q.iif}.rp_filter=2  # loose; or fix the "
                         "asymmetric route")
        return Check("rp_filter", OK, f"rp_filter={value} on {q.iif}", evidence)
    source = q.source or facts.route.prefsrc
    if source is None or facts.route.oif is None:
        return Check("rp_filter", SKIPPED, "no route, so no replies to check")
    back = facts.route.oif
    facts.rp_filter_back = back
    refused: list[str] = []
    evidence = [f"net.ipv4.conf.all.rp_filter={all_value}"]
    for link in ipr.get_links():
        name = link.get_attr("IFLA_IFNAME")
        if name in ("lo", back) or link.get_attr("IFLA_OPERSTATE") == "DOWN":
            continue
        value = _rp_effective(name)
        if value != RP_STRICT:
            continue
        try:
            ipr.route("get", dst=source, src=q.dest, iif=link["index"])
        except NetlinkError as exc:
            if exc.code in (errno.EINVAL, errno.EXDEV):
                refused.append(name)
                evidence.append(f"a reply from {q.dest} arriving on {name} would be dropped "
                                f"(rp_filter=1, route back by {back})")
    facts.rp_filter_drops = refused
    if refused:
        return Check("rp_filter", WARN, f"strict rp_filter on {', '.join(refused)}: replies from {q.dest} must "
                     f"come back on {back}", evidence)
    return Check("rp_filter", OK, f"replies from {q.dest} pass rp_filter on {back}", evidence)


def _route_back(ipr: Any, address: str | None, family: int) -> str | None:
    from pyroute2.netlink.exceptions import NetlinkError

    if address is None:
        return None
    try:
        answer = ipr.route("get", dst=address)
    except NetlinkError:
        return None
    return ifname_of(ipr, answer[0].get_attr("RTA_OIF"))


def check_bridge_nf(ipr: Any, facts: Facts) -> Check:
    bridges = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if _kind(link) == "bridge"]
    if not bridges:
        return Check("bridge-nf", SKIPPED, "no bridges on this node")
    path = BRIDGE_NF6 if facts.query.family == 6 else BRIDGE_NF
    try:
        with open(path) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return Check("bridge-nf", OK, f"bridges {', '.join(bridges)}; br_netfilter not loaded (bridged traffic "
                     "bypasses iptables)", [f"{path}: absent"])
    facts.bridges_nf = bool(value)
    key = path.removeprefix("/proc/sys/").replace("/", ".")
    state = "goes through" if value else "bypasses"
    return Check("bridge-nf", OK, f"bridged traffic on {', '.join(bridges)} {state} iptables", [f"{key}={value}"])


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


# --- firewall ---------------------------------------------------------------------------------------

def _nft_chains() -> tuple[list[dict[str, Any]], dict[tuple[str, str, str], int]] | None:
    from gnt.iptrace.commands import failure_text, find_binary
    from gnt.iptrace.nftrules import TABLE_PREFIX, run_nft

    if find_binary("nft") is None:
        return None
    done = run_nft("-j", "list", "ruleset", check=False)
    if done.returncode != 0:
        raise GntError(failure_text(done))
    chains: list[dict[str, Any]] = []
    rules: dict[tuple[str, str, str], int] = {}
    for item in json.loads(done.stdout or "{}").get("nftables", []):
        if "chain" in item and not item["chain"]["table"].startswith(TABLE_PREFIX):
            chains.append(item["chain"])
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            rules[key] = rules.get(key, 0) + 1
    return chains, rules


def _legacy_policies(family: int, hooks: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, chain, policy) of the legacy x_tables base chains on `hooks`, in the tables registered here
    (read with `gnt iptrace`'s legacy rule reader)."""
    from gnt.iptrace import legacy

    tables = legacy.registered_tables(family)
    if not tables or not legacy.available():
        return []
    reader = legacy.LegacyRules()
    found = []
    for table in tables:
        for hook in hooks:
            policy = reader.policy("ipv6" if family == 6 else "ipv4", table, hook.upper())
            if policy is not None:
                found.append((table, hook.upper(), policy))
    return found


def path_kind(facts: Facts) -> str:
    if facts.route.kind == "local":
        return "input"
    if facts.query.forwarded or facts.passive:
        return "forward"
    if facts.route.kind == "local":
        return "input"
    return "output"


def check_firewall(facts: Facts) -> Check:
    """Base chains on the path whose policy is drop (docker sets FORWARD's; only its rules let flows by)."""
    hooks = PATH_HOOKS[path_kind(facts)]
    fam = "ip6" if facts.query.family == 6 else "ip"
    evidence: list[str] = []
    drops: list[str] = []
    try:
        nft = _nft_chains()
    except GntError as exc:
        return Check("firewall", SKIPPED, f"cannot read the nftables rules: {exc.message}")
    if nft is not None:
        chains, rules = nft
        for chain in chains:
            if chain.get("hook") not in hooks or chain["family"] not in (fam, "inet"):
                continue
            policy = chain.get("policy", "accept")
            count = rules.get((chain["family"], chain["table"], chain["name"]), 0)
            evidence.append(f"nft {chain['family']} {chain['table']} {chain['name']} (hook {chain['hook']}): "
                            f"policy {policy}, {count} rules")
            if policy == "drop":
                drops.append(f"{chain['table']} {chain['name']}")
    for table, name, policy in _legacy_policies(facts.query.family, hooks):
        evidence.append(f"iptables-legacy {table} {name}: policy {policy}")
        if policy == "drop":
            drops.append(f"{table} {name}")
    facts.policy_drops = drops
    if nft is None and not evidence:
        return Check("firewall", SKIPPED, "nft is not installed and no legacy tables hold rules")
    if drops:
        return Check("firewall", WARN, f"policy DROP on the path: {', '.join(drops)} (only rules let traffic by)",
                     evidence)
    return Check("firewall", OK, f"no chain on the {path_kind(facts)} path has policy drop", evidence)


# --- conntrack ---------------------------------------------------------------------------------------

def _entry_line(e: Any) -> str:
    from gnt.output.text import endpoint

    o, r = e.original, e.reply
    line = f"{e.proto} {e.state or ''} {endpoint(o.src, getattr(o, 'sport', None))} → " \
           f"{endpoint(o.dst, getattr(o, 'dport', None))}".replace("  ", " ")
    if "dnat" in e.nat:
        line += f"  DNAT to {endpoint(r.src, getattr(r, 'sport', None))}"
    flags = [s for s in e.status if s in ("ASSURED", "SEEN_REPLY")]
    if "SEEN_REPLY" not in e.status:
        flags.append("UNREPLIED")
    return f"{line}  [{' '.join(flags)}] timeout {e.timeout}s"


def flow_entries(facts: Facts, sport: int | None = None, source: str | None = None) -> list[Any]:
    from gnt.conntrack import list_entries
    from gnt.conntrack.filters import EntryFilter, parse_network, parse_proto
    from gnt.conntrack.models import Entry

    q = facts.query
    flt = EntryFilter(family=socket.AF_INET6 if q.family == 6 else socket.AF_INET,
                      proto=parse_proto("icmpv6" if q.proto == "icmp" and q.family == 6 else q.proto),
                      dst=parse_network(q.dest, "dest"), dport=q.port if q.proto != "icmp" else None,
                      sport=sport, src=parse_network(source, "source") if source else None)
    return [e for e in list_entries(flt) if isinstance(e, Entry)]


def check_conntrack(facts: Facts) -> Check:
    from gnt.conntrack import read_stats
    from gnt.conntrack.models import Stats

    try:
        stats = next(s for s in read_stats() if isinstance(s, Stats))
        entries = flow_entries(facts)
    except GntError as exc:
        return Check("conntrack", SKIPPED, f"cannot read the conntrack table: {exc.message}")
    evidence = [f"entries {stats.entries}/{stats.max_entries}, insert_failed {stats.insert_failed}, "
                f"drop {stats.drop}, early_drop {stats.early_drop}"]
    evidence += stats.warnings
    lines = [_entry_line(e) for e in entries]
    facts.conntrack_stale = lines
    dnat = sorted({e.reply.src for e in entries if "dnat" in e.nat})
    evidence += [f"existing entry: {line}" for line in lines[:MAX_CT_LINES]]
    if len(lines) > MAX_CT_LINES:
        evidence.append(f"... and {len(lines) - MAX_CT_LINES} more")
    full = bool(stats.max_entries and stats.entries is not None and stats.entries >= stats.max_entries)
    facts.conntrack_full = full
    if full:
        return Check("conntrack", FAIL, f"the conntrack table is full ({stats.entries}/{stats.max_entries}): "
                     "new flows are dropped", evidence, "sysctl -w net.netfilter.nf_conntrack_max=<larger>")
    summary = f"{len(lines)} existing entries for this flow" + (f", DNAT to {', '.join(dnat)}" if dnat else "")
    return Check("conntrack", WARN if stats.warnings else OK, summary, evidence)


def check_dnat_target(ipr: Any, facts: Facts) -> Check | None:
    """After the probe: where its own conntrack entry says DNAT sent it, and whether that answers ARP."""
    from gnt.output.text import endpoint

    p = facts.probe
    if facts.query.proto == "icmp" or p.sport is None:
        return None
    try:
        mine = flow_entries(facts, sport=p.sport, source=p.source)
    except GntError:
        return None
    dnat = [e for e in mine if "dnat" in e.nat]
    if not dnat:
        return None
    reply = dnat[0].reply
    facts.dnat_target = endpoint(reply.src, getattr(reply, "sport", None))
    evidence = [f"the probe's entry: {_entry_line(dnat[0])}"]
    stale = [line for line in facts.conntrack_stale if "DNAT to " + facts.dnat_target in line]
    evidence += [f"older entry to the same target: {line}" for line in stale[:MAX_CT_LINES]]
    from gnt.why.route import lookup

    r = lookup(ipr, facts, dest=reply.src)
    if r.oif and r.kind == "unicast" and r.oif != "lo":
        # The probe itself made the kernel resolve it: read the state, no second solicitation to wait for.
        facts.dnat_neighbour = neighbour(ipr, r.gateway or reply.src, r.oif, facts.query.family, solicit=False)
        role = "DNAT target" if not r.gateway else "gateway to the DNAT target"
        n = neighbour_check(facts.dnat_neighbour, role, facts.query.family)
        evidence.append(f"{role} {facts.dnat_neighbour.address} on {r.oif}: neighbour {facts.dnat_neighbour.state}")
        evidence += n.evidence
    status = OK if p.answered else WARN
    return Check("dnat", status, f"DNAT sends {facts.query.flow()} to {facts.dnat_target}", evidence)


# --- MTU and overlays ----------------------------------------------------------------------------------

def _link(ipr: Any, name: str) -> Any:
    links = ipr.get_links(interface_index(name))
    return links[0]


def _vxlan_peer(ipr: Any, link: Any, lladdr: str | None) -> str | None:
    """The underlay address behind a vxlan device: its fixed remote, or the FDB entry for the next hop's MAC."""
    info = link.get_attr("IFLA_LINKINFO")
    data = info.get_attr("IFLA_INFO_DATA") if info else None
    if data is not None:
        for attr in ("IFLA_VXLAN_GROUP", "IFLA_VXLAN_GROUP6"):
            group = data.get_attr(attr)
            if group and not ipaddress.ip_address(group).is_multicast:
                return str(group)
    if lladdr is None:
        return None
    for entry in ipr.get_neighbours(family=socket.AF_BRIDGE, ifindex=link["index"]):
        if entry.get_attr("NDA_LLADDR") == lladdr and entry.get_attr("NDA_DST"):
            return str(entry.get_attr("NDA_DST"))
    return None


def check_mtu_overlay(ipr: Any, facts: Facts) -> Check:
    r = facts.route
    if r.oif is None:
        return Check("mtu", SKIPPED, "no out device")
    link = _link(ipr, r.oif)
    mtu = link.get_attr("IFLA_MTU")
    facts.out_mtu = r.mtu or mtu
    kind = _kind(link)
    evidence = [f"{r.oif}: mtu {mtu}" + (f", kind {kind}" if kind else "")]
    if r.mtu:
        evidence.append(f"route mtu {r.mtu}")
    if kind in ov.KINDS:
        facts.overlay, facts.overlay_kind = r.oif, kind
        lladdr = facts.neighbour.lladdr if facts.neighbour else None
        if kind == "vxlan":
            facts.overlay_peer = _vxlan_peer(ipr, link, lladdr)
        if facts.overlay_peer:
            evidence.append(f"{r.oif} sends to the underlay peer {facts.overlay_peer}")
        finding = ov.judge_index(link["index"], ipr)  # this device against its underlay, not every overlay
        if finding is not None and finding.underlay_mtu is not None:
            evidence.append(f"underlay {finding.underlay}: mtu {finding.underlay_mtu} (overhead {finding.overhead})")
            if finding.too_large:
                return Check("mtu", WARN, f"{r.oif} mtu {mtu} is too large for its underlay {finding.underlay} "
                             f"(carries {finding.max_mtu})", evidence, f"ip link set {r.oif} mtu {finding.max_mtu}")
        return Check("mtu", OK, f"out device {r.oif} ({kind}) mtu {mtu}", evidence)
    return Check("mtu", OK, f"out device {r.oif} mtu {facts.out_mtu}", evidence)

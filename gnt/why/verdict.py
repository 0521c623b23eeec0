"""The verdict: chosen from the facts by explicit rules, tried in this order, first match wins.

Kernel answers come first (forwarding off, reverse-path, a refused route lookup, a full
conntrack table): they hold whatever a probe would show. Bad VXLAN checksums counted while
gnt ran come before a next hop that does not resolve (over a VXLAN device, the ARP replies are
the packets being dropped). Then what the probe itself met (a netfilter drop on its path, a
refusal to send, replies lost to rp_filter, a DNAT target that does not answer, an ICMP error
from a router), then the large-packet black hole (small probes pass), then the answer itself. When
the destination does not answer and no rule explains it, the verdict says gnt could not tell
why — it never guesses.
"""

from __future__ import annotations

from collections.abc import Callable

from gnt.why.facts import Facts
from gnt.why.models import HIGH, LOW, MEDIUM, Verdict

Rule = Callable[[Facts], "Verdict | None"]


def _v(rule: str, line: str, where: str | None, fix: str | None, confidence: str, *,
       reachable: bool = False) -> Verdict:
    return Verdict(cause=None if reachable and rule in ("answered", "passes") else line, where=where, fix=fix,
                   confidence=confidence, reachable=reachable, line=line, rule=rule)


def forwarding_off(f: Facts) -> Verdict | None:
    if not (f.query.forwarded or f.passive) or f.forwarding is not False:
        return None
    confidence = HIGH if f.route.kind == "unreachable-input" else MEDIUM
    key = f.forwarding_key or "forwarding"
    arriving = f" arriving on {f.query.iif}" if f.query.iif else ""
    return _v("forwarding-off", f"forwarding is off on this node: {f.query.flow()}{arriving} is not routed "
              f"(net.{key}=0)", f.query.iif or "this node", f"sysctl -w net.{key}=1", confidence)


def rp_filter_forwarded(f: Facts) -> Verdict | None:
    if not f.query.forwarded or f.query.iif not in f.rp_filter_drops:
        return None
    confidence = HIGH if f.route.kind == "martian-input" else MEDIUM
    return _v("rp-filter", f"dropped by rp_filter on {f.query.iif}: {f.query.source} arrives on {f.query.iif} but "
              f"the route back leaves by {f.rp_filter_back}", f.query.iif,
              f"sysctl -w net.ipv4.conf.{f.query.iif}.rp_filter=2   # loose; or make the routes symmetric", confidence)


def route_refused(f: Facts) -> Verdict | None:
    r = f.route
    if r.error is None:
        return None
    q = f.query
    if r.kind == "no-route":
        tables = " and ".join(f"table {t}" for t in r.tables) or "table main"
        missing = " (default route missing)" if r.default_route is False else ""
        return _v("no-route", f"no route to {q.dest} in {tables}{missing}", tables,
                  "ip route add default via <gateway>" if missing else f"ip route add {q.dest} via <gateway>", HIGH)
    if r.kind in ("unreachable", "blackhole", "prohibit"):
        article = "an" if r.kind == "unreachable" else "a"
        marked = f" for mark {q.mark:#x}" if q.mark is not None else ""
        return _v("route-type", f"the route to {q.dest}{marked} is {article} {r.kind} route: the kernel discards "
                  "the traffic",
                  "routing table", f"ip route show table all type {r.kind}", HIGH)
    if r.kind == "martian-input":
        return _v("route-refused", f"the kernel refuses to route {q.flow()} arriving on {q.iif} (martian source)",
                  q.iif, None, MEDIUM)
    return _v("route-refused", f"the kernel refuses to route {q.flow()}: {r.kind}", q.iif, None, MEDIUM)


def conntrack_full(f: Facts) -> Verdict | None:
    if not f.conntrack_full:
        return None
    return _v("conntrack-full", "the conntrack table is full: new flows are dropped", "conntrack",
              "sysctl -w net.netfilter.nf_conntrack_max=<larger>", HIGH)


def neighbour_failed(f: Facts) -> Verdict | None:
    n = f.neighbour
    if n is None or not n.failed:
        return None
    proto = "NDP" if f.query.family == 6 else "ARP"
    role = "gateway" if f.route.gateway else "destination"
    return _v("neighbour", f"{role} {n.address} does not answer {proto} on {n.ifname} (neighbour {n.state})",
              n.ifname, f"check that {n.address} is up on the {n.ifname} segment (ip neigh show dev {n.ifname})",
              HIGH)


def netfilter_drop(f: Facts) -> Verdict | None:
    t = f.trace
    if not t.dropped:
        return None
    flow = t.drop_flow or f.query.flow()
    if t.drop_kind == "policy":
        detail = f"no rule accepted {flow}"
        fix = f"add a rule that accepts {flow} to {t.drop_chain}"
    else:
        detail = f"{flow}: {t.drop_rule}" if t.drop_rule else flow
        fix = f"remove or narrow the rule in {t.drop_chain}"
    return _v("netfilter-drop", f"dropped: {t.drop_step} ({detail})", t.drop_chain, fix, HIGH)


def local_refusal(f: Facts) -> Verdict | None:
    p = f.probe
    if not p.local_error:
        return None
    if p.local_error.startswith("EPERM"):
        where = ", ".join(f.policy_drops) or "the OUTPUT path"
        return _v("output-refused", f"the kernel refused to send to {f.query.flow()}: a firewall rule on the "
                  f"output path rejects it ({where})", where, "gnt iptrace -d " + f.query.dest, MEDIUM)
    return _v("send-refused", f"the kernel refused to send to {f.query.flow()}: {p.local_error}", None, None, MEDIUM)


def rp_filter_replies(f: Facts) -> Verdict | None:
    if f.query.forwarded or f.probe.answered or not f.rp_filter_drops:
        return None
    # The namespace's own counter decides; drop reasons are node-wide (any namespace's drops count).
    if not f.counters.get("IPReversePathFilter", 0):
        return None
    where = f.rp_filter_drops[0] if len(f.rp_filter_drops) == 1 else " or ".join(f.rp_filter_drops)
    return _v("rp-filter", f"dropped by rp_filter on {where}: replies arrive on another interface than the route "
              f"back ({f.rp_filter_back})", where,
              f"sysctl -w net.ipv4.conf.{f.rp_filter_drops[0]}.rp_filter=2   # loose; or make the routes symmetric",
              HIGH)


def vxlan_checksums(f: Facts) -> Verdict | None:
    if f.probe.answered or f.overlay_kind != "vxlan":
        return None
    counted = sum(n for k, n in f.counters.items() if k.endswith("InCsumErrors"))  # this namespace's
    if not counted:
        return None
    sender = f.overlay_peer or "the sending node"
    seen_as = "UDP_CSUM drops" if f.drop_reasons.get("UDP_CSUM") else f"UDP_CSUM drops: InCsumErrors +{counted}"
    return _v("vxlan-udp-csum", f"VXLAN packets from {sender} arrive with bad outer UDP checksums ({seen_as}): "
              f"run 'gnt vxlan-csum audit' on {sender}", sender, f"gnt vxlan-csum audit   # on {sender}", HIGH)


def dnat_target_gone(f: Facts) -> Verdict | None:
    if f.probe.answered or f.dnat_target is None:
        return None
    n = f.dnat_neighbour
    stale = [line for line in f.conntrack_stale if f"DNAT to {f.dnat_target}" in line]
    also = f"; {len(stale)} older conntrack entries still point at it" if stale else ""
    state = f" (neighbour {n.state} on {n.ifname})" if n is not None and n.failed else ""
    return _v("dnat-target", f"DNAT sends {f.query.flow()} to {f.dnat_target}, which does not answer{state}{also}",
              f.dnat_target, f"check the backend {f.dnat_target}; stale entries: conntrack -D -d {f.query.dest}",
              HIGH if state else MEDIUM)


def router_error(f: Facts) -> Verdict | None:
    p = f.probe
    if p.answered or not p.error_from:
        return None
    return _v("icmp-error", f"{p.error_from} answers {p.error_text} for {f.query.flow()}: the traffic dies "
              f"at or behind {p.error_from}", p.error_from, f"gnt traceroute {f.query.dest}", HIGH)


def mtu_black_hole(f: Facts) -> Verdict | None:
    if f.mtu_black_hole is None:
        return None
    largest, smallest = f.mtu_black_hole
    pmtu = f.path_mtu or largest
    return _v("mtu-black-hole", f"path MTU {pmtu} but {f.route.oif} sends {f.out_mtu} and large packets vanish "
              f"({largest} bytes pass, {smallest} do not, no ICMP comes back)", f.route.oif,
              f"ip link set {f.route.oif} mtu {pmtu}   # or let ICMP fragmentation-needed through", HIGH)


def port_closed(f: Facts) -> Verdict | None:
    p = f.probe
    if not p.answered or "closed" not in p.outcome:
        return None
    by = "RST" if f.query.proto == "tcp" else "ICMP port unreachable"
    return _v("port-closed", f"{f.query.dest} answers but port {f.query.port} is closed ({by})",
              f.query.dest, None, HIGH)


def answered(f: Facts) -> Verdict | None:
    if not f.probe.answered:
        return None
    return _v("answered", f"{f.query.flow()} answers: {f.probe.outcome} in {f.probe.seconds * 1000:.1f} ms",
              None, None, HIGH, reachable=True)


def passive_passes(f: Facts) -> Verdict | None:
    if f.watch_seconds is None or not f.trace.packets or f.trace.dropped:
        return None
    return _v("passes", f"{f.trace.packets} packets matching {f.query.flow()} crossed this node and were accepted "
              f"in {f.watch_seconds:g} s: they do not die here", None, None, MEDIUM, reachable=True)


def nothing_seen(f: Facts) -> Verdict | None:
    if f.watch_seconds is None or f.trace.packets or f.trace.blind:
        return None
    return _v("nothing-seen", f"no traffic matching {f.query.flow()} crossed this node in {f.watch_seconds:g} s: "
              "gnt cannot tell where it dies from here", None, None, LOW)


def cannot_tell(f: Facts) -> Verdict:
    warned = [c.summary for c in f.checks if c.status == "warn"]
    if f.watch_seconds is not None:
        seen = "the trace cannot see this namespace's packets" if f.trace.blind else "no rule dropped it"
        also = f"; look at: {'; '.join(warned)}" if warned else ""
        return _v("cannot-tell", f"gnt could not tell where {f.query.flow()} dies: {seen}{also}", None, None, LOW)
    if not f.probe.sent:
        return _v("not-probed", f"gnt could not tell why: {f.query.flow()} was not probed from here and no check "
                  "failed (run on the sending node, or --watch here while the traffic flows)", None, None, LOW)
    from gnt.why.observe import NOISE_REASONS

    outcome = f.probe.outcome or "no answer"
    reasons = [r for r, _ in f.drop_reasons.most_common() if r not in NOISE_REASONS]
    meanwhile = f"; node-wide kernel drops meanwhile: {', '.join(reasons)}" if reasons else ""
    return _v("cannot-tell", f"{f.query.flow()} does not answer ({outcome}) and gnt could not tell why: "
              f"no check failed{meanwhile}", None, None, LOW)


RULES: tuple[Rule, ...] = (
    forwarding_off, rp_filter_forwarded, route_refused, conntrack_full, vxlan_checksums, neighbour_failed,
    netfilter_drop, local_refusal, rp_filter_replies, dnat_target_gone, router_error, mtu_black_hole,
    port_closed, answered, passive_passes, nothing_seen,
)


def decide(facts: Facts) -> Verdict:
    """The first rule that matches, in the order of RULES; else 'could not tell why'."""
    for rule in RULES:
        verdict = rule(facts)
        if verdict is not None:
            return verdict
    return cannot_tell(facts)

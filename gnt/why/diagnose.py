"""Active and passive diagnosis: the checks in order, the probe and what was seen of it, the verdict."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from gnt.errors import GntError
from gnt.iptrace.live import StopRequest
from gnt.why.facts import Facts
from gnt.why.models import SKIPPED, Check, Query, Verdict

if TYPE_CHECKING:
    from gnt.why.probe import Probe

DEFAULT_TIMEOUT = 1.0  # seconds the probe waits for an answer
TRACE_MARGIN = 0.3  # the trace runs this much longer than the probe may wait
PROBE_POLL = 0.01  # seconds between looks at the probe when the trace could not run


def _prepare(ipr: object, query: Query) -> Facts:
    """Facts for the query, with the input interface found for a forwarded source when not given."""
    from gnt.why.route import is_local_address, lookup

    facts = Facts(query)
    if query.source is not None and not is_local_address(ipr, query.source, query.family):
        facts.local_source = False
        if query.iif is None:
            back = lookup(ipr, Facts(replace(query, source=None, iif=None)), dest=query.source)
            if back.oif is None:
                raise GntError(f"{query.source} is not an address of this node and no route leads back to it",
                               "give the interface its traffic arrives on with -i/--iif")
            facts.query = replace(query, iif=back.oif)
    return facts


def _static_checks(ipr: object, facts: Facts) -> Iterator[Check]:
    from gnt.why import node, route

    yield route.check_route(ipr, facts)
    yield node.check_forwarding(facts)
    yield node.check_rp_filter(ipr, facts)
    yield node.check_bridge_nf(ipr, facts)
    yield route.check_neighbour(ipr, facts)
    yield node.check_firewall(facts)
    yield node.check_conntrack(facts)
    yield node.check_mtu_overlay(ipr, facts)


def _explained(checks: list[Check]) -> Check | None:
    """A failed check the kernel itself answered (route, forwarding, neighbour, full table): no probe needed."""
    return next((c for c in checks if c.status == "fail"
                 and c.name in ("route", "forwarding", "rp_filter", "neighbour", "conntrack")), None)


def diagnose(query: Query, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Check | Verdict]:
    """Active mode: the checks, the probe and what was seen of it, then the verdict."""
    from gnt.why import observe, route
    from gnt.why.verdict import decide

    ipr = route.open_netlink()
    try:
        facts = _prepare(ipr, query)
        before = observe.read_counters()  # over the whole run: the neighbour solicitation counts too
        for check in _static_checks(ipr, facts):
            facts.checks.append(check)
            yield check
        for check in _probe(ipr, facts, timeout):
            facts.checks.append(check)
            yield check
        facts.counters = observe.counter_rises(before, observe.read_counters())
        yield observe.counters_check(facts)
        if facts.probe.answered:
            yield _mtu(facts)
        yield decide(facts)
    finally:
        ipr.close()


def _probe(ipr: object, facts: Facts, timeout: float) -> Iterator[Check]:
    from gnt.iptrace.models import Filter
    from gnt.why import node, observe
    from gnt.why.probe import Probe

    q = facts.query
    explained = _explained(facts.checks)
    if explained is not None:
        yield Check("probe", SKIPPED, f"not sent: the {explained.name} check already explains the failure")
        return
    if not facts.local_source or q.forwarded:
        yield Check("probe", SKIPPED, f"{q.source} is not this node's address: forwarded traffic cannot be sent "
                    "from here (use --watch while it flows)")
        return
    try:
        probe = Probe(q.family, q.proto, q.dest, q.port, source=q.source or facts.route.prefsrc, mark=q.mark)
    except GntError as exc:
        yield Check("probe", SKIPPED, f"not sent: {exc.message}", [exc.hint] if exc.hint else [])
        return
    facts.probe = probe.facts
    probe.facts.source = q.source or facts.route.prefsrc
    extra: list[Check] = []
    try:
        with observe.drop_watch(facts, extra) as drops:
            flt = Filter(family=q.family, proto=q.proto, src=probe.facts.source, dst=q.dest,
                         sport=probe.facts.sport, dport=q.port if q.proto != "icmp" else None)
            try:
                packets = observe.trace(flt, facts.trace, duration=timeout + TRACE_MARGIN, on_ready=probe.start,
                                        done=lambda: probe.poll() or (probe.started > 0 and _expired(probe, timeout)))
                observe.summarize(packets, facts.trace)
            except GntError as exc:
                extra.append(Check("netfilter-trace", SKIPPED, f"not traced: {exc.message}"))
            if not probe.started:
                probe.start()
            while not probe.poll() and not _expired(probe, timeout):
                time.sleep(PROBE_POLL)
            if not probe.facts.answered:  # reasons explain failures only (reading them costs a kallsyms load)
                facts.drop_reasons.update(drops())
        if not probe.done:
            probe.facts.outcome = f"no answer in {timeout:g} s"
            probe.facts.seconds = timeout
    finally:
        probe.close()
    p = probe.facts
    status = "ok" if p.answered else "fail"
    via = f" from {p.source}" + (f" port {p.sport}" if p.sport else "")
    yield Check("probe", status, f"{q.proto} probe to {q.flow()}: {p.outcome}", [f"sent{via}"])
    if facts.trace.available:
        yield observe.trace_check(facts.trace, "probe")
    yield from extra
    if facts.drops_available:
        yield observe.drops_check(facts)
    dnat = node.check_dnat_target(ipr, facts)
    if dnat is not None:
        yield dnat


def _expired(probe: Probe, timeout: float) -> bool:
    return bool(probe.started) and time.monotonic() - probe.started >= timeout


def _mtu(facts: Facts) -> Check:
    from gnt.why import pmtu

    return pmtu.check(facts)


def watch(query: Query, *, duration: float, stop: StopRequest | None = None) -> Iterator[Check | Verdict]:
    """Passive mode: trace the matching traffic crossing this node for `duration` seconds (or until `stop`
    is requested: the verdict then covers what was seen so far), then the verdict."""
    from gnt.iptrace.models import Filter
    from gnt.why import observe, route
    from gnt.why.verdict import decide

    ipr = route.open_netlink()
    try:
        facts = _prepare(ipr, query)
        facts.passive = True
        for check in _static_checks(ipr, facts):
            facts.checks.append(check)
            yield check
        q = facts.query
        flt = Filter(family=q.family, proto=q.proto, src=q.source, dst=q.dest,
                     dport=q.port if q.proto != "icmp" else None)
        extra: list[Check] = []
        before = observe.read_counters()
        started = time.monotonic()
        with observe.drop_watch(facts, extra) as drops:
            packets = observe.trace(flt, facts.trace, duration=duration, stop=stop)
            facts.drop_reasons.update(drops())
        facts.counters = observe.counter_rises(before, observe.read_counters())
        facts.watch_seconds = round(min(duration, time.monotonic() - started), 1)
        observe.summarize(packets, facts.trace)
        yield observe.trace_check(facts.trace, "traffic")
        yield from extra
        if facts.drops_available:
            yield observe.drops_check(facts)
        yield observe.counters_check(facts)
        yield decide(facts)
    finally:
        ipr.close()


"""Watching the probe (or the passive traffic) die: its netfilter path, kernel drop reasons, counters.

The netfilter path comes from `gnt.iptrace`'s live tracing, filtered on exactly the probe's
tuple; kernel drop reasons from `gnt.drops` (tracefs `skb:kfree_skb`); both remove what they
install on every exit path. Counters: the reverse-path filter and UDP checksum error counters
of this namespace, read before and after.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterator

from gnt.errors import GntError
from gnt.iptrace.live import StopRequest
from gnt.iptrace.models import Filter, Packet
from gnt.why.facts import Facts, TraceFacts
from gnt.why.models import FAIL, OK, SKIPPED, WARN, Check

NETSTAT = "/proc/net/netstat"  # TcpExt/IpExt counters of this namespace
RP_COUNTER = "IPReversePathFilter"  # TcpExt: packets dropped by rp_filter
GRACE_SECONDS = 0.05  # after the answer: let the trace events of the probe be read
NOISE_REASONS = frozenset({"NOT_SPECIFIED", "SOCKET_CLOSE", "TCP_CLOSE", "SOCKET_FILTER", "OTHERHOST",
                           "IPV6DISABLED", "UNHANDLED_PROTO", "SOCKET_RCVBUFF"})  # seen on any quiet node


def read_counters() -> dict[str, int]:
    from gnt.vxlan.node import udp_csum_errors

    out: dict[str, int] = {}
    try:
        with open(NETSTAT) as f:
            lines = [line.split() for line in f]
        for head, values in itertools.pairwise(lines):
            if head and head[0] == "TcpExt:" and values and values[0] == "TcpExt:" and RP_COUNTER in head:
                out[RP_COUNTER] = int(values[head.index(RP_COUNTER)])
                break
    except (OSError, ValueError, IndexError):
        pass
    for name, value in udp_csum_errors().items():
        out[f"{name}InCsumErrors"] = value
    return out


def counter_rises(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if k in before and after[k] > before[k]}


class _UntilDone(StopRequest):
    """A stop request that also fires once `done()` held at two checks in a row: one more read of the
    trace socket happens between them, so the probe's own trace events are not left unread."""

    def __init__(self, done: Callable[[], bool]) -> None:
        self._signum: int | None = None
        self._done = done
        self._seen = False

    @property
    def signum(self) -> int | None:
        if self._signum is None and self._done():
            if self._seen:
                return 0
            self._seen = True
        return self._signum

    @signum.setter
    def signum(self, value: int | None) -> None:
        self._signum = value


@contextlib.contextmanager
def drop_watch(facts: Facts, checks: list[Check]) -> Iterator[Callable[[], Counter[str]]]:
    """Kernel drop reasons (`gnt drops`' tracing session) while the block runs; yields a function that
    reads the counts so far. The tracing instance is removed when the block ends, however it ends."""
    from gnt.drops import DropFilter, tracing

    totals: Counter[str] = Counter()
    with contextlib.ExitStack() as stack:
        try:
            # Only the reasons are counted here: no code address is named, so kallsyms is never read.
            session = stack.enter_context(tracing(DropFilter(), symbolize=hex))
        except GntError as exc:
            checks.append(Check("drops", SKIPPED, f"kernel drop reasons not watched: {exc.message}",
                                [exc.hint] if exc.hint else []))
            yield lambda: totals
            return

        def read() -> Counter[str]:
            session.poll()
            for drop in session.collect().drops:
                totals[drop.reason] += drop.count
            facts.drops_lost = session.lost
            return totals

        facts.drops_available = True
        yield read


def trace(flt: Filter, out: TraceFacts, *, duration: float, on_ready: Callable[[], None] | None = None,
          done: Callable[[], bool] | None = None, stop: StopRequest | None = None) -> list[Packet]:
    """The traced packets of `flt` for at most `duration` seconds (less once `done()` holds); the backend
    and its notices (e.g. a legacy TRACE that cannot be seen from this namespace) go into `out`."""
    from gnt.iptrace.live import RunStats, trace_live

    request = stop if stop is not None else (_UntilDone(done) if done is not None else StopRequest())
    stats = RunStats()
    packets = trace_live(flt, duration=duration, on_ready=on_ready, stop=request, stats=stats)
    with contextlib.closing(packets):
        found = list(packets)
    out.backend = stats.backend
    out.notices = list(stats.notices)
    out.blind = bool(stats.notices) and not found  # the backend said it may not see anything here
    return found


def summarize(packets: list[Packet], out: TraceFacts) -> None:
    from gnt.iptrace.models import TERMINAL_VERDICTS
    from gnt.output.text import endpoint

    out.available = True
    out.packets += len(packets)
    for packet in packets:
        s = packet.summary
        if s.oif and s.oif not in out.oifs:
            out.oifs.append(s.oif)
        if s.verdict in TERMINAL_VERDICTS:
            out.dropped += 1
            step = next((st for st in packet.steps if st.deciding), packet.steps[-1] if packet.steps else None)
            if step is not None and out.drop_step is None:
                out.drop_chain = f"{step.table} {step.chain}"
                out.drop_kind = step.kind
                out.drop_rule = step.rule
                if step.kind == "policy":
                    out.drop_step = f"{step.table} {step.chain} policy {(step.verdict or s.verdict).upper()}"
                else:
                    number = f" #{step.rulenum}" if step.rulenum else ""
                    out.drop_step = f"{step.table} {step.chain} rule{number} ({step.rule or step.verdict})"
                out.drop_flow = f"{s.src} → {endpoint(s.dst, s.dport)}"
        elif s.verdict == "accept" or not s.verdict:
            out.accepted += 1


def trace_check(t: TraceFacts, what: str) -> Check:
    if not t.available:
        return Check("netfilter-trace", SKIPPED, "not traced")
    if t.blind:
        return Check("netfilter-trace", SKIPPED, f"nothing traced, and the {t.backend} trace may not see this "
                     "namespace's packets", t.notices)
    if t.dropped:
        evidence = [f"{t.dropped} of {t.packets} packets dropped at {t.drop_step}"]
        if t.drop_rule:
            evidence.append(f"rule: {t.drop_rule}")
        return Check("netfilter-trace", FAIL, f"{what} dropped at {t.drop_step}", evidence)
    if not t.packets:
        return Check("netfilter-trace", WARN if what == "traffic" else OK, f"no {what} packet traced")
    return Check("netfilter-trace", OK, f"{t.packets} {what} packets traced, none dropped by a rule",
                 [f"leaving by {', '.join(t.oifs)}"] if t.oifs else [])


def drops_check(facts: Facts) -> Check:
    from gnt.drops import hint_for

    if not facts.drops_available:
        return Check("drops", SKIPPED, "kernel drop reasons not watched")
    shown = {r: n for r, n in facts.drop_reasons.most_common() if r not in NOISE_REASONS}
    if not shown:
        return Check("drops", OK, "no kernel drops while watching")
    text = ", ".join(f"{r} x{n}" for r, n in shown.items())
    evidence = [f"{r}: {n}" + (f"  ({hint_for(r)})" if hint_for(r) else "") for r, n in shown.items()]
    evidence.append("drop reasons are node-wide: every network namespace's drops are counted")
    if facts.drops_lost:
        evidence.append(f"{facts.drops_lost} drop events lost by the kernel's buffers")
    return Check("drops", WARN, f"kernel drops while watching: {text}", evidence)


def counters_check(facts: Facts) -> Check:
    if not facts.counters:
        return Check("counters", OK, "no drop counter rose while watching")
    text = ", ".join(f"{k} +{v}" for k, v in facts.counters.items())
    return Check("counters", WARN, f"counters rose while watching: {text}")



"""The trace scheduler: which probe goes out when, how long to wait, when a hop is complete.

Linux routers and hosts rate-limit the ICMP errors they send, per peer (icmp_ratelimit: a
token bucket of about 6, refilled once a second for IPv4). Firing 16 probes at once, as the
Linux traceroute does, makes a box answer some probes and not others, and a destination
whose port-unreachable answers were dropped shows up as a row of phantom `* * *` hops. So:

- Pacing per destination: every probe with a TTL beyond the last router that answered may
  reach the destination. Only the first query of the next TTL goes out ahead ("exploration"),
  so the destination sees about `queries + 1` probes per trace, not 16. A silent hop does
  not stall the exploration for long: a TTL whose probes went unanswered for a while no
  longer counts against it, and each such step re-probes the silent TTLs below in one
  ascending burst (a sweep), so the first box whose bucket refills answers at its own TTL.
- Re-probing missing answers while waiting: a slot whose probe expired is probed again;
  at a hop that answered other probes (so it is rate-limiting, not silent) the new probe
  waits for the hop's token bucket to refill (`RATE_GAP`) — pacing per hop — and is given
  up when nothing else is left to wait for (it would only turn a `*` into an RTT).
- Stopping at the first TTL the destination answered (or an unreachable came from): nothing
  beyond is printed. A TTL between the last router and that one with no answer at all might
  be that box with an empty token bucket. It is cleared when one of its probes went out in
  the same burst just before the probe that got the final answer (the box met ours first);
  otherwise a confirmation burst — one probe per such TTL, ascending, then one at the final
  TTL — goes out once the box's bucket has refilled, and the lowest TTL it answers wins.
- Waiting as the Linux traceroute's `-w MAX,HERE,NEAR`: a probe waits MAX seconds, or HERE
  times the RTT of an answer from its own hop, or NEAR times the RTT of an answer from the
  nearest later hop, whichever applies first.
Hops are yielded as soon as they and every hop before them are complete.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from gnt.core.resolve import NameLookups
from gnt.traceroute.methods import FINAL, HOP, REACHED, Answer, Method, payload_size
from gnt.traceroute.models import Hop, ProbeResult, TraceOptions

RATE_GAP = 1.0  # seconds for a Linux box's ICMP token bucket to refill one token (icmp_ratelimit)
WAIT_PRECISION = 0.001  # seconds added to an RTT before scaling it (as the Linux traceroute)
EXPLORE_AHEAD = 1  # TTLs beyond the frontier that get one exploratory probe
STALE_MIN = 0.25  # seconds after which an unanswered TTL stops holding up exploration
STALE_RTT_FACTOR = 3.0  # ... or this many times the slowest RTT seen, if longer
MAX_ATTEMPTS = 3  # probes per query slot: the first plus two re-probes
CONFIRM_ROUNDS = 3  # confirmation bursts for silent TTLs before the destination, at most
SWEEP_SPAN = 6  # silent TTLs above the frontier that a sweep probes again
SWEEP = -1  # Slot.index of a sweep probe (it belongs to no query slot)
CONFIRMATION = -2  # Slot.index of a confirmation probe
IDLE_TICK = 0.5  # longest sleep in the event loop (a safety net, never a timer)


@dataclass(slots=True)
class Probe:
    seq: int
    slot: Slot
    send_ns: int
    sent_at: float  # time.monotonic() when sent
    burst: int = 0  # probes sent back to back share a burst (they reach a box in seq order)
    live: bool = True
    mtu_note: int | None = None  # --mtu: the first probe sent at a new size carries it (F=<mtu>)


@dataclass(slots=True)
class Slot:
    ttl: int
    index: int
    flow: int
    attempts: int = 0
    last_sent: float = 0.0
    ready_at: float = 0.0
    inflight: Probe | None = None
    answer: Answer | None = None
    rtt_ms: float | None = None
    karn: bool = False  # rtt_ms may be that of a retransmission: shown, never used to time a wait
    done: bool = False
    cosmetic: bool = False  # its pending re-probe only fills a `*`; given up when nothing else waits


@dataclass(slots=True)
class HopState:
    ttl: int
    slots: list[Slot] = field(default_factory=list)
    first_sent: float | None = None

    def answered(self) -> list[Slot]:
        return [s for s in self.slots if s.answer is not None]

    def complete(self) -> bool:
        return all(s.done or s.answer is not None for s in self.slots)


class Engine:
    """One trace: drives a `Method` and yields `Hop`s in TTL order."""

    def __init__(self, options: TraceOptions, method: Method, selector: selectors.BaseSelector,
                 destination: str, slots_per_hop: int, flows: int) -> None:
        self.options = options
        self.method = method
        self.selector = selector
        self.destination = destination
        self.flows = flows
        self.hops: dict[int, HopState] = {}
        for ttl in range(options.first_ttl, options.max_ttl + 1):
            hop = HopState(ttl)
            for index in range(slots_per_hop):
                hop.slots.append(Slot(ttl, index, index % flows))
            self.hops[ttl] = hop
        self.limit = options.max_ttl  # lowest TTL with a final answer (destination or unreachable)
        self.reached = False
        self.probes: dict[int, Probe] = {}
        self.next_seq = 0
        self.last_send = 0.0
        self.max_rtt = 0.0
        self.inflight_per_flow = [0] * flows
        self.stale_wake: float | None = None  # when a silent TTL stops holding up exploration
        self.burst = 0
        self.sweep_top = 0  # the exploration top at the last sweep
        self.final_hits: list[tuple[int, int, int]] = []  # (burst, seq, ttl) of final answers
        self.final_seen = False  # an answer ended the trace early (destination reached, or unreachable)
        self.confirm_rounds = 0
        self.names = NameLookups(selector, options.name_timeout)
        method.oldest_inflight = self._oldest_inflight
        self.mtu_size: int | None = None  # --mtu: the current probe size
        self.mtu_note: int | None = None  # --mtu: a new size not yet noted on a probe

    def start_mtu_discovery(self, size: int, *, noted: bool) -> None:
        """--mtu: probes start at `size` (noted F=<size> on the first when it is not the asked length)
        and shrink to the MTU each "fragmentation needed" / "packet too big" names."""
        from gnt.traceroute.methods import payload_size

        self.mtu_size = size
        self.mtu_note = size if noted else None
        self.method.payload_size = payload_size(self.method.name, self.method.family, size)

    def _shrink(self, probe: Probe, answer: Answer) -> bool:
        """--mtu: a hop named a smaller MTU for `probe`: shrink the probes, probe its slot again."""
        note = answer.annotation or ""
        if self.mtu_size is None or not note.startswith("!F-") or not note[3:].isdigit():
            return False
        mtu = int(note[3:])
        if not 0 < mtu < self.mtu_size:
            return False
        self.mtu_size = self.mtu_note = mtu
        self.method.payload_size = payload_size(self.method.name, self.method.family, mtu)
        self._finish_probe(probe)
        if probe.slot.index >= 0:
            probe.slot.attempts -= 1  # the probe was too big, not lost
            probe.slot.ready_at = 0.0
        return True

    # -- bookkeeping -------------------------------------------------------------------------

    def frontier(self) -> int:
        """The lowest TTL that could still be the destination: one past the last router that answered."""
        routers = [ttl for ttl, hop in self.hops.items() if ttl <= self.limit
                   and any(s.answer is not None and s.answer.kind == HOP for s in hop.slots)]
        return max(routers) + 1 if routers else self.options.first_ttl

    def _oldest_inflight(self, flow: int) -> int | None:
        live = [p for p in self.probes.values() if p.live and p.slot.flow == flow]
        return min(live, key=lambda p: (p.slot.ttl, p.seq)).seq if live else None

    def inflight(self) -> list[Probe]:
        return [p for p in self.probes.values() if p.live]

    def probe_timeout(self, probe: Probe) -> float:
        """The Linux traceroute's wait: MAX, or HERE x RTT at this hop, or NEAR x RTT at a later hop."""
        opts = self.options
        hop = self.hops[probe.slot.ttl]
        here = [s.rtt_ms for s in hop.slots if s.rtt_ms is not None and not s.karn]
        if here and opts.wait_here > 0:
            return min(opts.wait_max, opts.wait_here * (here[0] / 1000 + WAIT_PRECISION))
        if opts.wait_near > 0:
            for ttl in range(probe.slot.ttl + 1, self.limit + 1):
                later = [s.rtt_ms for s in self.hops[ttl].slots if s.rtt_ms is not None and not s.karn]
                if later:
                    return min(opts.wait_max, opts.wait_near * (later[0] / 1000 + WAIT_PRECISION))
        return opts.wait_max

    # -- sending -----------------------------------------------------------------------------

    def _explore_limit(self, now: float) -> int:
        """The highest TTL allowed to be probed now (per-destination pacing)."""
        frontier = self.frontier()
        top = frontier + EXPLORE_AHEAD
        stale_after = max(STALE_MIN, STALE_RTT_FACTOR * self.max_rtt)
        ttl = frontier
        # A TTL probed long ago and still silent is a silent router, most likely: look past it.
        self.stale_wake = None
        while ttl <= self.limit:
            hop = self.hops[ttl]
            if hop.answered() or hop.first_sent is None:
                break
            if now - hop.first_sent < stale_after:
                self.stale_wake = hop.first_sent + stale_after
                break
            top += 1
            ttl += 1
        return min(top, self.limit)

    def highest_answered(self) -> int:
        """The highest TTL (within the limit) that anything answered at; 0 when none did."""
        return max((ttl for ttl, hop in self.hops.items() if ttl <= self.limit and hop.answered()), default=0)

    def _slot_wanted(self, slot: Slot, frontier: int, explore_top: int, answered_top: int) -> bool:
        if slot.done or slot.answer is not None or slot.inflight is not None:
            return False
        if slot.ttl > max(explore_top, answered_top):
            return False
        # Beyond everything that answered, only the first query explores.
        return not (slot.ttl > max(frontier, answered_top) and slot.index > 0)

    def send_ready(self, now: float) -> float | None:
        """Send every probe that may go now; returns when the next held-back one may go."""
        opts = self.options
        frontier = self.frontier()
        explore_top = self._explore_limit(now)
        answered_top = self.highest_answered()
        wake: float | None = self.stale_wake if explore_top < self.limit else None
        self.burst += 1
        pending = self.unsettled()
        hold_from = pending[0] if pending else self.limit + 1  # keep the destination's tokens for the confirmation
        if explore_top > self.sweep_top and explore_top > frontier + EXPLORE_AHEAD and not pending:
            self._sweep(frontier, explore_top, now)
        self.sweep_top = max(self.sweep_top, explore_top)
        live = sum(1 for p in self.inflight() if p.slot.index >= 0)
        for ttl in range(opts.first_ttl, min(max(explore_top, answered_top), self.limit, hold_from - 1) + 1):
            for slot in self.hops[ttl].slots:
                if not self._slot_wanted(slot, frontier, explore_top, answered_top):
                    continue
                if slot.ready_at > now:
                    wake = slot.ready_at if wake is None else min(wake, slot.ready_at)
                    continue
                if live >= opts.simultaneous:
                    return wake
                cap = self.method.max_inflight_per_flow
                if cap is not None and self.inflight_per_flow[slot.flow] >= cap:
                    continue
                if opts.send_wait and now - self.last_send < opts.send_wait:
                    due = self.last_send + opts.send_wait
                    return due if wake is None else min(wake, due)
                self._send(slot, now)
                live += 1
                if opts.send_wait:
                    now = time.monotonic()
        return wake

    def _sweep(self, frontier: int, top: int, now: float) -> None:
        """Exploration is stuck behind silent TTLs: probe each of them again, ascending, in one burst.

        Whichever box's bucket refills first answers the lowest TTL that reaches it, so the
        destination's first answer lands on its own TTL, and the silent TTLs below it are cleared
        by the same burst (see `settled`). Not for methods that can send one probe per flow only.
        """
        if self.method.max_inflight_per_flow is not None:
            return
        for ttl in range(frontier, min(top, frontier + SWEEP_SPAN - 1, self.limit) + 1):
            hop = self.hops[ttl]
            if not hop.answered() and hop.first_sent is not None:
                self._send(Slot(ttl, SWEEP, 0), now)

    def _send(self, slot: Slot, now: float) -> None:
        seq = self.next_seq
        self.next_seq += 1
        send_ns = self.method.send(seq, slot.ttl, slot.flow)
        sent_at = time.monotonic()
        probe = Probe(seq, slot, send_ns, sent_at, self.burst, mtu_note=self.mtu_note)
        self.mtu_note = None
        self.probes[seq] = probe
        slot.inflight = probe
        slot.attempts += 1
        slot.last_sent = sent_at
        self.inflight_per_flow[slot.flow] += 1
        self.last_send = sent_at
        if slot.index < 0:
            return  # a sweep or confirmation probe belongs to no query slot
        hop = self.hops[slot.ttl]
        if hop.first_sent is None:
            hop.first_sent = sent_at

    def _finish_probe(self, probe: Probe) -> None:
        if probe.live:
            probe.live = False
            self.inflight_per_flow[probe.slot.flow] -= 1
            self.method.retire(probe.seq)
        if probe.slot.inflight is probe:
            probe.slot.inflight = None

    # -- expiry and re-probing ----------------------------------------------------------------

    def expire(self, now: float) -> float | None:
        """Retire probes whose wait is over and plan their re-probes; returns the next deadline."""
        wake: float | None = None
        for probe in self.inflight():
            timeout = self.probe_timeout(probe)
            deadline = probe.sent_at + timeout
            if deadline > now:
                wake = deadline if wake is None else min(wake, deadline)
                refill = self._refill_probe_due(probe, timeout)
                if refill is not None:
                    if refill <= now:
                        self._send(probe.slot, now)  # the first probe stays live: either may answer
                    else:
                        wake = min(wake, refill)
                continue
            self._finish_probe(probe)
            if probe.slot.inflight is None:  # else a newer probe of the slot is still waiting
                self._plan_retry(probe.slot, now, waited_max=timeout >= self.options.wait_max)
        return wake

    def _refill_probe_due(self, probe: Probe, timeout: float) -> float | None:
        """When to probe a silent TTL again while its probe still waits out a long MAX wait.

        Nothing at or beyond the TTL has answered, so nothing says the path is slow: more likely
        the box's token bucket is empty (an earlier trace drained it). A second probe once a token
        is back (`RATE_GAP`) finds it without waiting the whole MAX. None: not for this probe.
        """
        slot = probe.slot
        if (slot.index < 0 or slot.inflight is not probe or slot.attempts >= MAX_ATTEMPTS or self.final_seen
                or timeout <= RATE_GAP or self.method.max_inflight_per_flow is not None
                or self.highest_answered() >= slot.ttl):
            return None
        return probe.sent_at + RATE_GAP

    def _plan_retry(self, slot: Slot, now: float, *, waited_max: bool = False) -> None:
        if slot.answer is not None or slot.index < 0:
            return
        if slot.ttl > self.limit or slot.attempts >= MAX_ATTEMPTS:
            slot.done = True
            return
        hop = self.hops[slot.ttl]
        if hop.answered():
            # The hop answers, just not this probe: its token bucket is empty. Wait for a refill.
            slot.ready_at = slot.last_sent + RATE_GAP
            slot.cosmetic = True
        elif slot.attempts == 1 and not waited_max:
            slot.ready_at = now  # plain loss is cheap to retry at once (a full MAX wait is not)
        elif not waited_max or (self.final_seen and slot.ttl < self.limit):
            # Silent twice: a silent box, or one whose bucket an earlier trace drained. Ask again
            # once a token is back; the trace waits for it (it may show a router, or where the
            # destination is), up to MAX_ATTEMPTS probes.
            slot.ready_at = slot.last_sent + RATE_GAP
        else:
            slot.done = True  # silent; `unsettled` may still hold its line back

    def settled(self, ttl: int) -> bool:
        """True when silent TTL `ttl` cannot be where the trace ends.

        It is when one of its probes went out in the same burst as, and just before, a probe
        to a higher TTL that got a final answer (the destination's, or an unreachable): the box
        that answered would have met ours first, with at least as many tokens in its bucket.
        """
        for hit_burst, hit_seq, hit_ttl in self.final_hits:
            if hit_ttl <= ttl:
                continue
            for probe in self.probes.values():
                if probe.slot.ttl == ttl and probe.burst == hit_burst and probe.seq < hit_seq:
                    return True
        return False

    def unsettled(self) -> list[int]:
        """Silent TTLs between the last router and the final answer that might hold the final answerer."""
        if not self.final_seen or self.confirm_rounds >= CONFIRM_ROUNDS:
            return []
        out = []
        for ttl in range(max(self.frontier(), self.options.first_ttl), self.limit):
            hop = self.hops[ttl]
            if hop.answered() or any(s.inflight is not None for s in hop.slots):
                continue
            if not self.settled(ttl):
                out.append(ttl)
        return out

    def confirm_silent(self, now: float) -> float | None:
        """Send a confirmation burst when it is due: each unsettled TTL, then one probe at the destination.

        Sent `RATE_GAP` (then twice, four times that) after the last probe that may have reached
        the box, so its bucket holds a token: the first probe of the burst to reach it gets the answer.
        Returns when the burst is due (None: nothing to confirm, or a burst is in flight).
        """
        ttls = self.unsettled()
        if not ttls:
            return None
        if self.method.max_inflight_per_flow is not None:
            self.confirm_rounds = CONFIRM_ROUNDS  # one probe per flow at a time: no bursts possible
            return None
        if any(p.live and p.slot.index == CONFIRMATION for p in self.probes.values()):
            return None
        # Doubling gaps: a router answering from an `unreachable` route pays for each error twice
        # (ip_error's bucket and icmp_send's share one inet_peer), so it needs two tokens' worth.
        gap = RATE_GAP * (1 << self.confirm_rounds)
        due = max((p.sent_at for p in self.probes.values() if p.slot.ttl >= ttls[0]), default=now) + gap
        if due > now:
            return due
        self.confirm_rounds += 1
        self.burst += 1
        for ttl in [*ttls, self.limit]:
            self._send(Slot(ttl, CONFIRMATION, 0), now)
        return None

    def drop_cosmetic_retries(self, now: float) -> None:
        """Give up paced re-probes once nothing else is left to wait for.

        A re-probe waiting for a hop's token bucket only fills a `*` at a hop that already
        answered: it is sent while the trace waits anyway, never to make the trace longer.
        """
        if self.options.paths:
            return  # multipath discovery: a missing answer may be the only one from a second router
        pending: list[Slot] = []
        for ttl in range(self.options.first_ttl, self.limit + 1):
            for slot in self.hops[ttl].slots:
                if slot.done or slot.answer is not None:
                    continue
                if slot.inflight is not None or not slot.cosmetic or slot.ready_at <= now:
                    return
                pending.append(slot)
        for slot in pending:
            slot.done = True

    def _settle(self) -> None:
        self.confirm_rounds = CONFIRM_ROUNDS  # nothing more will be sent: silent TTLs stay `* * *`
        for ttl in range(self.options.first_ttl, self.limit + 1):
            for slot in self.hops[ttl].slots:
                if slot.answer is None and slot.inflight is None:
                    slot.done = True

    # -- answers -----------------------------------------------------------------------------

    def on_answer(self, answer: Answer) -> None:
        probe = self.probes.get(answer.seq)
        if probe is None:
            return  # not one of ours (or from an earlier wrap of the sequence space)
        if self._shrink(probe, answer):
            return
        if probe.mtu_note is not None:
            answer.annotation = f"F={probe.mtu_note}" + (f" {answer.annotation}" if answer.annotation else "")
        slot = probe.slot
        if slot.ttl > self.limit:
            self._finish_probe(probe)
            return
        if slot.index < 0:
            # A confirmation probe: its answer fills a free query slot of its hop, if any.
            if self._is_final(answer):
                self.final_hits.append((probe.burst, probe.seq, slot.ttl))
            self._finish_probe(probe)
            free = [s for s in self.hops[slot.ttl].slots if s.answer is None]  # in query order
            if not free:
                self._apply_final(answer, slot.ttl)
                return
            slot = free[0]
            if slot.inflight is not None:
                self._finish_probe(slot.inflight)  # answered by the newer probe; stop waiting for this one
            slot.done = True
        elif slot.answer is not None:
            self._finish_probe(probe)
            return
        if slot.index >= 0 and self._is_final(answer):
            self.final_hits.append((probe.burst, probe.seq, slot.ttl))
        sent_ns = answer.sent_ns if answer.sent_ns is not None else probe.send_ns
        rtt = max(answer.recv_ns - sent_ns, 0) / 1e6
        slot.answer = answer
        slot.rtt_ms = rtt
        slot.karn = answer.karn
        slot.done = True
        if not answer.karn:
            self.max_rtt = max(self.max_rtt, rtt / 1000)
        self._finish_probe(probe)
        if answer.address is not None and not self.options.numeric:
            self.names.want(answer.address)
        self._apply_final(answer, slot.ttl)

    def _is_final(self, answer: Answer) -> bool:
        return answer.kind in (REACHED, FINAL) or answer.address == self.destination

    def _apply_final(self, answer: Answer, ttl: int) -> None:
        if self._is_final(answer) and ttl <= self.limit:
            # Only the destination's own address means reached: a router in the middle may answer
            # port unreachable too (a REJECT rule), which ends the trace like any unreachable.
            if answer.address == self.destination:
                self.reached = True
            self.final_seen = True
            self.limit = ttl
            for other in self.inflight():
                if other.slot.ttl > self.limit:
                    self._finish_probe(other)

    def _names_ready(self, hop: HopState) -> bool:
        return all(self.names.done(s.answer.address) for s in hop.slots
                   if s.answer is not None and s.answer.address is not None and not self.options.numeric)

    def _hop(self, hop: HopState) -> Hop:
        results: list[ProbeResult] = []
        for slot in hop.slots:
            if slot.answer is None:
                results.append(ProbeResult(None, None, flow=slot.flow))
            else:
                rtt = round(slot.rtt_ms, 3) if slot.rtt_ms is not None else None
                results.append(ProbeResult(slot.answer.address, rtt, slot.answer.annotation,
                                           self.names.name(slot.answer.address) if slot.answer.address else None,
                                           slot.flow))
        if self.options.paths:
            # Multipath view: group the answers of each router, stars last.
            order: dict[str | None, int] = {}
            for r in results:
                order.setdefault(r.address, len(order))
            results.sort(key=lambda r: (r.address is None, order[r.address]))
        return Hop(hop.ttl, results)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> Iterator[Hop]:
        next_ttl = self.options.first_ttl
        try:
            while next_ttl <= self.limit:
                self._collect(0.0)  # answers already queued count before any probe is declared lost
                now = time.monotonic()
                expire_wake = self.expire(now)
                confirm_wake = self.confirm_silent(now)
                send_wake = self.send_ready(now)
                self.drop_cosmetic_retries(now)
                self.names.expire(now)
                name_wake = self.names.next_deadline()
                while next_ttl <= self.limit:
                    hop = self.hops[next_ttl]
                    if not hop.complete() or not self._names_ready(hop) or next_ttl in self.unsettled():
                        break
                    yield self._hop(hop)
                    next_ttl += 1
                if next_ttl > self.limit:
                    break
                if confirm_wake is None and expire_wake is None and send_wake is None and name_wake is None \
                        and not self.inflight():
                    self._settle()  # nothing can change any more: whatever is unanswered stays `*`
                    continue
                wakes = [w for w in (confirm_wake, expire_wake, send_wake, name_wake) if w is not None]
                timeout = min(wakes) - time.monotonic() if wakes else IDLE_TICK
                timeout = min(max(timeout, 0.0), IDLE_TICK)
                self._collect(timeout)
        finally:
            for probe in self.inflight():
                self._finish_probe(probe)
            self.names.close()

    def _collect(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            if self.selector.get_map().get(key.fd) is not key:
                continue  # retired (and closed) by an answer earlier in this batch
            for answer in key.data(mask):
                self.on_answer(answer)

    def hop_count(self) -> int:
        return self.limit

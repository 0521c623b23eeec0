"""The size search: pure logic over a `Prober`, so it runs against a simulated path in unit tests.

Rules (each one is there because a real kernel made it necessary):

- Sizes are whole IP packets, sent with DF and the kernel's cached PMTU ignored (IP_PMTUDISC_PROBE),
  so a test is decided by the path, never by what an earlier run taught the kernel.
- The first size is the largest (the local MTU, or --max): when it passes, one probe is the answer.
- A hop's "fragmentation needed" / "packet too big" names the size it forwards: that size is
  tried next, and sizes above it count as refused by that hop (no search above it).
- Otherwise a binary search over the MTUs links really have (PLATEAUS), then bytes: when the
  largest size that passed is a plateau, one byte more is tried at once (1400 passes, 1401?).
- The largest size goes out first, alone: when it passes, one probe is the answer ("ok").
- Nothing comes back: not yet a loss. Routers and hosts rate-limit ICMP errors per peer
  (a bucket of about 6, one more a second; UDP's "port unreachable" from the destination too),
  so a silence may be an empty bucket. A size known to pass (the control) goes out right
  after the silence: answered, the silence is a provisional loss; unanswered, the bucket is
  empty (or the path is gone) and the size is tried again after `RATE_GAP` (then doubled
  gaps), as `gnt traceroute` paces its re-probes, followed at once by the control. From then
  on, probes to the destination are paced too: one a second after its last answer (runs back
  to back drain its bucket; a probe lost on the way spends no token).
- A provisional loss bounds the answer once it is the size right above the largest that
  passed: then it is confirmed, paced (sent once a router's bucket has refilled, so a hop that
  would say "too big" has a token) and paired: the large probe travels first, so had it
  arrived it would have had the token the control got. "Large probe silent, control answered"
  is the loss. A confirmed boundary covers the provisional losses above it (a path that loses
  N bytes loses N+1); a confirmation that passes reopens the search above it.
- The hop: the failing size is sent with TTL 1, 2, ... Routers answer time-exceeded (the TTL is
  checked before the MTU); the first TTL where the large probe vanishes while the control at
  the same TTL is answered is past the hop that drops it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gnt.mtu.models import HopRef
from gnt.traceroute.engine import RATE_GAP

PASSED = "passed"  # the destination answered the probe
TOO_BIG = "too-big"  # a hop (or the local stack: address None) refused it, naming its MTU
EXPIRED = "expired"  # time exceeded: a router at this TTL answered
SILENT = "silent"  # nothing came back within the wait
UNREACHABLE = "unreachable"  # an unreachable other than "too big" (!H, !N, !X ...)

# MTUs links and tunnels really have, ascending (RFC 1191 §7 table plus today's encapsulations:
# PPPoE 1492, VXLAN/Geneve over 1500 1450, WireGuard 1420/1440, IPsec ~1400, IPv6 minimum 1280).
PLATEAUS = (68, 296, 508, 576, 1006, 1200, 1280, 1300, 1350, 1380, 1400, 1420, 1440, 1450, 1460,
            1472, 1480, 1492, 1500, 4352, 8950, 9000, 9001, 9216)
MIN_WAIT = 0.1  # seconds: the shortest wait for an answer, however fast the path
FIRST_WAIT = 0.25  # seconds the first probe waits (no RTT known yet; a silence is retried in a pair)
RTT_FACTOR = 5.0  # wait this many times the slowest RTT seen (when that is longer)
GRACE = 0.005  # seconds to wait for earlier probes' answers once the last probe of a burst is answered
CONFIRM_ROUNDS = 3  # paced pairs tried before a size is declared unanswerable
WALK_ROUNDS = 1  # paced pairs per TTL in the walk (a router that never answers is normal there)
MAX_WALK = 30  # TTLs walked at most
DEFAULT_TTL = 64  # TTL / hop limit of size probes


@dataclass(slots=True)
class Outcome:
    size: int
    ttl: int | None
    kind: str  # PASSED, TOO_BIG, EXPIRED, SILENT, UNREACHABLE
    mtu: int | None = None  # TOO_BIG: the MTU the hop named
    address: str | None = None  # who answered; None for the local stack
    rtt: float | None = None  # seconds
    note: str | None = None  # UNREACHABLE: the traceroute-style annotation (!H, !N, ...)
    confirmed: bool = False  # SILENT in a paced pair whose control was answered


class Prober(Protocol):
    """Sends sized probes and reports what came back (UDP, ICMP echo, TCP; see `probers`)."""

    probes: int  # packets sent so far

    def exchange(self, requests: Sequence[tuple[int, int | None]], timeout: float) -> list[Outcome]:
        """Send (size, ttl) probes back to back, in order; wait until each is answered, the last
        one is (plus GRACE), or `timeout` passes. Outcomes come back in request order."""
        ...


class NoAnswer(Exception):
    """Neither a size nor its control got an answer, however long we waited for tokens."""


@dataclass(slots=True)
class SearchResult:
    largest_ok: int | None
    smallest_lost: int | None
    lost_kind: str | None  # TOO_BIG or SILENT: how `smallest_lost` failed
    report: Outcome | None  # the too-big answer that set `smallest_lost`
    unreachable: Outcome | None = None


def next_size(lo: int | None, hi: int, min_size: int, tested: set[int], hint: int | None) -> int:
    """The next size to test between `lo` (largest passed; None: none yet) and `hi` (smallest failed)."""
    low = lo if lo is not None else min_size - 1
    if hint is not None and low < hint < hi:
        return hint
    candidates = [m for m in PLATEAUS if low < m < hi and m >= min_size and m not in tested]
    if candidates:
        return candidates[(len(candidates) - 1) // 2]  # the lower median: a pass costs 1 probe, a loss 3
    if lo is not None and lo in PLATEAUS and lo + 1 < hi and lo + 1 not in tested:
        return lo + 1  # the edge is most likely right above a plateau
    return (low + hi) // 2


class Search:
    """One discovery: the size search, then (optionally) the TTL walk."""

    def __init__(self, prober: Prober, *, min_size: int, max_size: int, wait: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.prober = prober
        self.min_size = min_size
        self.max_size = max_size
        self.wait = wait
        self.clock = clock
        self.sleep = sleep
        self.max_rtt: float | None = None
        self.last_send = -math.inf  # when the last probe went out (it may have spent a token)
        self.lo: int | None = None
        self.starved = False  # a control went unanswered: the destination's bucket ran dry
        self.last_passed = -math.inf  # when the destination last answered (spending one of its tokens)

    def timeout(self) -> float:
        if self.max_rtt is None:
            return self.wait
        return min(self.wait, max(MIN_WAIT, RTT_FACTOR * self.max_rtt))

    def _exchange(self, requests: Sequence[tuple[int, int | None]], timeout: float | None = None) -> list[Outcome]:
        if self.starved and any(ttl is None for _size, ttl in requests):
            # The destination answers one probe a second now: send when it has a token again
            # (a probe lost on the way spent none), rather than pay for silences and retries.
            due = self.last_passed + RATE_GAP
            now = self.clock()
            if due > now:
                self.sleep(due - now)
        outcomes = self.prober.exchange(requests, self.timeout() if timeout is None else timeout)
        self.last_send = self.clock()
        if any(out.kind == PASSED and out.ttl is None for out in outcomes):
            self.last_passed = self.last_send
        for out in outcomes:
            if out.rtt is not None and out.kind != SILENT:
                self.max_rtt = out.rtt if self.max_rtt is None else max(self.max_rtt, out.rtt)
        return outcomes

    def _pace(self, gap: float) -> None:
        due = self.last_send + gap
        now = self.clock()
        if due > now:
            self.sleep(due - now)

    def test(self, size: int, ttl: int | None = None, *, paced: bool = False, resend: bool = False,
             rounds: int = CONFIRM_ROUNDS) -> Outcome:
        """One size: its outcome; SILENT only when a control sent right after it was answered (else NoAnswer).

        Unpaced, in the search, a silence is followed at once by the control alone: enough for a
        provisional loss (its boundary is confirmed later). In the TTL walk, by the pair (size,
        control): the large probe travels first, so it would have had the token the control got.
        Paced (the boundary's confirmation), the pair waits until a router's bucket has refilled,
        so a hop that would report "too big" has a token. Both silent: no token (or no path); the
        pair is tried again after RATE_GAP, then doubled gaps. `resend`: the size was just sent
        and went unanswered.
        """
        out = Outcome(size, ttl, SILENT)
        if not paced and not resend:
            out = self._exchange([(size, ttl)])[0]
            if out.kind != SILENT:
                return out
        control = self.lo if self.lo is not None else self.min_size
        gaps = [RATE_GAP * (1 << n) for n in range(rounds)]
        if not paced and ttl is None and control < size:
            (check,) = self._exchange([(control, None)])
            if check.kind == PASSED:
                self.lo = max(self.lo or 0, control)
                return out
            self.starved = True
        elif not paced:
            gaps = [0.0, *gaps]  # the walk: the pair at once
        for gap in gaps:
            self._pace(gap)
            if control >= size:
                (out,) = self._exchange([(size, ttl)])
                if out.kind != SILENT:
                    return out
                continue
            out, check = self._exchange([(size, ttl), (control, ttl)])
            if out.kind != SILENT:
                return out
            if check.kind == PASSED and ttl is None:
                self.lo = max(self.lo or 0, control)
            if check.kind != SILENT:
                out.confirmed = paced
                return out
            self.starved = self.starved or ttl is None
        raise NoAnswer

    def _refused(self, out: Outcome, size: int) -> tuple[int, int | None]:
        """The smallest size a too-big answer rules out, and the size to try next (the MTU it named)."""
        if out.mtu is not None and out.mtu < size:
            return min(size, out.mtu + 1), out.mtu  # the hop forwards nothing above its MTU
        return size, None

    def search(self) -> SearchResult:
        """The size search. A silence (with its control answered) is provisional until it bounds the
        answer: then it is confirmed, paced (a larger size cannot pass where a smaller one is lost,
        so the boundary's confirmation covers the losses above it); a confirmation that passes
        reopens the search above it."""
        hi = self.max_size + 1
        lost_kind: str | None = None
        report: Outcome | None = None
        tested: set[int] = set()
        provisional: list[int] = []  # sizes lost once, not yet confirmed after a token refill
        hint: int | None = None
        size = self.max_size
        first = True
        while True:
            try:
                if first:
                    # The largest size alone: one probe decides "ok" (or names the hop's MTU). Its
                    # wait is short, the RTT being unknown: a silence costs a pair, not a long wait.
                    out = self._exchange([(size, None)], min(self.wait, FIRST_WAIT))[0]
                    if out.kind == SILENT:
                        out = self.test(size, resend=True)
                else:
                    out = self.test(size)
            except NoAnswer:
                if self.lo is None:
                    return SearchResult(None, None, None, None, Outcome(size, None, UNREACHABLE))
                raise
            first = False
            tested.add(size)
            if out.kind == UNREACHABLE:
                return SearchResult(self.lo, None, None, None, out)
            if out.kind == PASSED:
                self.lo = max(self.lo or 0, size)
            elif out.kind == TOO_BIG:
                refused, hint = self._refused(out, size)
                if refused < hi:
                    hi, lost_kind, report = refused, TOO_BIG, out
            elif out.kind == SILENT:
                provisional.append(size)
                if size < hi:
                    hi, lost_kind, report = size, SILENT, None
            while True:
                if self.lo is not None and self.lo >= hi:  # a pass above a loss: the loss was not one
                    above = [p for p in provisional if p > self.lo]
                    hi = min(above) if above else self.max_size + 1
                    lost_kind, report = (SILENT if above else None), None
                bounded = (self.lo is not None and hi - self.lo <= 1) or self.lo == self.max_size \
                    or (self.lo is None and hi <= self.min_size)
                if not (bounded and lost_kind == SILENT and hi in provisional):
                    break
                provisional.remove(hi)
                try:
                    out = self.test(hi, paced=True)
                except NoAnswer:
                    if self.lo is None:
                        return SearchResult(None, None, None, None, Outcome(hi, None, UNREACHABLE))
                    raise
                if out.kind == SILENT:
                    return SearchResult(self.lo, hi, SILENT, None)  # confirmed: the boundary holds
                if out.kind == UNREACHABLE:
                    return SearchResult(self.lo, None, None, None, out)
                if out.kind == PASSED:
                    self.lo = max(self.lo or 0, hi)
                else:  # a hop answered "too big" once its bucket had refilled
                    refused, hint = self._refused(out, hi)
                    hi, lost_kind, report = refused, TOO_BIG, out
            if bounded:
                break
            size = next_size(self.lo, hi, self.min_size, tested, hint)
            hint = None
        smallest = hi if hi <= self.max_size else None
        return SearchResult(self.lo, smallest, lost_kind if smallest else None, report)

    def walk(self, size: int, *, reporter: str | None = None) -> HopRef | None:
        """The hop: for a pmtu, the TTL of `reporter`; for a black hole, the last hop `size` reached."""
        last: HopRef | None = None
        for ttl in range(1, MAX_WALK + 1):
            try:
                out = self.test(size, ttl, rounds=WALK_ROUNDS)
            except NoAnswer:
                continue  # a router that answers nothing at this TTL: look further
            if out.kind == EXPIRED:
                if reporter is not None and out.address == reporter:
                    return HopRef(ttl, out.address)
                last = HopRef(ttl, out.address)
                continue
            if out.kind == TOO_BIG:
                return HopRef(ttl - 1, out.address) if out.address else HopRef(0, None)
            if out.kind == SILENT:  # the control at this TTL was answered: the large size died before
                return last if last is not None else HopRef(0, None)
            return last  # the large size reached the destination, or an unreachable: stop here
        return last

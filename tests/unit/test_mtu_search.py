"""The size search against simulated paths: ICMP rate limits (a bucket of 6, one token a second,
per peer, as Linux), routers that report or swallow "too big", lost packets. No network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from gnt.mtu.models import HopRef
from gnt.mtu.search import (
    EXPIRED,
    PASSED,
    SILENT,
    TOO_BIG,
    NoAnswer,
    Outcome,
    Search,
    next_size,
)

BURST = 6  # Linux: XRLIM_BURST_FACTOR tokens per peer
RTT = 0.0005  # seconds per exchange on the simulated path


@dataclass
class Bucket:
    tokens: float = BURST
    at: float = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(BURST, self.tokens + (now - self.at))
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Router:
    address: str
    mtu_out: int  # the MTU of the link after it
    reports: bool = True  # sends "too big"; False: a black hole
    bucket: Bucket = field(default_factory=Bucket)


@dataclass
class Path:
    """h1 -> routers -> destination. `limited` destinations rate-limit their answers (UDP)."""

    routers: list[Router]
    limited: bool = True
    dest_bucket: Bucket = field(default_factory=Bucket)
    lose: set[int] = field(default_factory=set)  # probe numbers lost on the wire (1-based)
    now: float = 0.0
    probes: int = 0
    log: list[tuple[int, int | None, str]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def _one(self, size: int, ttl: int | None) -> Outcome:
        self.probes += 1
        if self.probes in self.lose:
            return Outcome(size, ttl, SILENT)
        for distance, router in enumerate(self.routers, 1):
            if ttl is not None and ttl == distance:
                if router.bucket.take(self.now):
                    return Outcome(size, ttl, EXPIRED, address=router.address, rtt=RTT)
                return Outcome(size, ttl, SILENT)
            if size > router.mtu_out:
                if router.reports and router.bucket.take(self.now):
                    return Outcome(size, ttl, TOO_BIG, mtu=router.mtu_out, address=router.address, rtt=RTT)
                return Outcome(size, ttl, SILENT)
        if not self.limited or self.dest_bucket.take(self.now):
            return Outcome(size, ttl, PASSED, address="dest", rtt=RTT)
        return Outcome(size, ttl, SILENT)

    def exchange(self, requests: Sequence[tuple[int, int | None]], timeout: float) -> list[Outcome]:
        outs = [self._one(size, ttl) for size, ttl in requests]
        self.log += [(o.size, o.ttl, o.kind) for o in outs]
        self.now += timeout if outs[-1].kind == SILENT else RTT
        return outs


def search(path: Path, max_size: int = 1500, min_size: int = 68) -> Search:
    return Search(path, min_size=min_size, max_size=max_size, wait=1.0, clock=path.clock, sleep=path.sleep)


def chain(mtu: int, reports: bool) -> Path:
    return Path([Router("r1", 1500), Router("r2", mtu, reports), Router("r3", 1500)])


def test_full_mtu_is_two_probes() -> None:
    path = chain(1500, True)
    found = search(path).search()
    assert (found.largest_ok, found.smallest_lost) == (1500, None)
    assert path.probes == 1


def test_reported_mtu_is_taken_at_its_word() -> None:
    path = chain(1400, True)
    s = search(path)
    found = s.search()
    assert (found.largest_ok, found.smallest_lost, found.lost_kind) == (1400, 1401, TOO_BIG)
    assert found.report is not None and found.report.address == "r2"
    assert path.probes == 2
    assert s.walk(1401, reporter="r2") == HopRef(2, "r2")


@pytest.mark.parametrize("mtu", [1400, 1450, 1234, 1281, 576, 69])
def test_black_hole_bounds(mtu: int) -> None:
    path = chain(mtu, False)
    s = search(path)
    found = s.search()
    assert (found.largest_ok, found.smallest_lost, found.lost_kind) == (mtu, mtu + 1, SILENT)
    assert s.walk(mtu + 1) == HopRef(2, "r2")  # the last hop the large size reached


def test_plateau_black_hole_is_cheap() -> None:
    path = chain(1400, False)
    found = search(path).search()
    assert found.largest_ok == 1400
    assert path.probes <= 16, path.log


@pytest.mark.parametrize("drained", ["dest", "r2", "all"])
def test_drained_buckets_never_make_a_false_verdict(drained: str) -> None:
    """Back-to-back runs: the destination's and the routers' buckets start empty."""
    for reports in (True, False):
        path = chain(1400, reports)
        if drained in ("dest", "all"):
            path.dest_bucket.tokens = 0
        if drained in ("r2", "all"):
            for router in path.routers:
                router.bucket.tokens = 0
        s = search(path)
        found = s.search()
        assert (found.largest_ok, found.smallest_lost) == (1400, 1401), path.log
        assert found.lost_kind == (TOO_BIG if reports else SILENT), path.log


def test_runs_back_to_back_share_the_buckets() -> None:
    path = chain(1400, True)
    for _run in range(8):
        found = search(path).search()
        assert (found.largest_ok, found.smallest_lost, found.lost_kind) == (1400, 1401, TOO_BIG), path.log


@pytest.mark.parametrize("lost", [1, 2, 3, 4, 5])
def test_a_lost_packet_is_not_a_black_hole(lost: int) -> None:
    path = chain(1400, False)
    path.lose = {lost}
    found = search(path).search()
    assert (found.largest_ok, found.smallest_lost) == (1400, 1401), path.log


def test_nothing_answers_is_unreachable() -> None:
    path = chain(1400, True)
    path.routers[0].mtu_out = 0  # r1 forwards nothing, silently
    path.routers[0].reports = False
    found = search(path).search()
    assert found.unreachable is not None
    assert found.largest_ok is None


def test_silent_router_in_the_walk_is_skipped() -> None:
    path = chain(1400, False)
    path.routers[0].bucket.tokens = -10**6  # r1 never sends time-exceeded
    s = search(path)
    s.search()
    assert s.walk(1401) == HopRef(2, "r2")


def test_next_size_prefers_plateaus_then_the_byte_above() -> None:
    assert next_size(68, 1500, 68, set(), None) in (1380, 1400)
    assert next_size(1400, 1420, 68, {1400, 1420}, None) == 1401
    assert next_size(1400, 1411, 68, {1400, 1401}, None) == 1405  # then bytes, halving
    assert next_size(68, 1500, 68, set(), 1400) == 1400  # a reported MTU first


def test_no_answer_raises_when_path_dies_mid_search() -> None:
    path = chain(1400, False)
    s = search(path)
    s.lo = 1000
    path.routers[0].mtu_out = 0
    path.routers[0].reports = False
    with pytest.raises(NoAnswer):
        s.test(1200)


def test_back_to_back_black_holes_pace_instead_of_retrying() -> None:
    """Once the destination's bucket ran dry, probes to it wait for its tokens: no retry storm."""
    path = chain(1400, False)
    for _run in range(4):
        before = path.probes
        s = search(path)
        found = s.search()
        assert (found.largest_ok, found.smallest_lost) == (1400, 1401), path.log
        assert s.walk(1401) == HopRef(2, "r2")
        assert path.probes - before <= 21, path.log[before:]

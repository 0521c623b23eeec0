"""The scheduler against a simulated path whose boxes rate-limit their ICMP errors like Linux does.

`SimulatedPath` stands in for a probe method: every box has a token bucket (burst, refill
interval), silent routers never answer, and answers come back through a socketpair so the
engine's real event loop runs. The destination's bucket can start empty, as it is when traces
run back to back — the case where the Linux traceroute prints phantom hops.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time

import pytest

from gnt.traceroute import engine as engine_module
from gnt.traceroute.engine import Engine
from gnt.traceroute.methods import FINAL, HOP, REACHED, Answer, Method
from gnt.traceroute.models import Hop, TraceOptions

REFILL = 0.2  # seconds per token in the simulation (Linux: 1 s); the engine's RATE_GAP is patched to match
DEST = "198.18.9.9"


class Bucket:
    def __init__(self, tokens: float, burst: float = 6) -> None:
        self.tokens = tokens
        self.burst = burst
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) / REFILL)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SimulatedPath(Method):
    name = "sim"

    def __init__(self, selector: selectors.BaseSelector, routers: list[str | None], dest_tokens: float,
                 unreachable: tuple[str, float] | None = None) -> None:
        super().__init__(socket.AF_INET, DEST, 0, 1, 0, selector, source=None, interface=None, paris=False)
        self.routers = routers
        self.unreachable = unreachable[0] if unreachable else None  # the last router has no route onwards
        self.buckets = {r: Bucket(6) for r in routers if r}
        self.buckets[DEST] = Bucket(dest_tokens)
        if unreachable:
            self.buckets[unreachable[0]] = Bucket(unreachable[1])
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.pending: list[Answer] = []
        self.sent: list[int] = []  # TTL of every probe, in order
        selector.register(self.reader, selectors.EVENT_READ, self._handle)

    def send(self, seq: int, ttl: int, flow: int) -> int:
        self.sent.append(ttl)
        now = time.time_ns()
        if ttl <= len(self.routers):
            router = self.routers[ttl - 1]
            if router is not None and self.buckets[router].allow():
                self._answer(Answer(seq, HOP, router, None, now + 50_000))
        elif self.unreachable is not None:
            if self.buckets[self.unreachable].allow():
                self._answer(Answer(seq, FINAL, self.unreachable, "!H", now + 60_000))
        elif self.buckets[DEST].allow():
            self._answer(Answer(seq, REACHED, DEST, None, now + 80_000))
        return now

    def _answer(self, answer: Answer) -> None:
        self.pending.append(answer)
        self.writer.send(b"x")

    def _handle(self, _mask: int) -> list[Answer]:
        self.reader.recv(4096)
        out, self.pending = self.pending, []
        return out

    def close(self) -> None:
        self.selector.unregister(self.reader)
        self.reader.close()
        self.writer.close()


def trace(routers: list[str | None], dest_tokens: float, unreachable: tuple[str, float] | None = None,
          **options: object) -> tuple[list[Hop], Engine, float]:
    settings: dict[str, object] = {"wait_max": 0.5, **options}
    opts = TraceOptions(host=DEST, numeric=True, **settings)  # type: ignore[arg-type]
    selector = selectors.DefaultSelector()
    path = SimulatedPath(selector, routers, dest_tokens, unreachable)
    engine = Engine(opts, path, selector, DEST, opts.queries, 1)
    start = time.monotonic()
    hops = list(engine.run())
    elapsed = time.monotonic() - start
    path.close()
    selector.close()
    return hops, engine, elapsed


@pytest.fixture(autouse=True)
def fast_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "RATE_GAP", REFILL)


def addresses(hop: Hop) -> set[str | None]:
    return {p.address for p in hop.probes}


def test_fresh_path_every_hop_answers() -> None:
    hops, engine, _elapsed = trace(["10.0.1.1", "10.0.2.1", "10.0.3.1"], dest_tokens=6)
    assert [h.ttl for h in hops] == [1, 2, 3, 4]
    assert [addresses(h) for h in hops] == [{"10.0.1.1"}, {"10.0.2.1"}, {"10.0.3.1"}, {DEST}]
    assert engine.reached


@pytest.mark.parametrize("dest_tokens", [0, 0.5, 1, 2, 6])
@pytest.mark.parametrize("silent", [1, 2])
def test_silent_router_and_drained_destination_give_the_exact_hop_count(dest_tokens: float, silent: int) -> None:
    routers: list[str | None] = ["10.0.1.1", "10.0.2.1", "10.0.3.1"]
    routers[silent] = None
    hops, engine, _elapsed = trace(routers, dest_tokens=dest_tokens)
    assert [h.ttl for h in hops] == [1, 2, 3, 4], [(h.ttl, addresses(h)) for h in hops]
    assert addresses(hops[silent]) == {None}
    assert DEST in addresses(hops[3])
    assert engine.reached


def test_destination_sees_few_probes() -> None:
    """Per-destination pacing: not a burst of 16 at the destination."""
    selector = selectors.DefaultSelector()
    path = SimulatedPath(selector, ["10.0.1.1", None, "10.0.3.1"], dest_tokens=6)
    opts = TraceOptions(host=DEST, numeric=True, wait_max=0.5)
    engine = Engine(opts, path, selector, DEST, opts.queries, 1)
    hops = list(engine.run())
    path.close()
    assert len(hops) == 4
    assert sum(1 for ttl in path.sent if ttl >= 4) <= 4


def test_destination_beyond_max_ttl_is_not_reached() -> None:
    hops, engine, _elapsed = trace(["10.0.1.1", None, None, None, None, None], dest_tokens=6, max_ttl=4,
                                   wait_max=0.2)
    assert [h.ttl for h in hops] == [1, 2, 3, 4]
    assert not engine.reached
    assert all(addresses(h) == {None} for h in hops[1:])


def test_first_ttl_skips_the_near_hops() -> None:
    hops, engine, _elapsed = trace(["10.0.1.1", "10.0.2.1"], dest_tokens=6, first_ttl=2)
    assert [h.ttl for h in hops] == [2, 3]
    assert engine.reached


def test_answer_struct_is_plain_data() -> None:
    answer = Answer(1, HOP, "10.0.0.1", None, 5)
    assert struct.pack("!H", answer.seq) == b"\x00\x01"


@pytest.mark.parametrize("tokens", [0, 1, 6])
def test_unreachable_from_a_drained_router_stops_at_that_router(tokens: float) -> None:
    """The box that says !H rate-limits too: the trace still ends at the TTL it sits at."""
    hops, engine, _elapsed = trace(["10.0.1.1", None], dest_tokens=6, unreachable=("10.0.3.1", tokens))
    assert [h.ttl for h in hops] == [1, 2, 3], [(h.ttl, addresses(h)) for h in hops]
    assert addresses(hops[1]) == {None}
    assert "10.0.3.1" in addresses(hops[2])
    assert any(p.annotation == "!H" for p in hops[2].probes)
    assert not engine.reached

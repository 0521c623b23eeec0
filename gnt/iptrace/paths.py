"""Turning steps into packets: the deciding step, and grouping live nftables events by trace id."""

from __future__ import annotations

import socket
from collections.abc import Callable

from gnt.iptrace.headers import summarize
from gnt.iptrace.models import (
    FINAL_VERDICTS,
    KIND_POLICY,
    KIND_RETURN,
    KIND_RULE,
    TERMINAL_VERDICTS,
    Packet,
    Step,
    Summary,
)
from gnt.iptrace.nftevents import TraceEvent
from gnt.iptrace.nftrules import TABLE_PREFIX, RuleBook

IDLE_SECONDS = 0.5  # a packet whose trace saw no event for this long has finished its path


def verdict_word(verdict: str | None) -> str | None:
    return verdict.split()[0] if verdict else None


def mark_deciding(packet: Packet) -> Packet:
    """Flag the step that decided the packet's fate and copy its verdict into the summary.

    A drop/reject/queue/stolen ends the path; otherwise the last accept is what let it
    through (the last hook it passed).
    """
    chosen: Step | None = None
    for step in packet.steps:
        step.deciding = False
        word = verdict_word(step.verdict)
        if word in TERMINAL_VERDICTS:
            chosen = step
            break
        if word in FINAL_VERDICTS:
            chosen = step
    if chosen is not None:
        chosen.deciding = True
        packet.summary.verdict = verdict_word(chosen.verdict)
    return packet


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"if{index}"


class NftTracker:
    """Groups trace events into packets by trace id; a packet completes on a terminal verdict or when idle."""

    def __init__(self, rules: RuleBook | None = None, *, idle: float = IDLE_SECONDS,
                 ifname: Callable[[int], str] = _ifname, hide_prefix: str = TABLE_PREFIX) -> None:
        self.rules = rules
        self.idle = idle
        self.ifname = ifname
        self.hide_prefix = hide_prefix
        self.open: dict[int, Packet] = {}
        self.last_seen: dict[int, float] = {}
        self.chain_end: dict[int, TraceEvent] = {}  # trace id -> end-of-chain event awaiting what follows
        self.passed_own: set[int] = set()  # trace ids whose packet has passed gnt's own trace chain
        self.oif_index: dict[int, int] = {}  # trace id -> output ifindex already named in its summary

    def feed(self, event: TraceEvent, now: float) -> list[Packet]:
        """Add one event; returns the packets it completed."""
        completed: list[Packet] = []
        packet = self.open.get(event.trace_id)
        if packet is not None and self._restarts(packet, event):
            completed.append(self._close(event.trace_id))
            packet = None
        if packet is None:
            packet = Packet(id=f"{event.trace_id:08x}", summary=Summary())
            self.open[event.trace_id] = packet
        self.last_seen[event.trace_id] = now
        summary = packet.summary
        if summary.src is None and event.network_header:
            summarize(event.network_header, event.transport_header, summary)
        if event.iif and summary.iif is None:
            summary.iif = self.ifname(event.iif)
        if event.oif and event.oif != self.oif_index.get(event.trace_id):  # a name lookup is a syscall
            self.oif_index[event.trace_id] = event.oif
            summary.oif = self.ifname(event.oif)
        if event.mark is not None:
            summary.mark = event.mark
        if event.table.startswith(self.hide_prefix):
            if event.kind == KIND_POLICY:
                self.passed_own.add(event.trace_id)
            return completed
        pending = self.chain_end.pop(event.trace_id, None)
        if pending is not None and not (event.kind == KIND_POLICY and event.chain == pending.chain):
            # the chain ran out of rules and was not a base chain: an implicit return to its caller
            packet.steps.append(Step(table=pending.table, chain=pending.chain, kind=KIND_RETURN,
                                     verdict="return", family=pending.family))
        if event.kind == KIND_RULE and event.handle is None and event.verdict == "continue":
            # Recent kernels report "no more rules here" as a rule event without a handle: at the end
            # of a chain entered by the path (followed by its policy, or a return), or when a caller
            # resumes after a return. Neither is a rule; remember the first kind, drop the second.
            last = packet.steps[-1] if packet.steps else None
            entered = last is not None and last.table == event.table and (
                last.chain == event.chain or (last.verdict or "").split()[1:] == [event.chain])
            if entered:
                self.chain_end[event.trace_id] = event
            return completed
        step = Step(table=event.table, chain=event.chain, kind=event.kind, handle=event.handle,
                    verdict=event.verdict, family=event.family)
        if event.kind == KIND_RULE and event.handle is not None and self.rules is not None:
            step.rulenum, step.rule = self.rules.lookup(event.family, event.table, event.chain, event.handle)
        if event.kind == KIND_POLICY:
            step.handle = None
        packet.steps.append(step)
        if verdict_word(step.verdict) in TERMINAL_VERDICTS:
            completed.append(self._close(event.trace_id))
        return completed

    def _restarts(self, packet: Packet, event: TraceEvent) -> bool:
        """The kernel derives trace ids from the skb and reuses them: tell a new packet from more
        of the same one (our own chain runs once per packet; an IPv4 ID does not change)."""
        if event.table.startswith(self.hide_prefix) and event.kind == KIND_RULE \
                and event.trace_id in self.passed_own:
            return True
        header = event.network_header
        if header and len(header) >= 6 and header[0] >> 4 == 4 and packet.summary.ip_id is not None:
            return int.from_bytes(header[4:6], "big") != packet.summary.ip_id
        return False

    def _close(self, trace_id: int) -> Packet:
        self.last_seen.pop(trace_id, None)
        self.chain_end.pop(trace_id, None)
        self.passed_own.discard(trace_id)
        self.oif_index.pop(trace_id, None)
        return mark_deciding(self.open.pop(trace_id))

    def expire(self, now: float) -> list[Packet]:
        """Packets idle for longer than `idle`, in the order they started."""
        done = [tid for tid in self.open if now - self.last_seen.get(tid, now) >= self.idle]
        return [self._close(tid) for tid in done]

    def drain(self) -> list[Packet]:
        return [self._close(tid) for tid in list(self.open)]

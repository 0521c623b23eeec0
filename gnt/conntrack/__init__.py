"""`gnt conntrack`: the connection-tracking table and its events, with NAT made explicit.

Pure logic over ctnetlink (gnt.conntrack.netlink): it yields models (gnt.conntrack.models)
and never prints. The dump is streamed: each datagram (about 150 entries) is decoded and its
entries handed on as it arrives; a child process reads ahead at most a pipe's worth (1 MiB),
so memory does not grow with the table.
"""

from __future__ import annotations

import errno
import itertools
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from gnt.conntrack.entries import EntryBuilder, FusedLines
from gnt.conntrack.filters import EntryFilter
from gnt.conntrack.models import CpuStats, Entry, EventEntry, ListSummary, Lost, Stats, WatchSummary
from gnt.conntrack.netlink import (
    CTA_STATS_CHAIN_TOOLONG,
    CTA_STATS_CLASH_RESOLVE,
    CTA_STATS_GLOBAL_ENTRIES,
    CTA_STATS_GLOBAL_MAX_ENTRIES,
    EVENT_RCVBUF,
    IPCTNL_MSG_CT_GET,
    IPCTNL_MSG_CT_GET_STATS,
    IPCTNL_MSG_CT_GET_STATS_CPU,
    NF_NETLINK_CONNTRACK_DESTROY,
    NF_NETLINK_CONNTRACK_NEW,
    NF_NETLINK_CONNTRACK_UPDATE,
    STATS_CPU_NAMES,
    CtnetlinkSocket,
    decode_u32_attrs,
    event_kind,
    program_of_portid,
    sender_portid,
)
from gnt.core.netlink import NFGENMSG, NLM_F_ACK, NLM_F_DUMP
from gnt.errors import GntError

EVENT_GROUPS = {  # event name -> multicast group bit: the kernel sends only what was asked
    "new": NF_NETLINK_CONNTRACK_NEW,
    "update": NF_NETLINK_CONNTRACK_UPDATE,
    "destroy": NF_NETLINK_CONNTRACK_DESTROY,
}
# The explanations `stats` attaches to a non-zero counter.
INSERT_FAILED_HINT = (
    "insert_failed counts lost insert races: two packets of one new flow (typically the parallel "
    "A and AAAA DNS queries of one UDP socket) raced to create the same entry and one was dropped, "
    "the classic 5-second DNS timeout; use 'options single-request-reopen' in resolv.conf, or TCP "
    "for DNS, or a kernel with conntrack clash resolution"
)
DROP_HINT = ("drop/early_drop count packets and entries lost to a full table: raise "
             "net.netfilter.nf_conntrack_max or shorten timeouts")
FULL_FRACTION = 0.9  # warn when the table is this full


KERNEL_PROBE = 64  # entries checked here before the kernel's filtering is trusted for the rest


LINE_BATCH = 512  # lines handed on together when nothing needs checking (the hot path of a dump)


def list_entries(flt: EntryFilter, lines: FusedLines | None = None) -> Iterator[Entry | list[str] | ListSummary]:
    """Every entry of this network namespace's table that matches, then a summary.

    The kernel filters what it can (EntryFilter.dump_requests); what it sends is checked again
    here, so a kernel that filters less (an older one, which ignores attributes it does not know)
    gives the same result, and one that refuses a filter attribute gets an unfiltered dump. When
    the kernel can apply every filter exactly and the first KERNEL_PROBE entries it sent all
    match, it is filtering: the rest is taken as sent.

    With `lines`, entries come as their formatted lines instead, in lists of up to LINE_BATCH:
    the format's fused form skips the Entry model (gnt.conntrack.entries.compile_builder)
    wherever no check is needed.
    """
    received = shown = 0
    check = flt.matches if flt.active else None
    trusted = 0 if check is not None and flt.kernel_exact else -1  # entries seen to match; -1: never trust
    builder = EntryBuilder(lines=lines)
    requests = flt.dump_requests() if flt.active else [(0, b"")]
    with CtnetlinkSocket() as sock:
        for family, attrs in requests:
            try:
                sock.request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family=family, attrs=attrs)
                messages = sock.messages(prefetch=True)
                first = next(messages, None)
            except GntError as exc:
                if not attrs or exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                requests, attrs = [(flt.family or 0, b"")], b""  # the kernel refused the filter: filter here
                trusted = -1
                sock.request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family=flt.family or 0)
                messages = sock.messages(prefetch=True)
                first = next(messages, None)
            if first is None:
                continue
            stream = itertools.chain((first,), messages)
            if lines is not None:
                # Straight to lines: the loop of a million entries, kept short.
                batch: list[str] = []
                line_builders = builder.line_builders
                for buf, off, end, _msg_type, _flags in stream:
                    received += 1
                    if check is not None and trusted < KERNEL_PROBE:
                        entry = builder.build(buf, off, end)
                        if not check(entry):
                            trusted = -1  # the kernel sent one that does not match: it does not filter
                            continue
                        if trusted >= 0 and (attrs or family):  # the kernel was asked to filter
                            trusted += 1
                        text = lines.general(entry)
                    else:
                        text = None
                        for fn in line_builders.get(end - off, ()):
                            text = fn(buf, off)
                            if text is not None:
                                break
                        else:  # no fused builder made a line: the general path (not those builders again)
                            text = lines.general(builder.build(buf, off, end))
                    shown += 1
                    if text is not None:
                        batch.append(text)
                        if len(batch) >= LINE_BATCH:
                            yield batch
                            batch = []
                if batch:
                    yield batch
                if not attrs:
                    break
                continue
            for buf, off, end, _msg_type, _flags in stream:
                received += 1
                if check is None or trusted >= KERNEL_PROBE:
                    shown += 1
                    yield builder.build(buf, off, end)
                    continue
                entry = builder.build(buf, off, end)
                if check(entry):
                    shown += 1
                    if trusted >= 0 and (attrs or family):
                        trusted += 1
                    yield entry
                else:
                    trusted = -1  # the kernel sent one that does not match: it does not filter
            if not attrs:
                break
        # The kernel filtered (by attributes or by family): what it sent is not the table; ask its size.
        in_table = table_size(sock) if any(attrs or family for family, attrs in requests) else received
    yield ListSummary(shown=shown, scanned=in_table, filtered=flt.active)


def table_size(sock: CtnetlinkSocket) -> int:
    """The number of entries in the table (CTA_STATS_GLOBAL_ENTRIES), 0 when the kernel does not say."""
    sock.request(IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK)
    values: dict[int, int] = {}
    for buf, off, end, _msg_type, _flags in sock.messages():
        values.update(decode_u32_attrs(buf, off + NFGENMSG.size, end))
    return values.get(CTA_STATS_GLOBAL_ENTRIES, 0)


def watch(
    flt: EntryFilter,
    events: frozenset[str],
    *,
    count: int | None = None,
    duration: float | None = None,
    rcvbuf: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    loss: EventLoss | None = None,
) -> Generator[EventEntry | Lost | WatchSummary, None, None]:
    """Conntrack events as they happen, until `count` events matched or `duration` seconds passed.

    An ENOBUFS (the socket buffer overflowed: the kernel dropped events) is yielded as a `Lost`
    at once and watching goes on. The generator's `close()` (Ctrl-C in the CLI) still ends it
    cleanly; the summary is yielded only on a normal end.

    ENOBUFS says that events were lost, not how many, and the kernel reports it once per
    congestion however many are dropped. The count comes from the kernel's drop counter of the
    socket (CtnetlinkSocket.drops): one per event message it could not queue. `loss` (if given)
    holds both counts, also after the generator ends by an exception.
    """
    groups = 0
    for name in events:
        groups |= EVENT_GROUPS[name]
    check = flt.matches if flt.active else None
    started = clock()
    deadline = started + duration if duration is not None else None
    if loss is None:
        loss = EventLoss()
    with CtnetlinkSocket(groups=groups, rcvbuf=rcvbuf or EVENT_RCVBUF) as sock:
        try:
            yield from _watch_events(sock, flt, events, check, count, deadline, clock, wall, loss)
        finally:
            # On every end (Ctrl-C too), while the socket still exists: the kernel's drop count.
            if sock.lost:
                loss.overflows, loss.events = sock.lost, sock.drops()
        yield WatchSummary(events=loss.shown, lost=sock.lost, duration=round(clock() - started, 3),
                           filtered=flt.active, lost_events=loss.events)


def _watch_events(
    sock: CtnetlinkSocket, flt: EntryFilter, events: frozenset[str], check: Callable[[Entry], bool] | None,
    count: int | None, deadline: float | None, clock: Callable[[], float], wall: Callable[[], float],
    loss: EventLoss,
) -> Iterator[EventEntry | Lost]:
    build = EntryBuilder(EventEntry).build
    last_portid, last_program = 0, None  # the program behind the last userspace-caused event
    while count is None or loss.shown < count:
        timeout = None
        if deadline is not None:
            timeout = deadline - clock()
            if timeout <= 0:
                break
        batch = sock.receive_events(timeout)
        if batch is None:
            break
        if sock.lost != loss.overflows:
            loss.events = sock.drops()
            yield Lost(overflows=sock.lost - loss.overflows, total=sock.lost, timestamp=wall(), events=loss.events)
            loss.overflows = sock.lost
        now = wall()
        for buf, off, end, msg_type, flags in batch:
            kind = event_kind(msg_type, flags)
            if kind not in events:
                continue
            entry = build(buf, off, end)
            assert isinstance(entry, EventEntry)
            entry.event = kind
            entry.timestamp = now
            portid = sender_portid(buf, off)
            if portid:
                if portid != last_portid:
                    last_portid, last_program = portid, program_of_portid(portid)
                entry.portid, entry.program = portid, last_program
            if check is not None and not check(entry):
                continue
            loss.shown += 1
            yield entry
            if count is not None and loss.shown >= count:
                break


@dataclass
class EventLoss:
    """What a watch lost so far, kept up to date while it runs (read it after an interrupt too)."""

    shown: int = 0  # events yielded
    overflows: int = 0  # ENOBUFS reports
    events: int | None = None  # event messages the kernel dropped for the socket; None: not known


def read_stats() -> Iterator[CpuStats | Stats]:
    """Per-CPU counters, then the totals with the table's fill and warnings."""
    per_cpu: list[CpuStats] = []
    with CtnetlinkSocket() as sock:
        sock.request(IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_DUMP)
        for buf, off, end, _msg_type, _flags in sock.messages():
            cpu = int.from_bytes(buf[off + 2:off + 4], "big")  # nfgenmsg.res_id carries the CPU
            values = decode_u32_attrs(buf, off + NFGENMSG.size, end)
            counters = {name: values.get(attr, 0) for attr, name in STATS_CPU_NAMES.items()}
            stat = CpuStats(
                cpu=cpu, found=counters["found"], invalid=counters["invalid"], insert=counters["insert"],
                insert_failed=counters["insert_failed"], drop=counters["drop"], early_drop=counters["early_drop"],
                error=counters["error"], search_restart=counters["search_restart"],
                clash_resolve=values.get(CTA_STATS_CLASH_RESOLVE), chain_toolong=values.get(CTA_STATS_CHAIN_TOOLONG),
            )
            per_cpu.append(stat)
            yield stat
        sock.request(IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK)
        globals_: dict[int, int] = {}
        for buf, off, end, _msg_type, _flags in sock.messages():
            globals_.update(decode_u32_attrs(buf, off + NFGENMSG.size, end))
    yield summarize(per_cpu, globals_.get(CTA_STATS_GLOBAL_ENTRIES), globals_.get(CTA_STATS_GLOBAL_MAX_ENTRIES))


def summarize(per_cpu: list[CpuStats], entries: int | None, max_entries: int | None) -> Stats:
    """Totals over CPUs, with a warning per counter that explains a common outage."""

    def total(name: str) -> int:
        return sum(getattr(s, name) or 0 for s in per_cpu)

    def optional_total(name: str) -> int | None:
        values = [getattr(s, name) for s in per_cpu if getattr(s, name) is not None]
        return sum(values) if values else None

    stats = Stats(
        entries=entries, max_entries=max_entries, found=total("found"), invalid=total("invalid"),
        insert=total("insert"), insert_failed=total("insert_failed"), drop=total("drop"),
        early_drop=total("early_drop"), error=total("error"), search_restart=total("search_restart"),
        clash_resolve=optional_total("clash_resolve"), chain_toolong=optional_total("chain_toolong"),
    )
    if stats.insert_failed:
        stats.warnings.append(f"insert_failed={stats.insert_failed}: {INSERT_FAILED_HINT}")
    if stats.drop or stats.early_drop:
        stats.warnings.append(f"drop={stats.drop} early_drop={stats.early_drop}: {DROP_HINT}")
    if entries is not None and max_entries and entries >= FULL_FRACTION * max_entries:
        stats.warnings.append(f"the table is {100 * entries // max_entries}% full ({entries}/{max_entries}): "
                              "raise net.netfilter.nf_conntrack_max")
    return stats


__all__ = ["EntryFilter", "EventLoss", "list_entries", "read_stats", "summarize", "watch"]

"""A tracing session on `skb:kfree_skb` in a private tracefs instance: filter in the kernel, read the
per-CPU buffers, count drops per (reason, location, protocol), report what the buffers lost.

Everything the session sets up (the instance with its event, filter and buffers; a tracefs mount it
made) is undone in `finally` blocks with SIGINT/SIGTERM/SIGHUP blocked, so no exit path but SIGKILL
leaves anything behind, and after SIGKILL the next run (or `gnt drops --cleanup`) removes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from gnt.core import tracefs
from gnt.core.caps import CAP_SYS_ADMIN, has_capability
from gnt.core.packets.ethernet import ethertype_by_name, ethertype_name
from gnt.core.process import signals_blocked
from gnt.drops.models import Drop, DropFilter, DropSummary, Interval, ReasonTotal
from gnt.drops.reasons import DEFAULT_HIDDEN, hint_for
from gnt.drops.symbols import Symbolizer
from gnt.errors import STOP_SIGNALS, GntError, PermissionDenied, UnavailableError, UsageError

SYSTEM, EVENT = "skb", "kfree_skb"  # the tracepoint
INSTANCE_PREFIX = "gnt_drops_"  # instances/gnt_drops_<pid>
KERNEL_NEEDED = "5.17"  # first kernel whose kfree_skb carries the drop reason
BUFFER_KB = 2048  # per-CPU ring of our instance: ~45k events at 44 bytes each
READ_PERIOD = 0.1  # seconds between reads of the buffers: a 2 MiB ring holds ~0.4 s of a 100k/s flood
HANDLED_SIGNALS = STOP_SIGNALS  # blocked while kernel state is undone (the error boundary's set)

Key = tuple[int, ...]  # event id, location, protocol, reason as read from the buffer (in offset order)


def require_privilege() -> None:
    if not has_capability(CAP_SYS_ADMIN):
        raise PermissionDenied(
            "reading the kernel's drop events needs root (CAP_SYS_ADMIN) to use tracefs",
            "run as root (sudo gnt drops), or give the container CAP_SYS_ADMIN",
        )


def _kernel_release() -> str:
    return os.uname().release


def event_format(root: str) -> tracefs.EventFormat:
    """skb:kfree_skb's format, checked for the fields gnt reads (5.17+)."""
    try:
        fmt = tracefs.read_format(root, SYSTEM, EVENT)
    except FileNotFoundError:
        raise UnavailableError(
            f"this kernel ({_kernel_release()}) has no skb:kfree_skb tracepoint",
            f"gnt drops needs Linux {KERNEL_NEEDED} or later, built with CONFIG_TRACEPOINTS",
        ) from None
    except PermissionError as exc:
        raise PermissionDenied("cannot read the skb:kfree_skb event format", "run as root",
                               errno=exc.errno) from exc
    missing = [name for name in ("location", "protocol", "reason") if name not in fmt.fields]
    if missing or "reason" not in fmt.symbols:
        raise UnavailableError(
            f"this kernel ({_kernel_release()}) does not give drop reasons in skb:kfree_skb",
            f"gnt drops needs Linux {KERNEL_NEEDED} or later",
        )
    return fmt


def _reason_code(name: str, names: dict[str, int]) -> int:
    code = names.get(name.strip().upper())
    if code is None:
        from gnt.cli.numbers import U32_MAX, int_value

        try:
            return int_value(name.strip(), 0, U32_MAX, hex_ok=True)  # the one number parser: ASCII digits, 0x
        except ValueError:
            raise UsageError(f"unknown drop reason {name!r} on this kernel "
                             f"(`gnt drops --list-reasons` lists the {len(names)} it knows)") from None
    return code


def kernel_filter(flt: DropFilter, table: dict[int, str]) -> tuple[str, list[str]]:
    """The filter expression for the event, and the reasons hidden by default that it leaves out."""
    names = {name: code for code, name in table.items()}
    terms: list[str] = []
    hidden: list[str] = []
    if flt.reasons:
        codes = sorted({_reason_code(r, names) for r in flt.reasons})
        terms.append("(" + " || ".join(f"reason == {c}" for c in codes) + ")")
    excluded = {_reason_code(r, names) for r in flt.exclude}
    if not flt.all and not flt.reasons:
        for name in DEFAULT_HIDDEN:
            if name in names:
                excluded.add(names[name])
                hidden.append(name)
    terms += [f"reason != {c}" for c in sorted(excluded)]
    if flt.protocols:
        values = []
        for proto in flt.protocols:
            value = ethertype_value(proto)
            if value is None:
                raise UsageError(f"unknown protocol {proto!r} (ipv4, ipv6, arp, vlan, ... or an EtherType number)")
            values.append(value)
        terms.append("(" + " || ".join(f"protocol == {v}" for v in sorted(set(values))) + ")")
    return " && ".join(terms), hidden


def ethertype_value(text: str) -> int | None:
    """The EtherType a user names: a name of `ethertype_name` or a number (0x86dd, 2048); None if neither."""
    value = ethertype_by_name(text)
    if value is not None:
        return value
    from gnt.cli.numbers import int_value  # the one parser of numbers typed by a user: ASCII digits, 0x hex

    try:
        return int_value(text.strip().lower(), 0, 0xFFFF, hex_ok=True)
    except ValueError:
        return None


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signum)


@contextlib.contextmanager
def _terminating_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the session like SIGINT (a KeyboardInterrupt), so its `finally` runs.

    Installed only where nothing else handles them (the program's error boundary may already).
    """
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _raise_interrupt)
                installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            signal.signal(signum, signal.SIG_DFL)


def cleanup() -> list[str]:
    """Remove the instances of gnt drops runs that are gone; returns their names."""
    require_privilege()
    with _tracefs_errors(), tracefs.mounted() as mount:
        return tracefs.remove_stale(mount.path, INSTANCE_PREFIX)


def reason_table() -> dict[int, str]:
    """The running kernel's drop reasons, value -> name, from skb:kfree_skb's format file."""
    require_privilege()
    with _tracefs_errors(), tracefs.mounted() as mount:
        return dict(event_format(mount.path).symbols["reason"])


@contextlib.contextmanager
def _tracefs_errors() -> Iterator[None]:
    try:
        yield
    except tracefs.TracefsError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise PermissionDenied(str(exc), "run as root (CAP_SYS_ADMIN)", errno=exc.errno) from exc
        raise GntError(str(exc), errno=exc.errno) from exc


class DropSession:
    """A running session: `poll()` reads the buffers, `collect()` returns what was counted since the
    last collect, `intervals()` does both on a clock, `summary()` totals the run."""

    def __init__(self, fmt: tracefs.EventFormat, reader: tracefs.RawReader, flt: DropFilter, expression: str,
                 hidden: list[str], symbolize: Callable[[int], str] | None = None) -> None:
        self.format = fmt
        self.reasons: dict[int, str] = dict(fmt.symbols["reason"])
        self.filter = flt
        self.expression = expression
        self.hidden = hidden
        self._reader = reader
        self._symbolize = symbolize or Symbolizer()
        fields = fmt.fields
        self._event_id = fmt.id
        self._key, self._slots = self._key_struct(fields)
        self._counts: dict[Key, int] = {}
        self._started = time.time()
        self._started_mono = time.monotonic()
        self._interval_start = self._started
        self._lost_base = reader.lost()  # loss before our first read is not ours to report
        self._lost_seen = 0
        self.seen = 0  # drops read so far
        self.lost = 0  # events lost so far
        self._totals: dict[str, ReasonTotal] = {}

    @staticmethod
    def _key_struct(fields: dict[str, tracefs.Field]) -> tuple[struct.Struct, tuple[int, ...]]:
        """One unpack of (common_type, location, protocol, reason) at their offsets in this kernel, in
        offset order, and where each of the four lands in the unpacked tuple."""
        sizes = {1: "B", 2: "H", 4: "I", 8: "Q"}
        wanted = [fields["common_type"], fields["location"], fields["protocol"], fields["reason"]]
        if any(f.size not in sizes for f in wanted):
            raise UnavailableError("unexpected skb:kfree_skb layout (field sizes)")
        in_order = sorted(wanted, key=lambda f: f.offset)
        fmt, pos = "<", 0
        for f in in_order:
            if f.offset < pos:
                raise UnavailableError("unexpected skb:kfree_skb layout (overlapping fields)")
            fmt += (f"{f.offset - pos}x" if f.offset > pos else "") + sizes[f.size]
            pos = f.offset + f.size
        return struct.Struct(fmt), tuple(in_order.index(f) for f in wanted)

    def poll(self) -> int:
        """Read every event waiting in the buffers now; returns how many."""
        unpack = self._key.unpack_from
        counts = self._counts
        layout = self._reader.layout
        n = 0
        for page in self._reader.pages():
            for offset in tracefs.iter_events(page, layout):
                key = unpack(page, offset)
                counts[key] = counts.get(key, 0) + 1
                n += 1
        self.seen += n
        return n

    def collect(self) -> Interval:
        """The drops counted since the last collect (most first), with the events lost meanwhile."""
        now = time.time()
        lost_total = max(0, self._reader.lost() - self._lost_base)
        interval = Interval(start=self._interval_start, end=now, lost=lost_total - self._lost_seen)
        self._lost_seen = lost_total
        self.lost = lost_total
        at_type, at_location, at_protocol, at_reason = self._slots
        for key, count in self._counts.items():
            event_id, location = key[at_type], key[at_location]
            protocol, code = key[at_protocol], key[at_reason]
            if event_id != self._event_id:
                continue
            reason = self.reasons.get(code, str(code))
            drop = Drop(reason=reason, location=self._symbolize(location), protocol=ethertype_name(protocol),
                        count=count, start=interval.start, end=now, reason_code=code, address=location)
            interval.drops.append(drop)
            total = self._totals.get(reason)
            if total is None:
                total = self._totals[reason] = ReasonTotal(reason, 0, hint_for(reason))
            total.count += count
            where = f"{drop.location} {drop.protocol}"
            total.locations[where] = total.locations.get(where, 0) + count
        interval.drops.sort(key=lambda d: (-d.count, d.reason, d.location))
        self._counts = {}
        self._interval_start = now
        return interval

    def intervals(self, interval: float = 1.0, *, duration: float | None = None, count: int | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep, read_period: float = READ_PERIOD) -> Iterator[Interval]:
        """An `Interval` every `interval` seconds until `duration` seconds or `count` drops (the last one
        may be shorter); reads the buffers every `read_period` in between so they do not overflow."""
        start = clock()
        deadline = None if duration is None else start + duration
        boundary = start + interval
        base = self.seen  # --count counts the drops of this call
        while True:
            now = clock()
            wake = min(boundary, now + read_period, deadline if deadline is not None else boundary)
            if wake > now:
                sleep(wake - now)
            self.poll()
            now = clock()
            done = (deadline is not None and now >= deadline) or (count is not None and self.seen - base >= count)
            if now >= boundary or done:
                yield self.collect()
                while boundary <= now:
                    boundary += interval
            if done:
                return

    def summary(self) -> DropSummary:
        reasons = sorted(self._totals.values(), key=lambda t: (-t.count, t.reason))
        for total in reasons:
            total.locations = dict(sorted(total.locations.items(), key=lambda kv: -kv[1]))
        return DropSummary(reasons=reasons, total=sum(t.count for t in reasons), lost=self.lost,
                           seconds=round(time.monotonic() - self._started_mono, 3),
                           kernel_filter=self.expression, hidden=list(self.hidden))


@contextlib.contextmanager
def tracing(flt: DropFilter | None = None, *, buffer_kb: int = BUFFER_KB,
            on_cleanup: Callable[[list[str]], None] | None = None,
            symbolize: Callable[[int], str] | None = None) -> Iterator[DropSession]:
    """Trace drops matching `flt` (default: all but DEFAULT_HIDDEN) until the block ends.

    Mounts tracefs if needed, removes instances of dead runs (`on_cleanup` hears their names),
    creates `instances/gnt_drops_<pid>` with the filter and the event enabled; on leaving the block
    (normally, by an exception, SIGINT, SIGTERM or SIGHUP) removes the instance and unmounts what
    it mounted. `symbolize` names a drop's code address (default: from /proc/kallsyms, read at the
    first drop; a caller that only counts reasons passes something cheaper).
    """
    flt = flt or DropFilter()
    require_privilege()
    with _tracefs_errors(), _terminating_signals_interrupt(), tracefs.mounted() as mount:
        fmt = event_format(mount.path)
        expression, hidden = kernel_filter(flt, fmt.symbols["reason"])
        removed = tracefs.remove_stale(mount.path, INSTANCE_PREFIX)
        if removed and on_cleanup is not None:
            on_cleanup(removed)
        instance: tracefs.Instance | None = None
        reader: tracefs.RawReader | None = None
        try:
            instance = tracefs.Instance(mount.path, INSTANCE_PREFIX)
            with contextlib.suppress(tracefs.TracefsError):  # keep the default size if refused
                instance.write("buffer_size_kb", str(buffer_kb))
            try:
                instance.set_filter(SYSTEM, EVENT, expression)
            except tracefs.TracefsError as exc:
                raise GntError(f"the kernel refused the event filter {expression!r}", errno=exc.errno) from exc
            reader = tracefs.RawReader(instance)
            instance.enable(SYSTEM, EVENT)
            yield DropSession(fmt, reader, flt, expression, hidden, symbolize)
        finally:
            with signals_blocked():
                if reader is not None:
                    reader.close()
                if instance is not None:
                    instance.close()

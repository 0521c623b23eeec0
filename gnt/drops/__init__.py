"""`gnt drops`: where and why the kernel drops packets, from the `skb:kfree_skb` tracepoint (no eBPF).

Public API (used by `gnt drops` and by other tools such as `gnt why`):

    from gnt.drops import DropFilter, tracing, reason_table

    with tracing(DropFilter(reasons=("NO_SOCKET",), protocols=("ipv4",))) as session:
        ...                                  # make traffic
        session.poll()                       # read the kernel's buffers now (cheap; call often)
        interval = session.collect()         # Interval: drops since the last collect, lost events
        for drop in interval.drops:          # Drop(reason, location, protocol, count, start, end)
            ...
    # or, on a clock:
    with tracing(DropFilter()) as session:
        for interval in session.intervals(1.0, duration=10, count=None):
            ...
        summary = session.summary()          # DropSummary: totals per reason with hints, lost, seconds

    reason_table()  -> {value: name}         # the running kernel's drop reasons (from its format file)
    hint_for(name)  -> str | None            # what usually causes a reason and where to look next
    cleanup()       -> [instance names]      # remove instances left by killed runs

`tracing` filters in the kernel (reasons, excluded reasons, protocols), hides DEFAULT_HIDDEN
unless `DropFilter(all=True)` or explicit reasons, works in `instances/gnt_drops_<pid>`, and
undoes everything on every exit path but SIGKILL. Errors are GntErrors (PermissionDenied when
not root/CAP_SYS_ADMIN, UnavailableError on kernels before 5.17, UsageError for an unknown
reason or protocol name). Drops are global: every network namespace's drops are seen.
Nothing here prints: `gnt.output.text.drops` renders.
"""

from gnt.drops.models import Drop, DropFilter, DropSummary, Interval, Lost, ReasonTotal
from gnt.drops.reasons import DEFAULT_HIDDEN, HINTS, hint_for
from gnt.drops.session import DropSession, cleanup, kernel_filter, reason_table, tracing

__all__ = [
    "DEFAULT_HIDDEN",
    "HINTS",
    "Drop",
    "DropFilter",
    "DropSession",
    "DropSummary",
    "Interval",
    "Lost",
    "ReasonTotal",
    "cleanup",
    "hint_for",
    "kernel_filter",
    "reason_table",
    "tracing",
]

"""Text for `gnt drops`: one block per interval with drops, and the summary with a hint per reason.

    18:52:50  7 drops
           5  NO_SOCKET          ipv4  __udp4_lib_rcv+0x4bc
           2  NETFILTER_DROP     ipv4  nft_do_chain+0x46f
"""

from __future__ import annotations

import time

from gnt.drops.models import DropSummary, Interval, ReasonInfo


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_interval(part: Interval) -> str | None:
    if not part.drops and not part.lost:
        return None  # a quiet interval prints nothing
    stamp = time.strftime("%H:%M:%S", time.localtime(part.end))
    head = f"{stamp}  {_plural(part.total, 'drop')}"
    if part.lost:
        head += f"  ({_plural(part.lost, 'event')} lost: the trace buffers overflowed)"
    lines = [head]
    width = max((len(d.reason) for d in part.drops), default=0)
    proto_width = max((len(d.protocol) for d in part.drops), default=0)
    for d in part.drops:
        lines.append(f"  {d.count:>8}  {d.reason.ljust(width)}  {d.protocol.ljust(proto_width)}  {d.location}")
    return "\n".join(lines)


def format_summary(summary: DropSummary) -> str:
    head = (f"--- {summary.seconds:.1f} s, {_plural(summary.total, 'drop')}, "
            f"{_plural(summary.lost, 'event')} lost")
    if summary.hidden:
        head += f"; not shown: {', '.join(summary.hidden)} (--all shows them)"
    lines = [head + " ---"]
    width = max((len(t.reason) for t in summary.reasons), default=0)
    for total in summary.reasons:
        lines.append(f"{total.reason.ljust(width)}  {total.count:>8}" + (f"  {total.hint}" if total.hint else ""))
        for where, n in total.locations.items():
            lines.append(f"    {n:>8}  {where}")
    return "\n".join(lines)


class DropsText:
    """The text formatter: intervals with drops as they end, the summary at the end."""

    def __call__(self, obj: object) -> str | None:
        if isinstance(obj, Interval):
            return format_interval(obj)
        if isinstance(obj, DropSummary):
            return format_summary(obj)
        if isinstance(obj, ReasonInfo):
            return f"{obj.value:>4}  {obj.name}" + (f"  {obj.hint}" if obj.hint else "")
        return None

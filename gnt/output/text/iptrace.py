"""Text for `gnt iptrace`: one block per packet, steps aligned, the deciding rule highlighted.

    packet 2e9258a5  udp 198.18.1.1:44015 -> 198.18.4.2:53  iif eth0 oif eth1  len 30 id 14558  => drop
        ip filter  FORWARD  rule    #1 h3  jump USERC  meta l4proto udp counter jump USERC
     => ip filter  USERC    rule    #2 h6  drop        udp dport 53 drop
"""

from __future__ import annotations

from gnt.iptrace.models import Packet, Step, Summary, TraceEnd
from gnt.output import ToStderr
from gnt.output.text import endpoint

MARK = "=>"  # prefix of the deciding step
BOLD = "\x1b[1m"  # ANSI bold, for the deciding step on a terminal
RESET = "\x1b[0m"  # ANSI reset


def summary_line(packet_id: str, summary: Summary) -> str:
    parts = [f"packet {packet_id}"]
    source, target = endpoint(summary.src, summary.sport), endpoint(summary.dst, summary.dport)
    flow = f"{summary.proto or '?'} {source} -> {target}"
    if summary.icmp_type is not None:
        code = f"/{summary.icmp_code}" if summary.icmp_code is not None else ""
        flow += f" type {summary.icmp_type}{code}"
    parts.append(flow)
    named = (("iif", summary.iif), ("oif", summary.oif))
    ifaces = " ".join(f"{label} {name}" for label, name in named if name)
    if ifaces:
        parts.append(ifaces)
    details = []
    if summary.length is not None:
        details.append(f"len {summary.length}")
    if summary.ip_id is not None:
        details.append(f"id {summary.ip_id}")
    if summary.mark:
        details.append(f"mark {summary.mark:#x}")
    if details:
        parts.append(" ".join(details))
    if summary.verdict:
        parts.append(f"{MARK} {summary.verdict}")
    return "  ".join(parts)


def _cells(step: Step) -> list[str]:
    table = f"{step.family} {step.table}" if step.family else step.table
    number = f"#{step.rulenum}" if step.rulenum is not None else ""
    handle = f"h{step.handle}" if step.handle is not None else ""
    return [table, step.chain, step.kind, number, handle, step.verdict or "?", step.rule or ""]


def format_packet(packet: Packet, *, color: bool = False) -> str:
    lines = [summary_line(packet.id, packet.summary)]
    rows = [_cells(step) for step in packet.steps]
    if not rows:
        lines.append("    (no rule outside gnt's own trace table saw this packet)")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for step, row in zip(packet.steps, rows, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        text = " ".join(cells).rstrip()
        if not step.deciding:
            lines.append(f"    {text}")
            continue
        lines.append(f" {MARK} {BOLD}{text}{RESET}" if color else f" {MARK} {text}")
    return "\n".join(lines)


class IptraceText:
    """The text formatter: packets to stdout (a blank line between blocks), the end line to stderr."""

    def __init__(self, *, color: bool = False) -> None:
        self.color = color
        self.shown = 0

    def __call__(self, obj: object) -> str | None:
        if isinstance(obj, Packet):
            block = format_packet(obj, color=self.color)
            self.shown += 1
            return ("\n" if self.shown > 1 else "") + block
        if isinstance(obj, TraceEnd):
            return ToStderr(end_line(obj))
        return None


def end_line(end: TraceEnd) -> str:
    noun = "packet" if end.packets == 1 else "packets"
    text = f"gnt iptrace: {end.packets} {noun} traced"
    if end.backend:
        text += f" ({end.backend}{': ' + end.source if end.source else ''})"
    if end.skipped:
        text += f", {end.skipped} malformed {'line' if end.skipped == 1 else 'lines'} skipped"
    return text

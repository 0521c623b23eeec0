"""Text for `gnt vxlan-csum scan` and `gnt vxlan-csum audit`: the verdict first, then the detail."""

from __future__ import annotations

import time

from gnt.output import ToStderr
from gnt.output.text import endpoint
from gnt.vxlan.models import AuditSummary, Finding, ScanReport, ScanSummary, VxlanFlow

MAX_TEXT_FLOWS = 50  # flows listed in the text report; --json has all of them


def _clock(ts: float) -> str:
    """UTC wall-clock time of a packet, to the microsecond (as tcpdump -tttt, in UTC)."""
    if ts <= 0:
        return "-"
    try:
        return time.strftime("%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1e6) % 1000000:06d}"
    except (OverflowError, OSError, ValueError):  # a capture's timestamp beyond any calendar
        return f"{ts:.6f}"


def format_flow(f: VxlanFlow) -> str:
    outer = f"{endpoint(f.outer_src, f.outer_sport)} > {endpoint(f.outer_dst, f.outer_dport)}"
    if f.inner_proto is None:
        inner = "inner frame not captured" if f.truncated + f.fragments == f.packets else "non-IP inner frame"
    else:
        inner = f"{f.inner_proto} {endpoint(f.inner_src, f.inner_sport)} > {endpoint(f.inner_dst, f.inner_dport)}"
    vni = "-" if f.vni is None else str(f.vni)
    counts = []
    for label, value in (("zero", f.checksum_zero), ("ok", f.checksum_ok), ("bad", f.checksum_bad),
                         ("0xffff", f.bug_signature), ("partial", f.checksum_partial),
                         ("inner-bad", f.inner_bad), ("truncated", f.truncated),
                         ("fragment", f.fragments)):
        if value:
            counts.append(f"{label} {value}")
    return (f"  {outer}  vni {vni}  {inner}\n"
            f"      {f.packets} {'pkt' if f.packets == 1 else 'pkts'}: {', '.join(counts) or 'nothing verifiable'}"
            f"  first {_clock(f.first_seen)} last {_clock(f.last_seen)}")


def format_summary(s: ScanSummary) -> str:
    lines = [s.verdict + "."]
    outer = (f"outer UDP checksum: {s.checksum_zero} zero (none sent), {s.checksum_ok} ok, "
             f"{s.checksum_bad} bad ({s.bug_signature} of them 0xffff), {s.checksum_partial} partial "
             "(captured before offload)")
    inner = (f"inner checksums: {s.inner_ipv4_header_bad} bad IPv4 header, {s.inner_l4_bad} bad TCP/UDP, "
             f"{s.inner_l4_partial} partial (offload pending)")
    lines.append("  " + outer)
    lines.append("  " + inner)
    rest = f"{s.vxlan_packets} VXLAN packets in {s.flows} flows, {s.other_packets} other packets"
    if s.truncated_packets:
        rest += f", {s.truncated_packets} cut short in the capture (not verified)"
    if s.fragments:
        rest += f", {s.fragments} first IP fragments (not verified: the checksum covers the whole datagram)"
    if s.kernel_drops:
        rest += f", {s.kernel_drops} dropped by the kernel"
    lines.append(f"  {rest} (ports {', '.join(map(str, s.ports))}; {s.source})")
    return "\n".join(lines)


def format_report(report: ScanReport) -> str:
    lines = [format_summary(report.summary)]
    if report.flows:
        # The flows a person needs first: bad ones, then the busiest.
        flows = sorted(report.flows, key=lambda f: (-(f.checksum_bad + f.inner_bad), -f.packets))
        lines.append("")
        lines.append("flows (outer > outer, VNI, inner; bad ones first):")
        lines.extend(format_flow(f) for f in flows[:MAX_TEXT_FLOWS])
        if len(flows) > MAX_TEXT_FLOWS:
            lines.append(f"  ... and {len(flows) - MAX_TEXT_FLOWS} more flows (--json lists them all)")
    return "\n".join(lines)


def format_finding(f: Finding) -> str:
    return f"[{f.severity}] {f.id}: {f.subject}\n  evidence: {f.evidence}\n  fix: {f.fix}"


def format_audit(a: AuditSummary) -> str:
    lines = [a.verdict]
    if a.passed:
        lines.append(f"  passed: {', '.join(a.passed)}")
    lines.extend(f"  note: {n}" for n in a.notes)
    return "\n".join(lines)


def formatter(obj: object) -> str | None:
    if isinstance(obj, ScanReport):
        return format_report(obj)
    if isinstance(obj, VxlanFlow):
        return format_flow(obj)
    if isinstance(obj, ScanSummary):
        return format_summary(obj)
    if isinstance(obj, Finding):
        return format_finding(obj)
    if isinstance(obj, AuditSummary):
        return format_audit(obj)
    if isinstance(obj, str):
        return ToStderr(obj)
    return None

"""`gnt mtu` text: the header, the verdict a person reads first, the figures behind it.

    mtu to 198.18.4.2 (198.18.4.2) over udp: local MTU 1500 (eth0)
    black-hole: 1400 bytes pass, 1401 vanish with no ICMP error; the large size last reached hop 2 (198.18.2.2)
    path MTU 1400, 17 probes, 1.67 s
"""

from __future__ import annotations

from gnt.mtu.models import (
    BLACK_HOLE,
    LOCAL_MISMATCH,
    OK,
    PMTU,
    HopRef,
    MtuResult,
    MtuStart,
    OverlayFinding,
)


def _hop(hop: HopRef | None) -> str:
    if hop is None:
        return "a hop gnt could not name"
    if hop.address is None or hop.ttl == 0:
        return "this node"
    return f"hop {hop.ttl} ({hop.address})" if hop.ttl is not None else hop.address


def format_start(start: MtuStart) -> str:
    device = f" ({start.device})" if start.device else ""
    limit = f", sizes up to {start.max_size}" if start.max_size != start.local_mtu else ""
    return f"mtu to {start.host} ({start.address}) over {start.protocol}: local MTU {start.local_mtu}{device}{limit}"


def format_overlay(f: OverlayFinding) -> str:
    under = f.underlay or "the underlay"
    if f.underlay_mtu is None or f.max_mtu is None:
        return f"overlay {f.device}: {f.kind} over IPv{f.underlay_family}, MTU {f.mtu}; underlay MTU unknown"
    how = "path MTU" if f.measured else "MTU"
    judgement = f"too large, set it to {f.max_mtu} at most" if f.too_large else "ok"
    return (f"overlay {f.device}: {f.kind} over IPv{f.underlay_family}, MTU {f.mtu}; {under} {how} "
            f"{f.underlay_mtu} - {f.overhead} = {f.max_mtu}: {judgement}")


def format_verdict(r: MtuResult) -> str:
    if r.verdict == OK:
        where = f" of {r.device}" if r.device else ""
        if r.largest_ok == r.local_mtu:
            return f"ok: {r.largest_ok} bytes reach {r.address} (the local MTU{where})"
        return f"ok: {r.largest_ok} bytes reach {r.address} (--max)"
    if r.largest_ok is not None:
        bounds = f"{r.largest_ok} bytes pass, {r.smallest_lost}"
    else:
        bounds = f"even {r.smallest_lost} bytes"
    if r.verdict == PMTU:
        who = _hop(r.hop) if r.hop is not None and (r.hop.address or r.hop.ttl) else "a hop (not named over TCP)"
        return f"pmtu {r.reported_mtu}: {who} reports MTU {r.reported_mtu}; {bounds} do not"
    if r.verdict == BLACK_HOLE:
        return (f"black-hole: {bounds} vanish with no ICMP error; the large size last reached "
                f"{_hop(r.hop)}")
    if r.verdict == LOCAL_MISMATCH and r.mismatch is not None:
        m = r.mismatch
        return (f"local-mismatch: {m.device} ({m.kind}, MTU {m.mtu}) is set larger than its underlay "
                f"{m.underlay or ''} carries ({m.underlay_mtu} - {m.overhead} = {m.max_mtu}); "
                + (f"{bounds} do not" if r.smallest_lost is not None else
                   f"{r.largest_ok} bytes pass only because the underlay fragments them"))
    return f"unreachable: no answer from {r.address} over {r.protocol}, whatever the size"


class MtuText:
    """Formatter for `make_renderer`."""

    def __call__(self, obj: object) -> str | None:
        if isinstance(obj, MtuStart):
            return format_start(obj)
        if isinstance(obj, MtuResult):
            lines = [format_verdict(obj)]
            figures = f"path MTU {obj.path_mtu}, " if obj.path_mtu is not None else ""
            plural = "" if obj.probes == 1 else "s"
            lines.append(f"{figures}{obj.probes} probe{plural}, {obj.elapsed_ms / 1000:.2f} s")
            lines += [format_overlay(f) for f in obj.overlay]
            return "\n".join(lines)
        return None

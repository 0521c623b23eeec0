"""The Linux traceroute's output format, so existing parsers of traceroute output read gnt's.

    traceroute to h2 (198.18.4.2), 30 hops max, 60 byte packets
     1  198.18.1.2  0.053 ms  0.008 ms  0.005 ms
     2  * * *
     3  r3 (198.18.3.2)  0.073 ms !H  0.014 ms !H  *

The address (or `name (address)` without -n) is printed when it differs from the previous
answered probe's on the line (stars in between do not count); each answer adds `  RTT ms`
and, after an error, ` !<annotation>`.
"""

from __future__ import annotations

from gnt.output import ToStderr
from gnt.traceroute.models import Hop, ProbeResult, Summary, TraceStart


def format_start(start: TraceStart) -> str:
    return (f"traceroute to {start.host} ({start.address}), {start.max_hops} hops max, "
            f"{start.packet_len} byte packets")


def format_probe_address(probe: ProbeResult, numeric: bool) -> str:
    if probe.address is None:
        return ""
    if numeric:
        return probe.address
    return f"{probe.name or probe.address} ({probe.address})"


def format_hop(hop: Hop, numeric: bool) -> str:
    parts = [f"{hop.ttl:2d} "]
    previous: str | None = None
    for probe in hop.probes:
        if probe.address is None:
            parts.append(" *")  # and `previous` stays: an address is not repeated after a star
            continue
        if probe.address != previous:
            parts.append(" " + format_probe_address(probe, numeric))
            previous = probe.address
        if probe.rtt_ms is not None:
            parts.append(f"  {probe.rtt_ms:.3f} ms")
        if probe.annotation:
            parts.append(f" {probe.annotation}")
    return "".join(parts)


class TracerouteText:
    """Formatter for `make_renderer`: the header, one line per hop, nothing for the summary."""

    def __init__(self, *, numeric: bool) -> None:
        self.numeric = numeric

    def __call__(self, obj: object) -> str | None:
        if isinstance(obj, Hop):
            return format_hop(obj, self.numeric)
        if isinstance(obj, TraceStart):
            return format_start(obj)
        if isinstance(obj, Summary) and obj.interrupted:
            return ToStderr(f"gnt traceroute: interrupted after {obj.hops} complete hop{'s' if obj.hops != 1 else ''}")
        return None  # the Summary: the Linux traceroute prints nothing after the last hop

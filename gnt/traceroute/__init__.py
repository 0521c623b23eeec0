"""`gnt traceroute`: UDP, ICMP and TCP probes, unprivileged, concurrent, paced against ICMP rate limits.

`trace(options)` yields a `TraceStart`, then one `Hop` per TTL as soon as it is complete, then
a `Summary`. It never prints; `gnt.output.text.traceroute` renders the Linux traceroute format.
See `engine` for the scheduling rules and `methods` for how each probe's identity is encoded.
"""

from __future__ import annotations

import selectors
from collections.abc import Iterator

from gnt.core.resolve import resolve
from gnt.traceroute.engine import Engine
from gnt.traceroute.methods import default_packet_len, default_port, make_method, payload_size
from gnt.traceroute.models import Hop, ProbeResult, Summary, TraceOptions, TraceStart

__all__ = ["Hop", "ProbeResult", "Summary", "TraceOptions", "TraceStart", "exit_code", "trace"]


def trace(options: TraceOptions) -> Iterator[TraceStart | Hop | Summary]:
    """Trace the route to `options.host`."""
    target = resolve(options.host, options.family)
    family = target.family
    packet_len = options.packet_len if options.packet_len is not None else default_packet_len(family)
    port = options.port if options.port is not None else default_port(options.method)
    flows = max(options.paths, 1)
    paris = options.paris or options.paths > 0
    slots = max(options.queries, options.paths)
    selector = selectors.DefaultSelector()
    method = make_method(options.method, family, target.address, port, flows,
                         payload_size(options.method, family, packet_len), selector,
                         source=options.source, interface=options.interface, paris=paris)
    try:
        method.open()
        yield TraceStart(options.host, target.address, options.max_ttl, packet_len)
        engine = Engine(options, method, selector, target.address, slots, flows)
        yield from engine.run()
        yield Summary(options.host, target.address, engine.reached, engine.hop_count(), method.name)
    finally:
        method.close()
        selector.close()


def exit_code(summary: Summary) -> int:
    """0 when the destination answered, 1 when it never did."""
    return 0 if summary.reached else 1

"""`gnt traceroute`: UDP, ICMP and TCP probes, unprivileged, concurrent, paced against ICMP rate limits.

`trace(options)` yields a `TraceStart`, then one `Hop` per TTL as soon as it is complete, then
a `Summary`. It never prints; `gnt.output.text.traceroute` renders the Linux traceroute format.
See `engine` for the scheduling rules and `methods` for how each probe's identity is encoded.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator

from gnt.core.resolve import Target, is_literal, resolve
from gnt.errors import ResolveError
from gnt.traceroute.engine import Engine
from gnt.traceroute.methods import default_packet_len, default_port, make_method, payload_size, wire_length
from gnt.traceroute.models import Hop, ProbeResult, Summary, TraceOptions, TraceStart

__all__ = ["Hop", "ProbeResult", "Summary", "TraceOptions", "TraceStart", "exit_code", "trace"]


def trace(options: TraceOptions) -> Iterator[TraceStart | Hop | Summary]:
    """Trace the route to `options.host`."""
    target = resolve_target(options.host, options.family)
    family = target.family
    packet_len = options.packet_len if options.packet_len is not None else default_packet_len(family)
    port = options.port if options.port is not None else default_port(options.method)
    flows = max(options.paths, 1)
    paris = options.paris or options.paths > 0
    slots = max(options.queries, options.paths)
    selector = selectors.DefaultSelector()
    payload = payload_size(options.method, family, packet_len)
    method = make_method(options.method, family, target.address, port, flows, payload, selector,
                         source=options.source, interface=options.interface, paris=paris)
    try:
        method.open()
        yield TraceStart(options.host, target.address, options.max_ttl, wire_length(options.method, family, payload))
        engine = Engine(options, method, selector, target.address, slots, flows)
        yield from engine.run()
        yield Summary(options.host, target.address, engine.reached, engine.hop_count(), method.name)
    finally:
        method.close()
        selector.close()


def resolve_target(host: str, family: int) -> Target:
    """The address to trace: as the Linux traceroute, a name with both kinds of address traces IPv4
    unless -6 asks for IPv6 (-4 and -6 choose; an address literal is what it is)."""
    if family != socket.AF_UNSPEC or is_literal(host):
        return resolve(host, family)
    try:
        return resolve(host, socket.AF_INET)
    except ResolveError:
        return resolve(host, socket.AF_INET6)


def exit_code(summary: Summary) -> int:
    """0 when the destination answered, 1 when it never did."""
    return 0 if summary.reached else 1

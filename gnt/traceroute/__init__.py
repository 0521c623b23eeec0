"""`gnt traceroute`: UDP, ICMP and TCP probes, unprivileged, concurrent, paced against ICMP rate limits.

`trace(options)` yields a `TraceStart`, then one `Hop` per TTL as soon as it is complete, then
a `Summary`. It never prints; `gnt.output.text.traceroute` renders the Linux traceroute format.
See `engine` for the scheduling rules and `methods` for how each probe's identity is encoded.
"""

from __future__ import annotations

import dataclasses
import selectors
import socket
from collections.abc import Iterator

from gnt.core import sockets
from gnt.core.resolve import Target, is_literal, resolve
from gnt.errors import ResolveError
from gnt.traceroute.engine import Engine
from gnt.traceroute.methods import default_packet_len, default_port, make_method, payload_size, wire_length
from gnt.traceroute.models import Hop, ProbeResult, Summary, TraceOptions, TraceStart

MTU_PACKET_LEN = 65000  # --mtu without PACKETLEN: the length the Linux traceroute starts from

__all__ = ["Hop", "ProbeResult", "Summary", "TraceOptions", "TraceStart", "exit_code", "trace"]


def trace(options: TraceOptions) -> Iterator[TraceStart | Hop | Summary]:
    """Trace the route to `options.host`."""
    target = resolve_target(options.host, options.family)
    family = target.family
    probe_len: int | None = None  # --mtu: the size probes start at
    if options.mtu:
        # As the Linux traceroute: -F -N 1, the header names the requested length (65000 by
        # default) and the probes start at what the local device lets out, noted F=<mtu>.
        options = dataclasses.replace(options, dont_fragment=True, simultaneous=1)
        packet_len = options.packet_len if options.packet_len is not None else MTU_PACKET_LEN
        probe_len = min(packet_len, sockets.device_mtu_toward(family, target.address, source=options.source,
                                                              device=options.interface))
    else:
        packet_len = options.packet_len if options.packet_len is not None else default_packet_len(family)
    port = options.port if options.port is not None else default_port(options.method)
    flows = max(options.paths, 1)
    paris = options.paris or options.paths > 0
    slots = max(options.queries, options.paths)
    selector = selectors.DefaultSelector()
    payload = payload_size(options.method, family, probe_len or packet_len)
    method = make_method(options.method, family, target.address, port, flows, payload, selector,
                         source=options.source, interface=options.interface, paris=paris)
    if options.dont_fragment:
        method.pmtudisc = "probe"
    try:
        method.open()
        # The header names what goes out; with --mtu, as the Linux traceroute, the length asked for
        # (the probes start at the local MTU and shrink).
        header_len = packet_len if probe_len is not None else wire_length(options.method, family, payload)
        yield TraceStart(options.host, target.address, options.max_ttl, header_len)
        engine = Engine(options, method, selector, target.address, slots, flows)
        if probe_len is not None:
            engine.start_mtu_discovery(probe_len, noted=probe_len != packet_len)
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

"""`gnt mtu HOST`: path MTU and black holes, unprivileged (UDP, ICMP echo or TCP), plus --overlay."""

from __future__ import annotations

import typer

from gnt.cli import current_env, parse_seconds
from gnt.cli.complete import complete_interface
from gnt.cli.numbers import PORT_MAX, click_int

HELP = """Find the largest packet that reaches HOST, and why larger ones do not: "ok" (the local MTU
reaches), "pmtu" (a hop reports a smaller MTU: which hop, what MTU), "black-hole" (larger sizes vanish
with no ICMP error: the last size that passed, the first that did not, the hop where they stop),
"local-mismatch" (the overlay device the route leaves through is set larger than its underlay carries).
UDP probes (default, -U), ICMP echo (-I) or TCP (-T: one full segment to an OPEN port, -p); no root.
Sizes are whole IP packets, sent with DF; --overlay also judges every vxlan/geneve/wireguard device.

The kernel learns a reported PMTU as from any traffic and keeps it in its route cache for about
600 s (net.ipv4.route.mtu_expires) after gnt exits; `ip route flush cache` (and `ip -6 route flush
cache`) forgets it. gnt's own probes ignore that cache, so every run measures the path again.

Exit status: 0 when the full local MTU reaches; 1 for a pmtu, black hole, mismatch or no answer;
2 on error or bad usage."""

MAX_SIZE = 65535  # an IP packet's total length field is 16 bits
MIN_SIZE = 28  # an IPv4 header and a UDP header, with no data


def mtu(
    host: str | None = typer.Argument(None, metavar="HOST", help="Name or address to probe.", show_default=False),
    ipv4: bool = typer.Option(False, "-4", help="Use IPv4 only."),
    ipv6: bool = typer.Option(False, "-6", help="Use IPv6 only."),
    udp: bool = typer.Option(False, "-U", "--udp", help="UDP probes (the default): port unreachable answers."),
    icmp: bool = typer.Option(False, "-I", "--icmp", help="ICMP echo probes (the ping socket)."),
    tcp: bool = typer.Option(False, "-T", "--tcp", help="TCP: one full segment per size to an OPEN port (-p)."),
    port: int | None = typer.Option(None, "-p", "--port", metavar="PORT", click_type=click_int(1, PORT_MAX),
                                    help="UDP: first destination port (33434); TCP: an open port (80)."),
    min_size: int | None = typer.Option(None, "--min", metavar="BYTES", click_type=click_int(1, MAX_SIZE),
                                        help="Smallest size to test (default 68, 1280 for IPv6)."),
    max_size: int | None = typer.Option(None, "--max", metavar="BYTES", click_type=click_int(1, MAX_SIZE),
                                        help="Largest size to test (default: the local device MTU)."),
    wait: str = typer.Option("1", "-w", "--wait", metavar="SECONDS",
                             help="Longest wait for an answer (less once round trips are known)."),
    source: str | None = typer.Option(None, "-s", "--source", metavar="SRC", help="Source address."),
    interface: str | None = typer.Option(None, "-i", "--interface", metavar="IFACE", help="Send through IFACE.",
                                             autocompletion=complete_interface),
    no_hop: bool = typer.Option(False, "--no-hop", help="Do not walk the TTLs to name the hop."),
    overlay: bool = typer.Option(False, "--overlay", help="Also judge every vxlan/geneve/wireguard device "
                                 "against its underlay MTU minus the encapsulation."),
    json: bool = typer.Option(False, "--json", help="One JSON object per line (mtu)."),
) -> int:
    import socket

    from gnt.errors import UsageError
    from gnt.mtu import MtuOptions, MtuResult, exit_code, run
    from gnt.output import make_renderer
    from gnt.output.text.mtu import MtuText

    env = current_env()
    if not host:
        raise UsageError("missing host operand (usage: gnt mtu [options] HOST)")
    if ipv4 and ipv6:
        raise UsageError("only one of -4 and -6 may be given")
    if udp + icmp + tcp > 1:
        raise UsageError("only one of -U, -I and -T may be given")
    protocol = "icmp" if icmp else "tcp" if tcp else "udp"
    if port is not None and protocol == "icmp":
        raise UsageError("-p has no meaning with -I (ICMP probes have no port)")
    for name, value in (("--min", min_size), ("--max", max_size)):
        if value is not None and not MIN_SIZE <= value <= MAX_SIZE:
            raise UsageError(f"{name} {value} is out of range ({MIN_SIZE} to {MAX_SIZE} bytes)")
    if min_size is not None and max_size is not None and min_size > max_size:
        raise UsageError(f"--min {min_size} is above --max {max_size}")
    seconds = parse_seconds(wait, "bad wait time (-w)")
    if seconds <= 0:
        raise UsageError(f"bad wait time (-w): {wait!r} (must be above 0)")
    options = MtuOptions(
        host=host, protocol=protocol, family=socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC,
        port=port, min_size=min_size, max_size=max_size, wait=seconds, source=source, interface=interface,
        find_hop=not no_hop, overlay=overlay,
    )
    renderer = make_renderer(env, json=json, formatter=MtuText())
    code = 2
    for event in run(options):
        renderer.emit(event)
        if isinstance(event, MtuResult):
            code = exit_code(event)
    return code


def register(app: typer.Typer) -> None:
    app.command("mtu", help=HELP, no_args_is_help=False)(mtu)

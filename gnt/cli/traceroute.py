"""`gnt traceroute`: the options of the Linux traceroute (-I/-U/-T, -f -m -q -N -w -z -s -i -n), plus
--paris, --paths and --json."""

from __future__ import annotations

import typer

from gnt.cli import current_env, parse_seconds
from gnt.cli.complete import complete_interface
from gnt.cli.numbers import I32_MAX, click_int, parse_int

HELP = """Trace the route to HOST with UDP (default), ICMP (-I), UDP to one port (-U) or TCP SYN (-T) probes,
without root. Paced against ICMP rate limits, so the hop count is the real one.

-F sets DF; --mtu finds the MTU along the path (see also `gnt mtu`). A PMTU a hop reports stays
in the kernel's route cache for about 600 s after gnt exits (`ip route flush cache` forgets it).

Exit status: 0 when the destination answered; 1 when it never did; 2 on error or bad usage."""

MAX_TTL_LIMIT = 255  # the TTL field is 8 bits
MAX_QUERIES = 10  # probes per hop, as the Linux traceroute allows
MAX_PATHS = 64  # flows for --paths
MAX_PACKET_LEN = 65000  # bytes; the Linux traceroute's ceiling
SENDWAIT_MS_ABOVE = 10  # -z values above this are milliseconds (Linux traceroute rule)


def traceroute(
    host: str | None = typer.Argument(None, metavar="HOST", help="Name or address to trace.", show_default=False),
    packetlen: str | None = typer.Argument(None, metavar="PACKETLEN", show_default=False,
                                              help="Total packet length in bytes (default 60, 80 for IPv6)."),
    ipv4: bool = typer.Option(False, "-4", help="Use IPv4 only."),
    ipv6: bool = typer.Option(False, "-6", help="Use IPv6 only."),
    icmp: bool = typer.Option(False, "-I", "--icmp", help="ICMP echo probes."),
    udp_port: bool = typer.Option(False, "-U", "--udp", help="UDP probes to one port (default 53)."),
    tcp: bool = typer.Option(False, "-T", "--tcp", help="TCP SYN probes (default port 80)."),
    port: int | None = typer.Option(None, "-p", "--port", metavar="PORT", click_type=click_int(None, I32_MAX),
                                       help="Destination port (base port for default UDP)."),
    first: int = typer.Option(1, "-f", "--first", metavar="FIRST",
                              click_type=click_int(None, I32_MAX), help="TTL to start with."),
    max_ttl: int = typer.Option(30, "-m", "--max-hops", metavar="MAX",
                              click_type=click_int(None, I32_MAX), help="Largest TTL to probe."),
    queries: int = typer.Option(3, "-q", "--queries", metavar="N",
                              click_type=click_int(None, I32_MAX), help="Probes per hop."),
    sim: int = typer.Option(16, "-N", "--sim-queries", metavar="SIM",
                              click_type=click_int(None, I32_MAX), help="Probes in flight at once."),
    wait: str = typer.Option("5,3,10", "-w", "--wait", metavar="MAX[,HERE,NEAR]",
                             help="Wait MAX s, or HERE x RTT of the same hop, or NEAR x RTT of a later hop."),
    sendwait: str = typer.Option("0", "-z", "--sendwait", metavar="SENDWAIT",
                                 help="Pause between probes (seconds; above 10: milliseconds)."),
    source: str | None = typer.Option(None, "-s", "--source", metavar="SRC", help="Source address."),
    interface: str | None = typer.Option(None, "-i", "--interface", metavar="IFACE", help="Send through IFACE.",
                                             autocompletion=complete_interface),
    numeric: bool = typer.Option(False, "-n", help="Print addresses only (no reverse lookups)."),
    paris: bool = typer.Option(False, "--paris", help="Keep the flow constant so ECMP routers use one path."),
    paths: int | None = typer.Option(None, "--paths", metavar="N", click_type=click_int(None, I32_MAX),
                                     help=f"Trace N flows (1 to {MAX_PATHS}) and show every router of each hop."),
    dont_fragment: bool = typer.Option(False, "-F", "--dont-fragment",
                                       help="Set DF on probes (the kernel's cached PMTU ignored): a hop "
                                       "that cannot forward them answers !F-<mtu>."),
    mtu: bool = typer.Option(False, "--mtu", help="Discover the MTU along the path: probes shrink as hops "
                             "report, the first at a new size is noted F=<mtu> (implies -F -N 1)."),
    json: bool = typer.Option(False, "--json", help="One JSON object per line (hop, summary)."),
) -> int:
    import socket

    from gnt.errors import UsageError
    from gnt.output import make_renderer
    from gnt.output.text.traceroute import TracerouteText
    from gnt.traceroute import Hop, Summary, TraceOptions, TraceStart, exit_code, trace

    env = current_env()
    if not host:
        raise UsageError("missing host operand (usage: gnt traceroute [options] HOST [PACKETLEN])")
    if ipv4 and ipv6:
        raise UsageError("only one of -4 and -6 may be given")
    if icmp + udp_port + tcp > 1:
        raise UsageError("only one of -I, -U and -T may be given")
    method = "icmp" if icmp else "udp-port" if udp_port else "tcp" if tcp else "udp"
    if not 1 <= max_ttl <= MAX_TTL_LIMIT:
        raise UsageError(f"max hops must be between 1 and {MAX_TTL_LIMIT} (got -m {max_ttl})")
    if not 1 <= first <= max_ttl:
        raise UsageError(f"first hop out of range: -f {first} must be between 1 and the max hops ({max_ttl})")
    if not 1 <= queries <= MAX_QUERIES:
        raise UsageError(f"probes per hop must be between 1 and {MAX_QUERIES} (got -q {queries})")
    if sim < 1:
        raise UsageError(f"simultaneous probes must be at least 1 (got -N {sim})")
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"port out of range: {port} (must be between 1 and 65535)")
    if port is not None and method == "icmp":
        raise UsageError("-p has no meaning with -I (ICMP probes have no port)")
    if mtu and method == "tcp":
        raise UsageError("--mtu needs probes whose size can change: UDP or ICMP (a SYN is always small)")
    if paths is not None and not 1 <= paths <= MAX_PATHS:
        raise UsageError(f"--paths must be between 1 and {MAX_PATHS} (got {paths})")
    wait_max, wait_here, wait_near = _wait(wait)
    length: int | None = None
    if packetlen is not None:
        length = parse_int(packetlen, "packet length", None, I32_MAX)
        if not 0 <= length <= MAX_PACKET_LEN:
            raise UsageError(f"packet length out of range: {length} (0 to {MAX_PACKET_LEN})")
    options = TraceOptions(
        host=host, family=socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC,
        method=method, port=port, first_ttl=first, max_ttl=max_ttl, queries=queries, simultaneous=sim,
        wait_max=wait_max, wait_here=wait_here, wait_near=wait_near, send_wait=_sendwait(sendwait),
        source=source, interface=interface, numeric=numeric, paris=paris, paths=paths or 0, packet_len=length,
        dont_fragment=dont_fragment or mtu, mtu=mtu,
    )
    renderer = make_renderer(env, json=json, formatter=TracerouteText(numeric=numeric))
    code = 1
    start: TraceStart | None = None
    hops = 0
    try:
        for event in trace(options):
            if isinstance(event, TraceStart):  # noted before it is shown: a signal may follow the line at once
                start = event
            elif isinstance(event, Hop):
                hops = event.ttl
            elif isinstance(event, Summary):
                code = exit_code(event)
            renderer.emit(event)
    except KeyboardInterrupt:
        # Ctrl-C, SIGTERM, SIGHUP: say how far the trace got, then exit 128 + signal.
        if start is not None:
            renderer.emit(Summary(options.host, start.address, False, hops, method, interrupted=True))
        raise
    return code


def _wait(text: str) -> tuple[float, float, float]:
    """-w MAX[,HERE,NEAR] (also MAX/HERE/NEAR), defaults 5, 3, 10 as the Linux traceroute."""
    from gnt.errors import UsageError

    fields = text.replace("/", ",").split(",")
    if not 1 <= len(fields) <= 3 or any(f.strip() == "" for f in fields):
        raise UsageError(f"bad wait specification: {text!r} (expected MAX[,HERE,NEAR])")
    values = [parse_seconds(f.strip(), "bad wait time (-w)") for f in fields] + [3.0, 10.0][len(fields) - 1:]
    if values[0] <= 0:
        raise UsageError(f"bad wait specification: {text!r} (MAX must be above 0)")
    return values[0], values[1], values[2]


def _sendwait(text: str) -> float:
    value = parse_seconds(text, "bad send wait (-z)")
    return value / 1000 if value > SENDWAIT_MS_ABOVE else value


def register(app: typer.Typer) -> None:
    app.command("traceroute", help=HELP, no_args_is_help=False)(traceroute)

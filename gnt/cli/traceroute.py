"""`gnt traceroute`: the options of the Linux traceroute (-I/-U/-T, -f -m -q -N -w -z -s -i -n), plus
--paris, --paths and --json.

The options are declared once, in OPTIONS (gnt/cli/table.py): `register()` builds the typer command,
`fast()` parses a well-formed command line without importing typer (a trace of a rested path takes
milliseconds; typer's import took longer than the trace)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gnt.cli import current_env, parse_seconds
from gnt.cli.numbers import I32_MAX, parse_int
from gnt.cli.table import Opt, fast_parse, parameters, with_signature

if TYPE_CHECKING:
    import typer

    from gnt.output.env import Environment

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


OPTIONS: tuple[Opt, ...] = (
    Opt(("-4",), "ipv4", bool, None, "Use IPv4 only.", False),
    Opt(("-6",), "ipv6", bool, None, "Use IPv6 only.", False),
    Opt(("-I", "--icmp"), "icmp", bool, None, "ICMP echo probes.", False),
    Opt(("-U", "--udp"), "udp_port", bool, None, "UDP probes to one port (default 53).", False),
    Opt(("-T", "--tcp"), "tcp", bool, None, "TCP SYN probes (default port 80).", False),
    Opt(("-p", "--port"), "port", int, "PORT", "Destination port (base port for default UDP).", high=I32_MAX),
    Opt(("-f", "--first"), "first", int, "FIRST", "TTL to start with.", 1, high=I32_MAX),
    Opt(("-m", "--max-hops"), "max_ttl", int, "MAX", "Largest TTL to probe.", 30, high=I32_MAX),
    Opt(("-q", "--queries"), "queries", int, "N", "Probes per hop.", 3, high=I32_MAX),
    Opt(("-N", "--sim-queries"), "sim", int, "SIM", "Probes in flight at once.", 16, high=I32_MAX),
    Opt(("-w", "--wait"), "wait", str, "MAX[,HERE,NEAR]",
        "Wait MAX s, or HERE x RTT of the same hop, or NEAR x RTT of a later hop.", "5,3,10"),
    Opt(("-z", "--sendwait"), "sendwait", str, "SENDWAIT",
        "Pause between probes (seconds; above 10: milliseconds).", "0"),
    Opt(("-s", "--source"), "source", str, "SRC", "Source address."),
    Opt(("-i", "--interface"), "interface", str, "IFACE", "Send through IFACE.", interface=True),
    Opt(("-n",), "numeric", bool, None, "Print addresses only (no reverse lookups).", False),
    Opt(("--paris",), "paris", bool, None, "Keep the flow constant so ECMP routers use one path.", False),
    Opt(("--paths",), "paths", int, "N", f"Trace N flows (1 to {MAX_PATHS}) and show every router of each hop.",
        high=I32_MAX),
    Opt(("-F", "--dont-fragment"), "dont_fragment", bool, None, "Set DF on probes (the kernel's cached PMTU "
        "ignored): a hop that cannot forward them answers !F-<mtu>.", False),
    Opt(("--mtu",), "mtu", bool, None, "Discover the MTU along the path: probes shrink as hops report, the "
        "first at a new size is noted F=<mtu> (implies -F -N 1).", False),
    Opt(("--json",), "json", bool, None, "One JSON object per line (hop, summary).", False),
)


def fast(argv: list[str]) -> dict[str, Any] | None:
    """The option values of a well-formed `gnt traceroute` command line, or None to let typer decide."""
    values = fast_parse(OPTIONS, argv, operands=(1, 2))
    if values is not None:
        operands = values.pop("operands")
        values["host"], values["packetlen"] = operands[0], (operands[1] if len(operands) > 1 else None)
    return values


def run(values: dict[str, Any], env: Environment) -> int:
    """Trace with parsed option values; returns the exit code."""
    import socket

    from gnt.errors import UsageError
    from gnt.output import make_renderer
    from gnt.output.text.traceroute import TracerouteText
    from gnt.traceroute import Hop, Summary, TraceOptions, TraceStart, exit_code, trace

    host, ipv4, ipv6, icmp, udp_port, tcp, port = (values[k] for k in (
        "host", "ipv4", "ipv6", "icmp", "udp_port", "tcp", "port"))
    first, max_ttl, queries, sim, paths, mtu = (values[k] for k in (
        "first", "max_ttl", "queries", "sim", "paths", "mtu"))
    packetlen, numeric = values["packetlen"], values["numeric"]
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
    wait_max, wait_here, wait_near = _wait(values["wait"])
    length: int | None = None
    if packetlen is not None:
        length = parse_int(packetlen, "packet length", None, I32_MAX)
        if not 0 <= length <= MAX_PACKET_LEN:
            raise UsageError(f"packet length out of range: {length} (0 to {MAX_PACKET_LEN})")
    options = TraceOptions(
        host=host, family=socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC,
        method=method, port=port, first_ttl=first, max_ttl=max_ttl, queries=queries, simultaneous=sim,
        wait_max=wait_max, wait_here=wait_here, wait_near=wait_near, send_wait=_sendwait(values["sendwait"]),
        source=values["source"], interface=values["interface"], numeric=numeric, paris=values["paris"],
        paths=paths or 0, packet_len=length,
        dont_fragment=values["dont_fragment"] or mtu, mtu=mtu,
    )
    renderer = make_renderer(env, json=values["json"], formatter=TracerouteText(numeric=numeric))
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
    """Add `traceroute` to the typer app, its parameters made from OPTIONS."""
    import inspect

    import typer

    operands = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                          default=typer.Argument(None, metavar=metavar, help=help_text, show_default=False))
        for name, metavar, help_text in (
            ("host", "HOST", "Name or address to trace."),
            ("packetlen", "PACKETLEN", "Total packet length in bytes (default 60, 80 for IPv6)."),
        )
    ]

    def traceroute(**values: Any) -> int:
        return run(values, current_env())

    with_signature(traceroute, [*operands, *parameters(OPTIONS)])
    app.command("traceroute", help=HELP, no_args_is_help=False)(traceroute)

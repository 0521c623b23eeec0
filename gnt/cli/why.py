"""`gnt why DEST[:PORT]`: why traffic to a destination fails on this node, in one answer."""

from __future__ import annotations

import typer

from gnt.cli import check_duration, current_env, parse_seconds
from gnt.cli.complete import complete_interface

HELP = """Name why traffic to DEST[:PORT] fails on this node: the cause and where, then the evidence.

Active (default): looks the route up as the kernel will (policy rules, source, -i, -m), the
next hop's ARP/NDP state (probing it when not REACHABLE), forwarding and rp_filter,
bridge-nf-call-iptables, the filter/nat chain policies on the path, the conntrack table and
the flow's entries (DNAT target), the out device's MTU and overlay; then sends one real probe
(TCP SYN with a port, else ICMP echo; -p udp for UDP) while tracing exactly its netfilter
path (a tagged nft trace table) and the kernel's drop reasons (a private tracefs instance).

Passive (--watch): sends nothing; traces traffic matching DEST[:PORT] (and --from) that
crosses this node for --duration seconds while the problem is reproduced, and names where
it dies.

The trace table and tracing instance are removed on every exit path. Needs root
(CAP_NET_ADMIN) for tracing and conntrack; without it those checks are skipped.

Exit status: 0 the destination answers and nothing is wrong; 1 a cause was found, or the
destination fails and gnt says it could not tell why; 2 error; 130 interrupted."""

PROTOS = ("tcp", "udp", "icmp")  # what -p takes


def split_target(text: str) -> tuple[str, int | None]:
    """DEST[:PORT] -> (host, port): `[v6]:port`, `host:port`, or a bare host / IPv6 address."""
    from gnt.core.resolve import split_host_port
    from gnt.errors import UsageError

    try:
        host, port_text = split_host_port(text)
    except ValueError:
        raise UsageError(f"bad destination {text!r}: use [IPv6]:PORT") from None
    if port_text is None:
        return host, None
    from gnt.cli.numbers import PORT_MAX, int_value

    try:
        return host, int_value(port_text, 1, PORT_MAX)  # the one number parser: ASCII digits only
    except ValueError:
        raise UsageError(f"bad port {port_text!r} in {text!r}: a number 1-65535") from None


def why(
    target: str = typer.Argument(..., metavar="DEST[:PORT]", help="Destination address or name, and port."),
    proto: str | None = typer.Option(None, "-p", "--proto", metavar="tcp|udp|icmp",
                                     help="Probe protocol (default: tcp with a port, else icmp)."),
    ipv4: bool = typer.Option(False, "-4", help="IPv4 only."),
    ipv6: bool = typer.Option(False, "-6", help="IPv6 only."),
    source: str | None = typer.Option(None, "-s", "--from", metavar="SRC",
                                      help="Source address: ours, or a host whose traffic this node forwards."),
    iif: str | None = typer.Option(None, "-i", "--iif", metavar="IFACE", autocompletion=complete_interface,
                                   help="Interface the forwarded traffic arrives on."),
    mark: str | None = typer.Option(None, "-m", "--mark", metavar="MARK", help="fwmark the traffic carries."),
    watch: bool = typer.Option(False, "--watch", help="Passive: observe the traffic instead of probing."),
    duration: str = typer.Option("10", "--duration", metavar="SECONDS", help="How long --watch observes."),
    timeout: str = typer.Option("1", "--timeout", metavar="SECONDS", help="How long the probe waits (active)."),
    json: bool = typer.Option(False, "--json", help="One JSON object per line: check objects, then a verdict."),
) -> int:
    import socket

    from gnt.core.resolve import resolve
    from gnt.errors import ExitCode, StopHandlers, UsageError, interrupted_exit_code
    from gnt.iptrace.live import StopRequest
    from gnt.output import make_renderer
    from gnt.output.text.why import WhyText
    from gnt.why.diagnose import diagnose
    from gnt.why.diagnose import watch as watch_traffic
    from gnt.why.models import Query, Verdict

    env = current_env()
    if ipv4 and ipv6:
        raise UsageError("only one of -4 and -6 may be given")
    host, port = split_target(target)
    name = (proto or ("tcp" if port is not None else "icmp")).lower()
    if name not in PROTOS:
        raise UsageError(f"-p must be tcp, udp or icmp, not {proto!r}")
    if name == "icmp" and port is not None:
        raise UsageError("an ICMP probe has no port: drop :PORT or give -p tcp/udp")
    if name != "icmp" and port is None:
        raise UsageError(f"-p {name} needs a port: DEST:PORT")
    fwmark = None
    if mark is not None:
        from gnt.cli.numbers import U32_MAX, int_value

        try:
            fwmark = int_value(mark, None, None, hex_ok=True)
        except ValueError:
            raise UsageError(f"bad --mark {mark!r}: a number (e.g. 0x4000)") from None
        if not 0 <= fwmark <= U32_MAX:
            raise UsageError(f"bad --mark {mark!r}: 0 to 0xffffffff")
    seconds = parse_seconds(duration, "--duration")
    check_duration(seconds)
    wait = parse_seconds(timeout, "--timeout")
    check_duration(wait, "--timeout")
    family = socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC
    resolved = resolve(host, family)
    version = 6 if resolved.family == socket.AF_INET6 else 4
    if source is not None:
        src = resolve(source, resolved.family)
        source = src.address
    query = Query(dest=resolved.address, family=version, proto=name, port=port, source=source, iif=iif,
                  mark=fwmark)
    renderer = make_renderer(env, json=json, formatter=WhyText())
    verdict: Verdict | None = None
    if not watch:
        for obj in diagnose(query, timeout=wait):
            renderer.emit(obj)
            verdict = obj if isinstance(obj, Verdict) else verdict
    else:
        # As `gnt iptrace` does: a signal ends the watch early, the verdict covers what was seen,
        # and the trace table and tracing instance are removed before the exit status says which signal.
        stop = StopRequest()
        with StopHandlers(stop):
            for obj in watch_traffic(query, duration=seconds, stop=stop):
                renderer.emit(obj)
                verdict = obj if isinstance(obj, Verdict) else verdict
        if stop.signum is not None:
            return interrupted_exit_code(stop.signum)
    if verdict is None or verdict.cause is not None:
        return int(ExitCode.NEGATIVE)
    return int(ExitCode.OK)


def register(app: typer.Typer) -> None:
    app.command(name="why", help=HELP, no_args_is_help=False)(why)

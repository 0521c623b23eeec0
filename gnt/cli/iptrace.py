"""`gnt iptrace`: follow packets through iptables/nftables rules, live or from captured logs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from gnt.cli import check_duration, current_env
from gnt.cli.complete import complete_interface
from gnt.cli.numbers import I64_MAX, PORT_MAX, click_float, click_int

if TYPE_CHECKING:
    from gnt.iptrace.models import Filter
    from gnt.output import Renderer
    from gnt.output.env import Environment

HELP = """Follow packets through the iptables/nftables rules: which chain, which rule, which verdict.

Live (needs CAP_NET_ADMIN): installs a tagged trace table of its own (nftables; on an
iptables-legacy node a tagged raw-table TRACE rule), shows each packet's path as it completes,
and removes everything it installed on exit (normal end, --count/--duration, SIGINT, SIGTERM,
errors). --cleanup removes what a killed run left behind.

Offline: --from-log FILE|- reads kernel TRACE log lines, `xtables-monitor --trace` output and
`nft monitor trace` output, in any mix.

Exit status: 0 when packets were traced; 1 when none were; 2 on error or bad usage;
130 after SIGINT, 143 after SIGTERM (what was traced is shown first)."""


def iptrace(
    ipv4: bool = typer.Option(False, "-4", help="IPv4 packets only."),
    ipv6: bool = typer.Option(False, "-6", help="IPv6 packets only."),
    proto: str | None = typer.Option(None, "-p", "--proto", metavar="PROTO",
                                        help="tcp, udp, icmp, icmpv6, sctp, ... or a number."),
    src: str | None = typer.Option(None, "-s", "--src", metavar="ADDR[/LEN]",
                                   help="Source address or prefix."),
    dst: str | None = typer.Option(None, "-d", "--dst", metavar="ADDR[/LEN]",
                                      help="Destination address or prefix."),
    sport: int | None = typer.Option(None, "--sport", metavar="PORT", help="Source port.",
                                     click_type=click_int(0, PORT_MAX)),
    dport: int | None = typer.Option(None, "--dport", metavar="PORT", help="Destination port.",
                                     click_type=click_int(0, PORT_MAX)),
    iif: str | None = typer.Option(None, "-i", "--in-interface", metavar="IFACE", autocompletion=complete_interface,
                                      help="Input interface (incoming packets only)."),
    count: int | None = typer.Option(None, "-c", "--count", metavar="N", help="Stop after N packets.",
                                     click_type=click_int(None, I64_MAX)),
    duration: float | None = typer.Option(None, "--duration", metavar="SECONDS",
                                             help="Stop after SECONDS.", click_type=click_float(None, None)),
    backend: str = typer.Option("auto", "--backend", metavar="auto|nft|legacy",
                                help="Trace with nftables or with iptables-legacy TRACE (auto: by the node's "
                                     "firewall)."),
    from_log: str | None = typer.Option(None, "--from-log", metavar="FILE|-",
                                           help="Read a captured trace instead of tracing live."),
    cleanup: bool = typer.Option(False, "--cleanup",
                                 help="Remove trace rules left by killed runs, and exit."),
    json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> int:
    import contextlib

    from gnt.errors import ExitCode, UsageError
    from gnt.iptrace.models import Filter, TraceEnd
    from gnt.output import make_renderer
    from gnt.output.text.iptrace import IptraceText

    env = current_env()
    if ipv4 and ipv6:
        raise UsageError("only one of -4 and -6 may be given")
    if count is not None and count < 1:
        raise UsageError(f"--count must be at least 1, not {count}")
    if duration is not None and not duration > 0:
        raise UsageError(f"--duration must be a positive number of seconds, not {duration}")
    if duration is not None:
        check_duration(duration)
    if backend not in ("auto", "nft", "legacy"):
        raise UsageError(f"--backend must be auto, nft or legacy, not {backend!r}")
    renderer = make_renderer(env, json=json, formatter=IptraceText(color=env.stdout_isatty))
    flt = Filter(family=4 if ipv4 else 6 if ipv6 else None, proto=proto, src=src, dst=dst, sport=sport,
                 dport=dport, iif=iif)

    if cleanup:
        given = [name for name, value in (
            ("-4", ipv4), ("-6", ipv6), ("-p", proto), ("-s", src), ("-d", dst), ("--sport", sport),
            ("--dport", dport), ("-i", iif), ("-c", count), ("--duration", duration),
            ("--backend", None if backend == "auto" else backend), ("--from-log", from_log), ("--json", json),
        ) if value not in (None, False)]
        if given:
            raise UsageError(f"--cleanup takes no other option (got {', '.join(given)})")
        from gnt.iptrace.live import cleanup_leftovers, require_net_admin

        require_net_admin()
        removed = cleanup_leftovers()
        for item in removed:
            env.stderr.write(f"gnt iptrace: removed {item}\n")
        if not removed:
            env.stderr.write("gnt iptrace: nothing to clean up\n")
        return int(ExitCode.OK)

    if from_log is not None:
        return _from_log(env, renderer, from_log, flt, count)

    from gnt.errors import StopHandlers, interrupted_exit_code
    from gnt.iptrace.live import RunStats, StopRequest, trace_live

    if iif is not None:
        import socket

        try:
            socket.if_nametoindex(iif)
        except (OSError, ValueError):
            raise UsageError(f"-i {iif}: no such interface here") from None

    stop = StopRequest()
    stats = RunStats()
    with StopHandlers(stop):
        def ready() -> None:
            for notice in stats.notices:
                env.stderr.write(f"gnt iptrace: {notice}\n")
            if not json:
                env.stderr.write(f"gnt iptrace: tracing with {stats.backend}; Ctrl-C to stop\n")
                env.stderr.flush()

        packets = trace_live(flt, backend=backend, count=count, duration=duration, stop=stop, stats=stats,
                             on_ready=ready)
        with contextlib.closing(packets):  # an error while rendering still runs the cleanup, now
            for packet in packets:
                renderer.emit(packet)
    renderer.emit(TraceEnd(packets=stats.packets, skipped=stats.skipped, backend=stats.backend))
    if stop.signum is not None:  # 128 + the signal, as shells report it: 130 (ExitCode.INTERRUPTED), 143, 129
        return interrupted_exit_code(stop.signum)
    return int(ExitCode.OK if stats.packets else ExitCode.NEGATIVE)


def _from_log(env: Environment, renderer: Renderer, path: str, flt: Filter, count: int | None) -> int:
    """Read a captured trace; the filter options select packets from it as they would live."""
    import sys

    from gnt.errors import ExitCode, GntError
    from gnt.iptrace.logparse import LogReader, summary_matches
    from gnt.iptrace.models import TraceEnd
    from gnt.iptrace.nftrules import validate

    flt = validate(flt)
    reader = LogReader()
    name = "stdin" if path == "-" else path
    try:
        if path == "-":
            stream = env.stdin if env.stdin is not None else sys.stdin
            _refuse_device(stream, name)
            reader.read(stream, name)
        else:
            with open(path, encoding="utf-8", errors="replace") as f:
                _refuse_device(f, name)
                reader.read(f, name)
    except FileNotFoundError as exc:
        raise GntError(f"cannot read {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise GntError(f"cannot read {path}: it is a directory") from exc
    except PermissionError as exc:
        raise GntError(f"cannot read {path}: permission denied", "run as a user who can read it") from exc
    shown = 0
    for packet in reader.packets():
        if count is not None and shown >= count:
            break
        if not summary_matches(flt, packet.summary):
            continue
        renderer.emit(packet)
        shown += 1
    end = TraceEnd(packets=shown, skipped=reader.skipped, backend="log", source=name)
    renderer.emit(end)
    return int(ExitCode.OK if shown else ExitCode.NEGATIVE)


def _refuse_device(stream: object, name: str) -> None:
    """A device (/dev/zero, a disk) is no log: refuse it at once rather than read it without end."""
    import os
    import stat

    from gnt.errors import GntError

    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
        mode = os.fstat(fileno).st_mode
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's in-memory stream): the bounded reading still applies
    if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and not os.isatty(fileno):
        raise GntError(f"{name} is a device, not a trace log",
                       "give a file or a pipe with kernel log, nft monitor trace or xtables-monitor output")


def register(app: typer.Typer) -> None:
    app.command(name="iptrace", help=HELP, no_args_is_help=False)(iptrace)

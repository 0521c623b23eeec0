"""`gnt ping`: the options of iputils ping, plus --json."""

from __future__ import annotations

import typer

from gnt.cli import current_env

HELP = """Send ICMP echo requests (unprivileged ping socket first, raw socket as root), iputils-style.

Exit status: 0 when replies came; 1 when none came (or fewer than -c before the -w deadline);
2 on error or bad usage."""


def ping(
    host: str | None = typer.Argument(None, metavar="HOST", help="Name or address to ping.", show_default=False),
    ipv4: bool = typer.Option(False, "-4", help="Use IPv4 only."),
    ipv6: bool = typer.Option(False, "-6", help="Use IPv6 only."),
    count: int | None = typer.Option(None, "-c", metavar="COUNT", help="Stop after COUNT replies."),
    interval: str | None = typer.Option(None, "-i", metavar="INTERVAL", help="Seconds between requests."),
    timeout: str | None = typer.Option(None, "-W", metavar="TIMEOUT", help="Seconds to wait for a reply."),
    deadline: str | None = typer.Option(None, "-w", metavar="DEADLINE", help="Stop after DEADLINE seconds."),
    size: int = typer.Option(56, "-s", metavar="SIZE", help="Bytes of ICMP data."),
    ttl: int | None = typer.Option(None, "-t", metavar="TTL", help="IP time to live / hop limit."),
    interface: str | None = typer.Option(None, "-I", metavar="IFACE|ADDR",
                                            help="Source interface or address."),
    quiet: bool = typer.Option(False, "-q", help="Only the summary."),
    timestamps: bool = typer.Option(False, "-D", help="Print a UNIX timestamp before each line."),
    outstanding: bool = typer.Option(False, "-O", help="Report outstanding replies before the next send."),
    numeric: bool = typer.Option(False, "-n", help="No reverse name lookups."),
    flood: bool = typer.Option(False, "-f", help="Flood ping (root only)."),
    pattern: str | None = typer.Option(None, "-p", metavar="PATTERN", help="Hex bytes to fill the data with."),
    mark: int | None = typer.Option(None, "-m", metavar="MARK", help="Tag packets with this fwmark."),
    json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> int:
    import os
    import signal
    import socket

    from gnt.errors import UsageError
    from gnt.output import make_renderer
    from gnt.output.text.ping import PingText
    from gnt.ping import Control, PingOptions, exit_code, parse_pattern, ping
    from gnt.ping.models import Summary

    env = current_env()
    if not host:
        raise UsageError("missing host operand (usage: gnt ping [options] HOST)")
    if ipv4 and ipv6:
        raise UsageError("only one of -4 and -6 may be given")
    family = socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC
    options = PingOptions(
        host=host, family=family, count=count,
        interval=_seconds(interval, "-i", "bad timing interval") if interval is not None else 1.0,
        timeout=_seconds(timeout, "-W", "bad linger time") if timeout is not None else None,
        deadline=_seconds(deadline, "-w", "bad wait time") if deadline is not None else None,
        size=size, ttl=ttl, interface=interface, quiet=quiet, timestamps=timestamps,
        report_outstanding=outstanding, numeric=numeric, flood=flood,
        pattern=parse_pattern(pattern) if pattern is not None else None, mark=mark,
    )
    if flood and interval is None:
        options.interval = 0.0
    renderer = make_renderer(env, json=json, formatter=PingText(quiet=quiet, timestamps=timestamps,
                                                                  flood=flood))
    control = Control()
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    control.wakeup_fd = read_fd

    def on_sigint(_signum: int, _frame: object) -> None:
        control.stop = True

    def on_sigquit(_signum: int, _frame: object) -> None:
        control.status = True

    previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    old_int = signal.signal(signal.SIGINT, on_sigint)
    old_quit = signal.signal(signal.SIGQUIT, on_sigquit)
    code = 1
    try:
        for event in ping(options, control):
            renderer.emit(event)
            if isinstance(event, Summary):
                code = exit_code(event, options)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGQUIT, old_quit)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(read_fd)
        os.close(write_fd)
    return code


def _seconds(text: str, option: str, what: str) -> float:
    from gnt.errors import UsageError

    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} (option {option} takes seconds, e.g. 0.2)") from None
    if value != value or value < 0 or value == float("inf"):
        raise UsageError(f"{what}: {text!r} (option {option} takes a non-negative number of seconds)")
    return value


def register(app: typer.Typer) -> None:
    app.command("ping", help=HELP, no_args_is_help=False)(ping)

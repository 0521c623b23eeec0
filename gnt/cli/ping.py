"""`gnt ping`: the options of iputils ping, plus --json.

The options are declared once, in OPTIONS (see gnt/cli/table.py): `register()` builds the
typer command from it and `fast()` parses a well-formed command line without importing
typer, so a health check running `gnt ping -c 1 HOST` every few seconds pays for Python and
the ping, not for the CLI framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gnt.cli import current_env, parse_seconds
from gnt.cli.numbers import I32_MAX, I64_MAX, U32_MAX
from gnt.cli.table import Opt, check_bounds, fast_parse, parameters, with_signature

if TYPE_CHECKING:
    import typer

    from gnt.output.env import Environment

HELP = """Send ICMP echo requests (unprivileged ping socket first, raw socket as root), iputils-style.

Exit status: 0 when replies came; 1 when none came (or fewer than -c before the -w deadline);
2 on error or bad usage."""


OPTIONS: tuple[Opt, ...] = (
    Opt(("-4",), "ipv4", bool, None, "Use IPv4 only.", False),
    Opt(("-6",), "ipv6", bool, None, "Use IPv6 only.", False),
    Opt(("-c",), "count", int, "COUNT", "Stop after COUNT replies.", bounds=(1, I64_MAX)),
    Opt(("-i",), "interval", str, "INTERVAL", "Seconds between requests."),
    Opt(("-W",), "timeout", str, "TIMEOUT", "Seconds to wait for a reply."),
    Opt(("-w",), "deadline", str, "DEADLINE", "Stop after DEADLINE whole seconds (0: no deadline).",
        bounds=(0, I32_MAX)),
    Opt(("-s",), "size", int, "SIZE", "Bytes of ICMP data.", 56, bounds=(0, I32_MAX)),
    Opt(("-t",), "ttl", int, "TTL", "IP time to live / hop limit.", bounds=(0, 255)),
    Opt(("-I",), "interface", str, "IFACE|ADDR", "Source interface or address.", interface=True),
    Opt(("-q",), "quiet", bool, None, "Only the summary.", False),
    Opt(("-D",), "timestamps", bool, None, "Print a UNIX timestamp before each line.", False),
    Opt(("-O",), "outstanding", bool, None, "Report outstanding replies before the next send.", False),
    Opt(("-n",), "numeric", bool, None, "No reverse name lookups.", False),
    Opt(("-f",), "flood", bool, None, "Flood ping (root only).", False),
    Opt(("-p",), "pattern", str, "PATTERN", "Hex bytes to fill the data with."),
    Opt(("-m",), "mark", int, "MARK", "Tag packets with this fwmark.", bounds=(0, U32_MAX)),
    Opt(("-M",), "pmtudisc", str, "PMTUDISC", "Path MTU discovery: do (set DF, never fragment), want "
        "(DF until a hop reports a smaller MTU, then fragment locally), dont (no DF)."),
    Opt(("--json",), "json", bool, None, "One JSON object per line.", False),
)


def fast(argv: list[str]) -> dict[str, Any] | None:
    """The option values of a well-formed `gnt ping` command line, or None to let typer decide."""
    values = fast_parse(OPTIONS, argv, operands=1)
    if values is not None:
        values["host"] = values.pop("operands")[0]
    return values


def run(values: dict[str, Any], env: Environment) -> int:
    """Ping with parsed option values; returns the exit code."""
    import os
    import signal
    import socket

    from gnt.errors import StopHandlers, UsageError, interrupted_exit_code
    from gnt.output import make_renderer
    from gnt.output.text.ping import PingText
    from gnt.ping import Control, PingOptions, exit_code, parse_pattern, ping
    from gnt.ping.models import Summary

    host = values["host"]
    if not host:
        raise UsageError("missing host operand (usage: gnt ping [options] HOST)")
    if values["ipv4"] and values["ipv6"]:
        raise UsageError("only one of -4 and -6 may be given")
    check_bounds(OPTIONS, values)
    family = socket.AF_INET if values["ipv4"] else socket.AF_INET6 if values["ipv6"] else socket.AF_UNSPEC
    interval, timeout, deadline = values["interval"], values["timeout"], values["deadline"]
    flood = values["flood"]
    options = PingOptions(
        host=host, family=family, count=values["count"],
        interval=parse_seconds(interval, "bad timing interval (-i)") if interval is not None else 1.0,
        timeout=parse_seconds(timeout, "bad linger time (-W)") if timeout is not None else None,
        deadline=float(deadline) if deadline else None,  # whole seconds (checked above); 0: none
        size=values["size"], ttl=values["ttl"], interface=values["interface"], quiet=values["quiet"],
        timestamps=values["timestamps"], report_outstanding=values["outstanding"], numeric=values["numeric"],
        flood=flood, pattern=parse_pattern(values["pattern"]) if values["pattern"] is not None else None,
        mark=values["mark"], pmtudisc=values["pmtudisc"],
    )
    if flood and interval is None:
        options.interval = 0.0
    formatter = PingText(quiet=values["quiet"], timestamps=values["timestamps"], flood=flood)
    renderer = make_renderer(env, json=values["json"], formatter=formatter)
    control = Control()
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    control.wakeup_fd = read_fd

    stopped_by: list[int] = []

    def on_stop(signum: int, _frame: object) -> None:  # SIGINT, SIGTERM, SIGHUP: the summary, then exit
        control.stop = True
        stopped_by.append(signum)

    def on_sigquit(_signum: int, _frame: object) -> None:
        control.status = True

    previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    old_quit = signal.signal(signal.SIGQUIT, on_sigquit)
    code = 1
    try:
        with StopHandlers(on_stop):
            for event in ping(options, control):
                renderer.emit(event)
                if isinstance(event, Summary):
                    code = exit_code(event, options)
    finally:
        signal.signal(signal.SIGQUIT, old_quit)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(read_fd)
        os.close(write_fd)
    if stopped_by and stopped_by[0] != signal.SIGINT:  # Ctrl-C keeps iputils' status; SIGTERM/SIGHUP 128+n
        return interrupted_exit_code(stopped_by[0])
    return code


def register(app: typer.Typer) -> None:
    """Add `ping` to the typer app, its parameters made from OPTIONS."""
    import inspect

    import typer

    host = inspect.Parameter(
        "host", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
        default=typer.Argument(None, metavar="HOST", help="Name or address to ping.", show_default=False),
    )

    def ping(**values: Any) -> int:
        return run(values, current_env())

    with_signature(ping, [host, *parameters(OPTIONS)])
    app.command("ping", help=HELP, no_args_is_help=False)(ping)

"""`gnt drops`: where and why the kernel drops packets (skb:kfree_skb drop reasons, via tracefs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from gnt.cli import check_duration, current_env, parse_seconds
from gnt.cli.numbers import I64_MAX, click_int

if TYPE_CHECKING:
    from gnt.drops import Interval
    from gnt.output import Renderer

HELP = """Count the packets the kernel drops, by reason, kernel location and protocol.

Reads the skb:kfree_skb tracepoint (Linux 5.17+; no eBPF, no drop monitor) in a private tracefs
instance (instances/gnt_drops_<pid>), filtered in the kernel. Reason names come from the running
kernel. By default NOT_SPECIFIED (reason-less frees: normal housekeeping) is hidden; --all shows it.
Drops of every network namespace are seen. Needs root (CAP_SYS_ADMIN). Everything set up is
removed on exit; --cleanup removes what a killed run left behind.

Exit status: 0 when no drop matched; 1 when drops matched; 2 on error or bad usage;
130 after SIGINT (the summary is shown first)."""


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def drops(
    interval: str = typer.Option("1", "-I", "--interval", metavar="SECONDS",
                                 help="Seconds per report block (quiet intervals print nothing)."),
    duration: str | None = typer.Option(None, "--duration", metavar="SECONDS", help="Stop after SECONDS."),
    count: int | None = typer.Option(None, "-c", "--count", metavar="N", help="Stop after N matching drops.",
                                     click_type=click_int(1, I64_MAX)),
    reason: str | None = typer.Option(None, "--reason", metavar="R[,R...]",
                                            help="Only these reasons (as the kernel names them)."),
    exclude_reason: str | None = typer.Option(None, "--exclude-reason", metavar="R[,R...]",
                                                    help="Not these reasons."),
    proto: str | None = typer.Option(None, "--proto", metavar="P[,P...]",
                                           help="Only these protocols: ipv4, ipv6, arp, vlan, ... or an EtherType."),
    show_all: bool = typer.Option(False, "--all", help="Also show NOT_SPECIFIED (hidden by default)."),
    list_reasons: bool = typer.Option(False, "--list-reasons", help="List this kernel's drop reasons and exit."),
    cleanup: bool = typer.Option(False, "--cleanup", help="Remove instances left by killed runs, and exit."),
    json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> int:
    from gnt.drops import DropFilter, hint_for, reason_table, tracing
    from gnt.drops import cleanup as drop_cleanup
    from gnt.drops.models import ReasonInfo
    from gnt.errors import ExitCode
    from gnt.output import make_renderer
    from gnt.output.text.drops import DropsText

    env = current_env()
    renderer = make_renderer(env, json=json, formatter=DropsText())
    seconds = parse_seconds(interval, "bad interval (-I)")
    check_duration(seconds, "--interval")
    limit = None
    if duration is not None:
        limit = parse_seconds(duration, "bad --duration")
        check_duration(limit)

    if cleanup:
        removed = drop_cleanup()
        for name in removed:
            env.stderr.write(f"gnt drops: removed tracing instance {name}\n")
        if not removed:
            env.stderr.write("gnt drops: nothing to clean up\n")
        return int(ExitCode.OK)
    if list_reasons:
        for value, name in sorted(reason_table().items()):
            renderer.emit(ReasonInfo(name, value, hint_for(name)))
        return int(ExitCode.OK)

    flt = DropFilter(reasons=_split(reason), exclude=_split(exclude_reason), protocols=_split(proto),
                     all=show_all)

    def cleaned(names: list[str]) -> None:
        for name in names:
            env.stderr.write(f"gnt drops: removed tracing instance {name} of a run that is gone\n")

    interrupted: KeyboardInterrupt | None = None
    with tracing(flt, on_cleanup=cleaned) as session:
        shown = f" (kernel filter: {session.expression})" if session.expression else ""
        env.stderr.write(f"gnt drops: tracing skb:kfree_skb{shown}; Ctrl-C to stop\n")
        env.stderr.flush()
        try:
            for part in session.intervals(seconds, duration=limit, count=count):
                _emit(renderer, part, json)
        except KeyboardInterrupt as exc:
            interrupted = exc
            session.poll()
            _emit(renderer, session.collect(), json)
        summary = session.summary()
    renderer.emit(summary)
    if interrupted is not None:
        raise interrupted
    return int(ExitCode.NEGATIVE if summary.total else ExitCode.OK)


def _emit(renderer: Renderer, part: Interval, json: bool) -> None:
    from gnt.drops import Lost

    if not json:
        renderer.emit(part)
        return
    for drop in part.drops:
        renderer.emit(drop)
    if part.lost:
        renderer.emit(Lost(part.lost, part.start, part.end))


def register(app: typer.Typer) -> None:
    app.command(name="drops", help=HELP, no_args_is_help=False)(drops)

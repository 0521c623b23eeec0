"""`gnt conntrack list|watch|stats`: the connection-tracking table, its events and counters."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

from gnt.cli.numbers import I32_MAX, I64_MAX
from gnt.cli.table import Opt, command_class, fast_parse, parameters, with_signature
from gnt.errors import ExitCode, UsageError

if TYPE_CHECKING:
    import typer

    from gnt.conntrack.filters import EntryFilter
    from gnt.output.env import Environment


class _BatchedStream:
    """A stream whose flush() is deferred: the renderer flushes per line, which is right for a
    slow event stream but costs a system call per entry on a 60,000-entry dump. The stream's
    own buffer still writes as it fills (a terminal's line by line), so the listing streams."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.write = stream.write  # the stream's own method: no extra call per line

    def flush(self) -> None:
        pass

    def flush_now(self) -> None:
        """The deferred flush; a closed stdout raises OutputClosed, as the renderers' own writes do
        (a BrokenPipeError would reach click, which makes it exit 1, not the error boundary)."""
        from gnt.output import OutputClosed

        try:
            self.stream.flush()
        except BrokenPipeError:
            raise OutputClosed from None


def build_filter(
    *, proto: str | None, src: str | None, dst: str | None, sport: str | None, dport: str | None,
    reply_src: str | None, reply_dst: str | None, state: str | None, mark: str | None, zone: str | None,
    orig_zone: str | None, reply_zone: str | None, status: str | None, label: list[str] | None,
    snat: str | None, dnat: str | None, nat: str | None, ipv4: bool, ipv6: bool,
) -> EntryFilter:
    """The filter of a command line; every value is checked (`is not None`: 0 is a value too)."""
    from gnt.conntrack import filters as f

    protonum = f.parse_proto(proto) if proto is not None else None
    return f.EntryFilter(
        family=f.family_of(ipv4, ipv6),
        proto=protonum,
        src=f.parse_network(src, "-s") if src is not None else None,
        dst=f.parse_network(dst, "-d") if dst is not None else None,
        sport=f.parse_port(sport, "--sport") if sport is not None else None,
        dport=f.parse_port(dport, "--dport") if dport is not None else None,
        reply_src=f.parse_network(reply_src, "--reply-src") if reply_src is not None else None,
        reply_dst=f.parse_network(reply_dst, "--reply-dst") if reply_dst is not None else None,
        states=f.parse_states(state, protonum) if state is not None else None,
        mark=f.parse_mark(mark) if mark is not None else None,
        zone=f.parse_zone(zone) if zone is not None else None,
        orig_zone=f.parse_zone(orig_zone, "--orig-zone") if orig_zone is not None else None,
        reply_zone=f.parse_zone(reply_zone, "--reply-zone") if reply_zone is not None else None,
        status=f.parse_status(status) if status is not None else None,
        labels=f.parse_labels(label) if label else None,
        snat=f.parse_nat(snat, "--snat") if snat is not None else None,
        dnat=f.parse_nat(dnat, "--dnat") if dnat is not None else None,
        nat=f.parse_nat(nat, "--nat") if nat is not None else None,
    )


def _output_mode(output: str, json: bool) -> str:
    mode = output.strip().lower()
    if mode not in ("text", "conntrack"):
        raise UsageError(f"-o: unknown output format {output!r}: use text or conntrack (or --json)")
    if json and mode != "text":
        raise UsageError("--json and -o conntrack exclude each other")
    return mode


# The filter options every filtering command takes, then `list`'s own: one table (gnt/cli/table.py)
# from which typer's `list` is built and `fast_list` parses without importing typer.
FILTER_OPTIONS: tuple[Opt, ...] = (
    Opt(("-p", "--proto"), "proto", str, None, "Protocol: tcp, udp, icmp, icmpv6, sctp, ... or a number."),
    Opt(("-s", "--src"), "src", str, None, "Original source address or CIDR."),
    Opt(("-d", "--dst"), "dst", str, None, "Original destination address or CIDR."),
    Opt(("--sport",), "sport", str, None, "Original source port."),
    Opt(("--dport",), "dport", str, None, "Original destination port."),
    Opt(("--reply-src",), "reply_src", str, None, "Reply source address or CIDR (the real server after DNAT)."),
    Opt(("--reply-dst",), "reply_dst", str, None, "Reply destination address or CIDR (the SNAT address)."),
    Opt(("--state",), "state", str, None, "State(s) of the -p protocol (tcp, sctp, dccp), comma-separated."),
    Opt(("-u", "--status"), "status", str, None,
        "Status bits, comma-separated: ASSURED, SEEN_REPLY, UNREPLIED, FIXED_TIMEOUT, EXPECTED, OFFLOAD, "
        "HW_OFFLOAD, UNSET; !NAME for a clear bit."),
    Opt(("--mark",), "mark", str, None, "Connmark VALUE[/MASK] (decimal or 0x hex)."),
    Opt(("--zone",), "zone", str, None, "Conntrack zone (of either direction)."),
    Opt(("--orig-zone",), "orig_zone", str, None, "Zone of the original direction."),
    Opt(("--reply-zone",), "reply_zone", str, None, "Zone of the reply direction."),
    Opt(("-l", "--label"), "label", str, None, "Connlabel(s) an entry must all carry (connlabel.conf names).",
        multiple=True),
    Opt(("--snat",), "snat", str, "[ADDR[:PORT]]", "Only source-NATed entries (optionally to ADDR[:PORT]).",
        flag_value=""),
    Opt(("--dnat",), "dnat", str, "[ADDR[:PORT]]", "Only destination-NATed entries (optionally to ADDR[:PORT]).",
        flag_value=""),
    Opt(("--nat",), "nat", str, "[ADDR[:PORT]]", "Only NATed entries, source or destination (optionally ADDR[:PORT]).",
        flag_value=""),
    Opt(("-4",), "ipv4", bool, None, "Only IPv4 entries.", False),
    Opt(("-6",), "ipv6", bool, None, "Only IPv6 entries.", False),
)
LIST_OPTIONS: tuple[Opt, ...] = (
    *FILTER_OPTIONS,
    Opt(("-o", "--output"), "output", str, None, "text (readable) or conntrack (conntrack -L lines).", "text"),
    Opt(("--json",), "json", bool, None, "One JSON object per entry, then a summary.", False),
)
WATCH_OPTIONS: tuple[Opt, ...] = (
    *FILTER_OPTIONS,
    Opt(("-e", "--events"), "events", str, None, "Events to show: new, update, destroy (comma-separated).",
        "new,update,destroy"),
    Opt(("--count", "-c"), "count", int, None, "Stop after this many events.", high=I64_MAX),
    Opt(("--duration",), "duration", float, None, "Stop after this many seconds."),
    Opt(("--buffer-size", "-b"), "buffer_size", int, None, "Netlink receive buffer in bytes (default 8 MiB).",
        high=I32_MAX),
    Opt(("-o", "--output"), "output", str, None, "text (readable) or conntrack (conntrack -E lines).", "text"),
    Opt(("--json",), "json", bool, None, "One JSON object per event, lost-event counts, a summary.", False),
)
LIST_HELP = "List the entries of this network namespace's table. Exit 1 if filters matched nothing."
WATCH_HELP = "Show conntrack events as they happen. Lost events (ENOBUFS) are counted, never hidden."
FILTER_FIELDS = tuple(o.dest for o in FILTER_OPTIONS)


def fast_list(argv: list[str]) -> dict[str, Any] | None:
    """The option values of a well-formed `gnt conntrack list` command line, or None for typer."""
    values = fast_parse(LIST_OPTIONS, argv, operands=0)
    if values is not None:
        values.pop("operands")
    return values


def run_list(values: dict[str, Any], env: Environment) -> int:
    """`gnt conntrack list` with parsed option values; returns the exit code."""
    import dataclasses

    from gnt.conntrack import list_entries
    from gnt.conntrack.entries import FusedLines
    from gnt.conntrack.models import ListSummary
    from gnt.output import JsonRenderer, TextRenderer, make_renderer, write
    from gnt.output.text.conntrack import fused_lines, make_formatter

    mode = _output_mode(values["output"], values["json"])
    flt = build_filter(**{name: values[name] for name in FILTER_FIELDS})
    out = _BatchedStream(env.stdout)
    batched = dataclasses.replace(env, stdout=out)  # type: ignore[arg-type]  # --prom/--npd kept
    renderer = make_renderer(batched, json=values["json"], formatter=make_formatter(mode))
    # Entries come as batches of formatted lines (the format's fused form, see list_entries) and
    # are written a batch at a time: the renderer's per-object write and flush would cost more
    # than the formatting. The summary goes through the renderer; and every entry does when the
    # renderer is not a plain text or JSON one (one that also looks at the objects).
    lines: FusedLines | None = fused_lines(mode)
    if not isinstance(renderer, (TextRenderer, JsonRenderer)):
        lines = None
    elif values["json"]:
        from gnt.output.json import ENTRY_JSON_HELPERS, encode, entry_json_render

        lines = FusedLines(render=entry_json_render, helpers=ENTRY_JSON_HELPERS, general=encode)
    obj: object = None
    try:
        for obj in list_entries(flt, lines):
            if type(obj) is list:
                write(out, "\n".join(obj) + "\n")  # type: ignore[arg-type]
                continue
            if type(obj) is ListSummary:
                out.flush_now()  # the entries before the summary on stderr
            renderer.emit(obj)
    finally:
        out.flush_now()
    summary = obj if isinstance(obj, ListSummary) else None
    if summary is not None and summary.filtered and summary.shown == 0:
        return int(ExitCode.NEGATIVE)
    return int(ExitCode.OK)


def register(app: typer.Typer) -> None:
    import typer

    sub = typer.Typer(
        name="conntrack", no_args_is_help=True, rich_markup_mode=None,
        help="The connection-tracking table and its events, with NAT spelled out.",
    )

    def list_cmd(**values: Any) -> int:
        from gnt.cli import current_env

        return run_list(values, current_env())

    sub.command("list", help=LIST_HELP, cls=command_class(LIST_OPTIONS))(
        with_signature(list_cmd, parameters(LIST_OPTIONS)))

    def watch_cmd(**values: Any) -> int:
        from gnt.cli import check_duration, current_env
        from gnt.conntrack import EventLoss, watch
        from gnt.conntrack.filters import parse_events
        from gnt.conntrack.models import WatchSummary
        from gnt.output import make_renderer
        from gnt.output.text.conntrack import make_formatter

        json, count, duration = values["json"], values["count"], values["duration"]
        buffer_size = values["buffer_size"]
        mode = _output_mode(values["output"], json)
        wanted = parse_events(values["events"])
        if count is not None and count < 1:
            raise UsageError(f"--count {count}: must be at least 1")
        if duration is not None:
            check_duration(duration)
        if buffer_size is not None and buffer_size < 1024:
            raise UsageError(f"--buffer-size {buffer_size}: must be at least 1024 bytes")
        flt = build_filter(**{name: values[name] for name in FILTER_FIELDS})
        env = current_env()
        renderer = make_renderer(env, json=json, formatter=make_formatter(mode))
        summary: WatchSummary | None = None
        started = time.monotonic()
        loss = EventLoss()
        stream = watch(flt, wanted, count=count, duration=duration, rcvbuf=buffer_size, loss=loss)
        try:
            for obj in stream:
                if isinstance(obj, WatchSummary):
                    summary = obj
                renderer.emit(obj)
        except KeyboardInterrupt:
            # Ctrl-C (and SIGTERM/SIGHUP, which the error boundary turns into the same exception) is
            # how a watch usually ends: say what was seen (and lost), then exit 128+signal.
            stream.close()  # ends the watch: `loss` now has the kernel's final drop count
            renderer.emit(WatchSummary(events=loss.shown, lost=loss.overflows,
                                       duration=round(time.monotonic() - started, 3), filtered=flt.active,
                                       lost_events=loss.events))
            raise
        finally:
            stream.close()
        if summary is not None and summary.filtered and summary.events == 0:
            return int(ExitCode.NEGATIVE)
        return int(ExitCode.OK)

    sub.command("watch", help=WATCH_HELP, cls=command_class(WATCH_OPTIONS))(
        with_signature(watch_cmd, parameters(WATCH_OPTIONS)))

    @sub.command("stats")
    def stats_cmd(
        json: bool = typer.Option(False, "--json", help="One JSON object per CPU, then the totals."),
    ) -> int:
        """Per-CPU conntrack counters, flagging insert_failed (the 5-second DNS timeout race)."""
        from gnt.cli import current_env
        from gnt.conntrack import read_stats
        from gnt.output import make_renderer
        from gnt.output.text.conntrack import make_formatter

        renderer = make_renderer(current_env(), json=json, formatter=make_formatter("text"))
        for obj in read_stats():
            renderer.emit(obj)
        return int(ExitCode.OK)

    app.add_typer(sub, name="conntrack")

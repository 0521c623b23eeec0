"""`gnt vxlan-csum scan` and `gnt vxlan-csum audit`: the VXLAN checksum bug, on the wire and in config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gnt.cli import MAX_SECONDS
from gnt.cli.numbers import I64_MAX, PORT_MAX, int_value, shown
from gnt.cli.table import Opt, fast_parse, parameters, with_signature
from gnt.errors import ExitCode, GntError, UsageError

if TYPE_CHECKING:
    import typer

    from gnt.output.env import Environment


MAX_BUFFER_MIB = 4096  # a larger capture ring is a typo, not a plan


def parse_ports(text: str) -> tuple[int, ...]:
    """"8472,4789" -> (8472, 4789); one UsageError line for anything else."""
    ports: list[int] = []
    for part in text.split(","):
        try:
            ports.append(int_value(part.strip(), 1, PORT_MAX))
        except ValueError:
            raise UsageError(f"invalid --port value {shown(text)}: give UDP ports 1-65535 separated by commas"
                             ) from None
    return tuple(dict.fromkeys(ports))


SCAN_OPTIONS: tuple[Opt, ...] = (  # typer's `scan` is built from this table; `fast_scan` parses it without typer
    Opt(("--pcap", "-r"), "pcap", str, None, "Read a pcap or pcapng file (- for stdin, or a pipe)."),
    Opt(("--interface", "-i"), "interface", str, None, "Capture live on this interface.", interface=True),
    Opt(("--port", "-p"), "port", str, None, "VXLAN UDP destination ports, comma-separated.", "8472,4789"),
    Opt(("--count", "-c"), "count", int, None, "Stop after this many packets.", high=I64_MAX),
    Opt(("--duration", "-d"), "duration", float, None, "Live: stop after this many seconds.", low=0,
        high=MAX_SECONDS),
    Opt(("--buffer", "-B"), "buffer", int, None, "Live: capture ring size in MiB (default 64), for longer bursts.",
        high=I64_MAX),
    Opt(("--json",), "json", bool, None, "One JSON object per line: flows, then a summary.", False),
)
SCAN_HELP = "Verify the outer UDP checksum of every VXLAN packet (and the inner checksums). Exit 1 if any is bad."


def fast_scan(argv: list[str]) -> dict[str, Any] | None:
    """The option values of a well-formed `gnt vxlan-csum scan` command line, or None for typer."""
    values = fast_parse(SCAN_OPTIONS, argv, operands=0)
    if values is not None:
        values.pop("operands")
    return values


def run_scan(values: dict[str, Any], env: Environment) -> int:
    """`gnt vxlan-csum scan` with parsed option values; returns the exit code."""
    from gnt.cli import check_duration
    from gnt.output import make_renderer
    from gnt.output.text.vxlan import formatter

    pcap, interface, count, duration, buffer, json = (
        values["pcap"], values["interface"], values["count"], values["duration"], values["buffer"], values["json"])
    if (pcap is None) == (interface is None):
        raise UsageError("give exactly one of --pcap FILE or -i IFACE")
    if count is not None and count < 1:
        raise UsageError(f"invalid --count {count}: must be at least 1")
    if duration is not None:
        check_duration(duration)
    if duration is not None and pcap is not None:
        raise UsageError("--duration applies to live capture (-i), not to --pcap")
    if buffer is not None and pcap is not None:
        raise UsageError("--buffer applies to live capture (-i), not to --pcap")
    if buffer is not None and not 1 <= buffer <= MAX_BUFFER_MIB:
        raise UsageError(f"invalid --buffer {buffer}: give the ring size in MiB, 1-{MAX_BUFFER_MIB}")
    ports = parse_ports(values["port"])
    renderer = make_renderer(env, json=json, formatter=formatter)

    import gnt.vxlan as tool

    scanner: tool.FileScan | tool.LiveScan
    if pcap is not None:
        scanner = tool.FileScan(pcap, ports)
        report = scanner.run(count=count)
    else:
        scanner = tool.LiveScan(interface, ports, buffer_bytes=None if buffer is None else buffer << 20)
        report = scanner.run(count=count, duration=duration)
    if json:
        for flow in report.flows:
            renderer.emit(flow)
        renderer.emit(report.summary)
    else:
        renderer.emit(report)
    if scanner.interrupt is not None:
        # SIGINT, or SIGTERM/SIGHUP turned into a KeyboardInterrupt by the error boundary: the
        # report is out, the boundary gives the exit code (128 + the signal).
        raise scanner.interrupt
    problems = report.summary.problems
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise GntError(f"damaged capture: {problems[0]}{more}; the packets before it were analysed")
    return int(ExitCode.NEGATIVE if report.summary.any_bad else ExitCode.OK)


def register(app: typer.Typer) -> None:
    import typer

    sub = typer.Typer(
        name="vxlan-csum", no_args_is_help=True, rich_markup_mode=None,
        help="Find the VXLAN checksum bug behind 63-second connection delays: on the wire (scan) "
             "and in the node's configuration (audit).",
    )

    def scan_cmd(**values: Any) -> int:
        from gnt.cli import current_env

        return run_scan(values, current_env())

    sub.command("scan", help=SCAN_HELP)(with_signature(scan_cmd, parameters(SCAN_OPTIONS)))

    @sub.command("audit")
    def audit_cmd(
        json: bool = typer.Option(False, "--json", help="One JSON object per line: findings, then the audit."),
    ) -> int:
        """Check this node for the conditions behind bad VXLAN checksums. Exit 1 if it is at risk."""
        from gnt.cli import current_env
        from gnt.output import make_renderer
        from gnt.output.text.vxlan import formatter
        from gnt.vxlan.audit import run_audit

        env = current_env()
        renderer = make_renderer(env, json=json, formatter=formatter)
        findings, summary = run_audit()
        if json:
            for finding in findings:
                renderer.emit(finding)
            renderer.emit(summary)
        else:
            renderer.emit(summary)
            for finding in findings:
                renderer.emit(finding)
        if summary.unchecked and not summary.at_risk:
            raise GntError(f"could not check {', '.join(summary.unchecked)}: the NAT rules could not be read",
                           hint="run the audit as root (iptables-save and nft need CAP_NET_ADMIN)")
        return int(ExitCode.NEGATIVE if summary.at_risk else ExitCode.OK)

    app.add_typer(sub, name="vxlan-csum")

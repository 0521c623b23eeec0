"""`gnt vxlan-csum scan` and `gnt vxlan-csum audit`: the VXLAN checksum bug, on the wire and in config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.cli.numbers import I64_MAX, PORT_MAX, click_float, click_int, int_value, shown
from gnt.errors import ExitCode, GntError, UsageError

if TYPE_CHECKING:
    import typer


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


def register(app: typer.Typer) -> None:
    import typer

    from gnt.cli.complete import complete_interface

    sub = typer.Typer(
        name="vxlan-csum", no_args_is_help=True, rich_markup_mode=None,
        help="Find the VXLAN checksum bug behind 63-second connection delays: on the wire (scan) "
             "and in the node's configuration (audit).",
    )

    @sub.command("scan")
    def scan_cmd(
        pcap: str | None = typer.Option(None, "--pcap", "-r", help="Read a pcap or pcapng file (- for stdin)."),
        interface: str | None = typer.Option(None, "--interface", "-i", help="Capture live on this interface.",
                                                  autocompletion=complete_interface),
        port: str = typer.Option("8472,4789", "--port", "-p", help="VXLAN UDP destination ports, comma-separated."),
        count: int | None = typer.Option(None, "--count", "-c", help="Stop after this many packets.",
                                         click_type=click_int(None, I64_MAX)),
        duration: float | None = typer.Option(None, "--duration", "-d", help="Live: stop after this many seconds.",
                                              click_type=click_float(None, None)),
        json: bool = typer.Option(False, "--json", help="One JSON object per line: flows, then a summary."),
    ) -> int:
        """Verify the outer UDP checksum of every VXLAN packet (and the inner checksums). Exit 1 if any is bad."""
        from gnt.cli import check_duration, current_env
        from gnt.output import make_renderer
        from gnt.output.text.vxlan import formatter

        if (pcap is None) == (interface is None):
            raise UsageError("give exactly one of --pcap FILE or -i IFACE")
        if count is not None and count < 1:
            raise UsageError(f"invalid --count {count}: must be at least 1")
        if duration is not None:
            check_duration(duration)
        if duration is not None and pcap is not None:
            raise UsageError("--duration applies to live capture (-i), not to --pcap")
        ports = parse_ports(port)
        env = current_env()
        renderer = make_renderer(env, json=json, formatter=formatter)

        import gnt.vxlan as tool

        interrupted = False
        if pcap is not None:
            report = tool.scan_file(pcap, ports, count)
        else:
            assert interface is not None
            live = tool.LiveScan(interface, ports)
            report = live.run(count=count, duration=duration)
            interrupted = live.interrupted
        if json:
            for flow in report.flows:
                renderer.emit(flow)
            renderer.emit(report.summary)
        else:
            renderer.emit(report)
        problems = report.summary.problems
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise GntError(f"damaged capture: {problems[0]}{more}; the packets before it were analysed")
        if interrupted:
            return int(ExitCode.INTERRUPTED)
        return int(ExitCode.NEGATIVE if report.summary.any_bad else ExitCode.OK)

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

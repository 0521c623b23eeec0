"""`gnt rdisc`: solicit and decode IPv6 Router Advertisements, or listen for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.cli.numbers import I64_MAX, click_int
from gnt.errors import ExitCode, UsageError

if TYPE_CHECKING:
    import typer


def register(app: typer.Typer) -> None:
    import typer

    from gnt.cli.complete import complete_interface

    @app.command("rdisc")
    def rdisc_cmd(
        iface: str = typer.Argument(..., metavar="IFACE", autocompletion=complete_interface,
                                    help="The interface to solicit on."),
        address: str | None = typer.Argument(None, metavar="[ADDRESS]",
                                             help="Solicit this router only (default: ff02::2)."),
        retries: int = typer.Option(3, "-r", "--retry", metavar="RETRIES", help="Solicitations to send.",
                                    click_type=click_int(None, None)),
        wait_ms: int = typer.Option(1000, "-w", "--wait", metavar="WAIT_MS", click_type=click_int(None, None),
                                    help="Milliseconds to wait after each (with --listen: in all)."),
        listen: bool = typer.Option(False, "--listen", help="Send nothing; show advertisements live."),
        count: int | None = typer.Option(None, "-c", "--count", help="With --listen: stop after this many.",
                                         click_type=click_int(None, I64_MAX)),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only the advertised prefixes."),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="Report rejected packets on stderr."),
        json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ) -> int:
        """Router Solicitation on IFACE and every Router Advertisement decoded (rdisc6).

        Exit 0 when a router answered, 1 when none did, 2 on error.
        """
        import click

        from gnt.cli import current_env
        from gnt.cli.ndisc import check_tries
        from gnt.ndisc import rdisc as tool
        from gnt.ndisc.models import Router
        from gnt.output import make_renderer
        from gnt.output.text.ndisc import rdisc_formatter

        check_tries(retries, wait_ms)
        if count is not None and count < 1:
            raise UsageError(f"invalid --count {count}: must be at least 1")
        if count is not None and not listen:
            raise UsageError("--count applies to --listen")
        if listen and address is not None:
            raise UsageError("--listen takes no router ADDRESS")
        formatter = rdisc_formatter(quiet=quiet, verbose=verbose)
        renderer = make_renderer(current_env(), json=json, formatter=formatter)
        if listen:
            ctx = click.get_current_context(silent=True)
            default = click.core.ParameterSource.DEFAULT
            wait_given = ctx is not None and ctx.get_parameter_source("wait_ms") != default
            results = tool.listen(iface, count=count, wait_ms=wait_ms if wait_given else None)
        else:
            results = tool.solicit(iface, address, retries=retries, wait_ms=wait_ms)
        answered = False
        for obj in results:
            renderer.emit(obj)
            answered = answered or isinstance(obj, Router)
        return int(ExitCode.OK if answered else ExitCode.NEGATIVE)

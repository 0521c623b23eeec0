"""`gnt ndisc`: resolve an IPv6 neighbour's link-layer address, or run duplicate address detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.cli.numbers import click_int
from gnt.errors import ExitCode, UsageError

if TYPE_CHECKING:
    import typer


MAX_WAIT_MS = 2**31 - 1  # ndisc6/rdisc6 hand -w to poll(), an int of milliseconds; more overflows select()


def check_tries(retries: int, wait_ms: int) -> None:
    """Shared by ndisc and rdisc: -r and -w must be positive, -w no longer than poll() can wait."""
    if retries < 1:
        raise UsageError(f"invalid -r {retries}: must be at least 1")
    if wait_ms < 1:
        raise UsageError(f"invalid -w {wait_ms}: must be at least 1 millisecond")
    if wait_ms > MAX_WAIT_MS:
        raise UsageError(f"invalid -w {wait_ms}: at most {MAX_WAIT_MS} milliseconds")


def register(app: typer.Typer) -> None:
    import typer

    from gnt.cli.complete import complete_interface

    @app.command("ndisc")
    def ndisc_cmd(
        address: str = typer.Argument(..., metavar="ADDRESS", help="The IPv6 address to resolve."),
        iface: str = typer.Argument(..., metavar="IFACE", autocompletion=complete_interface,
                                    help="The interface the neighbour is on."),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only the link-layer address."),
        retries: int = typer.Option(3, "-r", "--retry", metavar="RETRIES", help="Solicitations to send.",
                                    click_type=click_int(None, None)),
        wait_ms: int = typer.Option(1000, "-w", "--wait", metavar="WAIT_MS", click_type=click_int(None, None),
                                    help="Milliseconds to wait for an answer to each."),
        single: bool = typer.Option(False, "-1", "--single", help="Stop at the first answer (the default)."),
        multiple: bool = typer.Option(False, "-m", "--multiple",
                                      help="Show every answer within the wait (to spot two owners)."),
        dad: bool = typer.Option(False, "--dad", help="Duplicate address detection: probe from ::, exit 1 "
                                                       "if another node answers for ADDRESS."),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="Report rejected packets on stderr."),
        json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ) -> int:
        """Neighbor Solicitation for ADDRESS on IFACE (ndisc6). Exit 0 answered, 1 no answer, 2 error.

        With --dad: exit 0 when no node answers (the address is unique), 1 when it is in use.
        """
        from gnt.cli import current_env
        from gnt.ndisc import ndisc as tool
        from gnt.ndisc.models import DadResult, Neighbor
        from gnt.output import make_renderer
        from gnt.output.text.ndisc import ndisc_formatter

        check_tries(retries, wait_ms)
        if single and multiple:
            raise UsageError("-1 and -m contradict each other")
        formatter = ndisc_formatter(quiet=quiet, verbose=verbose)
        renderer = make_renderer(current_env(), json=json, formatter=formatter)
        if dad:
            outcome = ExitCode.ERROR
            for obj in tool.detect_duplicate(address, iface, retries=retries, wait_ms=wait_ms):
                renderer.emit(obj)
                if isinstance(obj, DadResult):
                    outcome = ExitCode.NEGATIVE if obj.duplicate else ExitCode.OK
            return int(outcome)
        answered = False
        for obj in tool.resolve(address, iface, retries=retries, wait_ms=wait_ms, multiple=multiple):
            renderer.emit(obj)
            answered = answered or isinstance(obj, Neighbor)
        return int(ExitCode.OK if answered else ExitCode.NEGATIVE)

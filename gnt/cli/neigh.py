"""`gnt neigh`: the kernel neighbour table, and its state transitions live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.cli.numbers import I64_MAX, click_float, click_int
from gnt.errors import ExitCode, UsageError

if TYPE_CHECKING:
    import typer



def register(app: typer.Typer) -> None:
    import typer

    from gnt.cli.complete import complete_interface

    @app.command("neigh")
    def neigh_cmd(
        iface: str | None = typer.Option(None, "-i", "--interface", metavar="IFACE",
                                         autocompletion=complete_interface, help="Only this interface."),
        ipv4: bool = typer.Option(False, "-4", help="Only IPv4 (ARP) entries."),
        ipv6: bool = typer.Option(False, "-6", help="Only IPv6 (NDP) entries."),
        all_states: bool = typer.Option(False, "-a", "--all", help="Include NOARP entries (multicast)."),
        watch: bool = typer.Option(False, "--watch", help="Print state transitions live, with timestamps."),
        count: int | None = typer.Option(None, "-c", "--count", help="With --watch: stop after this many.",
                                         click_type=click_int(None, I64_MAX)),
        duration: float | None = typer.Option(None, "-d", "--duration", click_type=click_float(None, None),
                                              help="With --watch: stop after this many seconds."),
        json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ) -> int:
        """The neighbour table: address, link-layer address, interface, NUD state, router flag.

        Exit 0 when entries were shown (or --watch ran), 1 when the table is empty.
        """
        from gnt.cli import check_duration, current_env
        from gnt.ndisc import neigh as tool
        from gnt.output import make_renderer
        from gnt.output.text.ndisc import neigh_formatter

        if ipv4 and ipv6:
            raise UsageError("-4 and -6 contradict each other")
        if not watch and (count is not None or duration is not None):
            raise UsageError("--count and --duration apply to --watch")
        if count is not None and count < 1:
            raise UsageError(f"invalid --count {count}: must be at least 1")
        if duration is not None:
            check_duration(duration)
        renderer = make_renderer(current_env(), json=json, formatter=neigh_formatter())
        if watch:
            import time

            from gnt.ndisc.models import NeighborWatchEnd

            started, shown = time.monotonic(), 0
            try:
                for change in tool.watch(iface, ipv4=ipv4, ipv6=ipv6, all_states=all_states, count=count,
                                         duration=duration):
                    renderer.emit(change)
                    shown += 1
            except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the summary, then 128 + signal
                renderer.emit(NeighborWatchEnd(shown, round(time.monotonic() - started, 3), interrupted=True))
                raise
            renderer.emit(NeighborWatchEnd(shown, round(time.monotonic() - started, 3), interrupted=False))
            return int(ExitCode.OK)
        shown = 0
        for entry in tool.table(iface, ipv4=ipv4, ipv6=ipv6, all_states=all_states):
            renderer.emit(entry)
            shown += 1
        return int(ExitCode.OK if shown else ExitCode.NEGATIVE)

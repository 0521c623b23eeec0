"""`gnt merge`: the fleet view of many nodes' `--json` streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.errors import ExitCode

if TYPE_CHECKING:
    import typer


def register(app: typer.Typer) -> None:
    import typer

    @app.command("merge")
    def merge_cmd(
        sources: list[str] | None = typer.Argument(  # noqa: B008 (typer reads defaults, never mutates them)
            None, metavar="[FILE|DIR|-]...", help="Streams of `gnt ... --json`; DIR: its files; - (default): stdin."),
        all_nodes: bool = typer.Option(False, "--all", "-a", help="List every node, not only those that need a look."),
        json: bool = typer.Option(False, "--json", help="One JSON object per line: fleet, node, merge_summary."),
    ) -> int:
        """Merge the --json streams of many nodes: per command, which nodes are bad, and why.

        Each stream starts with its meta object (node, command line, boot id); the newest run of a
        command on a node stands. Exit 0 all nodes ok, 1 any node has a negative result (or no
        result), 2 a malformed line (named with file:line, then skipped) or an unreadable file.
        """
        from gnt.cli import current_env
        from gnt.fleet.merge import Merger, expand_sources, open_source
        from gnt.output import make_renderer
        from gnt.output.text.fleet import FleetText

        env = current_env()
        renderer = make_renderer(env, json=json, formatter=FleetText(all_nodes=all_nodes))
        merger = Merger()
        for path in expand_sources(sources or ["-"]):
            handle = open_source(path, env.stdin)
            try:
                for problem in merger.read("stdin" if path == "-" else path, handle):
                    renderer.emit(problem)
            finally:
                if path != "-":
                    handle.close()
        for obj in merger.fleet():
            renderer.emit(obj)
        summary = merger.summary()
        renderer.emit(summary)
        if summary.malformed_lines:
            return int(ExitCode.ERROR)
        return int(ExitCode.NEGATIVE if summary.bad_nodes else ExitCode.OK)

"""`gnt ip6`: facts about IPv6 addresses, and the EUI-64/SLAAC addresses of a MAC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.errors import ExitCode, UsageError

if TYPE_CHECKING:
    import typer


def register(app: typer.Typer) -> None:
    import typer

    @app.command("ip6")
    def ip6_cmd(
        addresses: list[str] | None = typer.Argument(  # noqa: B008 (typer reads defaults, never mutates them)
            None, metavar="ADDRESS...", help="IPv6 addresses."),
        mac: str | None = typer.Option(None, "--mac", help="Make the EUI-64 address of this MAC."),
        prefix: str | None = typer.Option(None, "--prefix", help="With --mac: the SLAAC address on a /64."),
        json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ) -> int:
        """Kind, scope, full form, solicited-node group, EUI-64 MAC and ip6.arpa name of each ADDRESS.

        With --mac: the EUI-64 link-local address, or with --prefix the SLAAC address. No privileges needed.
        """
        from gnt.cli import current_env
        from gnt.ndisc import ip6 as tool
        from gnt.output import make_renderer
        from gnt.output.text.ndisc import ip6_formatter

        if mac is None and not addresses:
            raise UsageError("give one or more ADDRESSes, or --mac MAC")
        if mac is not None and addresses:
            raise UsageError("give ADDRESSes or --mac, not both")
        if prefix is not None and mac is None:
            raise UsageError("--prefix needs --mac")
        renderer = make_renderer(current_env(), json=json, formatter=ip6_formatter())
        if mac is not None:
            renderer.emit(tool.from_mac(mac, prefix))
            return int(ExitCode.OK)
        results = [tool.facts(a) for a in addresses or []]  # every address checked before any output
        for facts in results:
            renderer.emit(facts)
        return int(ExitCode.OK)

"""gnt ping's typer-free parser agrees with the typer command built from the same table."""

from __future__ import annotations

from typing import Any

import pytest

from gnt.cli import build_app
from gnt.cli.ping import OPTIONS, fast


def typer_values(argv: list[str]) -> dict[str, Any]:
    import typer.main

    command = typer.main.get_command(build_app("ping"))
    ping = command.commands["ping"]  # type: ignore[attr-defined]
    context = ping.make_context("ping", list(argv))
    return dict(context.params)


@pytest.mark.parametrize("argv", [
    ["127.0.0.1"],
    ["-c", "3", "127.0.0.1"],
    ["-c3", "-i0.2", "-W", "1", "::1"],
    ["-4", "-q", "-n", "-D", "-O", "host.example"],
    ["--json", "-s", "1400", "-t", "2", "-I", "eth0", "-p", "ff00", "-m", "7", "198.18.4.2"],
    ["198.18.4.2", "-c", "1", "-w", "5"],  # options after the host, as click allows
    ["-f", "-c", "-1", "10.0.0.1"],  # a negative count is a value: validated later, not here
])
def test_fast_parser_matches_typer(argv: list[str]) -> None:
    values = fast(argv)
    assert values is not None
    assert values == typer_values(argv)


@pytest.mark.parametrize("argv", [
    [],  # no host: typer reports it
    ["a", "b"],  # two hosts
    ["-c", "x", "127.0.0.1"],  # not an integer
    ["--help"],
    ["-h"],
    ["--bogus", "127.0.0.1"],
    ["-c"],  # missing value
    ["--js", "127.0.0.1"],  # getopt would take the abbreviation, click does not
])
def test_fast_parser_leaves_the_rest_to_typer(argv: list[str]) -> None:
    assert fast(argv) is None


def test_every_option_is_in_the_help() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(build_app("ping"), ["ping", "--help"])
    for option in OPTIONS:
        assert option.flag in result.output

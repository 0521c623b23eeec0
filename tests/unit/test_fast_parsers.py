"""The typer-free parsers (gnt/cli/table.py) agree with the typer commands built from the same tables."""

from __future__ import annotations

from typing import Any

import pytest

from gnt.cli import build_app
from gnt.cli.conntrack import LIST_OPTIONS, fast_list
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
        assert all(flag in result.output for flag in option.flags)


def conntrack_list_values(argv: list[str]) -> dict[str, Any]:
    import typer.main

    group = typer.main.get_command(build_app("conntrack"))
    conntrack = group.commands["conntrack"]  # type: ignore[attr-defined]
    context = conntrack.commands["list"].make_context("list", list(argv))
    return dict(context.params)


@pytest.mark.parametrize("argv", [
    [],
    ["-o", "conntrack"],
    ["--json", "-p", "tcp", "--dport", "8080", "--dnat"],
    ["-s", "198.18.10.0/24", "--reply-src=198.18.20.2", "--state", "ESTABLISHED,TIME_WAIT", "-4"],
    ["--mark", "0x4000/0x4000", "--zone", "1", "--snat", "--nat", "-6", "--output=text"],
])
def test_conntrack_list_fast_parser_matches_typer(argv: list[str]) -> None:
    values = fast_list(argv)
    assert values is not None
    assert values == conntrack_list_values(argv)


@pytest.mark.parametrize("argv", [["--help"], ["extra"], ["--dpor", "80"], ["-p"], ["-x"]])
def test_conntrack_list_fast_parser_leaves_the_rest_to_typer(argv: list[str]) -> None:
    assert fast_list(argv) is None


def test_every_conntrack_list_option_is_in_the_help() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(build_app("conntrack"), ["conntrack", "list", "--help"])
    for option in LIST_OPTIONS:
        assert all(flag in result.output for flag in option.flags)


def vxlan_scan_values(argv: list[str]) -> dict[str, Any]:
    import typer.main

    group = typer.main.get_command(build_app("vxlan-csum"))
    vxlan = group.commands["vxlan-csum"]  # type: ignore[attr-defined]
    context = vxlan.commands["scan"].make_context("scan", list(argv))
    return dict(context.params)


@pytest.mark.parametrize("argv", [
    ["--pcap", "x.pcap"],
    ["-r", "-", "--json", "-c", "10"],
    ["-i", "eth0", "--port=4789", "--duration", "2.5", "-B", "16"],
    ["--interface", "any", "-p", "8472,4789", "--buffer=1", "--count=3", "--json"],
])
def test_vxlan_scan_fast_parser_matches_typer(argv: list[str]) -> None:
    from gnt.cli.vxlan import fast_scan

    values = fast_scan(argv)
    assert values is not None
    assert values == vxlan_scan_values(argv)


@pytest.mark.parametrize("argv", [["--help"], ["extra"], ["--pca", "x"], ["-c", "ten"], ["-r"]])
def test_vxlan_scan_fast_parser_leaves_the_rest_to_typer(argv: list[str]) -> None:
    from gnt.cli.vxlan import fast_scan

    assert fast_scan(argv) is None


def test_every_vxlan_scan_option_is_in_the_help() -> None:
    from typer.testing import CliRunner

    from gnt.cli.vxlan import SCAN_OPTIONS

    result = CliRunner().invoke(build_app("vxlan-csum"), ["vxlan-csum", "scan", "--help"])
    for option in SCAN_OPTIONS:
        assert all(flag in result.output for flag in option.flags)


def traceroute_values(argv: list[str]) -> dict[str, Any]:
    import typer.main

    command = typer.main.get_command(build_app("traceroute"))
    traceroute = command.commands["traceroute"]  # type: ignore[attr-defined]
    return dict(traceroute.make_context("traceroute", list(argv)).params)


@pytest.mark.parametrize("argv", [
    ["127.0.0.1"],
    ["-n", "127.0.0.1", "100"],  # HOST PACKETLEN
    ["-I", "-q1", "-m", "5", "-N", "1", "-w", "1,2,3", "::1"],
    ["--tcp", "--port=443", "--first", "2", "--max-hops=9", "-z", "50", "-s", "198.18.4.1", "-i", "eth0", "h"],
    ["-U", "-p", "53", "--paris", "--json", "198.18.4.2"],
    ["--paths", "8", "-4", "-F", "host.example", "1400"],
    ["--mtu", "-6", "--sim-queries", "4", "--wait", "2", "--sendwait", "0.1", "--queries", "2", "--icmp", "x"],
    ["198.18.4.2", "-n", "--dont-fragment", "-f", "-1"],  # options after the host; a negative value is a value
])
def test_traceroute_fast_parser_matches_typer(argv: list[str]) -> None:
    from gnt.cli.traceroute import fast

    values = fast(argv)
    assert values is not None
    assert values == traceroute_values(argv)


@pytest.mark.parametrize("argv", [
    [],  # no host
    ["a", "60", "extra"],  # three operands
    ["-m", "x", "127.0.0.1"],
    ["--help"],
    ["--bogus", "127.0.0.1"],
    ["-q"],
    ["--path", "2", "127.0.0.1"],  # an abbreviation: click refuses it
    ["-m", "٣", "127.0.0.1"],  # not ASCII digits: typer reports it through the number parser
])
def test_traceroute_fast_parser_leaves_the_rest_to_typer(argv: list[str]) -> None:
    from gnt.cli.traceroute import fast

    assert fast(argv) is None


def test_every_traceroute_option_is_in_the_help() -> None:
    from typer.testing import CliRunner

    from gnt.cli.traceroute import OPTIONS as TRACEROUTE_OPTIONS

    result = CliRunner().invoke(build_app("traceroute"), ["traceroute", "--help"])
    for option in TRACEROUTE_OPTIONS:
        assert all(flag in result.output for flag in option.flags)

"""Start-up stays light: each command path loads only what it needs.

Each case runs gnt in a fresh interpreter (`gnt.__main__.main(argv)`, as the `gnt` script
does) and reads back `sys.modules`. `gnt --help` and every `gnt CMD --help` must not load
scapy, pyroute2 or netaddr (imported inside the commands that use them), nor rich (typer is
configured with rich_markup_mode=None and pretty exceptions off), nor pydantic (typer 0.29
validates every option through it; it costs more than the rest of `gnt ping`). Nor may the
probe paths of ping and traceroute to 127.0.0.1, or a pcap scan by vxlan-csum. Timings are
benchmarked in bench/bench_startup.py, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gnt.cli import COMMANDS

HEAVY = ("scapy", "pyroute2", "netaddr", "rich", "pygments", "markdown_it", "pydantic")  # never on these paths

PROBE = """
import json, sys
report_path, argv = sys.argv[1], sys.argv[2:]
from gnt.__main__ import main
code = main(argv)
with open(report_path, "w") as report:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}, report)
"""


def loaded_by(*argv: str, preload: str = "") -> tuple[int, set[str]]:
    """Run `gnt ARGV` in a fresh interpreter; its exit code and the top-level modules it loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "report.json")
        result = subprocess.run(
            [sys.executable, "-c", preload + PROBE, report_path, *argv],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert os.path.exists(report_path), f"gnt {' '.join(argv)} crashed:\n{result.stderr}"
        with open(report_path) as report:
            data = json.load(report)
    return data["code"], set(data["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return [name for name in HEAVY if name in modules]


def test_root_help_loads_every_command_module_and_nothing_heavy() -> None:
    code, modules = loaded_by("--help")
    assert code == 0
    assert "typer" in modules  # the probe really ran the CLI (a no-op would pass the next line vacuously)
    assert heavy_in(modules) == []


def test_version_is_light() -> None:
    code, modules = loaded_by("--version", "--verbose")
    assert code == 0
    assert heavy_in(modules) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_loads_nothing_heavy(command: str) -> None:
    code, modules = loaded_by(command, "--help")
    assert code == 0
    assert "typer" in modules  # --help is typer's, also for the commands with a fast parser (ping)
    assert heavy_in(modules) == [], f"gnt {command} --help loaded {heavy_in(modules)}"


@pytest.mark.root
def test_ping_probe_path_loads_nothing_heavy() -> None:
    # one echo to this machine's loopback, the health-check path (raw socket as root)
    code, modules = loaded_by("ping", "-c", "1", "-W", "2", "127.0.0.1")
    assert code == 0
    assert "gnt" in modules
    assert heavy_in(modules) == [], f"gnt ping loaded {heavy_in(modules)}"
    # The health-check path does not even load the CLI framework (gnt/cli/ping.py `fast`).
    assert "typer" not in modules and "click" not in modules


def test_ping_bad_input_still_goes_through_typer() -> None:
    # (--help too: test_command_help_loads_nothing_heavy)
    code, modules = loaded_by("ping", "-c", "not-a-number", "127.0.0.1")
    assert code == 2 and "typer" in modules


def test_the_probe_sees_a_heavy_import() -> None:
    # the same probe with netaddr imported on purpose must report it: the assertions can fail
    _code, modules = loaded_by("--version", preload="import netaddr\n")
    assert "netaddr" in heavy_in(modules)


@pytest.mark.root
def test_traceroute_probe_path_loads_nothing_heavy() -> None:
    # one hop to this machine's loopback
    code, modules = loaded_by("traceroute", "-n", "-m", "1", "-q", "1", "127.0.0.1")
    assert code == 0
    assert heavy_in(modules) == [], f"gnt traceroute loaded {heavy_in(modules)}"
    # A rested trace takes milliseconds: the CLI framework is not loaded for it (gnt/cli/traceroute.py `fast`).
    assert "typer" not in modules and "click" not in modules


def test_traceroute_bad_input_still_goes_through_typer() -> None:
    code, modules = loaded_by("traceroute", "-m", "many", "127.0.0.1")
    assert code == 2 and "typer" in modules


def test_vxlan_pcap_scan_path_loads_nothing_heavy(tmp_path: Path) -> None:
    from helpers.vxlan_frames import vxlan_frame, write_pcap

    pcap = tmp_path / "vxlan.pcap"
    write_pcap(str(pcap), [vxlan_frame("ok"), vxlan_frame("ok")])
    code, modules = loaded_by("vxlan-csum", "scan", "--pcap", str(pcap))
    assert code == 0
    assert heavy_in(modules) == [], f"gnt vxlan-csum scan loaded {heavy_in(modules)}"


@pytest.mark.root
def test_conntrack_list_path_loads_no_cli_framework() -> None:
    # the health-check listing (this namespace's table, maybe empty: exit 0 either way unfiltered)
    code, modules = loaded_by("conntrack", "list", "-o", "conntrack")
    assert code == 0
    assert "gnt" in modules
    assert "typer" not in modules and "click" not in modules
    assert heavy_in(modules) == [], f"gnt conntrack list loaded {heavy_in(modules)}"

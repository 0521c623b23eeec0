"""gnt iptrace in-process: --from-log text and JSON, stdin, bad input (one line, exit 2), and the
exit codes 0 (packets) / 1 (none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.cli import run_gnt
from helpers.jsonl import records

DATA = Path(__file__).resolve().parent.parent / "data" / "iptrace"


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    return run_gnt("iptrace", *argv, stdin=stdin)


def test_from_log_json_packets_exactly_as_specified() -> None:
    code, out, err = run("--from-log", str(DATA / "xtables_monitor_trace.txt"), "--json")
    assert code == 0, err
    objs = records(out)
    packets = [o for o in objs if o["type"] == "packet"]
    assert len(packets) == 6
    assert set(packets[0]) == {"type", "id", "summary", "steps"}
    assert set(packets[0]["steps"][0]) == {"table", "chain", "kind", "rulenum", "handle", "verdict", "rule",
                                           "family"}
    assert packets[0]["steps"][2] == {"table": "filter", "chain": "FORWARD", "kind": "rule", "rulenum": None,
                                      "handle": 3, "verdict": "jump GNTUSER",
                                      "rule": "-A FORWARD -p icmp -j GNTUSER", "family": "ip"}
    assert objs[-1] == {"type": "iptrace_end", "packets": 6, "skipped": 0, "backend": "log",
                        "source": str(DATA / "xtables_monitor_trace.txt")}


def test_from_log_text_blocks_aligned_and_highlighted() -> None:
    code, out, err = run("--from-log", str(DATA / "nft_monitor_trace.txt"))
    assert code == 0
    blocks = out.strip().split("\n\n")
    first = blocks[0].splitlines()
    assert first[0].startswith("packet daeb4f86  icmp 198.18.1.1 -> 198.18.4.2 type 8/0  iif eth0 oif eth1")
    assert first[0].endswith("=> accept")
    steps = first[1:]
    assert steps[0].split() == ["inet", "gntfw", "forward", "rule", "jump", "gntuser", "meta", "l4proto",
                                "icmp", "jump", "gntuser"]
    assert steps[1].split() == ["inet", "gntfw", "gntuser", "rule", "return", "meta", "l4proto", "icmp",
                                "return"]
    assert steps[2].split() == ["=>", "inet", "gntfw", "forward", "rule", "accept", "meta", "l4proto", "icmp",
                                "accept"]
    assert [line[:4] for line in steps] == ["    ", "    ", " => "]
    columns = {line.index("rule ") for line in steps}
    assert len(columns) == 1  # the kind column lines up
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert "packets traced (log:" in err and "skipped" not in err


def test_from_log_stdin_and_count() -> None:
    text = (DATA / "kernel_trace.log").read_text()
    code, out, err = run("--from-log", "-", "--count", "2", "--json", stdin=text)
    assert code == 0
    objs = records(out)
    assert [o["type"] for o in objs] == ["packet", "packet", "iptrace_end"]
    assert objs[-1]["skipped"] == 2 and objs[-1]["source"] == "stdin"
    code, out, err = run("--from-log", "-", stdin=text)
    assert "2 malformed lines skipped" in err


def test_from_log_nothing_traced_exits_1() -> None:
    code, out, err = run("--from-log", "-", stdin="just a syslog line\n\n")
    assert code == 1 and out == ""
    assert "0 packets traced" in err


def test_from_log_only_garbage_is_counted() -> None:
    code, _, err = run("--from-log", "-", stdin="kernel: TRACE: filter:INPUT:rule:1 IN=eth0 OUT= SRC=1\n")
    assert code == 1 and "1 malformed line skipped" in err


@pytest.mark.parametrize("argv,message", [
    (["--from-log", "/nonexistent/trace.log"], "cannot read /nonexistent/trace.log: no such file"),
    (["--from-log", "/"], "it is a directory"),
    (["-4", "-6"], "only one of -4 and -6"),
    (["--count", "0"], "--count must be at least 1"),
    (["--duration", "-1"], "--duration must be a positive"),
    (["--backend", "iptables"], "--backend must be auto, nft or legacy"),
    (["--dport", "abc"], "--dport"),
    (["--from-log", "/dev/zero"], "/dev/zero is a device, not a trace log"),
    (["-i", "nosuchif0"], "-i nosuchif0: no such interface"),
    (["--cleanup", "-p", "udp"], "--cleanup takes no other option (got -p)"),
    (["--cleanup", "--from-log", "-"], "--cleanup takes no other option (got --from-log)"),
])
def test_bad_input_one_line_exit_2(argv: list[str], message: str) -> None:
    code, _out, err = run(*argv)
    assert code == 2
    assert message in err
    assert err.count("\n") <= 2 and "Traceback" not in err


def test_from_log_filter_options_select_packets() -> None:
    code, out, _ = run("--from-log", str(DATA / "kernel_trace.log"), "-p", "tcp", "--dport", "22", "--json")
    ids = [json.loads(line)["id"] for line in out.splitlines() if '"packet"' in line]
    assert code == 0 and ids == ["4", "5"]
    code, out, _ = run("--from-log", str(DATA / "kernel_trace.log"), "-6", "--json")
    ids = [json.loads(line)["id"] for line in out.splitlines() if '"packet"' in line]
    assert ids == ["6"]
    code, out, _ = run("--from-log", str(DATA / "kernel_trace.log"), "-s", "10.244.0.0/16", "--json")
    ids = [json.loads(line)["id"] for line in out.splitlines() if '"packet"' in line]
    assert ids == ["2"]
    code, out, err = run("--from-log", str(DATA / "kernel_trace.log"), "-d", "203.0.113.1")
    assert code == 1 and out == "" and "0 packets traced" in err

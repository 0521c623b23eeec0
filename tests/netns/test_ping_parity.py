"""gnt ping beside iputils ping, in the same run, in the h1 ── r1 ── r2 ── r3 ── h2 chain.

Each case runs iputils' ping and gnt ping with the same arguments from h1 (as nobody unless
the case needs root) and compares what parsers see: the text line for line with only the
measured numbers masked, and what `jc --ping` and pingparsing make of each. Names come from
a hosts file this test writes to /etc/netns/<h1>/hosts, which `ip netns exec` mounts over
/etc/hosts for every command run in h1 (and only there).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jc
import pingparsing
import pytest
from helpers.netns import Chain, Namespace, gnt_command

pytestmark = pytest.mark.netns

H2 = Chain.addresses4["h2"]
H2_6 = Chain.addresses6["h2"]
SILENT = "198.18.4.50"  # on h2's link, dropped by r2: no answer and no error
SILENT6 = "2001:db8:4::50"
NO_HOST = "198.18.4.77"  # on h2's link, nobody there: r3 answers Destination Host Unreachable
UNROUTABLE = "198.18.9.1"  # h1 has an `unreachable` route to 198.18.9.0/24
HOSTS = (
    f"{H2} h2-canon h2alias\n"
    f"{H2_6} h2six-canon h2six\n"
    f"{Chain.addresses4['r3']} dual-canon dual\n"
    f"{Chain.addresses6['r3']} dual-canon dual\n"
)

# The numbers that are measured, not decided: masked before the texts are compared.
MASKS = (
    (re.compile(r"time=[\d.]+ ms"), "time=T ms"),
    (re.compile(r", time \d+ms$", re.M), ", time Tms"),
    (re.compile(r"= [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms"), "= R ms"),
    (re.compile(r"ipg/ewma [\d.]+/[\d.]+ ms"), "ipg/ewma X ms"),
)
TIME_RE = re.compile(r", time (\d+)ms$", re.M)


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def stderr_lines(text: str) -> list[str]:
    """stderr without the program name, and without gnt's extra hint lines."""
    lines = [line for line in text.splitlines() if not line.startswith("gnt ping: hint:")]
    return [re.sub(r"^(gnt )?ping: ", "", line) for line in lines]


def untimed(value: Any) -> Any:
    """A parser's result without the measured fields (times, RTTs, jitter)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items()
                if not any(word in k for word in ("time", "rtt", "round_trip", "jitter"))}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    if isinstance(value, str):  # an unparsable line is kept whole
        return re.sub(r"time[ =][\d.]+", "time=T", value)
    return value


def parsed_by_jc(text: str) -> Any:
    return untimed(jc.parse("ping", text, quiet=True))


def parsed_by_pingparsing(text: str) -> Any:
    result = pingparsing.PingParsing().parse(text).as_dict()
    # Which RTT fields exist says whether an rtt line was found; their values are measured.
    return untimed(result) | {"has_rtt": result.get("rtt_avg") is not None}


def both(ns: Namespace, *args: str, user: str | None = "nobody",
         timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    theirs = ns.run("ping", *args, user=user, check=False, timeout=timeout)
    ours = ns.run(*gnt_command("ping", *args), user=user, check=False, timeout=timeout)
    return theirs, ours


def assert_same(theirs: subprocess.CompletedProcess[str], ours: subprocess.CompletedProcess[str], *,
                parsers: bool = True) -> None:
    assert masked(ours.stdout) == masked(theirs.stdout), f"gnt:\n{ours.stdout}\niputils:\n{theirs.stdout}"
    assert stderr_lines(ours.stderr) == stderr_lines(theirs.stderr)
    if theirs.returncode in (0, 1):
        assert ours.returncode == theirs.returncode
    else:  # iputils' usage errors exit 1 or 2; gnt's are always 2
        assert ours.returncode == 2
    if parsers and theirs.stdout:
        assert parsed_by_jc(ours.stdout) == parsed_by_jc(theirs.stdout)
        assert parsed_by_pingparsing(ours.stdout) == parsed_by_pingparsing(theirs.stdout)


def assert_same_refusal(theirs: subprocess.CompletedProcess[str], ours: subprocess.CompletedProcess[str],
                        value: str) -> None:
    """Both refuse the value before sending: one line each, gnt's quoting the value and, where
    iputils states a range, the same bounds (the wording is gnt's one number parser's)."""
    assert ours.stdout == "" and len(stderr_lines(ours.stderr)) == 1, ours.stderr
    assert value in ours.stderr
    bounds = re.search(r"out of range: (-?\d+) <= value <= (\d+)", theirs.stderr)
    if bounds:
        assert bounds.group(1) in ours.stderr and bounds.group(2) in ours.stderr, (ours.stderr, theirs.stderr)


@pytest.fixture
def net(chain: Chain) -> Iterator[Chain]:
    """The chain with a hosts file for h1, a silent address and an unreachable route."""
    h1 = chain["h1"]
    hosts = Path("/etc/netns") / h1.name
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts").write_text(HOSTS)
    chain["r2"].run("iptables", "-A", "FORWARD", "-d", SILENT, "-j", "DROP")
    chain["r2"].run("ip6tables", "-A", "FORWARD", "-d", SILENT6, "-j", "DROP")
    h1.ip("route", "add", "unreachable", "198.18.9.0/24")
    h1.ip("-6", "route", "add", "unreachable", "2001:db8:9::/64")
    # r3 gives up on a missing neighbour quickly (Destination Host Unreachable within a second).
    chain["r3"].sysctl("net.ipv4.neigh.eth1.mcast_solicit", "1")
    chain["r3"].sysctl("net.ipv4.neigh.eth1.retrans_time_ms", "300")
    try:
        yield chain
    finally:
        shutil.rmtree(hosts, ignore_errors=True)


# -- 1. every block without an rtt line ends with the empty line ------------------------------------
@pytest.mark.parametrize("args", [
    ("-c", "2", "-W", "1", SILENT),
    ("-c", "2", "-W", "1", SILENT6),
    ("-c", "2", "-i", "0.2", "-t", "1", H2_6),
    ("-c", "2", "-i", "0.2", "-t", "2", H2),
    ("-c", "2", "-i", "0.2", "-s", "8", H2),
    ("-c", "2", "-i", "0.2", "-s", "0", H2_6),
    ("-c", "2", "-i", "0.2", "-q", "-W", "1", SILENT),
])
def test_blocks_without_rtt_line(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], *args)
    assert "rtt" not in theirs.stdout and theirs.stdout.endswith("ms\n\n"), theirs.stdout
    assert_same(theirs, ours)
    assert ours.stdout.endswith("\n\n")


# -- 2, 3. names as the resolver gives them, and the -I header --------------------------------------
@pytest.mark.parametrize("args", [
    # Not `-4 dual`: iputils prints an empty name there (`PING  (198.18.3.2)`), gnt the canonical one.
    ("h2alias",), ("h2six",), ("-n", "h2six"), ("-n", "h2alias"), ("h2six-canon",), ("dual",), ("-6", "dual"),
    (H2,), (H2_6,),
    ("-I", Chain.addresses4["h1"], "h2alias"), ("-I", "eth0", "h2alias"),
    ("-I", Chain.addresses6["h1"], "h2six"), ("-I", "eth0", "h2six"), ("-I", Chain.addresses4["h1"], H2),
])
def test_names_and_source_in_the_header(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], "-c", "1", *args)
    assert theirs.returncode == 0, theirs.stderr
    assert_same(theirs, ours)


# -- 4. pipe N and ipg/ewma whenever iputils prints them; no extra line in flood -------------------
def test_pipe_when_several_probes_are_outstanding(net: Chain) -> None:
    theirs, ours = both(net["h1"], "-c", "6", "-i", "0.2", "-W", "3", NO_HOST)
    assert "pipe " in theirs.stdout, theirs.stdout
    # Which probes r3 gives up on, and when, is its timing: the statistics have the same shape.
    def shape(text: str) -> list[str]:
        return [re.sub(r"\d+", "N", line) for line in masked(text).splitlines()[-4:]]

    assert shape(ours.stdout) == shape(theirs.stdout)
    pipes = [int(re.search(r"pipe (\d+)", p.stdout).group(1)) for p in (theirs, ours)]  # type: ignore[union-attr]
    assert abs(pipes[0] - pipes[1]) <= 2, pipes


@pytest.mark.parametrize("args", [
    ("-i", "0", "-c", "50", "-q", H2), ("-i", "0", "-c", "20", H2_6), ("-f", "-c", "30", H2),
    ("-f", "-q", "-c", "30", H2_6), ("-f", "-i", "0.01", "-c", "5", H2), ("-i", "0.001", "-c", "20", "-q", H2),
])
def test_ipg_ewma_and_flood_layout_as_root(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], *args, user=None)
    assert theirs.returncode == 0, theirs.stderr
    # Back to back, a probe sent on the 10 ms timer while one is in flight makes `pipe 2`: timing.
    for result in (theirs, ours):
        result.stdout = re.sub(r", pipe \d+", "", result.stdout)
    assert_same(theirs, ours, parsers="-f" not in args)  # the parsers do not read flood dots


# -- 5. `time` in the statistics: from the start to the last send ----------------------------------
@pytest.mark.parametrize("args", [
    ("-c", "3", "-i", "0.4", H2), ("-c", "2", "-W", "1", SILENT), ("-c", "2", "-w", "3", SILENT),
    ("-w", "2", "-i", "0.5", H2),
])
def test_statistics_time_is_the_last_send(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], *args)
    assert_same(theirs, ours)
    times = [int(TIME_RE.findall(p.stdout)[-1]) for p in (theirs, ours)]
    assert abs(times[0] - times[1]) < 150, times


# -- 6. wrong data: the line and iputils' dump -------------------------------------------------------
@pytest.mark.parametrize(("rule", "args"), [
    ("@th,256,32 set 0x181a1a1a", ("-c", "2", "-i", "0.2")),
    ("@th,640,32 set 0x484a4a4a", ("-c", "1", "-s", "100")),
    ("@th,256,32 set 0xabacabaa", ("-c", "1", "-p", "ab")),
])
def test_wrong_data_and_its_dump(net: Chain, rule: str, args: tuple[str, ...]) -> None:
    net["h2"].run("nft", "-f", "-", input=(
        "table ip gnt_test_mangle {\n"
        f" chain out {{ type filter hook output priority 0; icmp type echo-reply {rule}; }}\n"
        "}\n"))
    theirs, ours = both(net["h1"], *args, H2)
    assert "wrong data byte" in theirs.stdout, theirs.stdout
    assert_same(theirs, ours)


# -- 7. small sizes: 8+N bytes on the wire, no time= and no rtt line below 16 -----------------------
@pytest.mark.parametrize("size", ["0", "1", "5", "7", "8", "15", "16", "17"])
@pytest.mark.parametrize("target", [H2, H2_6])
def test_small_sizes(net: Chain, size: str, target: str) -> None:
    theirs, ours = both(net["h1"], "-c", "2", "-i", "0.2", "-s", size, target)
    assert theirs.returncode == 0
    assert_same(theirs, ours)


# -- 8. deadline semantics ---------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("-c", "2", "-w", "4", SILENT), ("-c", "3", "-w", "0", "-i", "0.2", H2), ("-w", "0", "-c", "2", H2_6),
    ("-c", "2", "-w", "2", "-i", "0.3", H2), ("-w", "1", "-i", "0.3", H2),
])
def test_deadline(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], *args)
    assert_same(theirs, ours)


def test_deadline_stops_at_the_first_error(net: Chain) -> None:
    theirs, ours = both(net["h1"], "-w", "6", "-i", "0.2", NO_HOST)
    for result in (theirs, ours):
        stats = re.search(r"(\d+) packets transmitted, 0 received, \+(\d+) errors", result.stdout)
        assert stats is not None, result.stdout
        assert 1 <= int(stats.group(2)) <= int(stats.group(1)) < 20  # long before the 6 s deadline
    assert ours.returncode == theirs.returncode == 1


@pytest.mark.parametrize("value", ["0.1", "1.5", "-1", "2147483648", "x"])
def test_deadline_values_rejected_as_iputils_rejects_them(net: Chain, value: str) -> None:
    theirs, ours = both(net["h1"], "-c", "1", "-w", value, H2)
    assert theirs.returncode != 0 and ours.returncode == 2
    assert_same_refusal(theirs, ours, value)


# -- 9. a route that cannot be used: nothing is sent ---------------------------------------------------
@pytest.mark.parametrize("target", [UNROUTABLE, "2001:db8:9::1"])
def test_unusable_route_is_a_connect_error(net: Chain, target: str) -> None:
    theirs, ours = both(net["h1"], "-c", "1", target)
    assert theirs.returncode == 2
    assert_same(theirs, ours)


# -- 10. duplicates, errors in JSON, rounded RTTs ----------------------------------------------------
@pytest.mark.parametrize("count", ["1", "3"])
def test_duplicates_counted_as_iputils_counts_them(net: Chain, count: str) -> None:
    # TEE a copy of every echo reply back through r3: each reply arrives twice.
    net["h2"].run("iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", "eth0", "-p", "icmp", "--icmp-type",
                  "echo-reply", "-j", "TEE", "--gateway", "198.18.4.1")
    theirs, ours = both(net["h1"], "-c", count, "-i", "0.3", H2)
    assert "(DUP!)" in theirs.stdout or count == "1"
    assert_same(theirs, ours)


def test_json_errors_are_not_timeouts_and_floats_are_rounded(net: Chain) -> None:
    h1 = net["h1"]
    result = h1.gnt("ping", "--json", "-c", "3", "-i", "0.2", "-t", "2", H2, user="nobody")
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["seq"] for o in objects if o["type"] == "error"] == [1, 2, 3]
    assert [o for o in objects if o["type"] == "timeout"] == []
    ok = h1.gnt("ping", "--json", "-c", "5", "-i", "0.05", H2, user="nobody")
    objects = [json.loads(line) for line in ok.stdout.splitlines()]
    summary = next(o for o in objects if o["type"] == "summary")
    floats = [r["time_ms"] for r in objects if r["type"] == "reply"] + list(summary["rtt"].values())
    assert all(f == round(f, 3) and len(repr(f).split(".")[1]) <= 3 for f in floats), floats
    # Lost probes are timeouts, once each.
    lost = h1.gnt("ping", "--json", "-c", "2", "-i", "0.2", "-W", "1", SILENT, user="nobody")
    kinds = [json.loads(line)["type"] for line in lost.stdout.splitlines()]
    assert kinds.count("timeout") == 2 and "error" not in kinds


# -- 11. option bounds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("-c", "0"), ("-c", "-1"), ("-c", "9223372036854775808"), ("-c", "100000000000000000000"),
    ("-m", "-1"), ("-m", "4294967296"), ("-t", "256"), ("-t", "-1"), ("-s", "-1"), ("-s", "2147483648"),
])
def test_option_bounds(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], *args, H2)
    assert theirs.returncode != 0 and ours.returncode == 2, ours.stdout + ours.stderr
    assert_same_refusal(theirs, ours, args[-1])


@pytest.mark.parametrize("args", [
    ("-m", "7", H2), ("-m", "4294967295", H2), ("-m", "2147483648", "-q", H2_6),
    ("-s", "65508", H2_6), ("-s", "65527", H2_6), ("-c", "9223372036854775807", "-w", "1", "-i", "0.4", H2),
])
def test_values_iputils_accepts(net: Chain, args: tuple[str, ...]) -> None:
    theirs, ours = both(net["h1"], "-c", "1", *args)
    assert " received" in theirs.stdout, theirs.stderr
    assert_same(theirs, ours)


# -- -M do above the path MTU: the local stack refuses the send ---------------------------------------
@pytest.mark.parametrize(("args", "user"), [
    (("-M", "do", "-s", "1500", "-c", "2", "-i", "0.2", H2), "nobody"),
    (("-M", "do", "-s", "1500", "-c", "2", "-i", "0.2", H2), None),  # raw socket: the same local error
    (("-M", "do", "-s", "1500", "-c", "2", "-i", "0.2", H2_6), None),
    (("-M", "do", "-s", "1500", "-c", "2", "-i", "0.2", H2_6), "nobody"),
    (("-f", "-M", "do", "-s", "1500", "-c", "5", H2), None),  # flood: an "E" per refused send, no dot
    (("-f", "-M", "do", "-s", "1500", "-c", "5", H2_6), None),
])
def test_a_send_the_local_stack_refuses(net: Chain, args: tuple[str, ...], user: str | None) -> None:
    """nobody gets a ping socket; root, outside ping_group_range here, a raw socket (both programs)."""
    h1 = net["h1"]
    h1.ip("link", "set", "eth0", "mtu", "1400")
    if user is None:
        h1.sysctl("net.ipv4.ping_group_range", "1 0")
    theirs, ours = both(h1, *args, user=user)
    assert "local error" in theirs.stderr or "E" in theirs.stdout, theirs.stdout + theirs.stderr
    assert_same(theirs, ours, parsers="-f" not in args)

"""gnt ping against the real kernel, in the h1 ── r1 ── r2 ── r3 ── h2 chain."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
from helpers.jsonl import records
from helpers.netns import Chain

pytestmark = pytest.mark.netns

H2 = Chain.addresses4["h2"]
H2_6 = Chain.addresses6["h2"]

# A parser written for iputils' output; gnt's must satisfy it unchanged.
REPLY_RE = re.compile(r"^(\d+) bytes from (\S+): icmp_seq=(\d+) ttl=(\d+) time=([\d.]+) ms( \(DUP!\))?$")
STATS_RE = re.compile(
    r"^(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?(?:, \+(\d+) errors)?, "
    r"([\d.]+)% packet loss, time (\d+)ms$"
)
RTT_RE = re.compile(r"^rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms$")


def parse(text: str) -> dict[str, object]:
    replies, stats, rtt = [], None, None
    for line in text.splitlines():
        if m := REPLY_RE.match(line):
            replies.append(m.groups())
        elif m := STATS_RE.match(line):
            stats = m.groups()
        elif m := RTT_RE.match(line):
            rtt = tuple(float(x) for x in m.groups())
    assert stats is not None, text
    return {"replies": replies, "stats": stats, "rtt": rtt}


@pytest.mark.parametrize(("target", "ttl"), [(H2, "61"), (H2_6, "61")])
def test_unprivileged_ping_across_three_routers(chain: Chain, target: str, ttl: str) -> None:
    result = chain["h1"].gnt("ping", "-c", "3", "-i", "0.2", target, user="nobody")
    assert result.returncode == 0, result.stderr
    parsed = parse(result.stdout)
    assert [r[2] for r in parsed["replies"]] == ["1", "2", "3"]
    assert all(r[1] == target and r[3] == ttl and r[0] == "64" for r in parsed["replies"])
    assert parsed["stats"][:2] == ("3", "3")
    rtt = parsed["rtt"]
    assert rtt is not None and 0 < rtt[0] <= rtt[1] <= rtt[2] < 50


def test_output_parses_like_iputils(chain: Chain) -> None:
    """The same parser reads iputils ping and gnt ping; header and block shapes match."""
    h1 = chain["h1"]
    ours = h1.gnt("ping", "-c", "2", "-i", "0.2", H2, user="nobody")
    theirs = h1.run("ping", "-c", "2", "-i", "0.2", H2, check=False)
    for text in (ours.stdout, theirs.stdout):
        parsed = parse(text)
        assert len(parsed["replies"]) == 2
    shape = [re.sub(r"\d+(\.\d+)?", "N", line) for line in ours.stdout.splitlines()]
    their_shape = [re.sub(r"\d+(\.\d+)?", "N", line) for line in theirs.stdout.splitlines()]
    assert shape == their_shape


@pytest.mark.parametrize("target", [H2, H2_6])
def test_raw_fallback_when_dgram_refused_as_root(chain: Chain, target: str) -> None:
    h1 = chain["h1"]
    h1.sysctl("net.ipv4.ping_group_range", "1 0")
    result = h1.gnt("ping", "-c", "2", "-i", "0.2", target)
    assert result.returncode == 0, result.stderr
    assert len(parse(result.stdout)["replies"]) == 2
    # Errors about our probes are found in the quoted packet the raw socket sees.
    result = h1.gnt("ping", "-c", "1", "-t", "1", target)
    assert result.returncode == 1
    assert "From " in result.stdout and ("Time to live exceeded" in result.stdout or "Hop limit" in result.stdout)


def test_no_dgram_no_raw_is_exit_2_with_hint(chain: Chain) -> None:
    h1 = chain["h1"]
    h1.sysctl("net.ipv4.ping_group_range", "1 0")
    result = h1.gnt("ping", "-c", "1", H2, user="nobody")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "ping_group_range" in result.stderr and "CAP_NET_RAW" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("target", "router", "message"), [
    (H2, Chain.addresses4["r2"], "Time to live exceeded"),
    (H2_6, Chain.addresses6["r2"], "Time exceeded: Hop limit"),
])
@pytest.mark.parametrize("user", ["nobody", None])
def test_ttl_exceeded_from_second_router(chain: Chain, target: str, router: str, message: str,
                                         user: str | None) -> None:
    result = chain["h1"].gnt("ping", "-c", "2", "-i", "0.2", "-t", "2", target, user=user)
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("From")]
    assert lines == [f"From {router} icmp_seq=1 {message}", f"From {router} icmp_seq=2 {message}"]
    assert parse(result.stdout)["stats"][3] == "2"  # +2 errors


def _fast_arp_failure(chain: Chain) -> None:
    r3 = chain["r3"]
    r3.sysctl("net.ipv4.neigh.eth1.mcast_solicit", "1")
    r3.sysctl("net.ipv4.neigh.eth1.retrans_time_ms", "300")


@pytest.mark.parametrize("user", ["nobody", None])
def test_unreachable_host(chain: Chain, user: str | None) -> None:
    _fast_arp_failure(chain)
    result = chain["h1"].gnt("ping", "-c", "1", "-W", "5", "198.18.4.77", user=user)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"From {Chain.addresses4['r3']} icmp_seq=1 Destination Host Unreachable" in result.stdout
    # iputils says the same thing about the same host.
    theirs = chain["h1"].run("ping", "-c", "1", "-W", "5", "198.18.4.77", check=False)
    assert f"From {Chain.addresses4['r3']} icmp_seq=1 Destination Host Unreachable" in theirs.stdout


def test_loss_counted_exactly(chain: Chain) -> None:
    r2 = chain["r2"]
    r2.run("iptables", "-A", "FORWARD", "-p", "icmp", "--icmp-type", "echo-request", "-m", "statistic",
           "--mode", "random", "--probability", "0.3", "-j", "DROP")
    result = chain["h1"].gnt("ping", "-c", "60", "-i", "0.005", "-W", "1", "-q", H2, user="nobody", timeout=60)
    counters = r2.run("iptables", "-L", "FORWARD", "-v", "-x", "-n").stdout
    dropped = int(next(line.split()[0] for line in counters.splitlines() if "statistic" in line))
    stats = parse(result.stdout)["stats"]
    transmitted, received = int(stats[0]), int(stats[1])
    assert transmitted == 60
    assert transmitted - received == dropped
    assert 0 < dropped < 60
    assert result.stdout.count("bytes from") == 0  # -q
    assert result.returncode == 0


def test_duplicates_flagged(chain: Chain) -> None:
    h2 = chain["h2"]
    # TEE a copy of every echo reply back through r3: h1 receives each reply twice.
    h2.run("iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", "eth0", "-p", "icmp", "--icmp-type",
           "echo-reply", "-j", "TEE", "--gateway", Chain.addresses4["r3"].replace(".3.2", ".4.1"))
    result = chain["h1"].gnt("ping", "-c", "3", "-i", "0.3", H2, user="nobody")
    parsed = parse(result.stdout)
    dups = [r for r in parsed["replies"] if r[5]]
    # As iputils: the run ends at the third reply, before the copy of it arrives.
    assert len(dups) == 2
    assert parsed["stats"][2] == "2"
    assert parsed["stats"][:2] == ("3", "3")


def test_deadline(chain: Chain) -> None:
    h1 = chain["h1"]
    start = time.monotonic()
    result = h1.gnt("ping", "-w", "1", "-i", "0.2", H2, user="nobody")
    took = time.monotonic() - start
    assert result.returncode == 0
    stats = parse(result.stdout)["stats"]
    assert 4 <= int(stats[0]) <= 6
    assert took < 5
    # Fewer than -c replies by the deadline: exit 1, like iputils.
    chain["r2"].run("iptables", "-A", "FORWARD", "-p", "icmp", "-j", "DROP")
    result = h1.gnt("ping", "-w", "1", "-c", "3", "-i", "0.2", H2, user="nobody")
    assert result.returncode == 1


def test_json_lines(chain: Chain) -> None:
    result = chain["h1"].gnt("ping", "--json", "-c", "2", "-i", "0.2", "-t", "2", H2, user="nobody")
    objects = records(result.stdout)
    assert [o["type"] for o in objects] == ["error", "error", "summary"]  # an error is not also a timeout
    assert objects[0] == {"type": "error", "seq": 1, "from": Chain.addresses4["r2"], "icmp_type": 11,
                          "icmp_code": 0, "message": "Time to live exceeded"}
    summary = objects[-1]
    assert summary["transmitted"] == 2 and summary["received"] == 0 and summary["errors"] == 2
    assert summary["loss_percent"] == 100.0 and summary["rtt"] is None
    ok = chain["h1"].gnt("ping", "--json", "-c", "2", "-i", "0.2", H2_6, user="nobody")
    replies = records(ok.stdout)
    assert [r["seq"] for r in replies if r["type"] == "reply"] == [1, 2]
    assert all(isinstance(r["time_ms"], float) and r["ttl"] == 61 for r in replies if r["type"] == "reply")


def test_sigint_prints_statistics(chain: Chain) -> None:
    proc = chain["h1"].gnt_popen("ping", "-i", "0.2", H2, user="nobody")
    time.sleep(1.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    stats = parse(out)["stats"]
    assert int(stats[0]) >= 5
    assert "Traceback" not in err


def test_sigquit_prints_interim(chain: Chain) -> None:
    proc = chain["h1"].gnt_popen("ping", "-i", "0.2", "-c", "8", H2, user="nobody")
    time.sleep(0.9)
    proc.send_signal(signal.SIGQUIT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert re.search(r"\d+/\d+ packets, \d+% loss, min/avg/ewma/max = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms", err), err
    assert parse(out)["stats"][:2] == ("8", "8")


def test_timestamp_is_the_classic_icmp_data_timestamp(chain: Chain) -> None:
    """tshark reads gnt's payload start as the ICMP data timestamp, within a second of now."""
    h2 = chain["h2"]
    capture = h2.popen("tshark", "-i", "eth0", "-c", "2", "-f", "icmp[icmptype] == icmp-echo",
                       "-T", "fields", "-e", "icmp.data_time_relative", "-e", "icmp.seq")
    time.sleep(1.5)
    chain["h1"].gnt("ping", "-c", "2", "-i", "0.2", H2, user="nobody")
    try:
        out, err = capture.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        capture.kill()
        raise
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert len(rows) == 2, err
    for relative, _seq in rows:
        assert relative, f"tshark found no ICMP data timestamp: {out!r}"
        assert abs(float(relative)) < 1.0


def test_unknown_host_is_one_line(chain: Chain) -> None:
    result = chain["h1"].gnt("ping", "-c", "1", "no-such-host.invalid", user="nobody")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no-such-host.invalid" in result.stderr


def test_interface_and_source_binding(chain: Chain) -> None:
    h1 = chain["h1"]
    result = h1.gnt("ping", "-c", "1", "-I", "eth0", H2, user="nobody")
    assert result.returncode == 0, result.stderr
    header = f"PING {H2} ({H2}) from {Chain.addresses4['h1']} eth0: 56(84) bytes of data."
    assert result.stdout.splitlines()[0] == header
    result = h1.gnt("ping", "-c", "1", "-I", Chain.addresses4["h1"], H2, user="nobody")
    assert result.returncode == 0, result.stderr
    result = h1.gnt("ping", "-c", "1", "-I", "nosuch0", H2, user="nobody")
    assert result.returncode == 2 and "unknown interface" in result.stderr


def _mangle_replies(chain: Chain, rule: str) -> None:
    chain["h2"].run("nft", "-f", "-", input=(
        "table ip gnt_test_mangle {\n"
        f" chain out {{ type filter hook output priority 0; icmp type echo-reply {rule}; }}\n"
        "}\n"))


@pytest.mark.parametrize("user", ["nobody", None])
def test_wrong_data_reported(chain: Chain, user: str | None) -> None:
    # +1 on one data word and -1 on the next keeps the ICMP checksum valid: only the data is wrong.
    # (iputils checks the data after its 16-byte timestamp: bytes 24..27 here.)
    _mangle_replies(chain, "@th,256,32 set 0x181a1a1a")
    result = chain["h1"].gnt("ping", "-c", "2", "-i", "0.2", H2, user=user)
    assert result.returncode == 0
    assert result.stdout.count("wrong data byte #25 should be 0x19 but was 0x1a") == 2


def test_corrupted_reply_never_counted(chain: Chain) -> None:
    """A reply whose checksum is broken is not a reply: with a raw socket gnt sees and flags it."""
    _mangle_replies(chain, "@th,128,8 set 0xaa")
    chain["h1"].sysctl("net.ipv4.ping_group_range", "1 0")  # root: raw socket
    result = chain["h1"].gnt("ping", "-c", "2", "-i", "0.2", "-W", "1", H2)
    assert result.returncode == 1
    assert result.stdout.count("(BAD CHECKSUM!)") == 2
    stats = result.stdout.splitlines()[-2]  # the block ends with iputils' (here empty) last line
    assert stats.startswith("2 packets transmitted, 0 received, +2 corrupted, 100% packet loss")
    # The unprivileged socket never sees them: the kernel drops ICMP with a bad checksum.
    chain["h1"].sysctl("net.ipv4.ping_group_range", "0 2147483647")
    result = chain["h1"].gnt("ping", "-c", "2", "-i", "0.2", "-W", "1", H2, user="nobody")
    assert result.returncode == 1 and "2 packets transmitted, 0 received, 100% packet loss" in result.stdout


def test_flood_as_root(chain: Chain) -> None:
    result = chain["h1"].gnt("ping", "-f", "-c", "200", H2)
    assert result.returncode == 0, result.stderr
    stats = parse(result.stdout)["stats"]
    assert stats[:2] == ("200", "200")
    assert "ipg/ewma" in result.stdout
    refused = chain["h1"].gnt("ping", "-f", "-c", "2", H2, user="nobody")
    assert refused.returncode == 2 and "flood" in refused.stderr


def test_report_outstanding_and_timestamps(chain: Chain) -> None:
    chain["r2"].run("iptables", "-A", "FORWARD", "-p", "icmp", "-j", "DROP")
    result = chain["h1"].gnt("ping", "-O", "-D", "-c", "3", "-i", "0.2", "-W", "1", H2, user="nobody")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if "no answer yet" in line]
    assert len(lines) == 2
    assert re.match(r"^\[\d+\.\d{6}\] no answer yet for icmp_seq=1$", lines[0])


def test_errors_and_replies_mixed_are_all_reported(chain: Chain) -> None:
    """Every second probe is rejected by r2: each error is reported once, each reply once."""
    r2 = chain["r2"]
    r2.sysctl("net.ipv4.icmp_ratelimit", "0")
    r2.run("iptables", "-A", "FORWARD", "-p", "icmp", "--icmp-type", "echo-request", "-m", "statistic",
           "--mode", "nth", "--every", "2", "--packet", "0", "-j", "REJECT", "--reject-with", "icmp-host-prohibited")
    result = chain["h1"].gnt("ping", "--json", "-c", "40", "-i", "0.005", "-W", "2", H2, user="nobody")
    objects = records(result.stdout)
    errors = [o for o in objects if o["type"] == "error"]
    replies = [o for o in objects if o["type"] == "reply"]
    summary = objects[-1]
    assert summary["type"] == "summary"
    assert len(errors) == summary["errors"] and len(replies) == summary["received"]
    assert summary["received"] + summary["errors"] == summary["transmitted"]
    assert {o["message"] for o in errors} == {"Destination Host Prohibited"}
    assert sorted(o["seq"] for o in errors + replies) == list(range(1, summary["transmitted"] + 1))


@pytest.mark.parametrize("user", ["nobody", None])
def test_ttl_the_kernel_refuses_is_one_line(chain: Chain, user: str | None) -> None:
    result = chain["h1"].gnt("ping", "-c", "1", "-t", "0", H2, user=user)
    assert result.returncode == 2
    assert result.stderr.strip() == "gnt ping: cannot set unicast time-to-live 0: Invalid argument"

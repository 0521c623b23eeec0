"""One signal policy for every command: SIGTERM (what `timeout`, systemd and Kubernetes send) and
SIGHUP end a command the way Ctrl-C does — its summary, with everything it counted — and the exit
status is 128 + the signal. One test per kind of long-running command, each with a real signal sent
to a real `gnt` process inside a throw-away namespace."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns


@pytest.fixture
def ns(topology: Topology) -> Namespace:
    """A namespace with loopback and a veth 198.18.0.1/24 to a namespace that answers nothing; the
    silent neighbour 198.18.0.9 is a permanent entry, so probes to it leave and are never answered."""
    ns = topology.add("sig")
    sink = topology.add("sink")
    topology.veth(ns, "eth0", sink, "eth0")
    ns.ip("addr", "add", "198.18.0.1/24", "dev", "eth0")
    ns.ip("neigh", "add", "198.18.0.9", "lladdr", "02:00:00:00:00:09", "dev", "eth0", "nud", "permanent")
    return ns


def _wait(until: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _netlink_listeners(ns: Namespace, protocol: int) -> int:
    """Netlink sockets of `protocol` in `ns` that joined a multicast group (a watcher is listening)."""
    rows = [line.split() for line in ns.run("cat", "/proc/net/netlink").stdout.splitlines()[1:]]
    return sum(1 for r in rows if len(r) > 3 and r[1] == str(protocol) and int(r[3], 16) != 0)


def _packet_sockets(ns: Namespace) -> int:
    return ns.bound_packet_sockets()  # capturing, not only opened


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    try:
        proc.send_signal(signum)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _objects(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _summaries(out: str) -> list[dict[str, object]]:
    return [o for o in _objects(out) if o.get("type") == "summary"]


def _line_with(proc: subprocess.Popen[str], text: str) -> str:
    """Read stdout up to the first line containing `text` (the command is under way)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} before the end of the output")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_ping_prints_its_statistics_and_exits_128_plus_signal(ns: Namespace, signum: int) -> None:
    proc = ns.gnt_popen("ping", "-i", "0.2", "--json", "127.0.0.1")
    _line_with(proc, '"type": "reply"')  # the pings are under way
    out, err = _stop(proc, signum)
    assert proc.returncode == 128 + signum, err
    [summary] = _summaries(out)
    assert summary["received"] >= 1  # type: ignore[operator]
    assert "Traceback" not in err


def test_ping_text_statistics_on_sigterm(ns: Namespace) -> None:
    proc = ns.gnt_popen("ping", "-i", "0.2", "127.0.0.1")
    _line_with(proc, "bytes from 127.0.0.1")
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "--- 127.0.0.1 ping statistics ---" in out
    assert err == ""


def test_traceroute_summary_on_sigterm(ns: Namespace) -> None:
    # 198.18.0.9 never answers: the trace waits on hop 1.
    proc = ns.gnt_popen("traceroute", "-n", "--json", "-q", "1", "-N", "1", "-w", "30", "198.18.0.9")
    _wait(lambda: _sockets_open(ns), "the probe sockets")
    time.sleep(0.3)
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    [summary] = _summaries(out)
    assert summary["interrupted"] is True and summary["reached"] is False and summary["hops"] == 0
    assert "Traceback" not in err


def test_traceroute_text_says_it_was_interrupted(ns: Namespace) -> None:
    proc = ns.gnt_popen("traceroute", "-n", "-q", "1", "-N", "1", "-w", "30", "198.18.0.9")
    _line_with(proc, "traceroute to 198.18.0.9")
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert err.splitlines()[-1:] == ["gnt traceroute: interrupted after 0 complete hops"], (out, err)


def _sockets_open(ns: Namespace) -> bool:
    """A UDP or ICMP socket is open in the namespace (the trace has started)."""
    udp = ns.run("cat", "/proc/net/udp").stdout.splitlines()[1:]
    icmp = ns.run("cat", "/proc/net/icmp").stdout.splitlines()[1:]
    raw = ns.run("cat", "/proc/net/raw").stdout.splitlines()[1:]
    return bool(udp or icmp or raw)


def test_conntrack_watch_summary_on_sigterm(ns: Namespace) -> None:
    proc = ns.gnt_popen("conntrack", "watch", "--json")
    _wait(lambda: _netlink_listeners(ns, 12) >= 1, "the ctnetlink listener")
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    [summary] = _summaries(out)
    assert summary["events"] == 0 and summary["lost"] == 0
    assert "Traceback" not in err


def test_neigh_watch_summary_on_sigterm(ns: Namespace) -> None:
    proc = ns.gnt_popen("neigh", "--watch", "--json")
    _wait(lambda: _netlink_listeners(ns, 0) >= 1, "the rtnetlink listener")
    ns.ip("neigh", "add", "198.18.0.7", "lladdr", "02:00:00:00:00:07", "dev", "eth0")  # one transition
    _wait(lambda: proc.poll() is not None or _neigh_seen(ns), "the neighbour entry")
    time.sleep(0.5)
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    changes = [o for o in _objects(out) if o["type"] == "neighbor_change"]
    [summary] = _summaries(out)
    assert summary == {"type": "summary", "changes": len(changes), "duration": summary["duration"],
                       "interrupted": True}
    assert [c["address"] for c in changes] == ["198.18.0.7"]
    assert "Traceback" not in err


def _neigh_seen(ns: Namespace) -> bool:
    return "198.18.0.7" in ns.ip("neigh", "show", "dev", "eth0").stdout


# Sends N VXLAN datagrams (zero UDP checksum is legal; the scan counts them) to 127.0.0.1:8472.
VXLAN_SENDER = """
import socket, sys
inner = bytes.fromhex("02000000000202000000000108004500001c000100004001f7cdc612000ac61200090800f7ff00000000")
header = bytes.fromhex("0800000000006400")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(header + inner, ("127.0.0.1", 8472))
"""


def test_vxlan_live_scan_summary_on_sigterm(ns: Namespace) -> None:
    proc = ns.gnt_popen("vxlan-csum", "scan", "-i", "lo", "--json")
    _wait(lambda: _packet_sockets(ns) >= 1, "the packet socket")
    ns.run(sys.executable, "-c", VXLAN_SENDER, "3")
    time.sleep(0.5)
    out, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    [summary] = _summaries(out)
    assert summary["vxlan_packets"] >= 3  # on lo each datagram may be seen leaving and arriving
    assert "Traceback" not in err


def test_sigint_is_still_130(ns: Namespace) -> None:
    proc = ns.gnt_popen("conntrack", "watch", "--json")
    _wait(lambda: _netlink_listeners(ns, 12) >= 1, "the ctnetlink listener")
    out, err = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    assert len(_summaries(out)) == 1
    assert err == "\n"

"""`gnt conntrack` against the real kernel: a load balancer with DNAT and MASQUERADE.

    client ── lb ── backend
    198.18.10.2   198.18.10.1 | 198.18.20.1   198.18.20.2
    2001:db8:10::2  2001:db8:10::1 | 2001:db8:20::1  2001:db8:20::2

The load balancer owns the VIP 198.18.10.100 (2001:db8:10::100) and, in nftables, DNATs
VIP:8080 (TCP and UDP) to backend:80 and MASQUERADEs what leaves toward the backend. Real
TCP and UDP flows go through it; conntrack is per network namespace, so every listing runs
in the lb namespace.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from helpers.jsonl import records
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns

VIP4, VIP6 = "198.18.10.100", "2001:db8:10::100"
CLIENT4, CLIENT6 = "198.18.10.2", "2001:db8:10::2"
LB_BACK4, LB_BACK6 = "198.18.20.1", "2001:db8:20::1"
BACKEND4, BACKEND6 = "198.18.20.2", "2001:db8:20::2"

NFT_RULES = f"""
table inet gnt_lb {{
    chain pre {{
        type nat hook prerouting priority dstnat;
        ip daddr {VIP4} tcp dport 8080 dnat ip to {BACKEND4}:80
        ip daddr {VIP4} udp dport 8080 dnat ip to {BACKEND4}:80
        ip6 daddr {VIP6} tcp dport 8080 dnat ip6 to [{BACKEND6}]:80
        ip6 daddr {VIP6} udp dport 8080 dnat ip6 to [{BACKEND6}]:80
    }}
    chain post {{
        type nat hook postrouting priority srcnat;
        oifname "eth1" masquerade
    }}
}}
"""

# The backend: a TCP server that answers every line, a UDP server that echoes, on port 80 (v4 and v6).
BACKEND_SERVER = r"""
import socket, threading, sys
def tcp(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 80)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
def serve(c):
    while True:
        data = c.recv(4096)
        if not data:
            c.close(); return
        c.sendall(b"pong " + data)
def udp(family, addr):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, 80))
    while True:
        data, peer = s.recvfrom(4096)
        s.sendto(b"pong " + data, peer)
for family, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    threading.Thread(target=tcp, args=(family, addr), daemon=True).start()
    threading.Thread(target=udp, args=(family, addr), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# The client: one TCP connection per address given, kept open; answers on stdout, then waits.
TCP_CLIENT = r"""
import socket, sys, time
conns = []
for addr in sys.argv[1:]:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    c = socket.create_connection((addr, 8080), timeout=5)
    c.sendall(b"ping\n")
    print(c.recv(100).decode().strip(), c.getsockname()[1], flush=True)
    conns.append(c)
time.sleep(120)
"""

# One UDP exchange per (address, source port): prints the reply.
UDP_CLIENT = r"""
import socket, sys
addr, first_port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
for port in range(first_port, first_port + count):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(("", port))
    s.settimeout(3)
    s.sendto(b"hello", (addr, 8080))
    if count == 1:
        print(s.recv(100).decode(), flush=True)
    s.close()
"""


class LoadBalancer:
    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.client = topo.add("client")
        self.lb = topo.add("lb")
        self.backend = topo.add("backend")
        topo.veth(self.client, "eth0", self.lb, "eth0")
        topo.veth(self.lb, "eth1", self.backend, "eth0")
        self.client.ip("addr", "add", f"{CLIENT4}/24", "dev", "eth0")
        self.client.ip("-6", "addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
        self.client.ip("route", "add", "default", "via", "198.18.10.1")
        self.client.ip("-6", "route", "add", "default", "via", "2001:db8:10::1")
        self.lb.ip("addr", "add", "198.18.10.1/24", "dev", "eth0")
        self.lb.ip("addr", "add", f"{VIP4}/32", "dev", "eth0")
        self.lb.ip("-6", "addr", "add", "2001:db8:10::1/64", "dev", "eth0", "nodad")
        self.lb.ip("-6", "addr", "add", f"{VIP6}/128", "dev", "eth0", "nodad")
        self.lb.ip("addr", "add", f"{LB_BACK4}/24", "dev", "eth1")
        self.lb.ip("-6", "addr", "add", f"{LB_BACK6}/64", "dev", "eth1", "nodad")
        self.lb.sysctl("net.ipv4.ip_forward", "1")
        self.lb.sysctl("net.ipv6.conf.all.forwarding", "1")
        self.backend.ip("addr", "add", f"{BACKEND4}/24", "dev", "eth0")
        self.backend.ip("-6", "addr", "add", f"{BACKEND6}/64", "dev", "eth0", "nodad")
        self.backend.ip("route", "add", "default", "via", LB_BACK4)
        self.backend.ip("-6", "route", "add", "default", "via", LB_BACK6)
        self.lb.run("nft", "-f", "-", input=NFT_RULES)
        self.server = self.backend.popen(sys.executable, "-c", BACKEND_SERVER, BACKEND4, BACKEND6)
        assert self.server.stdout is not None
        assert self.server.stdout.readline().strip() == "ready"
        self.tcp_client: subprocess.Popen[str] | None = None

    def open_tcp(self, *addresses: str) -> list[int]:
        """TCP connections to VIP:8080 kept open; returns their client ports."""
        self.tcp_client = self.client.popen(sys.executable, "-c", TCP_CLIENT, *addresses)
        assert self.tcp_client.stdout is not None
        ports = []
        for _ in addresses:
            line = self.tcp_client.stdout.readline().split()
            assert line[:2] == ["pong", "ping"], line
            ports.append(int(line[2]))
        return ports

    def udp(self, address: str, port: int, count: int = 1) -> str:
        out = self.client.run(sys.executable, "-c", UDP_CLIENT, address, str(port), str(count), timeout=60)
        return out.stdout.strip()

    def gnt(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.lb.gnt("conntrack", *args, user=user)

    def entries(self, *args: str) -> list[dict[str, object]]:
        out = self.gnt("list", "--json", *args)
        assert out.returncode in (0, 1), out.stderr
        return [obj for obj in records(out.stdout) if obj["type"] == "entry"]


@pytest.fixture
def lb(topology: Topology) -> Iterator[LoadBalancer]:
    balancer = LoadBalancer(topology)
    yield balancer
    for proc in (balancer.tcp_client, balancer.server):
        if proc is not None:
            proc.kill()
            proc.wait()


def _find(entries: list[dict[str, object]], proto: str, src: str, sport: int) -> dict[str, object]:
    for entry in entries:
        original = entry["original"]
        assert isinstance(original, dict)
        if entry["proto"] == proto and original["src"] == src and original.get("sport") == sport:
            return entry
    raise AssertionError(f"no {proto} entry from {src}:{sport} in {entries}")


def test_list_spells_out_dnat_and_snat(lb: LoadBalancer) -> None:
    (tcp_port,) = lb.open_tcp(VIP4)
    assert lb.udp(VIP4, 40001) == "pong hello"
    entries = lb.entries()
    tcp = _find(entries, "tcp", CLIENT4, tcp_port)
    assert tcp["state"] == "ESTABLISHED"
    assert tcp["family"] == "ipv4"
    assert tcp["original"] == {"src": CLIENT4, "dst": VIP4, "sport": tcp_port, "dport": 8080}
    assert tcp["reply"] == {"src": BACKEND4, "dst": LB_BACK4, "sport": 80, "dport": tcp_port}
    assert tcp["nat"] == ["snat", "dnat"]
    assert "ASSURED" in tcp["status"] and "SEEN_REPLY" in tcp["status"]
    assert "DST_NAT" in tcp["status"] and "SRC_NAT" in tcp["status"]
    assert isinstance(tcp["timeout"], int) and tcp["timeout"] > 0
    assert isinstance(tcp["id"], int)
    assert tcp["mark"] == 0 and tcp["zone"] == 0
    udp = _find(entries, "udp", CLIENT4, 40001)
    assert udp["state"] is None
    assert udp["reply"] == {"src": BACKEND4, "dst": LB_BACK4, "sport": 80, "dport": 40001}
    assert udp["nat"] == ["snat", "dnat"]

    text = lb.gnt("list")
    assert text.returncode == 0, text.stderr
    line = next(ln for ln in text.stdout.splitlines() if f"{CLIENT4}:{tcp_port} -> {VIP4}:8080" in ln)
    assert line.split()[:2] == ["tcp", "ESTABLISHED"]
    assert f"DNAT to {BACKEND4}:80  SNAT to {LB_BACK4}" in line
    assert f"SNAT to {LB_BACK4}:" not in line  # MASQUERADE kept the port: no port shown
    assert "[ASSURED]" in line and "timeout=" in line
    assert "flow entries have been shown" in text.stderr


def test_filters_select(lb: LoadBalancer) -> None:
    (tcp_port,) = lb.open_tcp(VIP4)
    lb.udp(VIP4, 40002)
    # An entry without NAT: the client talks to the lb's own address (no rule matches).
    lb.client.run(sys.executable, "-c", "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                  "s.sendto(b'x', ('198.18.10.1', 9999))")

    def keys(*args: str) -> set[tuple[object, object]]:
        return {(e["proto"], e["original"]["sport"]) for e in lb.entries(*args)}  # type: ignore[index]

    assert keys("-p", "udp", "--dnat") == {("udp", 40002)}
    assert ("tcp", tcp_port) in keys("-p", "tcp", "-d", f"{VIP4}/32", "--dport", "8080")
    assert keys("-p", "tcp", "-d", f"{VIP4}/32", "--dport", "8080") == {("tcp", tcp_port)}
    assert keys("--reply-src", BACKEND4, "--sport", str(tcp_port)) == {("tcp", tcp_port)}
    assert keys("--reply-dst", "198.18.20.0/24", "-p", "udp") == {("udp", 40002)}
    assert keys("-p", "tcp", "--state", "ESTABLISHED", "-s", "198.18.10.0/24") == {("tcp", tcp_port)}
    assert keys("--snat", "-p", "tcp") == {("tcp", tcp_port)}
    assert keys("--nat", "-4") == {("tcp", tcp_port), ("udp", 40002)}
    plain = lb.entries("-p", "udp", "--dport", "9999")
    assert len(plain) == 1 and plain[0]["nat"] == []
    assert lb.entries("--nat", "--dport", "9999") == []
    assert len(lb.entries("--zone", "0", "--mark", "0/0xffffffff")) == len(lb.entries())
    # Nothing matched: exit 1, with the summary on stderr.
    for args in (("--mark", "0x5"), ("-6", "-p", "tcp"), ("-p", "sctp"), ("--zone", "7"), ("-s", "203.0.113.0/24")):
        out = lb.gnt("list", *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert out.stdout == ""


_TIMEOUT = re.compile(r"^(\S+ +\d+ )\d+ ")  # "tcp      6 431999 ...": the third field


def _without_timeout(line: str) -> str:
    """A conntrack -L line, byte for byte, less its timeout: that ticks between the two dumps."""
    stripped, found = _TIMEOUT.subn(r"\1", line)
    assert found == 1, line
    return stripped


def test_output_conntrack_parses_like_conntrack_tools(lb: LoadBalancer) -> None:
    ports = lb.open_tcp(VIP4, VIP6)
    lb.udp(VIP4, 40003)
    lb.udp(VIP6, 40004)
    lb.client.run("ping", "-c", "1", "-W", "2", "198.18.10.1")  # an ICMP entry (type/code/id fields)
    lb.client.run("ping", "-6", "-c", "1", "-W", "2", "2001:db8:10::1")
    ours = lb.gnt("list", "-o", "conntrack")
    assert ours.returncode == 0, ours.stderr
    theirs = lb.lb.run("conntrack", "-L")
    mine = sorted(map(_without_timeout, ours.stdout.splitlines()))
    reference = sorted(map(_without_timeout, theirs.stdout.splitlines()))
    assert len(mine) >= 6
    assert mine == reference
    joined = ours.stdout
    assert f"sport={ports[0]} dport=8080" in joined and "icmpv6   58" in joined and "type=8 code=0" in joined


# Entries conntrack -I makes in the lb's table beside the real flows: zones of both kinds, the
# states and protocols the filters name, zero ports, marks, and a reply tuple that differs from
# the original without any NAT done (conntrack-tools does not call that NAT).
CRAFTED = (
    ("-p", "tcp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "1000", "--dport", "80",
     "--state", "ESTABLISHED", "--orig-zone", "9", "-u", "ASSURED"),
    ("-p", "tcp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "1001", "--dport", "80",
     "--state", "ESTABLISHED", "--reply-zone", "7"),
    ("-p", "tcp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "1002", "--dport", "80",
     "--state", "ESTABLISHED", "--zone", "5", "-m", "7"),
    ("-p", "tcp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "1003", "--dport", "80",
     "--state", "SYN_SENT2"),
    ("-p", "tcp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "1004", "--dport", "80",
     "--state", "ESTABLISHED", "--reply-zone", "9"),
    ("-p", "udp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "0", "--dport", "0"),
    ("-p", "udp", "-s", "198.18.30.1", "-d", "198.18.30.2", "--sport", "5", "--dport", "6",
     "-r", "198.18.30.9", "-q", "198.18.30.1", "--reply-port-src", "6", "--reply-port-dst", "5"),
    ("-p", "igmp", "-s", "198.18.30.1", "-d", "198.18.30.2"),
)
# (gnt conntrack list ARGS, conntrack -L ARGS): the same question to both tools.
PARITY = [
    ((), ()),
    (("-p", "0"), ("-p", "0")),
    (("-p", "udp", "--sport", "0"), ("-p", "udp", "--sport", "0")),
    (("-p", "udp", "--dport", "0"), ("-p", "udp", "--dport", "0")),
    (("--zone", "0"), ("--zone", "0")),
    (("--zone", "5"), ("--zone", "5")),
    (("--orig-zone", "9"), ("--orig-zone", "9")),
    (("--reply-zone", "7"), ("--reply-zone", "7")),
    (("--reply-zone", "9"), ("--reply-zone", "9")),
    (("-p", "igmp"), ("-p", "igmp")),
    (("-p", "2"), ("-p", "2")),
    (("-p", "tcp", "--state", "SYN_SENT2"), ("-p", "tcp", "--state", "SYN_SENT2")),
    (("-p", "tcp", "--state", "LISTEN"), ("-p", "tcp", "--state", "LISTEN")),
    (("--mark", "0"), ("--mark", "0")),
    (("--mark", "7"), ("--mark", "7")),
    (("--mark", "4/4"), ("--mark", "4/4")),
    (("-u", "ASSURED"), ("-u", "ASSURED")),
    (("-u", "SEEN_REPLY"), ("-u", "SEEN_REPLY")),
    (("--snat",), ("--src-nat",)),
    (("--dnat",), ("--dst-nat",)),
    (("--nat",), ("--any-nat",)),
    (("--snat", "--dnat"), ("--src-nat", "--dst-nat")),
    (("--dnat", BACKEND4), ("--dst-nat", BACKEND4)),
    (("--dnat", f"{BACKEND4}:80"), ("--dst-nat", f"{BACKEND4}:80")),
    (("--dnat", f"{BACKEND4}:81"), ("--dst-nat", f"{BACKEND4}:81")),
    (("--dnat", "198.18.30.9"), ("--dst-nat", "198.18.30.9")),
    (("--snat", LB_BACK4), ("--src-nat", LB_BACK4)),
    (("--snat", CLIENT4), ("--src-nat", CLIENT4)),
    (("--nat", BACKEND4), ("--any-nat", BACKEND4)),
    (("-d", VIP4), ("-d", VIP4)),
    (("-d", "198.18.30.2", "-p", "tcp", "--dport", "80"), ("-d", "198.18.30.2", "-p", "tcp", "--dport", "80")),
    (("-s", "198.18.30.0/24"), ("-s", "198.18.30.0/24")),
    (("-p", "tcp", "--dport", "8080"), ("-p", "tcp", "--dport", "8080")),
    (("-p", "33"), ("-p", "33")),
]
DCCP_SENDER = r"""
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 33)  # DCCP: tracked generically when the kernel has no DCCP tracker
s.sendto(struct.pack("!HHBBH", 4000, 5000, 3, 0, 0) + bytes(12), ("198.18.10.1", 0))
"""


def test_filters_and_lines_agree_with_conntrack_tools(lb: LoadBalancer) -> None:
    """Every filter of PARITY gives conntrack -L's lines, byte for byte (less the ticking timeout)."""
    (tcp_port,) = lb.open_tcp(VIP4)
    lb.udp(VIP4, 40006)
    lb.client.run(sys.executable, "-c", DCCP_SENDER)
    for args in CRAFTED:
        lb.lb.run("conntrack", "-I", *args, "-t", "600")
    failures = []
    for ours_args, their_args in PARITY:
        ours = lb.gnt("list", "-o", "conntrack", *ours_args)
        theirs = lb.lb.run("conntrack", "-L", *their_args, check=False)
        assert ours.returncode in (0, 1) and theirs.returncode == 0, (ours_args, ours.stderr, theirs.stderr)
        mine = sorted(map(_without_timeout, ours.stdout.splitlines()))
        reference = sorted(map(_without_timeout, theirs.stdout.splitlines()))
        if mine != reference:
            failures.append((ours_args, mine, reference))
        assert ours.returncode == (0 if reference else 1), (ours_args, ours.stderr)
    assert not failures, "\n".join(f"{a}:\n  gnt {m}\n  conntrack {r}" for a, m, r in failures)
    # Zero is a value: `-p 0` matched nothing above and `--sport 0` exactly one entry.
    assert len(lb.entries("-p", "udp", "--sport", "0")) == 1
    # --zone N selects entries with N in either direction (conntrack -L --zone leaves out per-direction
    # zones): the union of what conntrack shows for the three zone options.
    union = set()
    for option in ("--zone", "--orig-zone", "--reply-zone"):
        union |= set(map(_without_timeout, lb.lb.run("conntrack", "-L", option, "9").stdout.splitlines()))
    mine9 = set(map(_without_timeout, lb.gnt("list", "-o", "conntrack", "--zone", "9").stdout.splitlines()))
    assert mine9 == union and len(mine9) == 2
    # JSON: per-direction zones, use and labels.
    (zoned,) = lb.entries("--orig-zone", "9")
    assert zoned["orig_zone"] == 9 and zoned["reply_zone"] is None and zoned["zone"] == 0
    assert zoned["use"] == 1 and zoned["labels"] is None
    (dccp,) = lb.entries("-p", "dccp")
    assert dccp["original"]["sport"] == 0 and dccp["original"]["dport"] == 0  # type: ignore[index]
    # Contradictions are usage errors in both tools.
    for ours_args, their_args in (((("-s", CLIENT4, "-d", CLIENT6)), ("-s", CLIENT4, "-d", CLIENT6)),
                                  (("--snat", "--nat"), ("--src-nat", "--any-nat")),
                                  (("--state", "ESTABLISHED"), ("--state", "ESTABLISHED"))):
        ours = lb.gnt("list", *ours_args)
        theirs = lb.lb.run("conntrack", "-L", *their_args, check=False)
        assert ours.returncode == 2 and theirs.returncode != 0, (ours_args, ours.stderr, theirs.stderr)
        assert len(ours.stderr.splitlines()) == 1 and "Traceback" not in ours.stderr
    assert tcp_port


def test_labels_in_json(lb: LoadBalancer) -> None:
    lb.lb.run("nft", "add table ip gnt_labels; add chain ip gnt_labels pre "
              "{ type filter hook prerouting priority 0; }; add rule ip gnt_labels pre ct label set 3")
    assert lb.udp(VIP4, 40007) == "pong hello"
    (entry,) = lb.entries("-p", "udp", "--sport", "40007")
    assert entry["labels"] == ["3"]
    assert [e["id"] for e in lb.entries("-p", "udp", "-l", "3")] == [entry["id"]]
    assert lb.entries("-p", "udp", "-l", "4") == []


def test_ipv6_flows(lb: LoadBalancer) -> None:
    (port,) = lb.open_tcp(VIP6)
    assert lb.udp(VIP6, 40005) == "pong hello"
    entries = lb.entries("-6")
    assert entries and all(e["family"] == "ipv6" for e in entries)
    tcp = _find(entries, "tcp", CLIENT6, port)
    assert tcp["original"] == {"src": CLIENT6, "dst": VIP6, "sport": port, "dport": 8080}
    assert tcp["reply"] == {"src": BACKEND6, "dst": LB_BACK6, "sport": 80, "dport": port}
    assert tcp["nat"] == ["snat", "dnat"] and tcp["state"] == "ESTABLISHED"
    udp = _find(entries, "udp", CLIENT6, 40005)
    assert udp["nat"] == ["snat", "dnat"]
    text = lb.gnt("list", "-6", "-p", "tcp", "--dnat")
    assert f"[{CLIENT6}]:{port} -> [{VIP6}]:8080  DNAT to [{BACKEND6}]:80  SNAT to {LB_BACK6}" in text.stdout
    assert [e["original"]["src"] for e in lb.entries("-s", "2001:db8:10::/64", "-p", "udp")] == [CLIENT6]  # type: ignore[index]


def test_kernel_timestamps_when_enabled(lb: LoadBalancer) -> None:
    lb.lb.sysctl("net.netfilter.nf_conntrack_timestamp", "1")
    before = time.time()
    (port,) = lb.open_tcp(VIP4)
    (tcp,) = [e for e in lb.entries("-p", "tcp", "--sport", str(port))]
    assert isinstance(tcp["start"], float) and before - 5 <= tcp["start"] <= time.time() + 1
    assert tcp["stop"] is None
    text = lb.gnt("list", "-p", "tcp", "--sport", str(port)).stdout
    assert time.strftime("start=%H:%M:", time.localtime(tcp["start"])) in text
    ours = lb.gnt("list", "-o", "conntrack", "-p", "tcp", "--sport", str(port)).stdout
    theirs = [ln for ln in lb.lb.run("conntrack", "-L").stdout.splitlines() if f"sport={port} " in ln]
    # delta-time is "now - start" in whole seconds at print time: the two may straddle a second.
    strip = re.compile(r" delta-time=\d+")
    assert "delta-time=" in ours
    assert [strip.sub("", _without_timeout(ln)) for ln in ours.splitlines()] == \
        [strip.sub("", _without_timeout(ln)) for ln in theirs]


def _events(out: str) -> list[dict[str, object]]:
    return records(out)


def wait_for_listeners(ns: Namespace, count: int, timeout: float = 30.0) -> None:
    """Until `count` ctnetlink sockets in `ns` have joined event groups: the watchers listen."""
    deadline = time.monotonic() + timeout
    while True:
        table = ns.run("cat", "/proc/net/netlink").stdout.splitlines()[1:]
        fields = [line.split() for line in table]
        listening = sum(1 for f in fields if len(f) > 3 and f[1] == "12" and int(f[3], 16) != 0)
        if listening >= count:
            return
        assert time.monotonic() < deadline, f"{listening} of {count} event listeners after {timeout}s"
        time.sleep(0.1)


class LineReader:
    """Collects a running process's stdout lines in a thread, so a test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r} in {self.lines}"
            time.sleep(0.05)


def test_watch_sees_new_update_destroy_for_udp(lb: LoadBalancer) -> None:
    watch = lb.lb.gnt_popen("conntrack", "watch", "-p", "udp", "--sport", "40010", "--json", "--count", "3",
                            "--duration", "60")
    reference = lb.lb.popen("conntrack", "-E", "-p", "udp", "--orig-port-src", "40010")
    ours_ct = lb.lb.gnt_popen("conntrack", "watch", "-o", "conntrack", "-p", "udp", "--sport", "40010",
                              "--count", "3", "--duration", "60")
    wait_for_listeners(lb.lb, 3)  # all three subscribed before any traffic
    assert lb.udp(VIP4, 40010) == "pong hello"  # NEW, then UPDATE when the reply is seen
    time.sleep(0.5)
    lb.lb.run("conntrack", "-D", "-p", "udp", "--orig-port-src", "40010")  # DESTROY
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    objects = _events(out)
    events = [o for o in objects if o["type"] == "entry"]
    assert [e["event"] for e in events] == ["new", "update", "destroy"]
    for e in events:
        assert e["original"] == {"src": CLIENT4, "dst": VIP4, "sport": 40010, "dport": 8080}
        assert e["reply"] == {"src": BACKEND4, "dst": LB_BACK4, "sport": 80, "dport": 40010}
        assert e["nat"] == ["snat", "dnat"]
        assert isinstance(e["timestamp"], float) and e["timestamp"] > 0
    assert "SEEN_REPLY" not in events[0]["status"] and "SEEN_REPLY" in events[1]["status"]  # type: ignore[operator]
    assert events[0]["portid"] is None and events[1]["portid"] is None  # packets: the kernel
    assert isinstance(events[2]["portid"], int) and events[2]["portid"] > 0  # conntrack -D: a program
    assert objects[-1]["type"] == "summary" and objects[-1]["events"] == 3 and objects[-1]["lost"] == 0

    mine, mine_err = ours_ct.communicate(timeout=60)
    assert ours_ct.returncode == 0, mine_err
    reference.send_signal(signal.SIGINT)  # conntrack -E prints each event as it comes, then its count
    theirs, _ = reference.communicate(timeout=30)
    assert [ln.split()[0] for ln in mine.splitlines()] == ["[NEW]", "[UPDATE]", "[DESTROY]"]
    # The delete came from a program (conntrack -D): both name its netlink port; the program name
    # is looked up in /proc while it may be exiting, so it is compared only when both found it.
    assert "[USERSPACE] portid=" in mine.splitlines()[2]
    if "progname=" not in mine or "progname=" not in theirs:
        mine, theirs = re.sub(r" progname=\S+", "", mine), re.sub(r" progname=\S+", "", theirs)
    assert mine.splitlines() == theirs.splitlines()


def test_watch_counts_lost_events_and_keeps_running(lb: LoadBalancer) -> None:
    watch = lb.lb.gnt_popen("conntrack", "watch", "-p", "udp", "--json", "-b", "4096", "--duration", "120")
    reader = LineReader(watch)
    wait_for_listeners(lb.lb, 1)
    watch.send_signal(signal.SIGSTOP)  # a reader that falls behind: the small buffer overflows
    try:
        lb.udp(VIP4, 41000, count=400)
    finally:
        watch.send_signal(signal.SIGCONT)
    reader.wait_for('"type": "lost"')
    assert lb.udp(VIP4, 40020) == "pong hello"  # still watching after the loss
    reader.wait_for('"sport": 40020')
    watch.send_signal(signal.SIGINT)  # Ctrl-C: the summary, then exit 130
    assert watch.wait(timeout=30) == 130
    reader.thread.join(timeout=10)
    objects = _events("".join(reader.lines))
    lost = [o for o in objects if o["type"] == "lost"]
    assert lost and lost[-1]["total"] >= 1
    assert objects[-1]["type"] == "summary" and objects[-1]["lost"] == lost[-1]["total"]
    # In text mode the loss is said on stderr, stdout keeps conntrack-tools' lines only.
    text = lb.lb.gnt_popen("conntrack", "watch", "-p", "udp", "-o", "conntrack", "-b", "4096", "--count", "5")
    wait_for_listeners(lb.lb, 1)
    text.send_signal(signal.SIGSTOP)
    try:
        lb.udp(VIP4, 42000, count=400)
    finally:
        text.send_signal(signal.SIGCONT)
    out, err = text.communicate(timeout=60)
    assert text.returncode == 0, err
    assert "events lost" in err and "ENOBUFS" in err
    assert len(out.splitlines()) == 5 and all(line.lstrip().startswith("[") for line in out.splitlines())


def test_watch_counts_the_events_lost(lb: LoadBalancer) -> None:
    """ENOBUFS says that events were lost; the summary says how many (new events here: every flow
    made while the reader was stopped is one new entry, so the truth is known)."""
    watch = lb.lb.gnt_popen("conntrack", "watch", "-e", "new", "-p", "udp", "--json", "-b", "4096",
                            "--duration", "120")
    reader = LineReader(watch)
    wait_for_listeners(lb.lb, 1)
    watch.send_signal(signal.SIGSTOP)
    try:
        lb.udp(VIP4, 43000, count=600)
    finally:
        watch.send_signal(signal.SIGCONT)
    assert lb.udp(VIP4, 40021) == "pong hello"
    reader.wait_for('"sport": 40021')
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=30) == 130
    reader.thread.join(timeout=10)
    objects = _events("".join(reader.lines))
    received = sum(1 for o in objects if o["type"] == "entry")
    truly_lost = 601 - received
    (summary,) = [o for o in objects if o["type"] == "summary"]
    assert truly_lost > 100 and summary["lost"] >= 1
    # The overflow count alone is far from the truth; the kernel's drop count is the truth.
    assert summary["lost"] < truly_lost / 10
    assert summary["lost_events"] == truly_lost, (summary, truly_lost)
    lost = [o for o in objects if o["type"] == "lost"]
    assert lost and isinstance(lost[0]["events"], int)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_watch_prints_its_summary_when_interrupted_in_text_mode(lb: LoadBalancer, signum: int) -> None:
    """conntrack -E prints its count when stopped; so does gnt, on SIGINT and on SIGTERM (the
    error boundary turns SIGTERM into the same path), then exits 128+signal."""
    watch = lb.lb.gnt_popen("conntrack", "watch", "-p", "udp")
    reader = LineReader(watch)
    wait_for_listeners(lb.lb, 1)
    assert lb.udp(VIP4, 40022) == "pong hello"
    reader.wait_for("40022")
    watch.send_signal(signum)
    assert watch.wait(timeout=30) == 128 + signum
    err = watch.stderr.read() if watch.stderr is not None else ""
    assert "events shown in" in err, err


def test_stats(lb: LoadBalancer) -> None:
    lb.open_tcp(VIP4)
    out = lb.gnt("stats", "--json")
    assert out.returncode == 0, out.stderr
    objects = _events(out.stdout)
    cpus = [o for o in objects if o["type"] == "cpu"]
    (total,) = [o for o in objects if o["type"] == "stats"]
    assert len(cpus) >= 1
    for name in ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error", "search_restart"):
        assert total[name] == sum(c[name] for c in cpus)  # type: ignore[misc]
    count = lb.lb.run("conntrack", "-C").stdout.strip()
    assert total["entries"] == int(count)
    assert isinstance(total["max_entries"], int) and total["max_entries"] > 0
    text = lb.gnt("stats")
    assert text.returncode == 0
    assert text.stdout.startswith("cpu=0") and "insert_failed=" in text.stdout and "entries  " in text.stdout


@pytest.mark.parametrize("args", [("list",), ("watch", "--duration", "1"), ("stats",)])
def test_non_root_gets_exit_2_and_the_capability_hint(lb: LoadBalancer, args: tuple[str, ...]) -> None:
    out = lb.gnt(*args, user="nobody")
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith("gnt conntrack: ") and "CAP_NET_ADMIN" in lines[0]
    assert lines[1].startswith("gnt conntrack: hint: ") and "cap_net_admin" in lines[1].lower()
    assert "Traceback" not in out.stderr


def test_empty_namespace_lists_nothing_and_exits_0(topology: Topology) -> None:
    ns: Namespace = topology.add("empty")
    out = ns.gnt("conntrack", "list")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert "0 flow entries" in out.stderr
    quiet = ns.gnt("conntrack", "watch", "--duration", "0.5", "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert [o["type"] for o in records(quiet.stdout)] == ["summary"]
    filtered = ns.gnt("conntrack", "watch", "-p", "sctp", "--duration", "0.5")
    assert filtered.returncode == 1 and "0 events shown" in filtered.stderr


def _fill(ns: Namespace, entries: int) -> None:
    """`entries` synthetic entries in ns's table, made through ctnetlink as the benchmark makes them."""
    import importlib.util
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench"
    spec = importlib.util.spec_from_file_location("bench_conntrack", bench / "bench_conntrack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = ns.run(sys.executable, "-c", module.FILL_SCRIPT.format(bench_dir=str(bench)), "0", str(entries))
    assert out.stdout.strip() == "0", out.stdout + out.stderr


@pytest.mark.parametrize("args", [("list",), ("list", "-o", "conntrack"), ("list", "--json")])
def test_a_reader_that_leaves_early_is_not_an_error(topology: Topology, args: tuple[str, ...]) -> None:
    """`gnt conntrack list | head -1`: exit 0 and nothing on stderr (no summary, no broken-pipe noise)."""
    ns: Namespace = topology.add("full")
    _fill(ns, 3000)  # some 400 KB of output: far more than a pipe holds
    proc = ns.gnt_popen("conntrack", *args)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0, err
    assert first and err == "", err


@pytest.mark.parametrize("fmt", [("-o", "conntrack"), (), ("--json",)])
def test_fused_listing_equals_the_general_path(lb: LoadBalancer, fmt: tuple[str, ...]) -> None:
    """An unfiltered listing makes its lines straight from the messages; a filter the kernel
    cannot apply (--zone 0: every entry but the one in zone 5) takes the model path for every
    entry. Both say the same, line for line; and a filter the kernel applies exactly (--mark 0/0)
    is trusted after its first entries, also the same."""
    _fill(lb.lb, 2000)  # the benchmark's mix: TCP with reply tuples, unreplied UDP, IPv6
    lb.open_tcp(VIP4, VIP6)
    lb.udp(VIP4, 40030)
    lb.lb.run("conntrack", "-I", *CRAFTED[2], "-t", "600")  # a zone: the general path inside the fused run
    timeouts = re.compile(r'(timeout=|"timeout": |^\S+ +\d+ )\d+')
    def lines(*args: str) -> list[str]:
        out = lb.gnt("list", *fmt, *args)
        assert out.returncode == 0, out.stderr
        return sorted(timeouts.sub(r"\1", line) for line in out.stdout.splitlines()
                      if '"summary"' not in line and '"meta"' not in line)

    fused, general, trusted = lines(), lines("--zone", "0"), lines("--mark", "0/0")
    zoned = [line for line in fused if "zone=5" in line or '"zone": 5' in line]
    assert len(zoned) == 1 and len(fused) >= 2004
    assert [line for line in fused if line not in zoned] == general
    assert trusted == fused


def test_list_takes_prom_and_npd(topology: Topology, tmp_path: Path) -> None:
    """`conntrack list` writes its batches through its own stream: --prom and --npd still reach it."""
    ns: Namespace = topology.add("promct")
    prom = tmp_path / "ct.prom"
    out = ns.gnt("conntrack", "list", "--prom", str(prom))
    assert out.returncode == 0, out.stderr
    assert 'gnt_run_success{command="conntrack list"} 1' in prom.read_text()
    npd = ns.gnt("conntrack", "list", "--npd")
    assert npd.returncode == 0, npd.stderr
    assert npd.stdout.startswith("conntrack list: ") and len(npd.stdout.splitlines()) == 1


def test_family_filter_counts_the_whole_table(topology: Topology) -> None:
    """`-4` alone is filtered by the kernel (the dump's family): "in the table" is still the table's size,
    IPv6 entries included, as it is when the kernel filters by attributes."""
    ns: Namespace = topology.add("ctfam")
    for k in range(3):
        ns.run("conntrack", "-I", "-p", "udp", "-s", "198.18.31.1", "-d", "198.18.31.2", "--sport", str(2000 + k),
               "--dport", "53", "-t", "600")
    for k in range(2):
        ns.run("conntrack", "-I", "-p", "udp", "-s", "2001:db8:31::1", "-d", "2001:db8:31::2", "--sport",
               str(2000 + k), "--dport", "53", "-t", "600")
    for args, shown in ((("-4",), 3), (("-6",), 2), (("-4", "-p", "udp"), 3)):
        out = ns.gnt("conntrack", "list", *args)
        assert out.returncode == 0, out.stderr
        want = f"{shown} flow entries have been shown (5 in the table)."
        assert out.stderr.strip().endswith(want), (args, out.stderr)

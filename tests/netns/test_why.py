"""gnt why names the cause of the seeds' incidents, each rebuilt in namespaces, in its FIRST line.

Each test builds the incident, runs `gnt why` on the node where an operator would run it, and
asserts the verdict's cause (text: the first line; JSON: the `verdict` object picked by type),
the exit code, and that nothing gnt installed (the nft trace table, the tracefs instance)
survives the run. The healthy path must exit 0 with no cause.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@dataclass
class Run:
    rc: int
    out: str
    err: str
    pid: int

    @property
    def first(self) -> str:
        return self.out.splitlines()[0] if self.out else ""

    def objects(self, kind: str) -> list[dict[str, object]]:
        found = [json.loads(line) for line in self.out.splitlines() if line.strip()]
        return [o for o in found if o.get("type") == kind]


def why(ns: Namespace, *args: str, timeout: float = 60) -> Run:
    proc = ns.gnt_popen("why", *args)
    out, err = proc.communicate(timeout=timeout)
    run = Run(proc.returncode, out, err, proc.pid)
    assert "Traceback" not in err, err
    assert_clean(ns, run.pid)
    return run


def assert_clean(ns: Namespace, pid: int) -> None:
    """No trace table of gnt in the namespace, no tracing instance of this run anywhere."""
    assert "gnt_iptrace" not in ns.run("nft", "list", "ruleset").stdout
    for root in TRACEFS_DIRS:
        path = f"{root}/instances/gnt_drops_{pid}"
        assert not os.path.exists(path), f"{path} left behind"


def link(topo: Topology, a: Namespace, a_if: str, a_addr: str, b: Namespace, b_if: str, b_addr: str) -> None:
    topo.veth(a, a_if, b, b_if)
    a.ip("addr", "add", a_addr, "dev", a_if)
    b.ip("addr", "add", b_addr, "dev", b_if)


def three(topo: Topology) -> tuple[Namespace, Namespace, Namespace]:
    """h1 (198.18.1.1) ── r1 ── h2 (198.18.2.2), forwarding on in r1, default routes on the hosts."""
    h1, r1, h2 = topo.add("h1"), topo.add("r1"), topo.add("h2")
    link(topo, h1, "eth0", "198.18.1.1/24", r1, "eth0", "198.18.1.2/24")
    link(topo, r1, "eth1", "198.18.2.1/24", h2, "eth0", "198.18.2.2/24")
    h1.ip("route", "add", "default", "via", "198.18.1.2")
    h2.ip("route", "add", "default", "via", "198.18.2.1")
    r1.sysctl("net.ipv4.ip_forward", "1")
    return h1, r1, h2


def listen(ns: Namespace, port: int, *, seconds: float = 60) -> subprocess.Popen[str]:
    """A TCP listener that accepts and holds connections."""
    code = ("import socket,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port})); s.listen(64); print('ready', flush=True)\n"
            "held=[]\n"
            f"end=time.time()+{seconds}\n"
            "s.settimeout(0.2)\n"
            "while time.time() < end:\n"
            "    try: held.append(s.accept()[0])\n"
            "    except OSError: pass\n")
    proc = ns.popen("python3", "-c", code)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


# --- the healthy path ---------------------------------------------------------------------------------

def test_healthy_icmp_and_tcp(topology: Topology) -> None:
    h1, _r1, h2 = three(topology)
    server = listen(h2, 80)
    try:
        icmp = why(h1, "198.18.2.2")
        assert icmp.rc == 0, icmp.out
        assert icmp.first.startswith("198.18.2.2 answers: echo reply"), icmp.first
        tcp = why(h1, "198.18.2.2:80", "--json")
        assert tcp.rc == 0, tcp.out
        [verdict] = tcp.objects("verdict")
        assert verdict["cause"] is None and verdict["reachable"] is True
        assert verdict["rule"] == "answered"
        checks = {c["name"]: c for c in tcp.objects("check")}
        assert checks["probe"]["status"] == "ok"
        assert checks["route"]["status"] == "ok"
        assert not [c for c in checks.values() if c["status"] == "fail"]
        assert {"name", "status", "summary", "evidence", "fix"} <= set(checks["route"])
    finally:
        server.kill()


def test_closed_port_is_a_cause(topology: Topology) -> None:
    h1, _r1, _h2 = three(topology)
    run = why(h1, "198.18.2.2:81")
    assert run.rc == 1
    assert run.first.startswith("198.18.2.2 answers but port 81 is closed"), run.first


# --- (1) route missing -------------------------------------------------------------------------------

def test_route_missing(topology: Topology) -> None:
    h1, _r1, _h2 = three(topology)
    h1.ip("route", "del", "default")
    run = why(h1, "198.18.2.2:80")
    assert run.rc == 1
    assert run.first == "no route to 198.18.2.2 in table main (default route missing)", run.first
    assert "ENETUNREACH" in run.out


def test_unreachable_route_type(topology: Topology) -> None:
    h1, _r1, _h2 = three(topology)
    h1.ip("route", "add", "unreachable", "198.18.2.0/24")
    run = why(h1, "198.18.2.2")
    assert run.rc == 1
    assert run.first.startswith("the route to 198.18.2.2 is a unreachable route"), run.first


# --- (2) default gateway absent -----------------------------------------------------------------------

def test_gateway_does_not_answer_arp(topology: Topology) -> None:
    h1, _r1, _h2 = three(topology)
    h1.ip("route", "replace", "default", "via", "198.18.1.99")
    started = time.monotonic()
    run = why(h1, "198.18.2.2:80")
    assert run.rc == 1
    assert run.first.startswith("gateway 198.18.1.99 does not answer ARP on eth0 (neighbour "), run.first
    assert run.first.endswith(("FAILED)", "INCOMPLETE)"))
    assert time.monotonic() - started < 10


# --- (3) router with forwarding off -------------------------------------------------------------------

def test_router_forwarding_off(topology: Topology) -> None:
    _h1, r1, _h2 = three(topology)
    r1.sysctl("net.ipv4.ip_forward", "0")
    run = why(r1, "198.18.2.2:80", "--from", "198.18.1.1")
    assert run.rc == 1
    assert run.first.startswith("forwarding is off on this node: 198.18.1.1 → 198.18.2.2:80 arriving on eth0"), \
        run.first
    assert "net.ipv4.conf.eth0.forwarding=0" in run.first
    assert "sysctl -w net.ipv4.conf.eth0.forwarding=1" in run.out


# --- (4) FORWARD policy DROP, docker style, passive on the router -------------------------------------

def test_forward_policy_drop_passive(topology: Topology) -> None:
    h1, r1, h2 = three(topology)
    r1.run("iptables", "-P", "FORWARD", "DROP")
    r1.run("iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
    r1.run("iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    server = listen(h2, 80)
    try:
        watcher = r1.gnt_popen("why", "198.18.2.2:80", "--watch", "--duration", "4")
        time.sleep(1.5)  # the trace table is in place well before this
        client = h1.run("python3", "-c", "import socket\nfor _ in range(3):\n    s=socket.socket(); s.settimeout(0.3)\n"
                        "    try: s.connect(('198.18.2.2', 80))\n    except OSError: pass\n", check=False)
        assert client.returncode == 0
        out, err = watcher.communicate(timeout=30)
    finally:
        server.kill()
    assert "Traceback" not in err, err
    assert_clean(r1, watcher.pid)
    assert watcher.returncode == 1
    first = out.splitlines()[0]
    assert first == "dropped: filter FORWARD policy DROP (no rule accepted 198.18.1.1 → 198.18.2.2:80)", first
    # the flows the rules do accept are not blamed
    assert "ACCEPT" not in first


def test_passive_nothing_seen_says_so(topology: Topology) -> None:
    _h1, r1, _h2 = three(topology)
    run = why(r1, "198.18.2.2:80", "--watch", "--duration", "1")
    assert run.rc == 1
    assert run.first.startswith("no traffic matching 198.18.2.2:80 crossed this node in 1 s"), run.first


# --- (5) asymmetric routing with rp_filter=1 ----------------------------------------------------------

def test_rp_filter_asymmetric(topology: Topology) -> None:
    n, r, h = topology.add("n"), topology.add("r"), topology.add("h")
    link(topology, n, "eth0", "198.18.1.1/24", r, "eth0", "198.18.1.2/24")
    link(topology, n, "eth1", "198.18.2.1/24", r, "eth1", "198.18.2.2/24")
    link(topology, r, "eth2", "198.18.3.1/24", h, "eth0", "198.18.3.2/24")
    h.ip("route", "add", "default", "via", "198.18.3.1")
    n.ip("route", "add", "198.18.3.0/24", "via", "198.18.1.2")
    r.sysctl("net.ipv4.ip_forward", "1")
    # r sends the replies to n by the other link: n's route back to h is eth0, the replies arrive on eth1
    r.ip("rule", "add", "from", "198.18.3.2", "to", "198.18.1.1", "table", "10")
    r.ip("route", "add", "198.18.1.1", "via", "198.18.2.1", "dev", "eth1", "table", "10")
    n.sysctl("net.ipv4.conf.all.rp_filter", "1")
    run = why(n, "198.18.3.2")
    assert run.rc == 1
    assert run.first == ("dropped by rp_filter on eth1: replies arrive on another interface than the route back "
                         "(eth0)"), run.first
    # with loose rp_filter the same path works: no false cause
    n.sysctl("net.ipv4.conf.all.rp_filter", "2")
    healthy = why(n, "198.18.3.2")
    assert healthy.rc == 0, healthy.out


# --- (6) DNAT (NodePort) to a backend that is gone ---------------------------------------------------

def test_dnat_backend_gone(topology: Topology) -> None:
    client, node, backend = topology.add("c"), topology.add("n"), topology.add("b")
    link(topology, client, "eth0", "198.18.1.1/24", node, "eth0", "198.18.1.2/24")
    link(topology, node, "eth1", "198.18.2.1/24", backend, "eth0", "198.18.2.2/24")
    client.ip("route", "add", "default", "via", "198.18.1.2")
    backend.ip("route", "add", "default", "via", "198.18.2.1")
    node.sysctl("net.ipv4.ip_forward", "1")
    for chain in ("PREROUTING", "OUTPUT"):  # kube-proxy's NodePort: both the node's own and others' traffic
        node.run("iptables", "-t", "nat", "-A", chain, "-d", "198.18.1.2", "-p", "tcp", "--dport", "30080",
                 "-j", "DNAT", "--to-destination", "198.18.2.2:80")
    server = listen(backend, 80)
    holder = client.popen("python3", "-c", "import socket,time\ns=socket.create_connection(('198.18.1.2', 30080))\n"
                          "print('up', flush=True)\ntime.sleep(60)")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        backend.ip("addr", "flush", "dev", "eth0")  # the pod is gone; its conntrack entry is not
        run = why(node, "198.18.1.2:30080")
    finally:
        holder.kill()
        server.kill()
    assert run.rc == 1
    assert run.first.startswith("DNAT sends 198.18.1.2:30080 to 198.18.2.2:80, which does not answer"), run.first
    assert "1 older conntrack entries still point at it" in run.first
    assert "ESTABLISHED 198.18.1.1:" in run.out and "DNAT to 198.18.2.2:80" in run.out


# --- (7) VXLAN with bad outer UDP checksums from the sender ---------------------------------------------

def test_vxlan_bad_outer_checksum(topology: Topology) -> None:
    a, b = topology.add("a"), topology.add("b")
    link(topology, a, "eth0", "198.18.1.1/24", b, "eth0", "198.18.1.2/24")
    for ns, local, remote, overlay in ((a, "198.18.1.1", "198.18.1.2", "198.19.0.1/24"),
                                       (b, "198.18.1.2", "198.18.1.1", "198.19.0.2/24")):
        ns.ip("link", "add", "vxlan0", "type", "vxlan", "id", "42", "remote", remote, "local", local,
              "dstport", "4789", "dev", "eth0")
        ns.ip("link", "set", "vxlan0", "up")
        ns.ip("addr", "add", overlay, "dev", "vxlan0")
    assert why(b, "198.19.0.1").rc == 0  # healthy first
    # The sender's bug, made real: a postrouting rewrite of the outer UDP checksum field (as NAT's
    # "incremental update" of a checksum does), finished in software (tx offload off) so it goes out wrong.
    a.run("nft", "add", "table", "ip", "csumbug")
    a.run("nft", "add", "chain", "ip", "csumbug", "post", "{ type filter hook postrouting priority 0; }")
    a.run("nft", "add", "rule", "ip", "csumbug", "post", "udp", "dport", "4789", "@th,48,16", "set", "0x1234")
    a.run("ethtool", "-K", "eth0", "tx", "off")
    run = why(b, "198.19.0.1")
    assert run.rc == 1
    assert run.first.startswith("VXLAN packets from 198.18.1.1 arrive with bad outer UDP checksums (UDP_CSUM drops"), \
        run.first
    assert run.first.endswith("run 'gnt vxlan-csum audit' on 198.18.1.1"), run.first
    # Once the overlay neighbour has expired, its ARP replies are what the receiver drops: same verdict,
    # not "does not answer ARP".
    b.ip("neigh", "flush", "dev", "vxlan0")
    again = why(b, "198.19.0.1")
    assert again.rc == 1
    assert again.first.startswith("VXLAN packets from 198.18.1.1 arrive with bad outer UDP checksums"), again.first


# --- (8) an MTU black hole behind the node -------------------------------------------------------------

def test_mtu_black_hole(topology: Topology) -> None:
    h1, r1, h2 = three(topology)
    r1.ip("link", "set", "eth1", "mtu", "1400")
    h2.ip("link", "set", "eth0", "mtu", "1400")
    assert why(h1, "198.18.2.2").rc == 0  # PMTU discovery works while r1 says "fragmentation needed"
    h1.ip("route", "flush", "cache")
    r1.run("nft", "add", "table", "ip", "blackhole")
    r1.run("nft", "add", "chain", "ip", "blackhole", "out", "{ type filter hook output priority 0; }")
    r1.run("nft", "add", "rule", "ip", "blackhole", "out", "icmp", "type", "destination-unreachable", "icmp", "code",
           "frag-needed", "drop")
    run = why(h1, "198.18.2.2")
    assert run.rc == 1
    assert run.first.startswith("path MTU 1400 but eth0 sends 1500 and large packets vanish"), run.first


# --- without privileges, and signals -------------------------------------------------------------------

def test_unprivileged_skips_what_needs_root(topology: Topology) -> None:
    h1, _r1, _h2 = three(topology)
    proc = h1.gnt_popen("why", "198.18.2.2", "--json", user="nobody")
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert proc.returncode == 0, out + err
    checks = {o["name"]: o for o in map(json.loads, out.splitlines()) if o.get("type") == "check"}
    assert checks["probe"]["status"] == "ok"
    assert checks["conntrack"]["status"] == "skipped"
    assert checks["netfilter-trace"]["status"] == "skipped"
    assert checks["drops"]["status"] == "skipped"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_watch_cleans_up(topology: Topology, signum: int) -> None:
    _h1, r1, _h2 = three(topology)
    proc = r1.gnt_popen("why", "198.18.2.2:80", "--watch", "--duration", "30")
    end = time.monotonic() + 15
    while "gnt_iptrace" not in r1.run("nft", "list", "tables").stdout:
        assert time.monotonic() < end, "the trace table never appeared"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert proc.returncode == 128 + signum
    assert_clean(r1, proc.pid)
    # the verdict still comes, for what was seen before the signal
    assert out.splitlines()[0].startswith("no traffic matching 198.18.2.2:80 crossed this node in"), out


# --- exit codes and bad input --------------------------------------------------------------------------

def test_cannot_tell_is_exit_1_and_says_so(topology: Topology) -> None:
    h1, _r1, h2 = three(topology)
    # h2 drops echo requests itself: nothing on h1 explains it, and gnt must not guess
    h2.run("nft", "add", "table", "ip", "quiet")
    h2.run("nft", "add", "chain", "ip", "quiet", "in", "{ type filter hook input priority 0; policy drop; }")
    run = why(h1, "198.18.2.2")
    assert run.rc == 1
    assert "gnt could not tell why" in run.first, run.first


@pytest.mark.parametrize("args", [("198.18.2.2:99999",), ("198.18.2.2", "-p", "sctp"), ("198.18.2.2:80", "-p", "icmp"),
                                  ("198.18.2.2", "--duration", "-1", "--watch"), ("no-such-host.invalid",)])
def test_bad_input_exit_2(topology: Topology, args: tuple[str, ...]) -> None:
    h1, _r1, _h2 = three(topology)
    run = why(h1, *args)
    assert run.rc == 2, run.out
    assert len(run.err.strip().splitlines()) <= 2 and run.err.strip()

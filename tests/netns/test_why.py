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
import time
from dataclasses import dataclass

import pytest
from helpers import incidents
from helpers.incidents import Incident, listen, three
from helpers.netns import Chain, Namespace, Topology

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


def diagnose(incident: Incident) -> Run:
    """Run `gnt why` where the incident says, check the exit code and the first line, stop its helpers."""
    try:
        run = why(incident.node, *incident.args)
    finally:
        incident.stop()
    assert run.rc == incident.exit_code, run.out + run.err
    assert run.first.startswith(incident.expect), run.first
    return run


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
    run = diagnose(incidents.route_missing(topology))
    assert run.first == "no route to 198.18.2.2 in table main (default route missing)"
    assert "ENETUNREACH" in run.out


def test_unreachable_route_type(topology: Topology) -> None:
    h1, _r1, _h2 = three(topology)
    h1.ip("route", "add", "unreachable", "198.18.2.0/24")
    run = why(h1, "198.18.2.2")
    assert run.rc == 1
    assert run.first.startswith("the route to 198.18.2.2 is an unreachable route"), run.first
    # a policy rule for marked traffic: only -m shows it
    h1.ip("route", "del", "unreachable", "198.18.2.0/24")
    h1.ip("rule", "add", "fwmark", "0x10", "table", "100")
    h1.ip("route", "add", "prohibit", "default", "table", "100")
    assert why(h1, "198.18.2.2").rc == 0
    marked = why(h1, "198.18.2.2", "-m", "0x10")
    assert marked.rc == 1
    assert marked.first.startswith("the route to 198.18.2.2 for mark 0x10 is a prohibit route"), marked.first


# --- (2) default gateway absent -----------------------------------------------------------------------

def test_gateway_does_not_answer_arp(topology: Topology) -> None:
    started = time.monotonic()
    run = diagnose(incidents.gateway_absent(topology))
    assert run.first.startswith("gateway 198.18.1.99 does not answer ARP on eth0 (neighbour "), run.first
    assert run.first.endswith(("FAILED)", "INCOMPLETE)"))
    assert time.monotonic() - started < 10


# --- (3) router with forwarding off -------------------------------------------------------------------

def test_router_forwarding_off(topology: Topology) -> None:
    run = diagnose(incidents.forwarding_off(topology))
    assert "net.ipv4.conf.eth0.forwarding=0" in run.first
    assert "sysctl -w net.ipv4.conf.eth0.forwarding=1" in run.out


# --- (4) FORWARD policy DROP, docker style, passive on the router -------------------------------------

def test_forward_policy_drop_passive(topology: Topology) -> None:
    incident = incidents.forward_policy_drop(topology)
    try:
        watcher = incident.node.gnt_popen("why", *incident.args)
        time.sleep(1.5)  # the trace table is in place well before this
        incidents.send_forward_traffic(topology["h1"])
        out, err = watcher.communicate(timeout=30)
    finally:
        incident.stop()
    assert "Traceback" not in err, err
    assert_clean(incident.node, watcher.pid)
    assert watcher.returncode == 1
    assert out.splitlines()[0] == incident.expect, out


def test_passive_nothing_seen_says_so(topology: Topology) -> None:
    _h1, r1, _h2 = three(topology)
    run = why(r1, "198.18.2.2:80", "--watch", "--duration", "1")
    assert run.rc == 1
    assert run.first.startswith("no traffic matching 198.18.2.2:80 crossed this node in 1 s"), run.first


# --- (5) asymmetric routing with rp_filter=1 ----------------------------------------------------------

def test_rp_filter_asymmetric(topology: Topology) -> None:
    run = diagnose(incidents.rp_filter_asymmetric(topology))
    assert run.first == ("dropped by rp_filter on eth1: replies arrive on another interface than the route back "
                         "(eth0)")


def test_rp_filter_loose_is_healthy(topology: Topology) -> None:
    incident = incidents.rp_filter_asymmetric(topology, strict=False)
    run = why(incident.node, *incident.args)
    assert run.rc == 0, run.out


# --- (6) DNAT (NodePort) to a backend that is gone ---------------------------------------------------

def test_dnat_backend_gone(topology: Topology) -> None:
    run = diagnose(incidents.dnat_backend_gone(topology))
    assert "1 older conntrack entries still point at it" in run.first
    assert "ESTABLISHED 198.18.1.1:" in run.out and "DNAT to 198.18.2.2:80" in run.out


# --- (7) VXLAN with bad outer UDP checksums from the sender ---------------------------------------------

def test_vxlan_bad_outer_checksum(topology: Topology) -> None:
    a, b = incidents.vxlan_pair(topology)
    assert why(b, "198.19.0.1").rc == 0  # healthy first
    incidents.break_vxlan_checksums(a)
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
    h1, r1, _h2 = incidents.mtu_chain(topology)
    assert why(h1, "198.18.2.2").rc == 0  # PMTU discovery works while r1 says "fragmentation needed"
    h1.ip("route", "flush", "cache")
    incidents.drop_frag_needed(r1)
    run = why(h1, "198.18.2.2")
    assert run.rc == 1
    assert run.first.startswith("path MTU 1400 but eth0 sends 1500 and large packets vanish"), run.first


# --- IPv6, and a router's ICMP error ------------------------------------------------------------------

def test_ipv6_healthy_closed_and_router_error(chain: Chain) -> None:
    h1 = chain["h1"]
    healthy = why(h1, "-6", "2001:db8:4::2")
    assert healthy.rc == 0 and healthy.first.startswith("2001:db8:4::2 answers: echo reply"), healthy.out
    closed = why(h1, "[2001:db8:4::2]:80")
    assert closed.rc == 1 and closed.first == "2001:db8:4::2 answers but port 80 is closed (RST)", closed.first
    # r1 has no route to 2001:db8:9::/64 and says so with an ICMPv6 error
    unreachable = why(h1, "2001:db8:9::1")
    assert unreachable.rc == 1
    assert unreachable.first.startswith("2001:db8:1::2 answers "), unreachable.first
    assert unreachable.first.endswith("the traffic dies at or behind 2001:db8:1::2"), unreachable.first


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
    assert checks["firewall"]["status"] == "skipped" and "Operation not permitted" in checks["firewall"]["summary"]


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


def test_sigint_during_the_probe_cleans_up(topology: Topology) -> None:
    h1, _r1, h2 = three(topology)
    h2.run("nft", "add", "table", "ip", "quiet")
    h2.run("nft", "add", "chain", "ip", "quiet", "in", "{ type filter hook input priority 0; policy drop; }")
    proc = h1.gnt_popen("why", "198.18.2.2", "--timeout", "20")
    end = time.monotonic() + 15
    while "gnt_iptrace" not in h1.run("nft", "list", "tables").stdout:
        assert time.monotonic() < end, "the trace table never appeared"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert proc.returncode == 130
    assert_clean(h1, proc.pid)


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

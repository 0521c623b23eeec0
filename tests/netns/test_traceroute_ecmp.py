"""gnt traceroute across equal-cost paths: h1 ── r1 ═ {ra, rb} ═ r3 ── h2 (see traceroute_topologies).

r1 hashes flows on the L4 5-tuple (fib_multipath_hash_policy=1). --paris keeps one flow for
every probe of a trace, so hop 2 is one router; --paths N traces N flows and shows both.
"""

from __future__ import annotations

import json

import pytest
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns

# link number -> (left role, left interface, right role, right interface)
ECMP_LINKS = {
    1: ("h1", "eth0", "r1", "eth0"),
    2: ("r1", "eth1", "ra", "eth0"),
    3: ("r1", "eth2", "rb", "eth0"),
    4: ("ra", "eth1", "r3", "eth0"),
    5: ("rb", "eth1", "r3", "eth1"),
    6: ("r3", "eth2", "h2", "eth0"),
}


def a4(link: int, end: int) -> str:
    return f"198.18.{link}.{end}"


def a6(link: int, end: int) -> str:
    return f"2001:db8:{link}::{end}"


def build_ecmp(topo: Topology) -> dict[str, Namespace]:
    """h1 ── r1 ═╦═ ra ═╦═ r3 ── h2: r1 splits traffic to h2 over ra and rb (L4 hash, policy 1).

                 ╚═ rb ═╝
    Link k is 198.18.k.0/24 and 2001:db8:k::/64, left end .1/::1, right end .2/::2 (see ECMP_LINKS).
    """
    ns = {role: topo.add(role) for role in ("h1", "r1", "ra", "rb", "r3", "h2")}
    for router in ("r1", "ra", "rb", "r3"):
        ns[router].sysctl("net.ipv4.ip_forward", "1")
        ns[router].sysctl("net.ipv6.conf.all.forwarding", "1")
    for link, (left, left_if, right, right_if) in ECMP_LINKS.items():
        topo.veth(ns[left], left_if, ns[right], right_if)
        ns[left].ip("addr", "add", f"{a4(link, 1)}/24", "dev", left_if)
        ns[right].ip("addr", "add", f"{a4(link, 2)}/24", "dev", right_if)
        ns[left].ip("-6", "addr", "add", f"{a6(link, 1)}/64", "dev", left_if, "nodad")
        ns[right].ip("-6", "addr", "add", f"{a6(link, 2)}/64", "dev", right_if, "nodad")
    h1, r1, ra, rb, r3, h2 = (ns[r] for r in ("h1", "r1", "ra", "rb", "r3", "h2"))
    h1.ip("route", "add", "default", "via", a4(1, 2))
    h1.ip("-6", "route", "add", "default", "via", a6(1, 2))
    h2.ip("route", "add", "default", "via", a4(6, 1))
    h2.ip("-6", "route", "add", "default", "via", a6(6, 1))
    # r1: h2's link over both parallel routers, hashed on the L4 5-tuple.
    r1.sysctl("net.ipv4.fib_multipath_hash_policy", "1")
    r1.sysctl("net.ipv6.fib_multipath_hash_policy", "1")
    for link in (4, 5, 6):
        r1.ip("route", "add", f"198.18.{link}.0/24", "nexthop", "via", a4(2, 2), "nexthop", "via", a4(3, 2))
        r1.ip("-6", "route", "add", f"2001:db8:{link}::/64", "nexthop", "via", a6(2, 2),
              "nexthop", "via", a6(3, 2))
    # ra, rb: forward to r3, back to r1. r3: back through ra only (answers need just one way).
    for router, back, ahead in ((ra, 2, 4), (rb, 3, 5)):
        router.ip("route", "add", "198.18.1.0/24", "via", a4(back, 1))
        router.ip("-6", "route", "add", "2001:db8:1::/64", "via", a6(back, 1))
        router.ip("route", "add", "198.18.6.0/24", "via", a4(ahead, 2))
        router.ip("-6", "route", "add", "2001:db8:6::/64", "via", a6(ahead, 2))
    for link in (1, 2, 3):
        r3.ip("route", "add", f"198.18.{link}.0/24", "via", a4(4, 1))
        r3.ip("-6", "route", "add", f"2001:db8:{link}::/64", "via", a6(4, 1))
    return ns

PATHS = 12  # flows: the chance that all of them hash onto one router is 2 * 2**-12


def hops_of(stdout: str) -> dict[int, set[str]]:
    """ttl -> the set of addresses that answered (JSON lines)."""
    out: dict[int, set[str]] = {}
    for line in stdout.splitlines():
        obj = json.loads(line)
        if obj["type"] == "hop":
            out[obj["ttl"]] = {p["address"] for p in obj["probes"] if p["address"]}
    return out


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("method", [[], ["-U"], ["-I"]])
def test_paris_follows_one_path(topology: Topology, family: int, method: list[str]) -> None:
    ns = build_ecmp(topology)
    a = a6 if family == 6 else a4
    middle = {a(2, 2), a(3, 2)}  # ra, rb as seen from h1
    for _run in range(3):
        result = ns["h1"].gnt("traceroute", "--json", "--paris", *method, a(6, 2), user="nobody")
        assert result.returncode == 0, result.stdout + result.stderr
        hops = hops_of(result.stdout)
        assert sorted(hops) == [1, 2, 3, 4]
        assert len(hops[2]) <= 1 and hops[2] <= middle, hops  # one consistent path (or stars)
        assert hops[4] == {a(6, 2)}


@pytest.mark.parametrize("family", [4, 6])
def test_paths_shows_both_routers(topology: Topology, family: int) -> None:
    ns = build_ecmp(topology)
    a = a6 if family == 6 else a4
    result = ns["h1"].gnt("traceroute", "--json", "--paths", str(PATHS), a(6, 2), user="nobody", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    hops = hops_of(result.stdout)
    assert sorted(hops) == [1, 2, 3, 4]
    assert hops[2] == {a(2, 2), a(3, 2)}, hops
    assert hops[4] == {a(6, 2)}


def test_paths_text_groups_each_router(topology: Topology) -> None:
    ns = build_ecmp(topology)
    result = ns["h1"].gnt("traceroute", "-n", "--paths", str(PATHS), a4(6, 2), user="nobody", timeout=90)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith(" 2  "))
    # Each router is named once, followed by the RTTs of the flows that went through it.
    assert line.count(a4(2, 2)) == 1 and line.count(a4(3, 2)) == 1, line

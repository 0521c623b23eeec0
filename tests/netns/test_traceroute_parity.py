"""gnt traceroute beside the Linux traceroute, in the same run, in the h1 ── r1 ── r2 ── r3 ── h2 chain.

The peer's hops (which address answered at which TTL) are the reference; gnt runs as nobody.
The peer needs root for -T (raw sockets), so it runs as root there. Names come from a hosts
file written to /etc/netns/<h1>/hosts, which `ip netns exec` mounts over /etc/hosts in h1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.netns import Chain, Namespace, gnt_command

pytestmark = pytest.mark.netns

METHODS = {"udp": (), "icmp": ("-I",), "tcp": ("-T",), "udp-port": ("-U",)}
HOP_RE = re.compile(r"^\s*(\d+)\s+(.*)$")
ADDRESS_RE = re.compile(r"(?<![\w.:])((?:\d+\.){3}\d+|[0-9a-f]*:[0-9a-f:]+)(?=\s)")
HOSTS = (
    "127.0.0.1 localhost\n"
    "::1 localhost ip6-localhost\n"
    f"{Chain.addresses4['h2']} dual-canon dual\n"
    f"{Chain.addresses6['h2']} dual-canon dual\n"
    f"{Chain.addresses6['h2']} v6only\n"
)


def hops(text: str) -> list[tuple[int, frozenset[str]]]:
    """(TTL, the addresses that answered) per hop line."""
    out = []
    for line in text.splitlines()[1:]:
        m = HOP_RE.match(line)
        if m:
            out.append((int(m.group(1)), frozenset(ADDRESS_RE.findall(m.group(2) + " "))))
    return out


def peer(ns: Namespace, *args: str, root: bool = False) -> subprocess.CompletedProcess[str]:
    return ns.run("traceroute", *args, user=None if root else "nobody", check=False, timeout=120)


def ours(ns: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    return ns.run(*gnt_command("traceroute", *args), user="nobody", check=False, timeout=120)


@pytest.fixture
def net(chain: Chain) -> Iterator[Chain]:
    hosts = Path("/etc/netns") / chain["h1"].name
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts").write_text(HOSTS)
    try:
        yield chain
    finally:
        shutil.rmtree(hosts, ignore_errors=True)


# -- 12. exact hops, back to back, every method ---------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_router_in_twenty_back_to_back_runs(net: Chain, method: str, family: int) -> None:
    """Run after run the routers' ICMP buckets are drained; every router that answers is shown."""
    h1 = net["h1"]
    dest = (net.addresses4 if family == 4 else net.addresses6)["h2"]
    reference = peer(h1, "-n", f"-{family}", *METHODS[method], dest, root=method == "tcp")
    expected = [(ttl, addresses) for ttl, addresses in hops(reference.stdout)]
    roles = ("r1", "r2", "r3", "h2")
    table = net.addresses4 if family == 4 else net.addresses6
    assert expected == [(n + 1, frozenset({table[r]})) for n, r in enumerate(roles)], reference.stdout
    for run in range(20):
        result = ours(h1, "-n", f"-{family}", *METHODS[method], dest)
        assert result.returncode == 0, result.stdout + result.stderr
        assert hops(result.stdout) == expected, f"run {run + 1}:\n{result.stdout}"


# -- 13. a port unreachable from a router is not the destination -----------------------------------------
@pytest.mark.parametrize("method", ["udp", "udp-port", "icmp"])
@pytest.mark.parametrize("family", [4, 6])
def test_reject_in_the_middle_is_not_reached(net: Chain, method: str, family: int) -> None:
    h1, r2 = net["h1"], net["r2"]
    dest = (net.addresses4 if family == 4 else net.addresses6)["h2"]
    router = (net.addresses4 if family == 4 else net.addresses6)["r2"]
    tool, reject = ("iptables", "icmp-port-unreachable") if family == 4 else ("ip6tables", "icmp6-port-unreachable")
    r2.run(tool, "-I", "FORWARD", "-d", dest, "-j", "REJECT", "--reject-with", reject)
    # As nobody the peer's -I gets ECONNREFUSED on its ping socket and stops: it runs as root.
    reference = peer(h1, "-n", f"-{family}", *METHODS[method], dest, root=method == "icmp")
    result = ours(h1, "-n", f"-{family}", *METHODS[method], dest)
    assert result.returncode == 1, result.stdout + result.stderr
    # Where the trace ends and who ends it: as the peer (which always exits 0).
    their_hops, our_hops = hops(reference.stdout), hops(result.stdout)
    assert our_hops[-1][1] == frozenset({router}), result.stdout
    assert [ttl for ttl, _ in our_hops] == [ttl for ttl, _ in their_hops], reference.stdout + result.stdout
    summary = next(json.loads(line) for line in ours(h1, "--json", "-n", f"-{family}", *METHODS[method],
                                                     dest).stdout.splitlines()
                   if json.loads(line).get("type") == "summary")
    assert summary["reached"] is False


# -- 14. dual-stack names: IPv4 as the peer, -6 for IPv6 -------------------------------------------------
@pytest.mark.parametrize("args", [("dual",), ("-6", "dual"), ("-4", "dual"), ("localhost",), ("-6", "localhost"),
                                  ("v6only",)])
def test_dual_stack_names_trace_what_the_peer_traces(net: Chain, args: tuple[str, ...]) -> None:
    h1 = net["h1"]
    reference = peer(h1, "-n", "-m", "5", *args)
    result = ours(h1, "-n", "-m", "5", *args)
    assert reference.stdout.splitlines()[0] == result.stdout.splitlines()[0]
    assert [a for _ttl, a in hops(result.stdout)] == [a for _ttl, a in hops(reference.stdout)]


# -- 15. the header states what is sent ---------------------------------------------------------------------
@pytest.mark.parametrize("length", [None, "0", "10", "28", "29", "48", "100", "1500"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("family", [4, 6])
def test_header_states_the_bytes_sent(net: Chain, method: str, family: int, length: str | None) -> None:
    h1 = net["h1"]
    dest = (net.addresses4 if family == 4 else net.addresses6)["h2"]
    args = ("-n", f"-{family}", "-m", "1", "-q", "1", *METHODS[method], dest, *([length] if length else []))
    reference = peer(h1, *args, root=method == "tcp")
    result = ours(h1, *args)
    assert result.stdout.splitlines()[0] == reference.stdout.splitlines()[0], reference.stderr


# -- 16. --paths values ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "65", "99999999999999999999", "x"])
def test_paths_out_of_range_is_one_line(net: Chain, value: str) -> None:
    result = ours(net["h1"], "--paths", value, "-n", net.addresses4["h2"])
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--paths" in result.stderr

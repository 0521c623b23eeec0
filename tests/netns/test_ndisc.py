"""gnt ndisc / rdisc / neigh against the real kernel, radvd, and ndisc6/rdisc6 as peers.

Each test builds two namespaces joined by a veth pair: `host` (where gnt runs, eth0,
2001:db8:1::1/64) and `router` (eth0, 2001:db8:1::2/64, forwarding on so its
advertisements carry the router flag). radvd runs in `router` with a config the test
writes; malformed NDP packets are sent from `router` by a small raw-socket sender.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.jsonl import records
from helpers.netns import Namespace, Topology

from gnt.core.packets import icmpv6 as m

pytestmark = pytest.mark.netns

HOST_ADDR = "2001:db8:1::1"
ROUTER_ADDR = "2001:db8:1::2"
ABSENT = "2001:db8:1::77"  # on the link's prefix, held by nobody


def link_local(ns: Namespace, ifname: str = "eth0") -> str:
    out = ns.ip("-j", "-6", "addr", "show", "dev", ifname, "scope", "link").stdout
    for info in json.loads(out):
        for addr in info.get("addr_info", []):
            if str(addr.get("local", "")).startswith("fe80") and not addr.get("tentative"):
                return str(addr["local"])
    return ""


def mac_of(ns: Namespace, ifname: str = "eth0") -> str:
    return str(json.loads(ns.ip("-j", "link", "show", ifname).stdout)[0]["address"])


@pytest.fixture
def link(topology: Topology) -> Iterator[tuple[Namespace, Namespace]]:
    host = topology.add("host")
    router = topology.add("router")
    router.sysctl("net.ipv6.conf.all.forwarding", "1")
    topology.veth(host, "eth0", router, "eth0")
    host.ip("-6", "addr", "add", f"{HOST_ADDR}/64", "dev", "eth0", "nodad")
    router.ip("-6", "addr", "add", f"{ROUTER_ADDR}/64", "dev", "eth0", "nodad")
    deadline = time.monotonic() + 10
    while not (link_local(host) and link_local(router)):
        assert time.monotonic() < deadline, "link-local addresses never came up"
        time.sleep(0.05)
    yield host, router


# --- gnt ndisc ------------------------------------------------------------------------------------


def test_ndisc_matches_ndisc6(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    ours = host.gnt("ndisc", ROUTER_ADDR, "eth0")
    theirs = host.run("ndisc6", ROUTER_ADDR, "eth0", check=False)
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0
    mine, peer = ours.stdout.splitlines(), theirs.stdout.splitlines()
    assert mine[:2] == peer[:2]  # "Soliciting ...", "Target link-layer address: ..."
    assert mine[2] == peer[2] + " (router)"  # the router answers with R set; ndisc6 does not show it
    assert peer[1] == f"Target link-layer address: {mac_of(router).upper()}"

    quiet = host.gnt("ndisc", "-q", ROUTER_ADDR, "eth0")
    assert quiet.stdout == host.run("ndisc6", "-q", ROUTER_ADDR, "eth0").stdout


def test_ndisc_json_and_link_local_target(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    result = host.gnt("ndisc", "--json", link_local(router), "eth0")
    assert result.returncode == 0, result.stderr
    (obj,) = records(result.stdout)
    assert obj == {
        "type": "neighbor", "address": link_local(router), "lladdr": mac_of(router).upper(), "router": True,
        "source": link_local(router), "ifname": "eth0", "solicited": True, "override": True,
    }


def test_ndisc_no_answer_is_exit_1_like_ndisc6(link: tuple[Namespace, Namespace]) -> None:
    host, _ = link
    ours = host.gnt("ndisc", "-r", "2", "-w", "200", ABSENT, "eth0")
    theirs = host.run("ndisc6", "-r", "2", "-w", "200", ABSENT, "eth0", check=False)
    assert ours.returncode == 1
    assert ours.stdout == theirs.stdout  # Soliciting, Timed out. x2, No response.
    assert ours.stdout.splitlines()[-1] == "No response."


def test_ndisc_needs_cap_net_raw(link: tuple[Namespace, Namespace]) -> None:
    host, _ = link
    result = host.gnt("ndisc", ROUTER_ADDR, "eth0", user="nobody")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "gnt ndisc: cannot open a raw ICMPv6 socket: no CAP_NET_RAW"
    assert lines[1].startswith("gnt ndisc: hint: ") and "cap_net_raw" in lines[1].lower()


def test_dad_finds_the_duplicate_and_passes_a_free_address(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    duplicate = "2001:db8:1::5"
    router.ip("-6", "addr", "add", f"{duplicate}/64", "dev", "eth0", "nodad")  # the duplicate, on purpose
    found = host.gnt("ndisc", "--dad", "--json", "-w", "500", duplicate, "eth0")
    assert found.returncode == 1, found.stderr
    (obj,) = records(found.stdout)
    assert obj["type"] == "dad"
    assert obj["duplicate"] is True
    assert obj["lladdr"] == mac_of(router).upper()
    assert obj["source"] == duplicate

    text = host.gnt("ndisc", "--dad", "-r", "2", "-w", "300", ABSENT, "eth0")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"Probing {ABSENT} for duplicates on eth0...",
        f"{ABSENT} is unique on eth0: no answer to 2 probes.",
    ]


def test_dad_probe_leaves_from_the_unspecified_address(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    capture = router.popen("tcpdump", "-l", "-n", "-i", "eth0", "-c", "1", "icmp6 and ip6[40] == 135")
    try:
        assert capture.stderr is not None
        for _ in range(5):  # "listening on eth0, ..." once the capture is attached
            if "listening on" in capture.stderr.readline():
                break
        host.gnt("ndisc", "--dad", "-r", "1", "-w", "300", ABSENT, "eth0")
        out, _ = capture.communicate(timeout=10)
    finally:
        capture.kill()
    assert ":: > ff02::1:ff00:77" in out
    assert "neighbor solicitation, who has 2001:db8:1::77" in out


# --- gnt rdisc ------------------------------------------------------------------------------------

RADVD_CONF = """\
interface eth0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 30;
    MaxRtrAdvInterval 100;
    AdvManagedFlag on;
    AdvOtherConfigFlag off;
    AdvDefaultPreference high;
    AdvLinkMTU 1400;
    AdvReachableTime 30000;
    AdvRetransTimer 1000;
    AdvCurHopLimit 64;
    AdvDefaultLifetime 1800;
    prefix 2001:db8:1::/64 {
        AdvOnLink on; AdvAutonomous on; AdvValidLifetime 86400; AdvPreferredLifetime 14400;
    };
    prefix 2001:db8:a::/64 {
        AdvOnLink off; AdvAutonomous off; AdvValidLifetime infinity; AdvPreferredLifetime 0;
    };
    route 2001:db8:100::/48 { AdvRoutePreference low; AdvRouteLifetime 600; };
    RDNSS 2001:db8:1::53 2001:db8:1::54 { AdvRDNSSLifetime 300; };
    DNSSL example.com corp.example.net { AdvDNSSLLifetime 300; };
};
"""


@pytest.fixture
def radvd(link: tuple[Namespace, Namespace], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    _, router = link
    conf = tmp_path / "radvd.conf"
    conf.write_text(RADVD_CONF)
    conf.chmod(0o644)
    started = _start_radvd(router, tmp_path)
    yield started
    started.terminate()
    try:
        started.wait(timeout=5)
    except subprocess.TimeoutExpired:
        started.kill()


def _start_radvd(router: Namespace, tmp_path: Path) -> subprocess.Popen[str]:
    proc = router.popen("radvd", "-n", "-m", "stderr", "-C", str(tmp_path / "radvd.conf"),
                        "-p", str(tmp_path / "radvd.pid"))
    time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1]
    return proc


def test_rdisc_decodes_radvd_field_by_field(link: tuple[Namespace, Namespace], radvd: object) -> None:
    host, router = link
    result = host.gnt("rdisc", "--json", "eth0")
    assert result.returncode == 0, result.stderr
    routers = records(result.stdout)
    assert routers, "no advertisement decoded"
    ra = routers[0]
    assert ra["type"] == "router"
    assert ra["source"] == link_local(router)
    assert (ra["hop_limit"], ra["managed"], ra["other"], ra["preference"]) == (64, True, False, "high")
    assert (ra["router_lifetime"], ra["reachable_time"], ra["retrans_timer"]) == (1800, 30000, 1000)
    assert ra["mtu"] == 1400
    assert ra["prefixes"] == [
        {"prefix": "2001:db8:1::/64", "on_link": True, "autonomous": True, "valid_lifetime": 86400,
         "preferred_lifetime": 14400, "router_address": False},
        {"prefix": "2001:db8:a::/64", "on_link": False, "autonomous": False, "valid_lifetime": 0xFFFFFFFF,
         "preferred_lifetime": 0, "router_address": False},
    ]
    assert ra["routes"] == [{"prefix": "2001:db8:100::/48", "preference": "low", "lifetime": 600}]
    assert ra["rdnss"] == [{"address": "2001:db8:1::53", "lifetime": 300},
                           {"address": "2001:db8:1::54", "lifetime": 300}]
    assert ra["dnssl"] == [{"domain": "example.com", "lifetime": 300},
                           {"domain": "corp.example.net", "lifetime": 300}]
    assert ra["lladdr"] == mac_of(router).upper()


def test_rdisc_text_is_rdisc6s(link: tuple[Namespace, Namespace], radvd: object) -> None:
    host, _ = link
    ours = host.gnt("rdisc", "eth0")
    theirs = host.run("rdisc6", "-1", "eth0", check=False)
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0
    # Soliciting line, blank line, then one advertisement, identical field for field.
    blocks = ours.stdout.split("\n\n")
    assert "\n\n".join(blocks[:2]).rstrip("\n") == theirs.stdout.rstrip("\n")
    quiet = host.gnt("rdisc", "-q", "eth0")
    assert quiet.stdout.splitlines()[:2] == ["2001:db8:1::/64", "2001:db8:a::/64"]


def test_rdisc_to_one_router_by_link_local_address(link: tuple[Namespace, Namespace], radvd: object) -> None:
    host, router = link
    result = host.gnt("rdisc", "--json", "eth0", link_local(router))
    assert result.returncode == 0, result.stderr
    assert all(o["source"] == link_local(router) for o in records(result.stdout))


def test_rdisc_listen_shows_unsolicited_advertisements(link: tuple[Namespace, Namespace],
                                                       tmp_path: Path) -> None:
    host, router = link
    (tmp_path / "radvd.conf").write_text(RADVD_CONF)
    listener = host.gnt_popen("rdisc", "--listen", "--json", "-c", "1", "-w", "20000", "eth0")
    time.sleep(1.0)  # the listener's socket is open before radvd's first advertisement
    daemon = _start_radvd(router, tmp_path)
    try:
        out, err = listener.communicate(timeout=30)
    finally:
        daemon.terminate()
        daemon.wait(timeout=5)
    assert listener.returncode == 0, err
    (obj,) = records(out)
    assert obj["mtu"] == 1400 and obj["preference"] == "high"


def test_rdisc_without_router_is_exit_1(link: tuple[Namespace, Namespace]) -> None:
    host, _ = link
    result = host.gnt("rdisc", "-r", "2", "-w", "200", "eth0")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["Soliciting ff02::2 (ff02::2) on eth0...", "Timed out.", "Timed out.",
                                          "No response."]


# --- malformed NDP sent at gnt --------------------------------------------------------------------

SENDER = textwrap.dedent("""
    import socket, sys, time
    ifindex = socket.if_nametoindex("eth0")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    messages = [(int(h), bytes.fromhex(x)) for h, x in (a.split(":") for a in sys.argv[2:])]
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        for hop_limit, data in messages:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hop_limit)
            sock.sendto(data, ("ff02::1", 0, 0, ifindex))
        time.sleep(0.05)
""")


@contextmanager
def sending(router: Namespace, messages: list[tuple[int, bytes]]) -> Iterator[None]:
    """`messages` (hop limit, ICMPv6 bytes) sent from `router` to ff02::1 over and over meanwhile."""
    args = [f"{hop}:{data.hex()}" for hop, data in messages]
    sender = router.popen(sys.executable, "-c", SENDER, "10", *args)  # 10 s: longer than any test's wait
    try:
        time.sleep(0.3)  # the sender is running before gnt listens
        yield
    finally:
        sender.kill()
        sender.wait()


def bad_advertisements(target: bytes) -> list[tuple[int, bytes]]:
    tlla = m.LinkLayerOption.target(bytes.fromhex("020000000066")).encode()
    base = m.NeighborAdvertisement(target=target, override=True).encode()
    return [
        (64, base + tlla),  # wrong hop limit
        (255, base + bytes([2, 0]) + tlla[2:]),  # zero-length option
        (255, base + bytes([2, 2]) + tlla[2:]),  # option claims 16 bytes, 8 present
        (255, base + tlla[:5]),  # truncated option
        (255, base[:20]),  # truncated message
    ]


def test_malformed_advertisements_are_rejected(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    with sending(router, bad_advertisements(m.addr_bytes(ABSENT))):
        result = host.gnt("ndisc", "-v", "-r", "1", "-w", "1500", ABSENT, "eth0")
    assert result.returncode == 1, result.stdout
    assert "Target link-layer address" not in result.stdout
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for reason in ("hop limit 64, not 255", "length zero", "runs past the message", "need 24 bytes"):
        assert reason in result.stderr


def test_valid_advertisement_among_malformed_ones_is_taken(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    target = m.addr_bytes(ABSENT)
    good = m.NeighborAdvertisement(target=target, override=True,
                                   options=[m.LinkLayerOption.target(bytes.fromhex("020000000077"))]).encode()
    with sending(router, [*bad_advertisements(target), (255, good)]):
        result = host.gnt("ndisc", "-q", "-r", "1", "-w", "1500", ABSENT, "eth0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "02:00:00:00:00:77\n"


def test_malformed_router_advertisements_are_rejected(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    ra = m.RouterAdvertisement(cur_hop_limit=42, router_lifetime=0).encode()
    prefix = m.PrefixInformation(m.addr_bytes("2001:db8:7::"), 64).encode()
    bad = [
        (64, ra),  # wrong hop limit
        (255, ra + bytes([3, 0]) + prefix[2:]),  # zero-length option
        (255, ra + prefix[:16]),  # truncated prefix option
        (255, ra + bytes([3, 1]) + bytes(6)),  # prefix option of 8 bytes instead of 32
        (255, ra[:12]),  # shorter than an RA
    ]
    with sending(router, bad):
        rejected = host.gnt("rdisc", "-v", "-r", "1", "-w", "1500", "eth0")
    assert rejected.returncode == 1, rejected.stdout
    assert "Traceback" not in rejected.stderr and "internal error" not in rejected.stderr
    reasons = ("hop limit 64", "length zero", "runs past the message", "prefix information option of 8 bytes, not 32")
    for reason in reasons:
        assert reason in rejected.stderr

    good = ra + prefix
    with sending(router, [*bad, (255, good)]):
        accepted = host.gnt("rdisc", "--json", "-r", "1", "-w", "1000", "eth0")
    assert accepted.returncode == 0, accepted.stderr
    routers = records(accepted.stdout)
    assert routers and all(r["hop_limit"] == 42 for r in routers)
    assert all(r["prefixes"][0]["prefix"] == "2001:db8:7::/64" for r in routers)


# --- gnt neigh ------------------------------------------------------------------------------------


def test_neigh_table_matches_ip_neigh(link: tuple[Namespace, Namespace]) -> None:
    host, router = link
    host.run("ping", "-c", "1", "-W", "2", ROUTER_ADDR)
    result = host.gnt("neigh", "--json", "-6", "-i", "eth0")
    assert result.returncode == 0, result.stderr
    ours = {(o["address"], o["lladdr"], o["state"], o["router"]) for o in records(result.stdout)}
    theirs = {
        (e["dst"], e.get("lladdr"), e["state"][0], "router" in e)
        for e in json.loads(host.ip("-j", "-6", "neigh", "show", "dev", "eth0").stdout)
    }
    assert (ROUTER_ADDR, mac_of(router), ours_state(ours, ROUTER_ADDR), True) in theirs
    assert ours == theirs
    text = host.gnt("neigh", "-i", "eth0").stdout
    assert f"{ROUTER_ADDR} dev eth0 lladdr {mac_of(router)} router " in text


def ours_state(entries: set[tuple[str, str, str, bool]], address: str) -> str:
    return next(state for addr, _, state, _ in entries if addr == address)


def test_neigh_empty_table_is_exit_1(link: tuple[Namespace, Namespace]) -> None:
    host, _ = link
    result = host.gnt("neigh", "-4")
    assert result.returncode == 1
    assert result.stdout == ""


def test_neigh_watch_reports_transitions_from_real_traffic(link: tuple[Namespace, Namespace]) -> None:
    host, router_ns = link
    # Short timers so REACHABLE turns STALE within a second or two (and not DELAY: no probe delay).
    host.sysctl("net.ipv6.neigh.eth0.base_reachable_time_ms", "500")
    host.sysctl("net.ipv6.neigh.eth0.delay_first_probe_time", "0")
    watcher = host.gnt_popen("neigh", "--watch", "--json", "-6", "-i", "eth0", "-d", "5")
    time.sleep(1.0)
    host.run("ping", "-c", "1", "-W", "2", ROUTER_ADDR)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    objects = [json.loads(line) for line in out.splitlines()]
    changes = [o for o in objects if o["type"] == "neighbor_change"]
    assert [o for o in objects if o["type"] == "summary"][-1]["changes"] == len(changes)
    # The ping resolves the router (new entry, REACHABLE); unconfirmed for longer than the
    # shortened reachable time, the entry turns STALE. (The router's own solicitation from its
    # link-local address adds a STALE entry for that address too.)
    router = [c for c in changes if c["address"] == ROUTER_ADDR]
    assert [(c["previous_state"], c["state"]) for c in router][:2] == [(None, "REACHABLE"), ("REACHABLE", "STALE")]
    assert all(c["type"] == "neighbor_change" and c["ifname"] == "eth0" and c["router"] for c in router)
    assert router[0]["time"] <= router[1]["time"]
    assert {c["address"] for c in changes} <= {ROUTER_ADDR, link_local(router_ns)}

"""gnt mtu, traceroute -F/--mtu and ping -M on real kernels, run as the user nobody.

The chain h1 ── r1 ── r2 ── r3 ── h2 with the r2-r3 link at MTU 1400: r2 (hop 2) reports
"fragmentation needed" / "packet too big" for larger packets, unless its OUTPUT chain drops
those reports (a black hole). The kernels' ICMP rate limits stay at their defaults throughout.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from helpers.netns import Chain, Namespace, Topology

pytestmark = pytest.mark.netns

NARROW = 1400
PROTOCOLS = {"udp": [], "icmp": ["-I"]}
RTT = re.compile(r"\d+\.\d+ ms")
REFILL = 6.5  # seconds for a Linux box's ICMP token bucket (6 tokens, one a second) to fill again


def narrow(chain: Chain) -> None:
    """The r2-r3 link carries 1400 bytes."""
    chain["r2"].ip("link", "set", "eth1", "mtu", str(NARROW))
    chain["r3"].ip("link", "set", "eth0", "mtu", str(NARROW))


def swallow_too_big(router: Namespace) -> None:
    """`router` drops the frag-needed / packet-too-big messages it sends: a PMTU black hole."""
    router.run("iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP")
    router.run("ip6tables", "-A", "OUTPUT", "-p", "icmpv6", "--icmpv6-type", "packet-too-big", "-j", "DROP")


def addresses(chain: Chain, family: int) -> dict[str, str]:
    return chain.addresses6 if family == 6 else chain.addresses4


def mtu_object(stdout: str) -> dict:  # type: ignore[type-arg]
    objects = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    found = [o for o in objects if o.get("type") == "mtu"]
    assert len(found) == 1, stdout
    return found[0]


def gnt_mtu(ns: Namespace, *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = ns.gnt("mtu", "--json", *args, user="nobody", timeout=120)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    return result.returncode, mtu_object(result.stdout), result.stdout


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_pmtu_found_and_hop_named(chain: Chain, protocol: str, family: int) -> None:
    narrow(chain)
    addr = addresses(chain, family)
    code, obj, _ = gnt_mtu(chain["h1"], *PROTOCOLS[protocol], addr["h2"])
    assert code == 1
    assert obj["verdict"] == "pmtu"
    assert (obj["path_mtu"], obj["largest_ok"], obj["smallest_lost"]) == (NARROW, NARROW, NARROW + 1)
    assert obj["reported_mtu"] == NARROW
    assert obj["hop"] == {"ttl": 2, "address": addr["r2"]}
    assert obj["protocol"] == protocol and obj["host"] == addr["h2"]
    assert obj["local_mtu"] == 1500 and obj["device"] == "eth0"


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_black_hole_named_with_its_bounds(chain: Chain, protocol: str, family: int) -> None:
    narrow(chain)
    swallow_too_big(chain["r2"])
    addr = addresses(chain, family)
    code, obj, _ = gnt_mtu(chain["h1"], *PROTOCOLS[protocol], addr["h2"])
    assert code == 1
    assert obj["verdict"] == "black-hole"
    assert (obj["largest_ok"], obj["smallest_lost"], obj["path_mtu"]) == (NARROW, NARROW + 1, NARROW)
    assert obj["reported_mtu"] is None
    assert obj["hop"] == {"ttl": 2, "address": addr["r2"]}  # the last hop 1401 bytes reached


def test_text_output_names_verdict_bounds_and_hop(chain: Chain) -> None:
    narrow(chain)
    swallow_too_big(chain["r2"])
    addr = chain.addresses4
    result = chain["h1"].gnt("mtu", addr["h2"], user="nobody", timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"mtu to {addr['h2']} ({addr['h2']}) over udp: local MTU 1500 (eth0)"
    assert lines[1] == (f"black-hole: 1400 bytes pass, 1401 vanish with no ICMP error; the large size "
                        f"last reached hop 2 ({addr['r2']})")
    assert re.fullmatch(r"path MTU 1400, \d+ probes, \d+\.\d\d s", lines[2]), lines[2]


@pytest.mark.parametrize("family", [4, 6])
def test_full_mtu_is_ok_and_exit_0(chain: Chain, family: int) -> None:
    addr = addresses(chain, family)
    code, obj, _ = gnt_mtu(chain["h1"], addr["h2"])
    assert code == 0
    assert obj["verdict"] == "ok"
    assert (obj["path_mtu"], obj["largest_ok"], obj["smallest_lost"], obj["hop"]) == (1500, 1500, None, None)
    assert obj["probes"] == 1  # the full size passed: nothing more to learn


@pytest.mark.parametrize("black_hole", [False, True])
def test_back_to_back_runs_keep_their_verdict(chain: Chain, black_hole: bool) -> None:
    """The runs before drain every box's ICMP token bucket; no run may turn that into a verdict."""
    narrow(chain)
    if black_hole:
        swallow_too_big(chain["r2"])
    addr = chain.addresses4
    for _run in range(4):
        _code, obj, stdout = gnt_mtu(chain["h1"], addr["h2"])
        assert obj["verdict"] == ("black-hole" if black_hole else "pmtu"), stdout
        assert (obj["largest_ok"], obj["smallest_lost"]) == (NARROW, NARROW + 1), stdout
        assert obj["hop"] == {"ttl": 2, "address": addr["r2"]}, stdout


def _listen(ns: Namespace, family: int, port: int):  # type: ignore[no-untyped-def]
    """A TCP server on `port` that reads and discards whatever it gets."""
    proc = ns.popen("python3", "-c", (
        "import socket, threading\n"
        f"s = socket.socket(socket.AF_INET{'6' if family == 6 else ''})\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('{'::' if family == 6 else '0.0.0.0'}', {port})); s.listen(64)\n"
        "print('ready', flush=True)\n"
        "def drain(c):\n"
        "    while c.recv(65536): pass\n"
        "while True:\n"
        "    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()\n"))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("black_hole", [False, True])
def test_tcp_to_an_open_port(chain: Chain, family: int, black_hole: bool) -> None:
    narrow(chain)
    if black_hole:
        swallow_too_big(chain["r2"])
    listener = _listen(chain["h2"], family, 8080)
    try:
        addr = addresses(chain, family)
        code, obj, stdout = gnt_mtu(chain["h1"], "-T", "-p", "8080", addr["h2"])
        assert code == 1
        assert obj["verdict"] == ("black-hole" if black_hole else "pmtu"), stdout
        assert (obj["largest_ok"], obj["smallest_lost"]) == (NARROW, NARROW + 1), stdout
        assert obj["hop"] == {"ttl": 2, "address": addr["r2"]}, stdout  # walked with UDP
    finally:
        listener.kill()
        listener.wait()


def test_tcp_closed_port_is_one_error(chain: Chain) -> None:
    result = chain["h1"].gnt("mtu", "-T", "-p", "8081", chain.addresses4["h2"], user="nobody")
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith("gnt mtu: TCP port 8081 of 198.18.4.2 is not open")
    assert errors[1].startswith("gnt mtu: hint: ")


def _vxlan_pair(topology: Topology, df: str) -> Namespace:
    """va ── vb over a 1500 veth, each with vxlan0 at MTU 1500 (50 bytes too many), 198.19.100.0/24."""
    va, vb = topology.add("va"), topology.add("vb")
    topology.veth(va, "eth0", vb, "eth0")
    va.ip("addr", "add", "198.18.5.1/24", "dev", "eth0")
    vb.ip("addr", "add", "198.18.5.2/24", "dev", "eth0")
    for ns, local, remote, overlay in ((va, "198.18.5.1", "198.18.5.2", "198.19.100.1/24"),
                                       (vb, "198.18.5.2", "198.18.5.1", "198.19.100.2/24")):
        ns.ip("link", "add", "vxlan0", "type", "vxlan", "id", "42", "local", local, "remote", remote,
              "dstport", "4789", "df", df)
        ns.ip("link", "set", "vxlan0", "mtu", "1500", "up")
        ns.ip("addr", "add", overlay, "dev", "vxlan0")
    return va


@pytest.mark.parametrize("df", ["set", "unset"])
def test_vxlan_larger_than_its_underlay_is_a_mismatch(topology: Topology, df: str) -> None:
    """DF on the outer header: 1451+ bytes vanish; DF off: the underlay fragments them. Both: mismatch."""
    va = _vxlan_pair(topology, df)
    code, obj, stdout = gnt_mtu(va, "--overlay", "198.19.100.2")
    assert code == 1
    assert obj["verdict"] == "local-mismatch", stdout
    assert obj["device"] == "vxlan0"
    mismatch = obj["mismatch"]
    assert (mismatch["device"], mismatch["kind"], mismatch["mtu"], mismatch["underlay"]) == ("vxlan0", "vxlan", 1500,
                                                                                             "eth0")
    assert (mismatch["overhead"], mismatch["max_mtu"], mismatch["too_large"]) == (50, 1450, True)
    if df == "set":
        assert (obj["largest_ok"], obj["smallest_lost"]) == (1450, 1451), stdout
    else:
        assert (obj["largest_ok"], obj["smallest_lost"]) == (1500, None), stdout
    assert [o["device"] for o in obj["overlay"]] == ["vxlan0"]
    text = va.gnt("mtu", "--overlay", "198.19.100.2", user="nobody", timeout=120)
    assert "local-mismatch: vxlan0 (vxlan, MTU 1500) is set larger than its underlay eth0 carries " \
           "(1500 - 50 = 1450)" in text.stdout, text.stdout
    assert "overlay vxlan0: vxlan over IPv4, MTU 1500; eth0 MTU 1500 - 50 = 1450: too large, set it to 1450 at " \
           "most" in text.stdout, text.stdout


def _masked(stdout: str) -> list[str]:
    return [RTT.sub("X ms", line) for line in stdout.splitlines()]


@pytest.mark.parametrize("family", [4, 6])
def test_traceroute_mtu_matches_the_linux_traceroute(chain: Chain, family: int) -> None:
    narrow(chain)
    addr = addresses(chain, family)
    linux = chain["h1"].run("traceroute", "-n", "--mtu", addr["h2"], user="nobody", check=False)
    assert linux.returncode == 0, linux.stderr
    time.sleep(REFILL)  # let the routers' buckets refill: both tools start from the same state
    ours = chain["h1"].gnt("traceroute", "-n", "--mtu", addr["h2"], user="nobody")
    assert ours.returncode == 0, ours.stderr
    assert "F=1400" in linux.stdout  # the comparison below is about something
    assert _masked(ours.stdout) == _masked(linux.stdout), ours.stdout + "\n" + linux.stdout


def test_traceroute_dont_fragment_matches_the_linux_traceroute(chain: Chain) -> None:
    narrow(chain)
    addr = chain.addresses4
    linux = chain["h1"].run("traceroute", "-n", "-F", addr["h2"], "1500", user="nobody", check=False)
    time.sleep(REFILL)
    ours = chain["h1"].gnt("traceroute", "-n", "-F", addr["h2"], "1500", user="nobody")
    assert ours.returncode == 1, ours.stderr  # the destination never answered
    assert f"{addr['r2']}  X ms !F-1400" in "\n".join(_masked(linux.stdout))
    assert _masked(ours.stdout) == _masked(linux.stdout), ours.stdout + "\n" + linux.stdout


def _ping_lines(result, prefix: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    out = [re.sub(r"time \d+ms", "time Xms", line) for line in result.stdout.rstrip("\n").splitlines()]
    err = [line.removeprefix(prefix) for line in result.stderr.splitlines()]
    return out, err


@pytest.mark.parametrize("family", [4, 6])
def test_ping_M_do_matches_iputils(chain: Chain, family: int) -> None:
    """The first request meets r2's report, the next ones the PMTU the kernel learned from it."""
    narrow(chain)
    addr = addresses(chain, family)
    h1 = chain["h1"]
    runs = []
    for argv, prefix in ((["ping"], "ping: "), (None, "gnt ping: ")):
        h1.run("ip", f"-{family}", "route", "flush", "cache")  # both start without a learned PMTU
        time.sleep(1.5)  # r2's bucket: a token for the report
        args = ["-c", "3", "-i", "0.2", "-M", "do", "-s", "1400", addr["h2"]]
        result = h1.run(*argv, *args, user="nobody", check=False) if argv else h1.gnt("ping", *args, user="nobody")
        assert result.returncode == 1
        runs.append(_ping_lines(result, prefix))
    (theirs_out, theirs_err), (ours_out, ours_err) = runs
    sep = "=" if family == 4 else ": "
    too_big = ("Frag needed and DF set (mtu = 1400)" if family == 4 else "Packet too big: mtu=1400")
    assert f"From {addr['r2']} icmp_seq=1 {too_big}" in theirs_out
    assert theirs_err == [f"local error: message too long, mtu{sep}1400"] * 2
    assert ours_out == theirs_out
    assert ours_err == theirs_err


def test_ping_M_rejects_unknown_words(chain: Chain) -> None:
    result = chain["h1"].gnt("ping", "-M", "probe", "-c", "1", chain.addresses4["h2"], user="nobody")
    assert result.returncode == 2
    assert result.stderr == "gnt ping: invalid -M argument: probe\n"


def test_help_names_the_route_cache_and_its_flush() -> None:
    from helpers.cli import run_gnt

    code, out, _err = run_gnt("mtu", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "600 s" in text and "ip route flush cache" in text


@pytest.mark.parametrize("how", ["-i", "-s"])
def test_the_header_names_the_device_chosen_by_interface_or_source(topology: Topology, how: str) -> None:
    """Two links to the same peer, the route through the 1500 one: `-i eth1` (the socket bound to
    it) or `-s` with a source rule for eth1 makes the 1400 link the one measured, and named."""
    a, b = topology.add("ma"), topology.add("mb")
    topology.veth(a, "eth0", b, "eth0")
    topology.veth(a, "eth1", b, "eth1")
    for ns in (a, b):
        ns.ip("link", "set", "eth1", "mtu", "1400")
    a.ip("addr", "add", "198.18.70.1/24", "dev", "eth0")
    b.ip("addr", "add", "198.18.70.2/24", "dev", "eth0")
    a.ip("addr", "add", "198.18.71.1/24", "dev", "eth1")
    b.ip("addr", "add", "198.18.71.2/24", "dev", "eth1")
    b.ip("addr", "add", "198.18.72.2/32", "dev", "lo")
    a.ip("route", "add", "198.18.72.2", "via", "198.18.70.2")
    a.ip("route", "add", "198.18.72.2", "via", "198.18.71.2", "table", "100")
    a.ip("rule", "add", "from", "198.18.71.1", "table", "100")
    args = ["-i", "eth1"] if how == "-i" else ["-s", "198.18.71.1"]
    code, obj, stdout = gnt_mtu(a, *args, "198.18.72.2")
    assert code == 0, stdout
    assert (obj["device"], obj["local_mtu"]) == ("eth1", 1400), stdout
    plain = gnt_mtu(a, "198.18.72.2")[1]
    assert (plain["device"], plain["local_mtu"]) == ("eth0", 1500)

"""gnt traceroute on real kernels: the chain h1 ── r1 ── r2 ── r3 ── h2, run as the user nobody.

Every test gets a fresh chain, so each starts with the kernel's ICMP token buckets full; the
destination's and routers' default ICMP rate limits stay on throughout.
"""

from __future__ import annotations

import re

import pytest
from helpers.jsonl import records
from helpers.netns import Chain

pytestmark = pytest.mark.netns

METHODS = {"udp": [], "icmp": ["-I"], "udp-port": ["-U"], "tcp": ["-T"]}
HOP_LINE = re.compile(r"^ ?(\d+)  (.*)$")


def addresses(chain: Chain, family: int) -> dict[str, str]:
    return chain.addresses6 if family == 6 else chain.addresses4


def silence(router, family: int) -> None:  # type: ignore[no-untyped-def]
    """Make `router` drop the time-exceeded messages it sends (it still forwards)."""
    if family == 6:
        router.run("ip6tables", "-A", "OUTPUT", "-p", "icmpv6", "--icmpv6-type", "time-exceeded", "-j", "DROP")
    else:
        router.run("iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "time-exceeded", "-j", "DROP")


def hop_lines(stdout: str) -> list[tuple[int, str]]:
    lines = stdout.splitlines()
    assert lines[0].startswith("traceroute to "), stdout
    out = []
    for line in lines[1:]:
        m = HOP_LINE.match(line)
        assert m, f"not a hop line: {line!r}"
        out.append((int(m.group(1)), m.group(2)))
    return out


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("method", list(METHODS))
def test_silent_router_exact_hop_count(chain: Chain, method: str, family: int) -> None:
    silence(chain["r2"], family)
    addr = addresses(chain, family)
    result = chain["h1"].gnt("traceroute", "-n", *METHODS[method], addr["h2"], user="nobody")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    header = result.stdout.splitlines()[0]
    size = 80 if family == 6 else 60
    assert header == f"traceroute to {addr['h2']} ({addr['h2']}), 30 hops max, {size} byte packets"
    hops = hop_lines(result.stdout)
    assert [ttl for ttl, _ in hops] == [1, 2, 3, 4], result.stdout
    assert hops[1][1] == "* * *"
    assert hops[0][1].startswith(addr["r1"] + "  ")
    assert hops[2][1].startswith(addr["r3"] + "  ")
    assert hops[3][1].startswith(addr["h2"] + "  ")
    assert hops[3][1].count(" ms") >= 1


@pytest.mark.parametrize("family", [4, 6])
def test_whole_chain_with_reverse_name_format(chain: Chain, family: int) -> None:
    addr = addresses(chain, family)
    result = chain["h1"].gnt("traceroute", f"-{family}", addr["h2"], user="nobody")
    assert result.returncode == 0, result.stderr
    hops = hop_lines(result.stdout)
    assert [ttl for ttl, _ in hops] == [1, 2, 3, 4]
    for (_ttl, rest), role in zip(hops, ("r1", "r2", "r3", "h2"), strict=True):
        # No PTR records in the namespaces: the Linux traceroute prints "address (address)".
        assert rest.startswith(f"{addr[role]} ({addr[role]})  "), rest


def test_back_to_back_runs_never_print_phantom_hops(chain: Chain) -> None:
    """The destination's bucket is drained by the run before; the hop count stays exact."""
    silence(chain["r2"], 4)
    addr = chain.addresses4
    for _run in range(5):
        result = chain["h1"].gnt("traceroute", "-n", addr["h2"], user="nobody")
        assert result.returncode == 0, result.stdout + result.stderr
        hops = hop_lines(result.stdout)
        assert [ttl for ttl, _ in hops] == [1, 2, 3, 4], result.stdout
        assert hops[1][1] == "* * *"
        # Row 4 is the destination's; one of its probes may be a `*` when h2's token bucket is
        # empty (a rate-limited hop's lost probe is not re-probed just to fill a `*`).
        assert addr["h2"] in hops[3][1].split(), result.stdout


def test_silent_router_just_before_the_destination(chain: Chain) -> None:
    silence(chain["r3"], 4)
    addr = chain.addresses4
    for _run in range(2):
        result = chain["h1"].gnt("traceroute", "-n", addr["h2"], user="nobody")
        assert result.returncode == 0, result.stdout + result.stderr
        hops = hop_lines(result.stdout)
        assert [ttl for ttl, _ in hops] == [1, 2, 3, 4], result.stdout
        assert hops[2][1] == "* * *"


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("port", [8080, 8081])
def test_tcp_open_and_closed_port(chain: Chain, family: int, port: int) -> None:
    h2 = chain["h2"]
    listener = h2.popen("python3", "-c", (
        "import socket, sys, time\n"
        f"s = socket.socket(socket.AF_INET{'6' if family == 6 else ''})\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('{'::' if family == 6 else '0.0.0.0'}', 8080)); s.listen(64)\n"
        "print('ready', flush=True); time.sleep(120)\n"))
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        addr = addresses(chain, family)
        result = chain["h1"].gnt("traceroute", "-n", "-T", "-p", str(port), addr["h2"], user="nobody")
        assert result.returncode == 0, result.stdout + result.stderr
        hops = hop_lines(result.stdout)
        assert [ttl for ttl, _ in hops] == [1, 2, 3, 4]
        assert hops[3][1].startswith(addr["h2"] + "  ")  # SYN-ACK (8080) or RST (8081): reached
    finally:
        listener.kill()
        listener.wait()


def test_unreachable_route_is_annotated_and_exits_1(chain: Chain) -> None:
    r1, r2, r3 = chain["r1"], chain["r2"], chain["r3"]
    r1.ip("route", "add", "198.18.9.0/24", "via", "198.18.2.2")
    r2.ip("route", "add", "198.18.9.0/24", "via", "198.18.3.2")
    r3.ip("route", "add", "unreachable", "198.18.9.0/24")
    result = chain["h1"].gnt("traceroute", "-n", "198.18.9.1", user="nobody")
    assert result.returncode == 1, result.stdout + result.stderr
    hops = hop_lines(result.stdout)
    assert [ttl for ttl, _ in hops] == [1, 2, 3]
    assert hops[2][1].startswith("198.18.3.2  ")
    assert "!H" in hops[2][1]


def test_missing_host_on_the_last_link_is_host_unreachable(chain: Chain) -> None:
    """No neighbour answers for 2001:db8:4::77: r3 gives up on neighbour discovery (!H)."""
    result = chain["h1"].gnt("traceroute", "-n", "-I", "2001:db8:4::77", user="nobody", timeout=90)
    assert result.returncode == 1, result.stdout + result.stderr
    hops = hop_lines(result.stdout)
    assert [ttl for ttl, _ in hops] == [1, 2, 3, 4]
    assert hops[3][1].startswith("2001:db8:3::2  ")
    assert "!H" in hops[3][1]


def test_json_lines(chain: Chain) -> None:
    silence(chain["r2"], 6)
    addr = chain.addresses6
    result = chain["h1"].gnt("traceroute", "--json", "-I", addr["h2"], user="nobody")
    assert result.returncode == 0, result.stderr
    objects = records(result.stdout)
    assert [o["type"] for o in objects] == ["hop"] * 4 + ["summary"]
    assert [o["ttl"] for o in objects[:4]] == [1, 2, 3, 4]
    assert all(p["address"] is None and p["rtt_ms"] is None for p in objects[1]["probes"])
    assert {p["address"] for p in objects[2]["probes"]} == {addr["r3"]}
    assert objects[4] == {"type": "summary", "destination": addr["h2"], "address": addr["h2"],
                          "reached": True, "hops": 4, "method": "icmp", "interrupted": False}


def test_hops_stream_before_the_trace_ends(chain: Chain) -> None:
    """Past r3 nothing answers (h2's link drops everything): hops 1-3 print long before the end."""
    chain["r3"].run("iptables", "-A", "FORWARD", "-d", chain.addresses4["h2"], "-j", "DROP")
    proc = chain["h1"].gnt_popen("traceroute", "-n", "-m", "6", "-w", "2", chain.addresses4["h2"], user="nobody")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if line.startswith(" 3 "):
            break
    running_after_hop_3 = proc.poll() is None
    rest, _err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert seen[-1].startswith(" 3  198.18.3.2  ")
    assert running_after_hop_3  # hop 3 was on stdout while hops 4-6 were still being waited for
    lines = rest.splitlines()
    assert [line[:2] for line in lines] == [" 4", " 5", " 6"]
    assert all(line.endswith("* * *") for line in lines)


def test_unresolvable_host_is_one_line(chain: Chain) -> None:
    result = chain["h1"].gnt("traceroute", "no-such-host.invalid", user="nobody")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("gnt traceroute: no-such-host.invalid: ")
    assert len(result.stderr.splitlines()) == 1


def test_icmp_without_ping_sockets_names_the_fix(chain: Chain) -> None:
    chain["h1"].sysctl("net.ipv4.ping_group_range", "1 0")
    result = chain["h1"].gnt("traceroute", "-I", chain.addresses4["h2"], user="nobody")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("gnt traceroute: cannot open an ICMP socket")
    assert lines[1].startswith("gnt traceroute: hint: ") and "ping_group_range" in lines[1]


@pytest.mark.parametrize("family", [4, 6])
def test_icmp_raw_socket_as_root(chain: Chain, family: int) -> None:
    """Root outside ping_group_range gets a raw socket; errors are decoded from the quoted echo."""
    chain["h1"].sysctl("net.ipv4.ping_group_range", "1 0")
    silence(chain["r2"], family)
    addr = addresses(chain, family)
    result = chain["h1"].gnt("traceroute", "-n", "-I", addr["h2"])
    assert result.returncode == 0, result.stdout + result.stderr
    hops = hop_lines(result.stdout)
    assert [ttl for ttl, _ in hops] == [1, 2, 3, 4]
    assert hops[1][1] == "* * *"
    assert hops[2][1].startswith(addr["r3"] + "  ")
    assert hops[3][1].startswith(addr["h2"] + "  ")


def test_tcp_rtt_is_never_that_of_a_retransmitted_syn(chain: Chain) -> None:
    """A rate-limited hop answers the SYN the kernel resends a second later: its RTT is unknown.

    The runs before drain the routers' ICMP token buckets; -w 5,0,0 keeps the probes waiting past
    the first SYN retransmission. An answer that may be for the resent SYN is no answer (a `*`),
    never an RTT of a second or more on this chain of veths.
    """
    addr = chain.addresses4
    for _run in range(2):
        chain["h1"].gnt("traceroute", "-n", "-T", addr["h2"], user="nobody")
    result = chain["h1"].gnt("traceroute", "-n", "-T", "-w", "5,0,0", addr["h2"], user="nobody")
    assert result.returncode == 0, result.stdout + result.stderr
    hops = hop_lines(result.stdout)
    assert [ttl for ttl, _ in hops] == [1, 2, 3, 4], result.stdout
    rtts = [float(ms) for _ttl, rest in hops for ms in re.findall(r"(\d+\.\d+) ms", rest)]
    assert rtts and max(rtts) < 1000, result.stdout

"""`gnt vxlan-csum scan -i`: frames injected over a veth from another namespace, seen through the
kernel (BPF) filter; and the audit's UDP checksum error counter provoked for real."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import pytest
from helpers.netns import Namespace, Topology
from helpers.vxlan_frames import inner_frame, vxlan_frame

pytestmark = pytest.mark.netns

MAC_TX, MAC_RX = "02:00:00:00:0b:01", "02:00:00:00:0b:02"  # every injected frame names its MACs


def objects(out: str, kind: str) -> list[dict[str, object]]:
    """The JSON objects of one "type" in a --json stream (never picked by position)."""
    return [o for o in map(json.loads, out.splitlines()) if o.get("type") == kind]


def summary_of(out: str) -> dict[str, object]:
    (summary,) = objects(out, "summary")
    return summary


def inject(ns: Namespace, iface: str, frames: list[bytes]) -> None:
    ns.send_frames(iface, frames)


def wait_for_packet_socket(ns: Namespace, timeout: float = 10.0) -> None:
    """Wait until a packet socket in `ns` is bound to a protocol (the scan is capturing: its filter
    and ring are set up before the bind; a socket still at protocol 0 receives nothing yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ns.bound_packet_sockets():
            return
        time.sleep(0.05)
    raise AssertionError("the scan never opened its packet socket")


def scan_while(rx: Namespace, *args: str, action: Callable[[], object]) -> tuple[int, str, str]:
    """Run `gnt vxlan-csum scan ARGS` in `rx`, do `action` once its packet socket is open, and return
    (exit code, stdout, stderr); the scan is killed if anything fails on the way."""
    proc = rx.gnt_popen("vxlan-csum", "scan", *args)
    try:
        wait_for_packet_socket(rx)
        action()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


@pytest.fixture
def pair(topology: Topology) -> tuple[Namespace, Namespace]:
    tx = topology.add("vxtx")
    rx = topology.add("vxrx")
    topology.veth(tx, "eth0", rx, "eth0")
    return tx, rx


def _frames() -> tuple[list[bytes], dict[str, int]]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    frames: list[bytes] = []
    for variant, n in (("zero", 3), ("ok", 2), ("ffff", 2), ("bad", 1), ("partial", 1)):
        frames += [vxlan_frame(variant, sport=1000 + len(frames))] * n
    frames.append(vxlan_frame("ok", v6=True, inner=inner_frame("udp", payload=99)))
    frames.append(vxlan_frame("ffff", vlan=30, dport=4789))
    frames.append(vxlan_frame("ok", inner=inner_frame("tcp", bad="l4")))
    # What the kernel filter must keep out of user space.
    noise = [
        bytes(Ether(src=MAC_TX, dst=MAC_RX) / IP(src="198.18.100.1", dst="198.18.100.2") / UDP(dport=53) / b"x"),
        bytes(Ether(src=MAC_TX, dst=MAC_RX) / IP(src="198.18.100.1", dst="198.18.100.2") / TCP(dport=8472)),
        vxlan_frame("ffff", dport=9999),
    ]
    expected = {"vxlan_packets": 12, "checksum_zero": 3, "checksum_ok": 4, "checksum_bad": 4, "bug_signature": 3,
                "checksum_partial": 1, "inner_bad": 1, "other_packets": 0}
    return frames[:6] + noise + frames[6:], expected


def test_live_scan_sees_injected_frames_through_the_filter(pair: tuple[Namespace, Namespace]) -> None:
    tx, rx = pair
    frames, expected = _frames()
    code, out, err = scan_while(rx, "-i", "eth0", "--count", str(expected["vxlan_packets"]), "--json",
                                action=lambda: inject(tx, "eth0", frames))
    assert code == 1, err
    summary = summary_of(out)
    for key, value in expected.items():
        assert summary[key] == value, (key, summary)
    assert summary["source"] == "live capture on eth0"
    assert summary["kernel_drops"] == 0
    # Only VXLAN-port UDP reached user space: the port-9999 frame and the DNS/TCP noise were filtered.
    assert {o["outer_dport"] for o in objects(out, "flow")} == {8472, 4789}


def test_live_scan_duration_and_text(pair: tuple[Namespace, Namespace]) -> None:
    tx, rx = pair
    code, out, err = scan_while(rx, "-i", "eth0", "--duration", "3",
                                action=lambda: inject(tx, "eth0", [vxlan_frame("zero"), vxlan_frame("ok", sport=7)]))
    assert code == 0, err
    assert out.startswith("no bad outer UDP checksum in 2 VXLAN packets: 1 verified good, 1 sent without one.")
    assert "live capture on eth0" in out


def test_live_scan_needs_cap_net_raw(pair: tuple[Namespace, Namespace]) -> None:
    _tx, rx = pair
    result = rx.gnt("vxlan-csum", "scan", "-i", "eth0", "--count", "1", user="nobody")
    assert result.returncode == 2
    assert "gnt vxlan-csum: capturing on eth0 needs CAP_NET_RAW" in result.stderr
    assert "hint: run as root, or give the process cap_net_raw" in result.stderr
    assert "Traceback" not in result.stderr


def test_live_scan_unknown_interface(pair: tuple[Namespace, Namespace]) -> None:
    _tx, rx = pair
    result = rx.gnt("vxlan-csum", "scan", "-i", "nosuch0", "--count", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("gnt vxlan-csum: no interface named nosuch0")


def test_audit_counts_udp_checksum_errors(pair: tuple[Namespace, Namespace]) -> None:
    """Datagrams with a bad UDP checksum sent to the namespace make Udp InCsumErrors count."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    tx, rx = pair
    tx.ip("addr", "add", "198.18.100.1/24", "dev", "eth0")
    rx.ip("addr", "add", "198.18.100.2/24", "dev", "eth0")
    clean = rx.gnt("vxlan-csum", "audit", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "udp-in-csum-errors" in objects(clean.stdout, "audit")[0]["passed"]
    mac = rx.run("cat", "/sys/class/net/eth0/address").stdout.strip()
    good = bytes(Ether(src=MAC_TX, dst=mac) / IP(src="198.18.100.1", dst="198.18.100.2")
                 / UDP(sport=5000, dport=5001) / b"hi")
    bad = bytearray(good)
    bad[14 + 20 + 6] ^= 0xFF  # UDP checksum
    inject(tx, "eth0", [bytes(bad)] * 3)
    time.sleep(0.2)
    result = rx.gnt("vxlan-csum", "audit", "--json")
    assert result.returncode == 1
    findings = objects(result.stdout, "finding")
    errors = [f for f in findings if f["id"] == "udp-in-csum-errors"]
    assert len(errors) == 1
    assert errors[0]["subject"] == "Udp InCsumErrors"
    assert "InCsumErrors = 3" in errors[0]["evidence"]
    assert objects(result.stdout, "audit")[0]["at_risk"] is True


@pytest.mark.parametrize("signame,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_live_scan_interrupted_reports_then_exits_128_plus_signal(pair: tuple[Namespace, Namespace], signame: str,
                                                                  code: int) -> None:
    """Ctrl-C, or SIGTERM as `timeout` sends it: the report comes out all the same. SIGTERM relies on the
    error boundary turning it into a KeyboardInterrupt subclass (exit 128 + 15)."""
    import signal

    tx, rx = pair
    proc = rx.gnt_popen("vxlan-csum", "scan", "-i", "eth0", "--json")
    try:
        wait_for_packet_socket(rx)
        inject(tx, "eth0", [vxlan_frame("ffff")] * 4)
        time.sleep(0.5)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    summary = summary_of(out)
    assert summary["vxlan_packets"] == 4 and summary["bug_signature"] == 4
    assert "Traceback" not in err


def test_audit_as_unprivileged_user_says_what_it_could_not_check(pair: tuple[Namespace, Namespace]) -> None:
    _tx, rx = pair
    rx.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472", "noudpcsum",
          "local", "198.18.100.2")
    result = rx.gnt("vxlan-csum", "audit", "--json", user="nobody")
    # A check that could not run is not OK: the report, then one error line and the hint, exit 2.
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "gnt vxlan-csum: could not check masquerade-random-fully-without-unmark: the NAT rules could not be read",
        "gnt vxlan-csum: hint: run the audit as root (iptables-save and nft need CAP_NET_ADMIN)"]
    assert [o["id"] for o in objects(result.stdout, "finding")] == ["vxlan-tx-csum-offload"]  # no privilege needed
    summary = objects(result.stdout, "audit")[0]
    assert "masquerade-random-fully-without-unmark" not in summary["passed"]
    assert summary["unchecked"] == ["masquerade-random-fully-without-unmark"]
    assert summary["verdict"].startswith("NOT CHECKED") and summary["at_risk"] is False
    assert any("run the audit as root" in n for n in summary["notes"])


def test_live_scan_on_any_interface(pair: tuple[Namespace, Namespace]) -> None:
    """-i any: a cooked socket on every interface, the filter reading the protocol from the kernel."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    tx, rx = pair
    noise = bytes(Ether(src=MAC_TX, dst=MAC_RX) / IP(src="198.18.100.1", dst="198.18.100.2") / UDP(dport=53) / b"x")
    frames = [vxlan_frame("ffff"), noise, vxlan_frame("ok", v6=True), vxlan_frame("zero", vlan=5)]
    code, out, err = scan_while(rx, "-i", "any", "--count", "3", "--json", action=lambda: inject(tx, "eth0", frames))
    assert code == 1, err
    summary = summary_of(out)
    assert (summary["vxlan_packets"], summary["bug_signature"], summary["checksum_ok"], summary["checksum_zero"],
            summary["other_packets"]) == (3, 1, 1, 1, 0)
    assert summary["source"] == "live capture on any"


@pytest.mark.parametrize("underlay", [4, 6])
def test_live_scan_of_real_tunnel_traffic_with_partial_inner_checksums(pair: tuple[Namespace, Namespace],
                                                                        underlay: int) -> None:
    """Real VXLAN devices sending outer checksums (udpcsum / IPv6 default) over veth: the inner UDP
    checksum stays partial and the kernel computes the outer one over the inner segment as offload
    will finish it (local checksum offload). Those outer checksums are right, not bad."""
    tx, rx = pair
    for ns, me, peer in ((tx, 1, 2), (rx, 2, 1)):
        if underlay == 4:
            ns.ip("addr", "add", f"198.18.100.{me}/24", "dev", "eth0")
            ends = ["local", f"198.18.100.{me}", "remote", f"198.18.100.{peer}", "udpcsum"]
        else:
            ns.ip("-6", "addr", "add", f"2001:db8:100::{me}/64", "dev", "eth0", "nodad")
            ends = ["local", f"2001:db8:100::{me}", "remote", f"2001:db8:100::{peer}"]
        ns.ip("link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", *ends)
        ns.ip("addr", "add", f"10.99.0.{me}/24", "dev", "vx0")
        ns.ip("link", "set", "vx0", "up")
    rx.ip("neigh", "replace", "10.99.0.1", "lladdr", tx.run("cat", "/sys/class/net/vx0/address").stdout.strip(),
          "dev", "vx0")
    tx.ip("neigh", "replace", "10.99.0.2", "lladdr", rx.run("cat", "/sys/class/net/vx0/address").stdout.strip(),
          "dev", "vx0")
    send = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" \
           "for _ in range(3): s.sendto(b'x' * 500, ('10.99.0.2', 9))"
    code, out, err = scan_while(rx, "-i", "eth0", "--duration", "3", "--json",
                                action=lambda: tx.run(sys.executable, "-c", send))
    summary = summary_of(out)
    flows = objects(out, "flow")
    udp = [f for f in flows if f["inner_proto"] == "udp" and f["inner_dport"] == 9]
    assert sum(f["packets"] for f in udp) == 3, out
    assert summary["checksum_bad"] == 0, out
    assert code == 0, err


def test_live_scan_ring_counts_a_burst_without_loss(pair: tuple[Namespace, Namespace]) -> None:
    """20,000 frames injected as fast as a raw socket sends them: the ring holds the burst. What reached
    the interface (its rx_packets; the veth itself may drop some of the burst before that) is what the
    scan counts, with no kernel drop."""
    tx, rx = pair

    def rx_packets() -> int:
        return int(rx.run("cat", "/sys/class/net/eth0/statistics/rx_packets").stdout)

    frames = [vxlan_frame("zero", sport=1000 + i % 50) for i in range(20_000)]
    before: list[int] = []
    code, out, err = scan_while(rx, "-i", "eth0", "--duration", "8", "--json",
                                action=lambda: (before.append(rx_packets()), inject(tx, "eth0", frames)))
    arrived = rx_packets() - before[0]
    summary = summary_of(out)
    assert arrived > 5_000, arrived
    # (a router or neighbour solicitation of the kernel's own may also have arrived: not VXLAN)
    assert arrived - 3 <= summary["vxlan_packets"] <= arrived, (arrived, summary)
    assert summary["kernel_drops"] == 0, summary
    assert code == 0, err


def test_live_scan_buffer_option(pair: tuple[Namespace, Namespace]) -> None:
    tx, rx = pair
    code, out, err = scan_while(rx, "-i", "eth0", "--buffer", "1", "--count", "2", "--json",
                                action=lambda: inject(tx, "eth0", [vxlan_frame("ok"), vxlan_frame("ok", v6=True)]))
    assert code == 0, err
    assert summary_of(out)["checksum_ok"] == 2
    bad = rx.gnt("vxlan-csum", "scan", "-i", "eth0", "--buffer", "0")
    assert bad.returncode == 2 and "invalid --buffer 0" in bad.stderr

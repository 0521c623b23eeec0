"""`gnt vxlan-csum scan` on captures built with scapy: every checksum case, every layout, the CLI."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from helpers.cli import run_gnt as run_cli
from helpers.jsonl import records
from helpers.vxlan_frames import (
    CSUM_VARIANTS,
    inner_frame,
    to_sll,
    to_sll2,
    vxlan_frame,
    word_sum,
    write_pcap,
    write_pcapng,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnt.core.capture import LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW
from gnt.vxlan import scan_file
from gnt.vxlan.scan import DEFAULT_PORTS, FOLD_ABOVE, LAZY_SUM_ABOVE, build_report, scan

MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0a:02"  # every test frame names its MACs


def pcap_of(tmp_path: Path, frames: list[bytes], name: str = "c.pcap", **kw: object) -> str:
    path = str(tmp_path / name)
    write_pcap(path, frames, **kw)  # type: ignore[arg-type]
    return path


EXPECTED = {  # variant -> (summary counter that must count it, is it bad)
    "zero": "checksum_zero", "ok": "checksum_ok", "ffff": "checksum_bad", "bad": "checksum_bad",
    "partial": "checksum_partial",
}


@pytest.mark.parametrize("variant", CSUM_VARIANTS)
@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("vlan", [None, 100])
@pytest.mark.parametrize("inner", ["tcp", "udp", "icmp"])
def test_each_outer_checksum_case(tmp_path: Path, variant: str, v6: bool, vlan: int | None, inner: str) -> None:
    frame = vxlan_frame(variant, v6=v6, vlan=vlan, inner=inner_frame(inner, payload=100))
    s = scan_file(pcap_of(tmp_path, [frame, frame])).summary
    assert s.vxlan_packets == 2
    assert getattr(s, EXPECTED[variant]) == 2
    others = {"checksum_zero", "checksum_ok", "checksum_bad", "checksum_partial"} - {EXPECTED[variant]}
    assert all(getattr(s, o) == 0 for o in others)
    assert s.bug_signature == (2 if variant == "ffff" else 0)
    assert s.inner_bad == 0 and s.other_packets == 0 and s.flows == 1


@pytest.mark.parametrize("bad", ["ip", "l4"])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_inner_checksums_verified_apart(tmp_path: Path, bad: str, proto: str) -> None:
    # The outer checksum is computed over the damaged inner frame, so only the inner one is wrong.
    frame = vxlan_frame("ok", inner=inner_frame(proto, payload=33, bad=bad))
    s = scan_file(pcap_of(tmp_path, [frame])).summary
    assert s.checksum_ok == 1 and s.checksum_bad == 0
    assert s.inner_bad == 1
    assert (s.inner_ipv4_header_bad, s.inner_l4_bad) == ((1, 0) if bad == "ip" else (0, 1))


def test_inner_v6_and_inner_udp_without_checksum(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    no_csum = Ether(bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src="10.1.0.1", dst="10.1.0.2")
                          / UDP(sport=5, dport=6, chksum=0) / b"xyz"))
    frames = [
        vxlan_frame("ok", inner=inner_frame("tcp", v6=True, payload=10)),
        vxlan_frame("ok", inner=inner_frame("udp", v6=True, payload=11, bad="l4")),
        vxlan_frame("zero", inner=no_csum),
    ]
    report = scan_file(pcap_of(tmp_path, frames))
    s = report.summary
    assert s.vxlan_packets == 3 and s.checksum_ok == 2 and s.checksum_zero == 1
    assert s.inner_l4_bad == 1 and s.inner_bad == 1
    assert [f.inner_proto for f in report.flows] == ["tcp", "udp", "udp"]
    assert report.flows[0].inner_src == "fd00:244::1"


def test_other_packets_and_other_ports(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    frames = [
        bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53) / b"q"),
        bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=8472)),
        b"\xff" * 12 + b"\x08\x06" + b"\0" * 46,
        vxlan_frame("ok", dport=4789),
        vxlan_frame("ok", dport=9999),
    ]
    path = pcap_of(tmp_path, frames)
    s = scan_file(path).summary
    assert (s.vxlan_packets, s.other_packets) == (1, 4)
    s2 = scan_file(path, ports=[9999]).summary
    assert (s2.vxlan_packets, s2.other_packets) == (1, 4)


def test_flows_keyed_by_outer_ports_vni_and_inner_tuple(tmp_path: Path) -> None:
    frames = [
        vxlan_frame("zero", sport=1000, vni=1),
        vxlan_frame("zero", sport=1000, vni=1),
        vxlan_frame("ffff", sport=2000, vni=1),  # same inner flow, source port rewritten (random-fully)
        vxlan_frame("zero", sport=1000, vni=2),
        vxlan_frame("zero", sport=1000, vni=1, inner=inner_frame("tcp", sport=40001)),
    ]
    report = scan_file(pcap_of(tmp_path, frames, start=1_700_000_000.0))
    assert [(f.outer_sport, f.vni, f.inner_sport, f.packets) for f in report.flows] == [
        (1000, 1, 40000, 2), (2000, 1, 40000, 1), (1000, 2, 40000, 1), (1000, 1, 40001, 1),
    ]
    first = report.flows[0]
    assert (first.outer_src, first.outer_dst, first.outer_dport) == ("198.18.100.1", "198.18.100.2", 8472)
    assert (first.inner_src, first.inner_dst, first.inner_dport) == ("10.244.0.5", "10.244.1.7", 80)
    assert first.first_seen == pytest.approx(1_700_000_000.0)
    assert first.last_seen == pytest.approx(1_700_000_000.001)
    assert report.flows[1].bug_signature == 1


def _mixed_frames() -> list[bytes]:
    frames = []
    for i, variant in enumerate(CSUM_VARIANTS):
        for proto in ("tcp", "udp"):
            frames.append(vxlan_frame(variant, inner=inner_frame(proto, payload=17 * i + 1400 * (i % 2)),
                                      sport=3000 + i))
    frames.append(vxlan_frame("ok", inner=inner_frame("tcp", payload=700, bad="l4")))
    frames.append(vxlan_frame("bad", inner=inner_frame("udp", payload=3, bad="ip")))
    return frames


def _counts(path: str) -> tuple[int, ...]:
    s = scan_file(path).summary
    return (s.vxlan_packets, s.checksum_zero, s.checksum_ok, s.checksum_bad, s.bug_signature,
            s.checksum_partial, s.inner_bad, s.inner_ipv4_header_bad, s.inner_l4_bad, s.other_packets)


def test_fast_and_general_paths_agree(tmp_path: Path) -> None:
    """Ethernet frames take the fast path; the same packets as cooked/raw captures take the general one."""
    frames = _mixed_frames()
    eth = _counts(pcap_of(tmp_path, frames, "eth.pcap"))
    assert eth[3] == 5 and eth[4] == 2  # bad: ffff x2 + bad x2 + the last one
    sll = _counts(pcap_of(tmp_path, [to_sll(f) for f in frames], "sll.pcap", linktype=LINKTYPE_LINUX_SLL))
    sll2 = _counts(pcap_of(tmp_path, [to_sll2(f) for f in frames], "sll2.pcap", linktype=LINKTYPE_LINUX_SLL2))
    raw = _counts(pcap_of(tmp_path, [f[14:] for f in frames], "raw.pcap", linktype=LINKTYPE_RAW))
    ng = str(tmp_path / "eth.pcapng")
    write_pcapng(ng, frames, big_endian=True)
    assert eth == sll == sll2 == raw == _counts(ng)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.integers(0, 1450), proto=st.sampled_from(["tcp", "udp"]), v6=st.booleans(),
       inner_v6=st.booleans(), variant=st.sampled_from(CSUM_VARIANTS), vlan=st.sampled_from([None, 7]))
def test_verdict_matches_scapy_oracle(tmp_path: Path, payload: int, proto: str, v6: bool, inner_v6: bool,
                                      variant: str, vlan: int | None) -> None:
    """Odd and even lengths, both families: "ok" is exactly scapy's checksum, anything else is not."""
    frame = vxlan_frame(variant, v6=v6, vlan=vlan, inner=inner_frame(proto, v6=inner_v6, payload=payload))
    s = scan_file(pcap_of(tmp_path, [frame], "h.pcap")).summary
    assert getattr(s, EXPECTED[variant]) == 1
    assert s.inner_bad == 0


def test_snaplen_cut_packets_are_not_called_bad(tmp_path: Path) -> None:
    frames = [vxlan_frame("ok", inner=inner_frame("tcp", payload=1000)), vxlan_frame("ffff")]
    report = scan_file(pcap_of(tmp_path, frames, snaplen=96))
    s = report.summary
    assert s.vxlan_packets == 2 and s.truncated_packets == 2
    assert s.checksum_bad == s.checksum_ok == 0
    assert report.flows[0].inner_sport == 40000  # the headers that are there still name the flow
    assert s.problems == []


def test_count_limits_records(tmp_path: Path) -> None:
    path = pcap_of(tmp_path, [vxlan_frame("zero")] * 10)
    assert scan_file(path, count=3).summary.vxlan_packets == 3
    ng = str(tmp_path / "c.pcapng")
    write_pcapng(ng, [vxlan_frame("zero")] * 10)
    assert scan_file(ng, count=4).summary.vxlan_packets == 4


# --- the command ---------------------------------------------------------------------------------


def test_cli_text_verdict_first_and_exit_1_on_bad(tmp_path: Path) -> None:
    frames = [vxlan_frame("zero")] * 3 + [vxlan_frame("ffff", sport=2000)] * 2 + [vxlan_frame("bad", sport=3000)]
    code, out, err = run_cli("vxlan-csum", "scan", "--pcap", pcap_of(tmp_path, frames))
    assert code == 1, err
    first = out.splitlines()[0]
    assert first.startswith("3 of 6 VXLAN packets carry a bad outer UDP checksum; 2 are 0xffff, "
                            "the signature of the kernel NAT checksum bug")
    assert "198.18.100.1:2000 > 198.18.100.2:8472" in out
    assert err == ""


def test_cli_exit_0_when_none_bad_and_good_only_when_verified(tmp_path: Path) -> None:
    frames = [vxlan_frame("zero"), vxlan_frame("ok"), vxlan_frame("partial")]
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", pcap_of(tmp_path, frames))
    assert code == 0
    assert out.startswith("no bad outer UDP checksum in 3 VXLAN packets: 1 verified good, 1 sent without one, "
                          "1 partial (captured before offload or segmentation).")
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", pcap_of(tmp_path, [vxlan_frame("ok")] * 2, "ok.pcap"))
    assert (code, out.splitlines()[0]) == (0, "all 2 VXLAN packets have a good outer UDP checksum.")


def test_cli_exit_1_on_inner_bad_only(tmp_path: Path) -> None:
    frame = vxlan_frame("ok", inner=inner_frame("tcp", bad="l4"))
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", pcap_of(tmp_path, [frame]))
    assert code == 1
    assert "1 carry a bad inner checksum" in out.splitlines()[0]


def test_cli_json_flows_then_summary(tmp_path: Path) -> None:
    frames = [vxlan_frame("zero", sport=1), vxlan_frame("ffff", sport=2), vxlan_frame("partial", sport=3)]
    code, out, _ = run_cli("vxlan-csum", "scan", "--json", "--pcap", pcap_of(tmp_path, frames))
    assert code == 1
    objs = records(out)
    assert [o["type"] for o in objs] == ["flow", "flow", "flow", "summary"]
    summary = objs[-1]
    for key, value in {"vxlan_packets": 3, "checksum_zero": 1, "checksum_ok": 0, "checksum_bad": 1,
                       "bug_signature": 1, "checksum_partial": 1, "inner_bad": 0, "other_packets": 0}.items():
        assert summary[key] == value, key
    assert objs[1]["outer_sport"] == 2 and objs[1]["bug_signature"] == 1


def test_cli_truncated_capture_exit_2_after_report(tmp_path: Path) -> None:
    path = pcap_of(tmp_path, [vxlan_frame("ffff")] * 3, truncate_last=30)
    code, out, err = run_cli("vxlan-csum", "scan", "--pcap", path)
    assert code == 2
    # The two whole ones are bad; the cut one is reported but not verified.
    assert out.startswith("2 of 3 VXLAN packets carry a bad outer UDP checksum")
    assert "1 cut short in the capture (not verified)" in out
    assert err.count("\n") == 1
    assert err.startswith("gnt vxlan-csum: damaged capture: record 3 at byte")
    assert "the packets before it were analysed" in err


@pytest.mark.parametrize("args,needle", [
    (["--pcap", "/nonexistent/x.pcap"], "no such file: /nonexistent/x.pcap"),
    (["--pcap", "/etc/hostname"], "is not a pcap or pcapng capture"),
    (["--pcap", "x", "-i", "lo"], "exactly one of --pcap FILE or -i IFACE"),
    ([], "exactly one of --pcap FILE or -i IFACE"),
    (["--pcap", "x", "--port", "8472,abc"], "invalid --port value"),
    (["--pcap", "x", "--port", "70000"], "invalid --port value"),
    (["--pcap", "x", "--count", "0"], "invalid --count 0"),
    (["--pcap", "x", "--duration", "3"], "--duration applies to live capture"),
    (["-i", "nosuchif0"], "no interface named nosuchif0"),
])
def test_cli_bad_input_one_line_exit_2(args: list[str], needle: str) -> None:
    code, _out, err = run_cli("vxlan-csum", "scan", *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert err.startswith("gnt vxlan-csum: ")
    assert len([line for line in err.splitlines() if "hint" not in line]) == 1


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_outer_verdicts_agree_with_tcpdump(tmp_path: Path) -> None:
    """tcpdump -vv verifies UDP checksums too: its verdicts are an independent oracle.

    tcpdump cannot tell a partial checksum from a bad one, so its "bad" is our bad + partial; and it
    calls a zero checksum over IPv6 bad (RFC 8200), which VXLAN devices may send when configured
    (udp6zerocsumtx), so IPv6 outer frames are only compared with non-zero checksums.
    """
    v6 = [vxlan_frame(v, v6=True, sport=9000 + i) for i, v in enumerate(CSUM_VARIANTS) if v != "zero"]
    frames = _mixed_frames() + v6
    path = pcap_of(tmp_path, frames)
    out = subprocess.run(["tcpdump", "-nn", "-vv", "-r", path], capture_output=True, text=True, check=True).stdout
    out = "\n".join(line for line in out.splitlines() if ".8472: " in line)  # outer headers only
    s = scan_file(path).summary
    assert out.count("[no cksum]") == s.checksum_zero
    assert out.count("[udp sum ok]") == s.checksum_ok
    assert len(re.findall(r"\[bad udp cksum 0x[0-9a-f]+ ->", out)) == s.checksum_bad + s.checksum_partial
    assert len(re.findall(r"\[bad udp cksum 0xffff ->", out)) == s.bug_signature


def test_vlan_tagged_fast_path_agrees_with_general_path(tmp_path: Path) -> None:
    """One 802.1Q tag stays on the fast path; the same frames as cooked captures take the general one."""
    frames = [vxlan_frame(v, vlan=12, sport=4000 + i, inner=inner_frame(p, payload=900 * (i % 2) + i, bad=bad))
              for i, (v, p, bad) in enumerate([("zero", "tcp", None), ("ok", "udp", None), ("ffff", "tcp", None),
                                               ("partial", "udp", None), ("bad", "tcp", "l4"), ("ok", "tcp", "ip")])]
    eth = _counts(pcap_of(tmp_path, frames, "vlan.pcap"))
    assert eth[:7] == (6, 1, 2, 2, 1, 1, 2)
    sll = _counts(pcap_of(tmp_path, [to_sll(f) for f in frames], "vlan-sll.pcap", linktype=LINKTYPE_LINUX_SLL))
    assert eth == sll


def test_text_lists_bad_flows_first_and_caps_the_list(tmp_path: Path) -> None:
    frames = [vxlan_frame("zero", sport=10000 + i) for i in range(60)] + [vxlan_frame("ffff", sport=20000)]
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", pcap_of(tmp_path, frames))
    assert code == 1
    flow_lines = [line for line in out.splitlines() if line.startswith("  198.18.100.1:")]
    assert len(flow_lines) == 50
    assert flow_lines[0].startswith("  198.18.100.1:20000 > ")
    assert out.rstrip().endswith("... and 11 more flows (--json lists them all)")


def test_no_vxlan_at_all_is_exit_0_with_a_plain_verdict(tmp_path: Path) -> None:
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", pcap_of(tmp_path, [b"\xff" * 60] * 2))
    assert code == 0
    assert out.startswith("no VXLAN packets (UDP to port 4789, 8472) in 2 packets")


def test_capture_from_stdin(tmp_path: Path) -> None:
    import sys

    path = pcap_of(tmp_path, [vxlan_frame("ffff")])
    with open(path, "rb") as f:
        result = subprocess.run([sys.executable, "-m", "gnt", "vxlan-csum", "scan", "--pcap", "-", "--json"],
                                stdin=f, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["bug_signature"] == 1


def _lco_frame(proto: str, *, v6: bool = False, vlan: int | None = None, inner_v6: bool = False,
               outer_wrong: bool = False, payload: int = 200) -> bytes:
    """What the sender's kernel puts out before offload: the inner TCP/UDP checksum is partial (the
    pseudo-header sum alone) and the outer one is computed over the inner segment as offload will
    finish it (local checksum offload), so it only verifies once the inner checksum is filled in."""
    frame = bytearray(vxlan_frame("ok", v6=v6, vlan=vlan, inner=inner_frame(proto, v6=inner_v6, payload=payload)))
    outer_udp = 14 + (4 if vlan is not None else 0) + (40 if v6 else 20)
    ip = outer_udp + 8 + 8 + 14
    l4 = ip + (40 if inner_v6 else 20)
    number = 6 if proto == "tcp" else 17
    if inner_v6:
        pseudo = bytes(frame[ip + 8 : ip + 40]) + struct.pack("!I3xB", len(frame) - l4, number)
    else:
        pseudo = bytes(frame[ip + 12 : ip + 20]) + struct.pack("!BBH", 0, number, len(frame) - l4)
    struct.pack_into("!H", frame, l4 + (16 if proto == "tcp" else 6), word_sum(pseudo))
    if outer_wrong:
        frame[outer_udp + 6] ^= 0x0F
    return bytes(frame)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
@pytest.mark.parametrize("v6,vlan,inner_v6", [(False, None, False), (True, None, False), (False, 7, False),
                                              (False, None, True)])
def test_outer_checksum_over_a_partial_inner_segment_is_ok(tmp_path: Path, proto: str, v6: bool,
                                                           vlan: int | None, inner_v6: bool) -> None:
    # Seen live on veth: IPv6 VXLAN and `udpcsum` IPv4 VXLAN carrying UDP or TCP were reported bad.
    path = pcap_of(tmp_path, [_lco_frame(proto, v6=v6, vlan=vlan, inner_v6=inner_v6)] * 2)
    s = scan_file(path).summary
    assert (s.checksum_ok, s.checksum_bad, s.checksum_partial) == (2, 0, 0)
    assert (s.inner_l4_partial, s.inner_bad) == (2, 0)
    assert run_cli("vxlan-csum", "scan", "--pcap", path)[0] == 0
    wrong = scan_file(pcap_of(tmp_path, [_lco_frame(proto, v6=v6, vlan=vlan, inner_v6=inner_v6,
                                                    outer_wrong=True)], "wrong.pcap")).summary
    assert (wrong.checksum_ok, wrong.checksum_bad) == (0, 1)


def test_ipv6_underlay_fast_path_agrees_with_general_path(tmp_path: Path) -> None:
    """IPv6 outer, IPv4 inner takes the IPv6 fast layout; as raw IP captures the same frames take the
    general path: the counts must be the same, partial inner checksums and local checksum offload included."""
    frames = [vxlan_frame(v, v6=True, sport=6000 + i, inner=inner_frame(p, payload=700 * (i % 3) + i, bad=bad))
              for i, (v, p, bad) in enumerate([("ok", "tcp", None), ("ok", "udp", None), ("ffff", "tcp", None),
                                               ("partial", "udp", None), ("bad", "tcp", "l4"), ("ok", "tcp", "ip"),
                                               ("zero", "udp", None)])]
    frames += [_lco_frame("tcp", v6=True), _lco_frame("udp", v6=True, outer_wrong=True)]
    eth = _counts(pcap_of(tmp_path, frames, "v6.pcap"))
    assert eth[:7] == (9, 1, 4, 3, 1, 1, 2)
    raw = _counts(pcap_of(tmp_path, [f[14:] for f in frames], "v6-raw.pcap", linktype=LINKTYPE_RAW))
    assert eth == raw


@pytest.mark.parametrize("v6", [False, True])
def test_gso_sized_segments_fast_and_general_paths_agree(tmp_path: Path, v6: bool) -> None:
    """Segments longer than any MTU (a 30,000-byte GSO frame with valid lengths) are told partial before
    they are summed; the fast path and the general one (the same frames as raw IP) still agree, and a
    wrong checksum on such a frame is still found."""
    frames = [vxlan_frame(v, v6=v6, sport=7000 + i, inner=inner_frame("tcp", payload=30_000 + i))
              for i, v in enumerate(CSUM_VARIANTS) if not (v6 and v == "zero")]
    frames += [_lco_frame("tcp", v6=v6, payload=30_000), _lco_frame("udp", v6=v6, payload=30_001, outer_wrong=True),
               vxlan_frame("ok", v6=v6, inner=inner_frame("tcp", payload=30_002, bad="l4"))]
    eth = _counts(pcap_of(tmp_path, frames, "gso.pcap", snaplen=262144))
    raw = _counts(pcap_of(tmp_path, [f[14:] for f in frames], "gso-raw.pcap", linktype=LINKTYPE_RAW, snaplen=262144))
    assert eth == raw
    zero = 0 if v6 else 1
    # packets, zero, ok (ok, lco, the inner-bad one), bad (ffff, bad, lco wrong), 0xffff, partial, inner bad
    assert eth[:7] == (7 + zero, zero, 3, 3, 1, 1, 1)


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("payload", [FOLD_ABOVE - 20 + k for k in range(1, 5)] + [1001, 1460, 4093, 8999,
                                                                                  LAZY_SUM_ABOVE - 20])
def test_long_segments_are_summed_in_quarters(tmp_path: Path, v6: bool, payload: int) -> None:
    """A segment of FOLD_ABOVE to LAZY_SUM_ABOVE bytes is summed as four numbers on the fast path: odd and
    even lengths verify, a byte changed in any quarter (or in the odd last byte) is found by both the
    inner and the outer checksum, and the general path (the same frames as raw IP) counts the same."""
    good = vxlan_frame("ok", v6=v6, inner=inner_frame("tcp", payload=payload))
    seglen = payload + 20  # inner TCP header and payload: the end of the frame
    seg = len(good) - seglen
    frames = [good]
    for at in [seg + k * (seglen // 4) + seglen // 8 for k in range(4)] + [len(good) - 1]:  # mid-quarter, last
        damaged = bytearray(good)
        damaged[at] ^= 0x5A
        frames.append(bytes(damaged))
    eth = scan_file(pcap_of(tmp_path, frames, "q.pcap")).summary
    assert (eth.vxlan_packets, eth.checksum_ok, eth.checksum_bad, eth.inner_l4_bad, eth.flows) == (6, 1, 5, 5, 1)
    raw = _counts(pcap_of(tmp_path, [f[14:] for f in frames], "q-raw.pcap", linktype=LINKTYPE_RAW))
    assert _counts(pcap_of(tmp_path, frames, "q.pcap")) == raw


def _tagged(frame: bytes, tpid: int, vid: int) -> bytes:
    """The frame with one more VLAN tag after the MAC addresses."""
    return frame[:12] + struct.pack("!HH", tpid, vid) + frame[12:]


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("inner", ["tcp", "udp", "icmp", "tcp6"])
def test_one_flow_whichever_path_its_packets_take(tmp_path: Path, v6: bool, inner: str) -> None:
    """The fast path slices a flow's key out of the frame; the general path builds it from the decoded
    fields. The same packet untagged, with one 802.1Q tag (both fast when the inner packet is IPv4
    TCP/UDP) and with an 802.1ad tag (the general path) is one flow, named the same."""
    frame = vxlan_frame("ok", v6=v6, vni=4242, sport=52001,
                        inner=inner_frame(inner[:3], v6=inner == "tcp6", sport=40001, payload=600))
    frames = [frame, _tagged(frame, 0x8100, 7), _tagged(frame, 0x88A8, 9), frame[14:]]
    report = scan_file(pcap_of(tmp_path, frames[:3], "f.pcap"))
    raw = scan_file(pcap_of(tmp_path, frames[3:], "f-raw.pcap", linktype=LINKTYPE_RAW))
    assert report.summary.flows == 1 and report.summary.checksum_ok == 3
    flow = report.flows[0]
    assert (flow.outer_src, flow.outer_sport, flow.outer_dst, flow.outer_dport, flow.vni) == (
        "2001:db8:100::1" if v6 else "198.18.100.1", 52001, "2001:db8:100::2" if v6 else "198.18.100.2", 8472, 4242)
    assert flow.inner_proto == {"tcp6": "tcp"}.get(inner, inner)
    assert (flow.inner_src, flow.inner_dst) == (("fd00:244::1", "fd00:244::2") if inner == "tcp6"
                                                else ("10.244.0.5", "10.244.1.7"))
    assert (flow.inner_sport, flow.inner_dport) == ((None, None) if inner == "icmp" else (40001, 80))
    assert raw.flows[0] == dataclasses.replace(flow, packets=1, checksum_ok=1, last_seen=flow.first_seen)


def test_records_in_any_buffer_type_give_one_report(tmp_path: Path) -> None:
    """scan() over records whose frames are bytes, bytearray or memoryview: the same flows and counts
    (the fast path slices flow keys out of the frame, and a key must hash)."""
    frames = _mixed_frames()
    reports = []
    for kind in (bytes, bytearray, memoryview):
        records_ = [(kind(f), 0, len(f), len(f), 1, float(i)) for i, f in enumerate(frames)]
        flows, tally = scan(iter(records_))  # type: ignore[arg-type]
        reports.append(build_report(flows, tally, source="test", ports=DEFAULT_PORTS))
    assert reports[0] == reports[1] == reports[2]
    assert reports[0].summary.vxlan_packets == len(frames) - reports[0].summary.other_packets > 0

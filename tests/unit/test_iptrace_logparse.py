"""Offline trace parsing: fixtures recorded from real xtables-monitor / nft monitor runs (see
tests/netns/test_iptrace_live.py, GNT_IPTRACE_RECORD=1) and realistic kernel TRACE log lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnt.iptrace.logparse import LogReader, Malformed, parse_legacy, read_lines

DATA = Path(__file__).resolve().parent.parent / "data" / "iptrace"


def _read(name: str) -> LogReader:
    return read_lines((DATA / name).read_text().splitlines(keepends=True))


def _path(packet) -> list[tuple[str, str, str, object, str | None]]:
    return [(s.table, s.chain, s.kind, s.rulenum if s.rulenum is not None else s.handle, s.verdict)
            for s in packet.steps]


def test_kernel_log_groups_by_packet_identity_and_order() -> None:
    reader = _read("kernel_trace.log")
    packets = list(reader.packets())
    assert reader.skipped == 2  # a truncated line cut inside ID=, one cut inside the prefix
    assert reader.skipped_lines == [16, 19]
    assert reader.ignored == 2  # the systemd and sshd lines
    assert [p.id for p in packets] == ["1", "2", "3", "4", "5", "6", "7"]
    first = packets[0]
    assert _path(first) == [
        ("raw", "PREROUTING", "policy", None, None),
        ("filter", "FORWARD", "rule", 1, "jump GNTUSER"),
        ("filter", "GNTUSER", "rule", 1, "return"),  # inferred: the next step is back in the caller
        ("filter", "FORWARD", "rule", 2, None),
    ]
    s = first.summary
    assert (s.family, s.iif, s.oif, s.src, s.dst, s.proto, s.ip_id, s.length, s.icmp_type, s.icmp_code) == (
        "ipv4", "eth0", "eth1", "198.18.1.1", "198.18.4.2", "icmp", 24610, 84, 8, 0)


def test_kernel_log_keeps_tunnel_inner_and_outer_apart() -> None:
    packets = list(_read("kernel_trace.log").packets())
    inner, outer = packets[1], packets[2]
    assert (inner.summary.src, inner.summary.sport, inner.summary.dport) == ("10.244.0.26", 53, 48865)
    assert inner.summary.iif == "cni0" and inner.summary.oif == "flannel.1"
    assert _path(inner) == [
        ("raw", "PREROUTING", "policy", None, None),
        ("filter", "FORWARD", "rule", 1, "jump KUBE-FORWARD"),
        ("filter", "KUBE-FORWARD", "return", None, "return"),
        ("filter", "FORWARD", "rule", 4, None),
        ("mangle", "POSTROUTING", "policy", None, None),
    ]
    assert (outer.summary.src, outer.summary.dst, outer.summary.dport) == ("192.0.2.10", "192.0.2.12", 8472)
    assert [s.chain for s in outer.steps] == ["OUTPUT", "OUTPUT", "POSTROUTING"]


def test_kernel_log_same_flow_new_ip_id_is_a_new_packet() -> None:
    packets = list(_read("kernel_trace.log").packets())
    syn1, syn2 = packets[3], packets[4]
    assert syn1.summary.ip_id == 40021 and syn2.summary.ip_id == 40022
    assert (syn1.summary.proto, syn1.summary.dport) == ("tcp", 22)
    last = packets[6]
    assert last.summary.ip_id == 24611 and len(last.steps) == 2


def test_kernel_log_ipv6_addresses_are_compressed_and_mark_read() -> None:
    v6 = list(_read("kernel_trace.log").packets())[5]
    s = v6.summary
    assert (s.family, s.src, s.dst, s.proto, s.icmp_type, s.ip_id, s.mark) == (
        "ipv6", "2001:db8:1::1", "2001:db8:4::2", "ipv6-icmp", 128, None, 0x4000)


@pytest.mark.parametrize("line", [
    "kernel: TRACE: filter:INPUT:rule:1 IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60",  # no PROTO
    "kernel: TRACE: filter:INPUT:rule:1 IN=eth0 OUT= SRC=10.0.0.1 DST=10.0.0.2 LEN=60 PROTO=TCP SPT=1",
    "kernel: TRACE: filter:INPUT:ru",
    "kernel: TRACE: filter:INPUT:rule:x IN=eth0 OUT= SRC=1.2.3.4 DST=1.2.3.5 PROTO=ICMP",
])
def test_broken_legacy_lines_are_malformed(line: str) -> None:
    with pytest.raises(Malformed):
        parse_legacy(line)


def test_issue_example_line_parses() -> None:
    line = ("Nov 20 10:00:00 node kernel: TRACE: raw:PREROUTING:policy:2 IN=cni0 OUT= "
            "MAC=0a:58:0a:f4:00:01:0a:58:0a:f4:00:1a:08:00 SRC=10.244.0.26 DST=10.244.2.207 LEN=129 TOS=0x00 "
            "PREC=0x00 TTL=64 ID=64398 DF PROTO=UDP SPT=53 DPT=48865 LEN=129")
    parsed = parse_legacy(line)
    assert parsed is not None
    assert (parsed.table, parsed.chain, parsed.kind, parsed.rulenum) == ("raw", "PREROUTING", "policy", 2)
    assert parsed.fields["ID"] == "64398" and parsed.l4["DPT"] == "48865"


def test_xtables_monitor_fixture() -> None:
    reader = _read("xtables_monitor_trace.txt")
    packets = list(reader.packets())
    assert reader.skipped == 0
    assert len(packets) == 6
    icmp4 = packets[0]
    assert icmp4.summary.family == "ipv4" and icmp4.summary.iif == "eth0" and icmp4.summary.oif == "eth1"
    assert _path(icmp4) == [
        ("raw", "PREROUTING", "rule", 2, "continue"),
        ("raw", "PREROUTING", "policy", None, "accept"),
        ("filter", "FORWARD", "rule", 3, "jump GNTUSER"),
        ("filter", "GNTUSER", "rule", 4, "return"),  # 0xfffffffb: NFT_RETURN
        ("filter", "FORWARD", "rule", 5, "accept"),
    ]
    assert icmp4.steps[2].rule == "-A FORWARD -p icmp -j GNTUSER"
    assert icmp4.steps[4].deciding and icmp4.summary.verdict == "accept"
    tcp4 = packets[1]
    assert (tcp4.summary.proto, tcp4.summary.dport) == ("tcp", 7071)
    assert tcp4.steps[-1].verdict == "drop" and "REJECT" in (tcp4.steps[-1].rule or "")
    v6 = [p for p in packets if p.summary.family == "ipv6"]
    assert len(v6) == 3 and v6[0].summary.src == "2001:db8:1::1"
    assert [s.verdict for s in v6[2].steps if s.table == "filter"] == ["drop"]


def test_nft_monitor_fixture_hides_gnt_table() -> None:
    reader = _read("nft_monitor_trace.txt")
    packets = list(reader.packets())
    assert reader.skipped == 0
    assert all(not s.table.startswith("gnt_iptrace_") for p in packets for s in p.steps)
    icmp = next(p for p in packets if p.summary.proto == "icmp" and p.summary.icmp_type == 8)
    assert [(s.chain, s.verdict) for s in icmp.steps] == [
        ("forward", "jump gntuser"), ("gntuser", "return"), ("forward", "accept")]
    assert icmp.steps[0].rule == "meta l4proto icmp jump gntuser" and icmp.steps[0].family == "inet"
    tcp = next(p for p in packets if p.summary.proto == "tcp")
    assert tcp.summary.dport == 7071 and tcp.summary.iif == "eth0" and tcp.summary.oif == "eth1"
    assert tcp.steps[-1].deciding and tcp.steps[-1].rule == "meta l4proto tcp reject"
    v6 = next(p for p in packets if p.summary.family == "ipv6")
    assert v6.summary.proto == "ipv6-icmp" and v6.summary.src == "2001:db8:1::1"


def test_mixed_formats_and_garbage() -> None:
    lines = [
        *(DATA / "nft_monitor_trace.txt").read_text().splitlines()[:7],
        "trace id zz not a trace",  # marker, unreadable
        "trace id 0badf00d ip filter INPUT rule ip saddr 1.2.3.4 accep",  # truncated before (verdict ...)
        " TRACE: 2 a3abd244 raw:PREROUTING:rule:CONTINUE",  # no handle
        "PACKET: 2",  # truncated
        *(DATA / "xtables_monitor_trace.txt").read_text().splitlines()[:7],
        *(DATA / "kernel_trace.log").read_text().splitlines()[1:5],
        "",
        "random words",
    ]
    reader = read_lines(lines)
    packets = list(reader.packets())
    assert reader.skipped == 4
    assert reader.ignored == 2
    assert [p.id for p in packets] == ["daeb4f86", "a3abd244", "1"]
    assert [s.verdict for s in packets[0].steps] == ["jump gntuser", "return", "accept"]

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


LEGACY_LINE = ("kernel: TRACE: filter:FORWARD:rule:1 IN=eth0 OUT=eth1 MAC=aa SRC=198.18.1.1 DST=198.18.4.2 LEN=84 "
               "TOS=0x00 PREC=0x00 TTL=63 ID=24610 DF PROTO=ICMP TYPE=8 CODE=0 ID=41 SEQ=1 MARK=0x42\n")
XT_PACKET = "PACKET: 2 a3abd244 IN=eth0 OUT=eth1 SRC=198.18.1.1 DST=198.18.4.2 LEN=84 TTL=62 ID=50231 DF \n"
XT_RULE = " TRACE: 2 a3abd244 filter:FORWARD:rule:0x3:ACCEPT  -4 -t filter -A FORWARD -p icmp -j ACCEPT\n"


@pytest.mark.parametrize("bad", [
    LEGACY_LINE.replace("MARK=0x42", "MARK=zz"),
    LEGACY_LINE.replace("MARK=0x42", "MARK=0xzz"),
    LEGACY_LINE.replace("rule:1 ", "rule:" + "9" * 4400 + " "),
    XT_RULE.replace("0x3:", "0xzz:"),
    XT_RULE.replace("0x3:", "0x" + "f" * 4400 + ":"),
    XT_RULE.replace("0x3:ACCEPT", "0x3:0x" + "f" * 4400),
    "trace id 1a inet gntfw forward unknown rule handle " + "9" * 4400 + " (verdict accept)\n",
    "trace id 1a inet gntfw forward rule meta l4proto icmp accept # handle " + "9" * 4400 + " (verdict accept)\n",
])
def test_malformed_numbers_skip_the_line_and_count_it(bad: str) -> None:
    reader = read_lines([LEGACY_LINE, bad, XT_PACKET, XT_RULE])
    assert reader.skipped == 1 and reader.skipped_lines == [2]
    assert len(list(reader.packets())) == 2  # the good lines still make their packets


def test_nft_policy_and_verdict_lines_with_a_mark() -> None:
    reader = read_lines([
        "trace id 1a inet gntfw forward rule meta l4proto udp meta mark set 0x00000042 (verdict continue)\n",
        "trace id 1a inet gntfw forward verdict continue meta mark 0x00000042\n",
        "trace id 1a inet gntfw forward policy accept meta mark 0x00000042\n",
    ])
    assert reader.skipped == 0
    (packet,) = reader.packets()
    assert [(s.kind, s.verdict) for s in packet.steps] == [("rule", "continue"), ("rule", "continue"),
                                                           ("policy", "accept")]
    assert packet.summary.mark == 0x42 and packet.summary.verdict == "accept"


def test_one_trace_id_several_packets() -> None:
    second = XT_PACKET.replace("ID=50231", "ID=50232")
    reader = read_lines([XT_PACKET, XT_RULE, second, XT_RULE])
    assert [p.summary.ip_id for p in reader.packets()] == [50231, 50232]
    nft = [
        'trace id 1a ip6 gnt_iptrace_1_5 pre packet: iif "eth0" ip6 saddr 2001:db8::1 ip6 daddr 2001:db8::2\n',
        "trace id 1a ip6 gnt_iptrace_1_5 pre rule meta nftrace set 1 (verdict continue)\n",
        "trace id 1a ip6 gnt_iptrace_1_5 pre policy accept\n",
        "trace id 1a ip6 filter forward policy accept\n",
    ]
    packets = list(read_lines(nft + nft).packets())  # no IP ID in IPv6: gnt's own chain starts each packet
    assert len(packets) == 2 and all(p.summary.src == "2001:db8::1" and len(p.steps) == 1 for p in packets)
    assert packets[0].steps[0].family == "ip6"


def test_reading_is_bounded() -> None:
    import io

    from gnt.errors import GntError

    reader = LogReader()
    reader.read(io.StringIO(LEGACY_LINE + "x" * 200_000 + "\n" + LEGACY_LINE), "log")
    assert reader.skipped == 1 and reader.skipped_lines == [2] and len(list(reader.packets())) == 2
    with pytest.raises(GntError, match="not a trace log"):
        LogReader().read(io.StringIO("\0" * (17 << 20)), "stdin")

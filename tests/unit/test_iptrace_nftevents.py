"""nftables trace events: NFT_MSG_TRACE byte vectors built field by field from the layout in
include/uapi/linux/netfilter/nf_tables.h, header summaries checked against scapy, and the
grouping of events into packets."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

from gnt.iptrace.headers import summarize
from gnt.iptrace.models import Summary
from gnt.iptrace.nftevents import TraceEvent, decode_trace, split_messages, verdict_name
from gnt.iptrace.paths import NftTracker


def nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def trace_message(*attrs: bytes, family: int = 2, msg_type: int = (10 << 8) | 17) -> bytes:
    body = struct.pack("!BBH", family, 0, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), msg_type, 0, 0, 0) + body


def verdict_attr(code: int, chain: str | None = None) -> bytes:
    inner = nla(1, struct.pack("!i", code))
    if chain is not None:
        inner += nla(2, chain.encode() + b"\0")
    return nla(5 | 0x8000, inner)  # NLA_F_NESTED


IP_HEADER = bytes(IP(src="198.18.1.1", dst="198.18.4.2", id=4242) / UDP(sport=5353, dport=53))[:20]
UDP_HEADER = bytes(UDP(sport=5353, dport=53, len=8))[:8]


def test_decode_rule_event_with_jump() -> None:
    msg = trace_message(
        nla(1, b"filter\0"), nla(2, b"FORWARD\0"), nla(3, struct.pack("!Q", 7)), nla(4, struct.pack("!I", 3)),
        verdict_attr(-3, "GNTUSER"), nla(6, struct.pack("!I", 0xDEADBEEF)), nla(8, IP_HEADER),
        nla(9, UDP_HEADER), nla(10, struct.pack("!I", 2)), nla(12, struct.pack("!I", 3)),
        nla(14, struct.pack("!I", 0x4000)), nla(15, struct.pack("!I", 2)),
    )
    event = decode_trace(msg)
    assert event is not None
    assert (event.trace_id, event.family, event.table, event.chain, event.kind, event.handle, event.verdict) == (
        0xDEADBEEF, "ip", "filter", "FORWARD", "rule", 7, "jump GNTUSER")
    assert (event.iif, event.oif, event.mark, event.nfproto) == (2, 3, 0x4000, 2)
    assert event.network_header == IP_HEADER and event.transport_header == UDP_HEADER


def test_decode_policy_event_uses_policy_attribute() -> None:
    msg = trace_message(nla(1, b"gntfw\0"), nla(2, b"forward\0"), nla(4, struct.pack("!I", 1)),
                        verdict_attr(0), nla(6, struct.pack("!I", 1)), nla(16, struct.pack("!I", 0)), family=1)
    event = decode_trace(msg)
    assert event is not None
    assert (event.family, event.kind, event.verdict, event.handle) == ("inet", "policy", "drop", None)


@pytest.mark.parametrize("message", [
    b"",
    b"\x10\x00\x00\x00",  # shorter than a header
    trace_message(nla(1, b"t\0")),  # no id, no type
    trace_message(nla(6, struct.pack("!I", 1)), nla(4, struct.pack("!I", 3)), msg_type=(10 << 8) | 6),
])
def test_not_a_trace_event(message: bytes) -> None:
    assert decode_trace(message) is None


def test_truncated_attribute_is_ignored_not_fatal() -> None:
    good = trace_message(nla(6, struct.pack("!I", 9)), nla(4, struct.pack("!I", 3)), nla(1, b"filter\0"))
    broken = good[:-3]
    fixed_len = struct.pack("=I", len(broken)) + broken[4:]
    event = decode_trace(fixed_len)
    assert event is not None and event.trace_id == 9 and event.table == ""


def test_split_messages() -> None:
    a = trace_message(nla(6, struct.pack("!I", 1)), nla(4, struct.pack("!I", 3)))
    b = trace_message(nla(6, struct.pack("!I", 2)), nla(4, struct.pack("!I", 1)))
    assert split_messages(a + b) == [a, b]
    assert split_messages(a + b[:10]) == [a]


@pytest.mark.parametrize("code,target,name", [
    (1, None, "accept"), (0, None, "drop"), (3 | (5 << 16), None, "queue 5"), (-1, None, "continue"),
    (-3, "X", "jump X"), (-4, "Y", "goto Y"), (-5, None, "return"), (2, None, "stolen"),
])
def test_verdict_names(code: int, target: str | None, name: str) -> None:
    assert verdict_name(code, target) == name


def test_summary_ipv4_udp_matches_scapy() -> None:
    pkt = IP(src="198.18.1.1", dst="198.18.4.2", id=777) / UDP(sport=1234, dport=53) / (b"x" * 10)
    raw = bytes(pkt)
    summary = Summary()
    summarize(raw[:20], raw[20:40], summary)
    assert (summary.family, summary.src, summary.dst, summary.proto) == ("ipv4", pkt.src, pkt.dst, "udp")
    assert (summary.sport, summary.dport, summary.ip_id, summary.length) == (1234, 53, 777, IP(raw).len)


def test_summary_ipv6_icmp_and_tcp() -> None:
    raw = bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:4::2") / ICMPv6EchoRequest(id=1, seq=2))
    summary = Summary()
    summarize(raw[:40], raw[40:60], summary)
    assert (summary.family, summary.src, summary.proto, summary.icmp_type, summary.icmp_code) == (
        "ipv6", "2001:db8:1::1", "ipv6-icmp", 128, 0)
    assert summary.length == len(raw)
    raw4 = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=443))
    s4 = Summary()
    summarize(raw4[:20], raw4[20:40], s4)
    assert (s4.proto, s4.sport, s4.dport) == ("tcp", 40000, 443)
    icmp = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=3))
    s5 = Summary()
    summarize(icmp[:20], icmp[20:], s5)
    assert (s5.icmp_type, s5.icmp_code) == (3, 3)


def _event(tid: int, table: str, chain: str, kind: str, handle: int | None, verdict: str | None,
           **kw: object) -> TraceEvent:
    return TraceEvent(trace_id=tid, family="ip", table=table, chain=chain, kind=kind, handle=handle,
                      verdict=verdict, **kw)  # type: ignore[arg-type]


def test_tracker_groups_hides_own_table_and_infers_implicit_return() -> None:
    tracker = NftTracker(rules=None, idle=0.5, ifname=lambda i: f"if{i}")
    feed = [
        _event(1, "gnt_iptrace_9", "pre", "rule", 2, "continue", iif=4, network_header=IP_HEADER,
               transport_header=UDP_HEADER),
        _event(1, "gnt_iptrace_9", "pre", "policy", None, "accept"),
        _event(1, "filter", "FORWARD", "rule", 3, "jump USERC", oif=5),
        _event(1, "filter", "USERC", "rule", 4, "continue"),
        _event(1, "filter", "USERC", "rule", None, "continue"),  # end of USERC: an implicit return
        _event(1, "filter", "FORWARD", "rule", None, "continue"),  # FORWARD resumes
        _event(1, "filter", "FORWARD", "rule", None, "continue"),  # end of FORWARD
        _event(1, "filter", "FORWARD", "policy", None, "accept"),
    ]
    done = [p for i, e in enumerate(feed) for p in tracker.feed(e, now=i * 0.01)]
    assert done == []
    assert tracker.expire(0.2) == []
    (packet,) = tracker.expire(1.0)
    assert packet.id == "00000001"
    assert [(s.chain, s.kind, s.verdict) for s in packet.steps] == [
        ("FORWARD", "rule", "jump USERC"), ("USERC", "rule", "continue"), ("USERC", "return", "return"),
        ("FORWARD", "policy", "accept")]
    assert packet.steps[-1].deciding and packet.summary.verdict == "accept"
    assert (packet.summary.iif, packet.summary.oif, packet.summary.src, packet.summary.dport) == (
        "if4", "if5", "198.18.1.1", 53)


def test_tracker_names_an_interface_once_per_packet_and_index() -> None:
    """Naming an ifindex is a syscall: not once per event of a packet, but again when it changes."""
    asked: list[int] = []
    tracker = NftTracker(rules=None, ifname=lambda i: asked.append(i) or f"if{i}")
    for oif in (5, 5, 5, 6, 6):
        tracker.feed(_event(1, "filter", "OUTPUT", "rule", 3, "continue", oif=oif), 0)
    (packet,) = tracker.drain()
    assert packet.summary.oif == "if6" and asked == [5, 6]
    tracker.feed(_event(1, "filter", "OUTPUT", "rule", 3, "continue", oif=6), 0)  # a new packet, same id
    (again,) = tracker.drain()
    assert again.summary.oif == "if6" and asked == [5, 6, 6]


def test_tracker_completes_on_drop_and_keeps_ids_apart() -> None:
    tracker = NftTracker(rules=None, ifname=str)
    assert tracker.feed(_event(1, "filter", "INPUT", "rule", 3, "continue"), 0) == []
    assert tracker.feed(_event(2, "filter", "INPUT", "rule", 3, "continue"), 0) == []
    (dropped,) = tracker.feed(_event(2, "filter", "INPUT", "rule", 5, "drop"), 0)
    assert dropped.id == "00000002" and dropped.summary.verdict == "drop" and dropped.steps[1].deciding
    (rest,) = tracker.drain()
    assert rest.id == "00000001" and rest.summary.verdict is None


def test_tracker_splits_packets_that_reuse_a_trace_id() -> None:
    """The kernel reuses trace ids (derived from the skb): a second pass through gnt's own chain,
    or a different IPv4 ID, is a new packet."""
    second_ip = bytes(IP(src="198.18.1.1", dst="198.18.4.2", id=4243) / UDP(sport=5353, dport=53))[:20]
    tracker = NftTracker(rules=None, ifname=str)
    own = [_event(7, "gnt_iptrace_1", "pre", "rule", 2, "continue", network_header=IP_HEADER),
           _event(7, "gnt_iptrace_1", "pre", "policy", None, "accept")]
    done = [p for e in own for p in tracker.feed(e, 0)]
    done += tracker.feed(_event(7, "filter", "INPUT", "rule", 3, "accept"), 0)
    done += tracker.feed(_event(7, "gnt_iptrace_1", "pre", "rule", 2, "continue", network_header=IP_HEADER), 0)
    assert [p.summary.ip_id for p in done] == [4242]
    done = tracker.feed(_event(7, "filter", "INPUT", "rule", 3, "accept", network_header=second_ip), 0)
    assert [p.summary.ip_id for p in done] == [4242] and done[0].steps == []
    (last,) = tracker.drain()
    assert last.summary.ip_id == 4243 and [s.verdict for s in last.steps] == ["accept"]

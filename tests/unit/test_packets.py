"""Byte-exact tests of the wire codecs in gnt.core.packets, with scapy as the oracle.

Each codec is held to three things: decoding scapy's bytes gives scapy's field values and
encodes back to the same bytes; building from field values gives the bytes scapy builds
(checksums included); and no buffer, truncated or random, raises anything but DecodeError.
"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP as ScapyICMP
from scapy.layers.inet import IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    HBHOptUnknown,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
    RouterAlert,
)
from scapy.layers.ipsec import AH as ScapyAH
from scapy.layers.ipsec import ESP as ScapyESP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN as ScapyVXLAN
from scapy.packet import Raw

from gnt.core.packets import DecodeError, dispatch, ethernet, icmp, ipv4, ipv6, tcp, udp, vxlan
from gnt.core.packets.ethernet import Ethernet, VlanTag
from gnt.core.packets.icmp import ICMP
from gnt.core.packets.ipv4 import IPv4
from gnt.core.packets.ipv6 import ExtensionHeader
from gnt.core.packets.ipv6 import IPv6 as GntIPv6
from gnt.core.packets.tcp import TCP as GntTCP
from gnt.core.packets.udp import UDP as GntUDP
from gnt.core.packets.vxlan import VXLAN

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
V4_A, V4_B = "198.18.1.1", "198.18.4.2"
V6_A, V6_B = "2001:db8:1::1", "2001:db8:4::2"
P4_A, P4_B = socket.inet_aton(V4_A), socket.inet_aton(V4_B)
P6_A, P6_B = socket.inet_pton(socket.AF_INET6, V6_A), socket.inet_pton(socket.AF_INET6, V6_B)

ports = st.integers(0, 0xFFFF)
payloads = st.binary(max_size=64)


def assert_every_truncation_fails(data: bytes, decode, layer: str, upto: int | None = None) -> list[int]:
    """Every prefix of `data` shorter than `upto` raises DecodeError naming `layer`; returns the offsets."""
    offsets = []
    for cut in range(upto if upto is not None else len(data)):
        with pytest.raises(DecodeError) as info:
            decode(data[:cut], 0)
        assert info.value.layer == layer
        assert 0 <= info.value.offset <= cut
        offsets.append(info.value.offset)
    return offsets


def decode_or_decode_error(decode, data: bytes, offset: int = 0) -> None:
    """Decoding either succeeds or raises DecodeError; any other exception fails the test."""
    try:
        decode(data, offset)
    except DecodeError as err:
        assert err.layer and err.offset >= 0


# --- Ethernet -----------------------------------------------------------------------------------


ETHER_VECTORS = [
    pytest.param(Ether(dst=MAC_B, src=MAC_A) / IP(src=V4_A, dst=V4_B), (), 0x0800, id="untagged"),
    pytest.param(
        Ether(dst=MAC_B, src=MAC_A) / Dot1Q(vlan=100, prio=5, dei=1) / IPv6(src=V6_A, dst=V6_B),
        ((0x8100, 100, 5, True),), 0x86DD, id="802.1q",
    ),
    pytest.param(
        Ether(dst=MAC_B, src=MAC_A) / Dot1AD(vlan=4000, prio=1) / Dot1Q(vlan=7, prio=3)
        / IP(src=V4_A, dst=V4_B),
        ((0x88A8, 4000, 1, False), (0x8100, 7, 3, False)), 0x0800, id="qinq-802.1ad",
    ),
    pytest.param(
        Ether(dst=MAC_B, src=MAC_A, type=0x9100) / Dot1Q(vlan=4095, type=0x8100) / Dot1Q(vlan=1, type=0x0806),
        ((0x9100, 4095, 0, False), (0x8100, 1, 0, False)), 0x0806, id="qinq-9100",
    ),
]


@pytest.mark.parametrize(("pkt", "tags", "ethertype"), ETHER_VECTORS)
def test_ethernet_vectors(pkt, tags, ethertype):
    data = bytes(pkt)
    eth = Ethernet.decode(data)
    assert eth.dst_text == MAC_B and eth.src_text == MAC_A
    assert eth.type == ethertype
    assert [(t.tpid, t.vid, t.pcp, t.dei) for t in eth.vlans] == list(tags)
    assert eth.payload_offset == 14 + 4 * len(tags) == eth.header_length
    inner = data[eth.payload_offset :]
    assert eth.encode(inner) == data
    built = Ethernet(
        dst=ethernet.mac_bytes(MAC_B), src=ethernet.mac_bytes(MAC_A), type=ethertype,
        vlans=tuple(VlanTag(vid=v, pcp=p, dei=d, tpid=t) for t, v, p, d in tags),
    )
    assert built.encode(inner) == data
    offsets = assert_every_truncation_fails(data, Ethernet.decode, "ethernet", eth.payload_offset)
    # a cut inside a tag is reported at that tag's TPID
    for cut, offset in enumerate(offsets):
        assert offset == (0 if cut < 14 else 12 + 4 * ((cut - 14) // 4))


def test_ethernet_vid_and_8023_length():
    untagged = Ethernet.decode(bytes(Ether(dst=MAC_B, src=MAC_A, type=0x0800)))
    assert untagged.vid is None and not untagged.is_8023_length
    qinq = Ethernet.decode(bytes(Ether(dst=MAC_B, src=MAC_A) / Dot1AD(vlan=10) / Dot1Q(vlan=20)))
    assert qinq.vid == 20
    llc = Ethernet.decode(bytes(Ether(dst=MAC_B, src=MAC_A, type=46)) + bytes(46))
    assert llc.is_8023_length


def test_mac_helpers():
    assert ethernet.mac_text(b"\x02\x00\x5e\x00\x00\x01") == "02:00:5e:00:00:01"
    assert ethernet.mac_bytes("02-00-5E-00-00-01") == b"\x02\x00\x5e\x00\x00\x01"
    with pytest.raises(ValueError):
        ethernet.mac_bytes("02:00:5e:00:00")


@given(
    vlans=st.lists(
        st.tuples(st.sampled_from(sorted(ethernet.VLAN_TPIDS)), st.integers(0, 4095), st.integers(0, 7),
                  st.booleans()),
        max_size=3,
    ),
    ethertype=st.sampled_from([0x0800, 0x86DD, 0x0806, 0x88CC]),
    payload=payloads,
)
def test_ethernet_build_matches_scapy(vlans, ethertype, payload):
    layers = Ether(dst=MAC_B, src=MAC_A, type=vlans[0][0] if vlans else ethertype)
    for index, (_tpid, vid, pcp, dei) in enumerate(vlans):
        following = vlans[index + 1][0] if index + 1 < len(vlans) else ethertype
        layers = layers / Dot1Q(vlan=vid, prio=pcp, dei=int(dei), type=following)
    expected = bytes(layers / Raw(payload)) if payload else bytes(layers)
    built = Ethernet(
        dst=ethernet.mac_bytes(MAC_B), src=ethernet.mac_bytes(MAC_A), type=ethertype,
        vlans=tuple(VlanTag(vid=v, pcp=p, dei=d, tpid=t) for t, v, p, d in vlans),
    ).encode(payload)
    assert built == expected
    assert Ethernet.decode(expected).encode(expected[14 + 4 * len(vlans) :]) == expected


# --- IPv4 and ICMP (the codecs the ping engine uses) ------------------------------------------------


@pytest.mark.parametrize(
    "pkt",
    [
        IP(src=V4_A, dst=V4_B, ttl=3, id=0x1234, flags="DF", tos=0xB8) / UDP(sport=5, dport=6),
        IP(src=V4_A, dst=V4_B, options=[IPOption_RR(routers=["1.2.3.4"])], frag=100, flags="MF", proto=6),
    ],
    ids=["plain", "options-fragment"],
)
def test_ipv4_vectors(pkt):
    data = bytes(pkt)
    ip = IPv4.decode(data)
    assert (ip.src_text, ip.dst_text, ip.ttl, ip.proto) == (pkt.src, pkt.dst, pkt.ttl, pkt.proto)
    assert ip.checksum == IP(data).chksum
    assert ip.header_valid(data)
    assert ip.fragment_offset == pkt.frag * 8 and ip.dont_fragment == bool(pkt.flags.DF)
    assert ip.encode(data[ip.payload_offset :]) == data
    rebuilt = IPv4(src=ip.src, dst=ip.dst, proto=ip.proto, ttl=ip.ttl, tos=ip.tos, ident=ip.ident,
                   flags_frag=ip.flags_frag, options=ip.options)
    assert rebuilt.encode(data[ip.payload_offset :]) == data  # checksum and length computed as scapy does
    assert_every_truncation_fails(data, IPv4.decode, "ipv4", ip.payload_offset)


def test_ipv4_bad_version_and_ihl():
    data = bytearray(bytes(IP(src=V4_A, dst=V4_B)))
    data[0] = 0x65
    with pytest.raises(DecodeError, match="version 6"):
        IPv4.decode(bytes(data))
    data[0] = 0x44
    with pytest.raises(DecodeError, match="below 20"):
        IPv4.decode(bytes(data))


def test_icmp_echo_vector():
    pkt = ScapyICMP(type=8, id=0x1234, seq=7) / Raw(b"0123456789abcdef")
    data = bytes(pkt)
    msg = ICMP.decode(data)
    assert (msg.type, msg.ident, msg.seq, msg.checksum) == (8, 0x1234, 7, ScapyICMP(data).chksum)
    assert ICMP.echo(0x1234, 7).encode(data[8:]) == data
    assert msg.encode(data[8:]) == data
    assert_every_truncation_fails(data, ICMP.decode, "icmp", 8)
    assert icmp.describe(icmp.DEST_UNREACH, 4, 1400) == "Frag needed and DF set (mtu = 1400)"
    # a raw socket hands over the whole rest-of-header word; the error queue the bare value
    error = ICMP.decode(bytes(ScapyICMP(type=12, ptr=5)))
    assert icmp.describe(error.type, error.code, error.rest) == "Parameter problem: pointer = 5"
    assert icmp.describe(icmp.PARAMETER_PROBLEM, 0, 5) == "Parameter problem: pointer = 5"
    frag_needed = ICMP.decode(bytes.fromhex("0304" "0000" "abcd" "0578"))  # a non-zero "unused" half, then MTU
    assert icmp.describe(frag_needed.type, frag_needed.code, frag_needed.rest) == "Frag needed and DF set (mtu = 1400)"


# --- IPv6 and its extension headers ------------------------------------------------------------


def _v6(*ext_layers, upper=None):
    pkt = IPv6(src=V6_A, dst=V6_B, hlim=9, tc=0xB8, fl=0xABCDE)
    for layer in ext_layers:
        pkt = pkt / layer
    return pkt / upper if upper is not None else pkt


IPV6_VECTORS = [
    pytest.param(_v6(upper=UDP(sport=1, dport=2)), [], 17, id="plain-udp"),
    pytest.param(
        _v6(IPv6ExtHdrHopByHop(options=[RouterAlert()]), upper=ICMPv6EchoRequest()), [0], 58, id="hop-by-hop",
    ),
    pytest.param(
        _v6(
            IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * 10)]),
            IPv6ExtHdrDestOpt(options=[PadN(optdata=b"xy")]),
            IPv6ExtHdrRouting(addresses=["2001:db8::3", "2001:db8::4"], segleft=2),
            IPv6ExtHdrFragment(id=0xDEADBEEF, offset=0, m=1),
            IPv6ExtHdrDestOpt(),
            upper=TCP(sport=80, dport=443, flags="S"),
        ),
        [0, 60, 43, 44, 60], 6, id="full-chain-first-fragment",
    ),
    pytest.param(
        _v6(IPv6ExtHdrFragment(nh=17, id=77, offset=185, m=0), upper=Raw(b"\x11" * 24)),
        [44], 17, id="non-first-fragment",
    ),
    pytest.param(
        # the bytes after a non-first fragment header are mid-datagram data, never walked as headers
        _v6(IPv6ExtHdrFragment(nh=60, id=78, offset=185, m=1), upper=Raw(b"\x11\xff" + bytes(22))),
        [44], 60, id="non-first-fragment-of-options",
    ),
    pytest.param(
        # scapy leaves AH's payload length at 0 unless told: (12 + 12) / 4 - 2 = 4
        _v6(ScapyAH(nh=6, payloadlen=4, spi=0x100, seq=3, icv=b"\x01" * 12), upper=TCP(sport=1, dport=2)),
        [51], 6, id="ah",
    ),
    pytest.param(
        _v6(IPv6ExtHdrDestOpt(), upper=ScapyESP(spi=9, seq=1, data=b"secret!!")), [60], 50, id="esp-stops",
    ),
    pytest.param(
        _v6(IPv6ExtHdrDestOpt(nh=59)) / Raw(b"ignored"), [60], 59, id="no-next-header",
    ),
]


@pytest.mark.parametrize(("pkt", "kinds", "proto"), IPV6_VECTORS)
def test_ipv6_vectors(pkt, kinds, proto):
    data = bytes(pkt)
    ip6 = GntIPv6.decode(data)
    assert (ip6.src_text, ip6.dst_text) == (V6_A, V6_B)
    assert (ip6.hop_limit, ip6.traffic_class, ip6.flow_label) == (9, 0xB8, 0xABCDE)
    assert ip6.payload_length == len(data) - 40
    assert [ext.kind for ext in ip6.extensions] == kinds
    assert ip6.proto == proto
    assert ip6.next_header == IPv6(data).nh
    # the payload offset is where scapy's first non-extension layer starts
    layer = pkt.payload
    while isinstance(layer, IPv6ExtHdrHopByHop | IPv6ExtHdrDestOpt | IPv6ExtHdrRouting | IPv6ExtHdrFragment
                     | ScapyAH):
        layer = layer.payload
    if proto != 59:
        assert ip6.payload_offset == len(data) - len(bytes(layer))
    else:
        assert ip6.payload_offset == len(data) - len(b"ignored")
    assert ip6.header_length == ip6.payload_offset
    for ext in ip6.extensions:
        assert ext.length % 8 == 0 and data[ext.offset + 1 : ext.offset + ext.length] == ext.body
    assert ip6.encode(data[ip6.payload_offset :]) == data
    # every cut inside the fixed header or an extension header is a DecodeError at that header
    offsets = assert_every_truncation_fails(data, GntIPv6.decode, "ipv6", ip6.payload_offset)
    starts = [0] + [ext.offset for ext in ip6.extensions]
    for cut, offset in enumerate(offsets):
        assert offset == max(s for s in starts if s <= cut)


def test_ipv6_fragment_info_matches_scapy():
    pkt = IPv6(bytes(_v6(IPv6ExtHdrFragment(nh=6, id=0xCAFE, offset=100, m=1), upper=Raw(b"\0" * 16))))
    ip6 = GntIPv6.decode(bytes(pkt))
    frag = ip6.fragment
    assert frag is not None
    scapy_frag = pkt[IPv6ExtHdrFragment]
    assert (frag.offset, frag.more, frag.ident, frag.next_header) == (
        scapy_frag.offset * 8, bool(scapy_frag.m), scapy_frag.id, scapy_frag.nh,
    )
    assert ip6.proto == 6 and ip6.payload_offset == 48
    assert not ip6.upper_layer_present
    first = GntIPv6.decode(bytes(_v6(IPv6ExtHdrFragment(id=1, m=1), upper=UDP())))
    assert first.fragment is not None and first.fragment.offset == 0 and first.upper_layer_present
    assert GntIPv6.decode(bytes(_v6(upper=UDP()))).fragment is None


def test_ipv6_build_with_extension_constructors_matches_scapy():
    expected = bytes(
        _v6(
            IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)]),
            IPv6ExtHdrRouting(type=0, segleft=1, addresses=["2001:db8::9"]),
            IPv6ExtHdrFragment(id=0x01020304, offset=0, m=1),
            ScapyAH(nh=60, payloadlen=4, spi=5, seq=6, icv=b"\xaa" * 12),
            IPv6ExtHdrDestOpt(),
            upper=UDP(sport=53, dport=53) / Raw(b"query"),
        )
    )
    udp_part = expected[-13:]
    built = GntIPv6(
        src=P6_A, dst=P6_B, proto=17, hop_limit=9, traffic_class=0xB8, flow_label=0xABCDE,
        extensions=(
            ExtensionHeader.options(ipv6.HOPOPT, b"\x05\x02\x00\x00"),
            ExtensionHeader.routing(0, 1, bytes(4) + socket.inet_pton(socket.AF_INET6, "2001:db8::9")),
            ExtensionHeader.fragment(0, True, 0x01020304),
            ExtensionHeader.authentication(5, 6, b"\xaa" * 12),
            ExtensionHeader.options(ipv6.DSTOPTS),
        ),
    ).encode(udp_part)
    assert built == expected


def test_ipv6_truncated_extension_reason_names_the_header():
    data = bytes(_v6(IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(addresses=["2001:db8::3"]), upper=UDP()))
    with pytest.raises(DecodeError) as info:
        GntIPv6.decode(data[:60])
    assert info.value.offset == 48 and "routing header truncated" in info.value.reason
    with pytest.raises(DecodeError, match="version 4, not 6"):
        GntIPv6.decode(bytes(IP()) + bytes(20))


def test_ipv6_encode_rejects_inconsistent_extension():
    wrong_length = ExtensionHeader(ipv6.DSTOPTS, b"\x01" + bytes(6))  # says 16 bytes, has 8
    bad = GntIPv6(src=P6_A, dst=P6_B, proto=17, extensions=(wrong_length,))
    with pytest.raises(ValueError):
        bad.encode()
    with pytest.raises(ValueError):
        ExtensionHeader.fragment(3, False, 1)


@given(
    tlvs=st.lists(st.tuples(st.integers(2, 255), st.binary(max_size=12)), max_size=4),
    hlim=st.integers(0, 255), flow=st.integers(0, 0xFFFFF),
)
def test_ipv6_options_padding_matches_scapy(tlvs, hlim, flow):
    # scapy pads an option list with Pad1/PadN as RFC 8200 §4.2 says; so must ExtensionHeader.options
    scapy_options = [HBHOptUnknown(otype=kind, optdata=value) for kind, value in tlvs]
    options = b"".join(bytes([kind, len(value)]) + value for kind, value in tlvs)
    expected = bytes(
        IPv6(src=V6_A, dst=V6_B, hlim=hlim, fl=flow) / IPv6ExtHdrDestOpt(options=scapy_options) / UDP()
    )
    ext = ExtensionHeader.options(ipv6.DSTOPTS, options)
    built = GntIPv6(src=P6_A, dst=P6_B, proto=17, hop_limit=hlim, flow_label=flow, extensions=(ext,))
    assert built.encode(expected[40 + ext.length :]) == expected
    assert GntIPv6.decode(expected).extensions == (ext,)


# --- UDP --------------------------------------------------------------------------------------------


@given(sport=ports, dport=ports, payload=payloads, v6=st.booleans())
def test_udp_build_matches_scapy_with_checksum(sport, dport, payload, v6):
    outer = IPv6(src=V6_A, dst=V6_B) if v6 else IP(src=V4_A, dst=V4_B)
    src, dst = (P6_A, P6_B) if v6 else (P4_A, P4_B)
    pkt = outer / UDP(sport=sport, dport=dport) / Raw(payload)
    expected = bytes(pkt[UDP])
    assert GntUDP(sport, dport).encode(payload, src=src, dst=dst) == expected
    decoded = GntUDP.decode(expected)
    assert (decoded.sport, decoded.dport, decoded.length) == (sport, dport, 8 + len(payload))
    assert decoded.encode(expected[8:]) == expected
    assert decoded.checksum_ok(expected, src, dst) is True


def test_udp_computed_zero_goes_out_as_ffff_like_scapy():
    # choose the payload word that makes the ones' complement sum 0xffff (computed checksum 0)
    head = GntUDP(1000, 2000).encode(b"\0\0", src=P4_A, dst=P4_B)
    payload = head[6:8]  # the checksum with a zero payload word is exactly the word that cancels it
    wire = GntUDP(1000, 2000).encode(payload, src=P4_A, dst=P4_B)
    assert wire[6:8] == b"\xff\xff"
    assert bytes((IP(src=V4_A, dst=V4_B) / UDP(sport=1000, dport=2000) / Raw(payload))[UDP]) == wire
    assert GntUDP.decode(wire).checksum_ok(wire, P4_A, P4_B) is True


def test_udp_zero_checksum_and_corruption():
    plain = GntUDP(1, 2).encode(b"abc")  # no addresses: sent without checksum, valid over IPv4 only
    assert plain[6:8] == b"\0\0"
    header = GntUDP.decode(plain)
    assert header.checksum_ok(plain, P4_A, P4_B) is None
    assert header.checksum_ok(plain, P6_A, P6_B) is False
    good = GntUDP(1, 2).encode(b"abcd", src=P4_A, dst=P4_B)
    bad = good[:-1] + b"e"
    assert GntUDP.decode(bad).checksum_ok(bad, P4_A, P4_B) is False
    with pytest.raises(DecodeError):
        GntUDP.decode(good).checksum_ok(good[:-1], P4_A, P4_B)
    assert_every_truncation_fails(good, GntUDP.decode, "udp", 8)


# --- TCP --------------------------------------------------------------------------------------------


TCP_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 654321)), ("NOP", None), ("WScale", 7)]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_tcp_vector_with_options(v6):
    outer = IPv6(src=V6_A, dst=V6_B) if v6 else IP(src=V4_A, dst=V4_B)
    src, dst = (P6_A, P6_B) if v6 else (P4_A, P4_B)
    pkt = outer / TCP(sport=40000, dport=443, seq=0x01020304, ack=0, flags="S", window=64240,
                      options=TCP_OPTIONS) / Raw(b"data")
    expected = bytes(pkt[TCP])
    seg = GntTCP.decode(expected)
    assert (seg.sport, seg.dport, seg.seq, seg.window) == (40000, 443, 0x01020304, 64240)
    assert seg.syn and not seg.is_ack and seg.flags_text == "S"
    assert seg.header_length == TCP(expected).dataofs * 4 == seg.payload_offset
    assert seg.checksum == TCP(expected).chksum
    assert seg.mss() == 1460
    kinds = [kind for kind, _ in seg.option_list()]
    assert kinds == [tcp.OPT_MSS, tcp.OPT_SACK_PERMITTED, tcp.OPT_TIMESTAMP, tcp.OPT_NOP, tcp.OPT_WSCALE]
    assert dict(seg.option_list())[tcp.OPT_TIMESTAMP] == struct.pack("!II", 123456, 654321)
    assert seg.encode(b"data") == expected
    built = GntTCP(40000, 443, seq=0x01020304, flags=tcp.SYN, window=64240, options=seg.options)
    assert built.encode(b"data", src=src, dst=dst) == expected
    assert GntTCP.checksum_ok(expected, src, dst)
    assert not GntTCP.checksum_ok(expected[:-1] + b"b", src, dst)
    assert_every_truncation_fails(expected, GntTCP.decode, "tcp", seg.payload_offset)


@given(
    sport=ports, dport=ports, seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 0x1FF), reserved=st.integers(0, 7), window=ports, urgent=ports, payload=payloads,
    v6=st.booleans(),
)
def test_tcp_build_matches_scapy(sport, dport, seq, ack, flags, reserved, window, urgent, payload, v6):
    outer = IPv6(src=V6_A, dst=V6_B) if v6 else IP(src=V4_A, dst=V4_B)
    src, dst = (P6_A, P6_B) if v6 else (P4_A, P4_B)
    pkt = outer / TCP(sport=sport, dport=dport, seq=seq, ack=ack, reserved=reserved, flags=flags,
                      window=window, urgptr=urgent)
    expected = bytes((pkt / Raw(payload))[TCP]) if payload else bytes(pkt[TCP])
    # the 3 reserved bits ride above the 9 flags, so decode/encode keeps them
    all_bits = reserved << 9 | flags
    built = GntTCP(sport, dport, seq=seq, ack=ack, flags=all_bits, window=window, urgent=urgent)
    assert built.encode(payload, src=src, dst=dst) == expected
    assert GntTCP.decode(expected).flags == all_bits


def test_tcp_flags_text_like_tcpdump():
    assert tcp.flags_text(tcp.SYN | tcp.ACK) == "S."
    assert tcp.flags_text(tcp.ACK) == "."
    assert tcp.flags_text(tcp.PSH | tcp.ACK) == "P."
    assert tcp.flags_text(tcp.FIN | tcp.ACK) == "F."
    assert tcp.flags_text(tcp.RST) == "R"
    assert tcp.flags_text(0) == "none"
    seg = GntTCP(1, 2, flags=tcp.SYN | tcp.ACK | tcp.ECE)
    assert seg.has_flags(tcp.SYN, tcp.ACK) and not seg.has_flags(tcp.SYN, tcp.FIN)


def test_tcp_malformed_options_and_offsets():
    with pytest.raises(DecodeError, match="no length byte"):
        list(tcp.parse_options(b"\x01\x01\x01\x02"))
    with pytest.raises(DecodeError, match="length 1 is invalid"):
        list(tcp.parse_options(b"\x02\x01\x00\x00"))
    with pytest.raises(DecodeError, match="length 9 is invalid"):
        list(tcp.parse_options(b"\x08\x09" + bytes(6)))
    assert list(tcp.parse_options(b"\x01\x00\xff\xff")) == [(tcp.OPT_NOP, b"")]  # EOL ends the list
    short = bytearray(GntTCP(1, 2).encode())
    short[12] = 0x40  # data offset 16 bytes
    with pytest.raises(DecodeError, match="below 20"):
        GntTCP.decode(bytes(short))
    with pytest.raises(ValueError):
        GntTCP(1, 2, options=b"\x01").encode()


# --- VXLAN ------------------------------------------------------------------------------------------


@given(vni=st.integers(0, vxlan.VNI_MAX), flags=st.integers(0, 255), res1=st.integers(0, 0xFFFFFF),
       res2=st.integers(0, 255))
def test_vxlan_matches_scapy(vni, flags, res1, res2):
    # scapy names the 24 bits after the flags by flag: GPE next protocol (P bit), GBP policy (G bit)
    assume(not (flags & 0x04 and flags & 0x80))  # scapy would lay out both, a 11-byte header
    if flags & 0x04:
        extra = {"reserved0": res1 >> 8, "NextProtocol": res1 & 0xFF}
    elif flags & 0x80:
        extra = {"gpflags": res1 >> 16, "gpid": res1 & 0xFFFF}
    else:
        extra = {"reserved1": res1}
    expected = bytes(ScapyVXLAN(flags=flags, vni=vni, reserved2=res2, **extra))
    built = VXLAN(vni=vni, flags=flags, reserved1=res1, reserved2=res2)
    assert built.encode() == expected
    decoded = VXLAN.decode(expected)
    assert decoded == built
    assert decoded.vni_valid == bool(flags & 0x08)


def test_vxlan_rfc7348_header():
    inner = bytes(Ether(dst=MAC_B, src=MAC_A) / IP(src=V4_A, dst=V4_B) / ScapyICMP())
    expected = bytes(ScapyVXLAN(flags=0x08, vni=0x123456, NextProtocol=0)) + inner
    assert expected[:8] == bytes.fromhex("0800000012345600")
    header = VXLAN.decode(expected)
    assert header.vni == 0x123456 and header.vni_valid and header.payload_offset == 8
    assert VXLAN(vni=0x123456).encode(inner) == expected
    assert_every_truncation_fails(expected, VXLAN.decode, "vxlan", 8)
    with pytest.raises(ValueError):
        VXLAN(vni=1 << 24).encode()


# --- The dispatch chain -----------------------------------------------------------------------------


def vxlan_frame(inner_l3=None, vni=42, tagged=True):
    if inner_l3 is None:
        inner_l3 = IPv6(src=V6_A, dst=V6_B) / TCP(sport=1, dport=2, flags="PA") / Raw(b"x" * 9)
    inner = Ether(dst=MAC_B, src=MAC_A) / inner_l3
    outer = Ether(dst=MAC_B, src=MAC_A)
    if tagged:
        outer = outer / Dot1Q(vlan=30)
    return bytes(outer / IP(src=V4_A, dst=V4_B) / UDP(sport=50000, dport=4789)
                 / ScapyVXLAN(flags=0x08, vni=vni, NextProtocol=0) / inner)


def test_dissect_vxlan_chain():
    data = vxlan_frame()
    chain = dispatch.dissect(data)
    assert [type(layer).__name__ for layer in chain.layers] == [
        "Ethernet", "IPv4", "UDP", "VXLAN", "Ethernet", "IPv6", "TCP",
    ]
    assert chain.find(VXLAN).vni == 42
    assert chain.find(Ethernet, 1).type == 0x86DD
    assert chain.find(Ethernet, 2) is None
    assert data[chain.payload_offset : chain.end] == b"x" * 9
    # scapy agrees on where every layer starts
    pkt = Ether(data)
    assert chain.find(GntUDP).payload_offset == len(data) - len(bytes(pkt[ScapyVXLAN]))
    assert chain.find(GntTCP).sport == pkt[TCP].sport


def test_dissect_ignores_ethernet_padding_and_stops_at_fragments():
    frame = bytes(Ether(dst=MAC_B, src=MAC_A) / IP(src=V4_A, dst=V4_B) / UDP(sport=1, dport=2) / Raw(b"hi"))
    padded = frame + bytes(60 - len(frame))
    chain = dispatch.dissect(padded, strict=True)
    assert padded[chain.payload_offset : chain.end] == b"hi"
    later = bytes(Ether(dst=MAC_B, src=MAC_A) / IP(src=V4_A, dst=V4_B, frag=10, proto=17) / Raw(bytes(16)))
    assert [type(x).__name__ for x in dispatch.dissect(later).layers] == ["Ethernet", "IPv4"]
    raw6 = bytes(IPv6(src=V6_A, dst=V6_B) / UDP(sport=7, dport=8472) / ScapyVXLAN(flags=0x08, vni=3)
                 / Ether(dst=MAC_B, src=MAC_A) / IP(src=V4_A, dst=V4_B) / ScapyICMP())
    assert [type(x).__name__ for x in dispatch.dissect(raw6, link="ipv6", strict=True).layers] == [
        "IPv6", "UDP", "VXLAN", "Ethernet", "IPv4", "ICMP",
    ]


def test_dissect_strict_rejects_lying_length_fields():
    frame = vxlan_frame(tagged=False)
    for layer, offset, field_at, value in [
        ("ipv4", 14, 14 + 2, 10),  # IPv4 total length below its own header
        ("ipv4", 14, 14 + 2, len(frame)),  # IPv4 total length beyond the frame
        ("udp", 34, 34 + 4, 7),  # UDP length below its header
        ("udp", 34, 34 + 4, len(frame)),  # UDP length beyond the IPv4 datagram
        ("ipv6", 64, 64 + 4, 1000),  # inner IPv6 payload length beyond the frame
    ]:
        data = bytearray(frame)
        data[field_at : field_at + 2] = struct.pack("!H", value)
        with pytest.raises(DecodeError) as info:
            dispatch.dissect(bytes(data), strict=True)
        assert (info.value.layer, info.value.offset) == (layer, offset)
        # lenient (a capture of TSO/GSO traffic has such lengths): the headers themselves are intact
        assert len(dispatch.dissect(bytes(data)).layers) == 7


def test_every_truncation_of_a_vxlan_frame_is_a_decode_error():
    data = vxlan_frame()
    lenient_layers = set()
    for cut in range(len(data)):
        with pytest.raises(DecodeError) as info:
            dispatch.dissect(data[:cut], strict=True)
        assert info.value.layer in {"ethernet", "ipv4"}  # the outer length field already tells
        assert 0 <= info.value.offset <= cut
        # lenient mode decodes what is there: a cut inside a header names that header
        try:
            dispatch.dissect(data[:cut])
        except DecodeError as err:
            lenient_layers.add(err.layer)
            assert 0 <= err.offset <= cut
    assert lenient_layers == {"ethernet", "ipv4", "udp", "vxlan", "ipv6", "tcp"}
    assert len(dispatch.dissect(data, strict=True).layers) == 7


CODECS = [
    Ethernet.decode, IPv4.decode, GntIPv6.decode, ICMP.decode, GntUDP.decode, GntTCP.decode, VXLAN.decode,
]


@settings(max_examples=300)
@given(data=st.binary(max_size=120), offset=st.integers(0, 130))
def test_random_bytes_only_ever_raise_decode_error(data, offset):
    for decode in CODECS:
        decode_or_decode_error(decode, data, offset)
    for link in dispatch.LINK_CODECS:
        decode_or_decode_error(lambda buf, off, link=link: dispatch.dissect(buf, off, link=link, strict=True),
                               data, offset)


@settings(max_examples=200)
@given(data=st.data())
def test_mutated_valid_frames_only_ever_raise_decode_error(data):
    # random bytes rarely get past the first header; flipping bytes of a real frame reaches every codec
    frame = bytearray(vxlan_frame(inner_l3=IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrHopByHop()
                                  / IPv6ExtHdrFragment(m=1) / TCP(options=TCP_OPTIONS)))
    for _ in range(data.draw(st.integers(1, 4))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    for strict in (False, True):
        try:
            chain = dispatch.dissect(bytes(frame[:cut]), strict=strict)
        except DecodeError:
            continue
        seg = chain.find(GntTCP)
        if seg is not None:
            decode_or_decode_error(lambda buf, off, seg=seg: seg.option_list(), b"")


def test_layer_names_match_modules():
    assert {m.LAYER for m in (ethernet, ipv4, ipv6, icmp, udp, tcp, vxlan)} == {
        "ethernet", "ipv4", "ipv6", "icmp", "udp", "tcp", "vxlan",
    }

"""Byte-exact tests of the ICMPv6/NDP codec, with scapy as the oracle for the wire format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    ICMPv6NDOptDNSSL,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptRedirectedHdr,
    ICMPv6NDOptRouteInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
)

from gnt.core.packets import icmpv6 as m
from gnt.errors import DecodeError

SRC = "fe80::1"
DST = "ff02::1:ff00:2"
SRC_B = m.addr_bytes(SRC)
DST_B = m.addr_bytes(DST)
MAC = bytes.fromhex("9ac1cd1278ec")


def oracle(layer: object, src: str = SRC, dst: str = DST) -> bytes:
    """What scapy puts on the wire after an IPv6 header (checksum computed by scapy)."""
    return bytes(IPv6(src=src, dst=dst, hlim=255) / layer)[40:]  # type: ignore[operator]


# --- plain ICMPv6 ---------------------------------------------------------------------------------


def test_echo_request_matches_scapy() -> None:
    wire = oracle(ICMPv6EchoRequest(id=0x1234, seq=7, data=b"abcdefgh"), dst="2001:db8::2")
    built = m.ICMPv6.echo(0x1234, 7).encode(b"abcdefgh", SRC_B, m.addr_bytes("2001:db8::2"))
    assert built == wire
    msg = m.ICMPv6.decode(wire)
    assert (msg.type, msg.ident, msg.seq, msg.payload_offset) == (m.ECHO_REQUEST, 0x1234, 7, 8)
    assert m.verify(SRC_B, m.addr_bytes("2001:db8::2"), wire)


def test_echo_reply_and_wrong_checksum() -> None:
    wire = bytearray(oracle(ICMPv6EchoReply(id=1, seq=2)))
    assert m.ICMPv6.decode(wire).type == m.ECHO_REPLY
    assert m.verify(SRC_B, DST_B, wire)
    wire[2] ^= 0xFF
    assert not m.verify(SRC_B, DST_B, wire)


@pytest.mark.parametrize(
    ("layer", "icmp_type", "code", "rest", "text"),
    [
        (ICMPv6DestUnreach(code=4), m.DEST_UNREACH, 4, 0, "Destination unreachable: Port unreachable"),
        (ICMPv6PacketTooBig(mtu=1280), m.PACKET_TOO_BIG, 0, 1280, "Packet too big: mtu=1280"),
        (ICMPv6TimeExceeded(code=0), m.TIME_EXCEEDED, 0, 0, "Time exceeded: Hop limit"),
        (ICMPv6ParamProblem(code=1, ptr=40), m.PARAMETER_PROBLEM, 1, 40,
         "Parameter problem: Unknown header at 40"),
    ],
)
def test_errors_decode_and_reencode(layer: object, icmp_type: int, code: int, rest: int, text: str) -> None:
    quoted = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=1))
    wire = oracle(layer / quoted)  # type: ignore[operator]
    msg = m.ICMPv6.decode(wire)
    assert (msg.type, msg.code, msg.rest, msg.is_error) == (icmp_type, code, rest, True)
    assert wire[msg.payload_offset:] == quoted
    assert m.describe(msg.type, msg.code, msg.rest) == text
    assert m.ICMPv6(type=icmp_type, code=code, rest=rest).encode(quoted, SRC_B, DST_B) == wire


def test_short_header_is_decode_error() -> None:
    with pytest.raises(DecodeError) as info:
        m.ICMPv6.decode(b"\x80\x00\x00")
    assert info.value.layer == "icmpv6"


# --- NDP messages ---------------------------------------------------------------------------------


def test_neighbor_solicitation_matches_scapy() -> None:
    target = "2001:db8:9::2"
    wire = oracle(ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr="9a:c1:cd:12:78:ec"))
    ns = m.NeighborSolicitation(target=m.addr_bytes(target), options=[m.LinkLayerOption.source(MAC)])
    assert ns.encode(SRC_B, DST_B) == wire
    back = m.decode_ndp(wire)
    assert isinstance(back, m.NeighborSolicitation)
    assert back.target_text == target
    assert back.source_lladdr == MAC
    assert back.encode() == wire  # the received checksum is kept


def test_neighbor_advertisement_flags_and_target_lladdr() -> None:
    target = "2001:db8:9::2"
    wire = oracle(ICMPv6ND_NA(tgt=target, R=1, S=1, O=0) / ICMPv6NDOptDstLLAddr(lladdr="9a:c1:cd:12:78:ec"))
    na = m.NeighborAdvertisement(
        target=m.addr_bytes(target), router=True, solicited=True, override=False,
        options=[m.LinkLayerOption.target(MAC)],
    )
    assert na.encode(SRC_B, DST_B) == wire
    back = m.decode_ndp(wire)
    assert isinstance(back, m.NeighborAdvertisement)
    assert (back.router, back.solicited, back.override) == (True, True, False)
    assert back.target_lladdr == MAC
    assert m.mac_text(MAC) == "9A:C1:CD:12:78:EC"


def test_router_solicitation_matches_scapy() -> None:
    wire = oracle(ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr="9a:c1:cd:12:78:ec"), dst="ff02::2")
    rs = m.RouterSolicitation(options=[m.LinkLayerOption.source(MAC)])
    assert rs.encode(SRC_B, m.addr_bytes("ff02::2")) == wire
    checksum = int.from_bytes(wire[2:4], "big")
    expected = m.RouterSolicitation(options=[m.LinkLayerOption.source(MAC)], checksum=checksum)
    assert m.decode_ndp(wire) == expected


def full_ra_oracle() -> bytes:
    return oracle(
        ICMPv6ND_RA(chlim=64, M=1, O=1, H=0, prf=1, P=0, routerlifetime=1800, reachabletime=30000,
                    retranstimer=1000)
        / ICMPv6NDOptSrcLLAddr(lladdr="9a:c1:cd:12:78:ec")
        / ICMPv6NDOptMTU(mtu=1400)
        / ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, R=0, validlifetime=86400, preferredlifetime=14400,
                                prefix="2001:db8:9::")
        / ICMPv6NDOptPrefixInfo(prefixlen=48, L=0, A=0, R=1, validlifetime=0xFFFFFFFF, preferredlifetime=0,
                                prefix="2001:db8:a::")
        / ICMPv6NDOptRouteInfo(plen=48, prf=3, rtlifetime=600, prefix="2001:db8:100::", len=2)
        / ICMPv6NDOptRouteInfo(plen=0, prf=0, rtlifetime=60, len=1)
        / ICMPv6NDOptRouteInfo(plen=96, prf=1, rtlifetime=60, prefix="2001:db8:200::", len=3)
        / ICMPv6NDOptRDNSS(lifetime=300, dns=["2001:db8:9::53", "2001:db8:9::54"])
        / ICMPv6NDOptDNSSL(lifetime=300, searchlist=["example.com", "corp.example.net"]),
        dst="ff02::1",
    )


def full_ra() -> m.RouterAdvertisement:
    a = m.addr_bytes
    return m.RouterAdvertisement(
        cur_hop_limit=64, managed=True, other=True, preference=1, router_lifetime=1800,
        reachable_time=30000, retrans_timer=1000,
        options=[
            m.LinkLayerOption.source(MAC),
            m.MTUOption(1400),
            m.PrefixInformation(a("2001:db8:9::"), 64, True, True, False, 86400, 14400),
            m.PrefixInformation(a("2001:db8:a::"), 48, False, False, True, m.INFINITY, 0),
            m.RouteInformation(a("2001:db8:100::"), 48, preference=3, lifetime=600),
            m.RouteInformation(a("::"), 0, preference=0, lifetime=60),
            m.RouteInformation(a("2001:db8:200::"), 96, preference=1, lifetime=60),
            m.RDNSSOption([a("2001:db8:9::53"), a("2001:db8:9::54")], lifetime=300),
            m.DNSSLOption(["example.com", "corp.example.net"], lifetime=300),
        ],
    )


def test_router_advertisement_encodes_byte_exact() -> None:
    assert full_ra().encode(SRC_B, m.addr_bytes("ff02::1")) == full_ra_oracle()


def test_router_advertisement_decodes_every_field() -> None:
    wire = full_ra_oracle()
    ra = m.decode_ndp(wire)
    assert isinstance(ra, m.RouterAdvertisement)
    expected = full_ra()
    expected.checksum = int.from_bytes(wire[2:4], "big")
    assert ra == expected
    assert ra.preference_text == "high"
    assert ra.mtu == 1400
    assert ra.source_lladdr == MAC
    prefixes = [o for o in ra.options if isinstance(o, m.PrefixInformation)]
    assert [p.prefix_text for p in prefixes] == ["2001:db8:9::/64", "2001:db8:a::/48"]
    routes = [o for o in ra.options if isinstance(o, m.RouteInformation)]
    assert [(r.prefix_text, r.preference_text) for r in routes] == [
        ("2001:db8:100::/48", "low"), ("::/0", "medium"), ("2001:db8:200::/96", "high")]
    rdnss = next(o for o in ra.options if isinstance(o, m.RDNSSOption))
    assert rdnss.servers_text == ["2001:db8:9::53", "2001:db8:9::54"]
    assert ra.encode() == wire


def test_redirect_with_redirected_header_matches_scapy() -> None:
    inner = bytes(IPv6(src="2001:db8::1", dst="2001:db8:5::9"))
    wire = oracle(ICMPv6ND_Redirect(tgt="fe80::7", dst="2001:db8:5::9")
                  / ICMPv6NDOptDstLLAddr(lladdr="9a:c1:cd:12:78:ec")
                  / ICMPv6NDOptRedirectedHdr(pkt=inner), dst="2001:db8::1")
    rd = m.Redirect(target=m.addr_bytes("fe80::7"), destination=m.addr_bytes("2001:db8:5::9"),
                    options=[m.LinkLayerOption.target(MAC), m.RedirectedHeader(inner)])
    assert rd.encode(SRC_B, m.addr_bytes("2001:db8::1")) == wire
    back = m.decode_ndp(wire)
    assert isinstance(back, m.Redirect)
    assert (back.target_text, back.destination_text) == ("fe80::7", "2001:db8:5::9")
    hdr = back.option(m.OPT_REDIRECTED_HEADER)
    assert isinstance(hdr, m.RedirectedHeader) and hdr.data == inner


def test_unknown_option_kept_verbatim() -> None:
    wire = m.RouterSolicitation().encode() + bytes([200, 1, 1, 2, 3, 4, 5, 6])
    rs = m.decode_ndp(wire)
    assert rs.options == [m.UnknownOption(200, bytes([1, 2, 3, 4, 5, 6]))]
    assert rs.encode() == wire


# --- malformed input: DecodeError, never another exception ---------------------------------------


def na_with(options: bytes) -> bytes:
    return m.NeighborAdvertisement(target=m.addr_bytes("2001:db8::2")).encode() + options


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (na_with(bytes([2, 0, 1, 2, 3, 4, 5, 6])), "length zero"),
        (na_with(bytes([2, 2, 1, 2, 3, 4, 5, 6])), "runs past"),
        (na_with(bytes([2])), "truncated option header"),
        (na_with(b"")[:20], "need 24 bytes"),
        (m.RouterAdvertisement().encode() + bytes([3, 1]) + bytes(6), "prefix information"),
        (m.RouterAdvertisement().encode() + bytes([5, 2]) + bytes(14), "MTU option"),
        (m.RouterAdvertisement().encode() + bytes([25, 2]) + bytes(14), "RDNSS option of length 2"),
        (m.RouterAdvertisement().encode() + bytes([24, 1, 64, 0]) + bytes(4), "route information"),
        (m.RouterAdvertisement().encode() + bytes([31, 2, 0, 0]) + bytes(4) + b"\x07example", "DNSSL"),
        (bytes([1, 0, 0, 0, 0, 0, 0, 0]), "not a neighbor discovery message"),
    ],
)
def test_malformed_options_are_decode_errors(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        m.decode_ndp(wire)
    assert reason in str(info.value)


@given(st.binary(max_size=120), st.sampled_from(sorted(m.NDP_TYPES)))
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes, icmp_type: int) -> None:
    wire = bytes([icmp_type]) + data
    try:
        msg = m.decode_ndp(wire)
    except DecodeError:
        return
    # Whatever decodes re-encodes to the same bytes (options are padded, reserved bits zero).
    assert msg.type == icmp_type


lifetimes = st.integers(min_value=0, max_value=m.INFINITY)
addresses = st.binary(min_size=16, max_size=16)


@st.composite
def prefix_options(draw: st.DrawFn) -> m.PrefixInformation:
    return m.PrefixInformation(draw(addresses), draw(st.integers(0, 128)), draw(st.booleans()),
                               draw(st.booleans()), draw(st.booleans()), draw(lifetimes), draw(lifetimes))


@st.composite
def route_options(draw: st.DrawFn) -> m.RouteInformation:
    plen = draw(st.integers(0, 128))
    keep = 0 if plen == 0 else 8 if plen <= 64 else 16
    prefix = draw(addresses)[:keep].ljust(16, b"\0")
    return m.RouteInformation(prefix, plen, draw(st.sampled_from([0, 1, 3])), draw(lifetimes))


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)
options = st.one_of(
    prefix_options(),
    route_options(),
    st.builds(m.MTUOption, st.integers(0, 0xFFFFFFFF)),
    st.builds(m.RDNSSOption, st.lists(addresses, min_size=1, max_size=4), lifetimes),
    st.builds(m.DNSSLOption, st.lists(domains, min_size=1, max_size=3), lifetimes),
    st.builds(m.LinkLayerOption.source, st.binary(min_size=6, max_size=6)),
)


@given(
    hop=st.integers(0, 255), managed=st.booleans(), other=st.booleans(), pref=st.sampled_from([0, 1, 3]),
    lifetime=st.integers(0, 0xFFFF), reachable=lifetimes, retrans=lifetimes,
    opts=st.lists(options, max_size=6),
)
def test_router_advertisement_round_trip_and_scapy_agrees(
    hop: int, managed: bool, other: bool, pref: int, lifetime: int, reachable: int, retrans: int,
    opts: list[m.NDOption],
) -> None:
    ra = m.RouterAdvertisement(cur_hop_limit=hop, managed=managed, other=other, preference=pref,
                               router_lifetime=lifetime, reachable_time=reachable, retrans_timer=retrans,
                               options=opts)
    wire = ra.encode(SRC_B, m.addr_bytes("ff02::1"))
    back = m.decode_ndp(wire)
    assert isinstance(back, m.RouterAdvertisement)
    back.checksum = 0
    assert back == ra
    parsed = ICMPv6ND_RA(wire)
    assert (parsed.chlim, parsed.M, parsed.O, parsed.prf) == (hop, managed, other, pref)
    assert (parsed.routerlifetime, parsed.reachabletime, parsed.retranstimer) == (lifetime, reachable, retrans)
    assert m.verify(SRC_B, m.addr_bytes("ff02::1"), wire)

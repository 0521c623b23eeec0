"""gnt.core.checksum against RFC 1071/1624 examples, a naive word loop, and scapy's checksums."""

from __future__ import annotations

import socket
import struct

from helpers.vxlan_frames import word_sum  # RFC 1071 §4.1's word loop with end-around carry
from hypothesis import assume, given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, in4_chksum
from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from gnt.core import checksum as cs

V4_A, V4_B = "198.18.1.1", "198.18.4.2"
V6_A, V6_B = "2001:db8:1::1", "2001:db8:4::2"

buffers = st.binary(max_size=2000)
v4_addresses = st.binary(min_size=4, max_size=4)
v6_addresses = st.binary(min_size=16, max_size=16)


def test_rfc1071_numerical_example():
    # RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (checksum 220d)
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert cs.add(0, data) == 0xDDF2
    assert cs.checksum(data) == 0x220D
    # byte order independence (§2(B)): the swapped sum is the swapped result
    swapped = bytes(b for pair in zip(data[1::2], data[::2], strict=True) for b in pair)
    assert cs.add(0, swapped) == 0xF2DD


def test_ipv4_header_example():
    # a classic worked example: this IPv4 header's checksum is b861
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert cs.checksum(header) == 0xB861
    assert cs.verify(header[:10] + b"\xb8\x61" + header[12:])
    assert not cs.verify(header[:10] + b"\xb8\x62" + header[12:])


def test_zero_and_negative_zero():
    assert cs.checksum(b"") == 0xFFFF
    assert cs.checksum(bytes(20)) == 0xFFFF  # all zeros sum to +0
    assert cs.add(0, b"\xff\xff") == 0xFFFF  # -0 stays -0, as the word loop keeps it
    assert cs.checksum(b"\xff\xff\xff\xff") == 0
    assert cs.add(0, b"\xff\xff" * 5) == word_sum(b"\xff\xff" * 5)


@given(buffers)
def test_sum_equals_word_loop_and_scapy(data):
    assert cs.add(0, data) == word_sum(data)
    assert cs.checksum(data) == scapy_checksum(data)
    assert cs.checksum(bytearray(data)) == cs.checksum(memoryview(data)) == cs.checksum(data)


@given(st.binary(min_size=1, max_size=101).filter(lambda b: len(b) % 2 == 1))
def test_odd_lengths_pad_with_a_zero_byte(data):
    assert cs.checksum(data) == cs.checksum(data + b"\0") == scapy_checksum(data)


@given(data=buffers, cuts=st.lists(st.integers(0, 1000), max_size=5))
def test_incremental_equals_one_shot(data, cuts):
    # pieces at even boundaries (only the last may be odd), summed without concatenation
    points = sorted({min(c * 2, len(data)) for c in cuts})
    acc, start = 0, 0
    for point in [*points, len(data)]:
        acc = cs.add(acc, memoryview(data)[start:point])
        start = point
    assert cs.finish(acc) == cs.checksum(data)


def test_rfc1624_example():
    # RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285. Eqn. 3 gives 0x0000, as recomputing does;
    # the older eqn. 2 (RFC 1141) would give 0xffff.
    old = struct.pack("!HHH", 0x5555, 0xCD7A, 0)
    assert cs.checksum(old) == 0xDD2F
    new = struct.pack("!HHH", 0x3285, 0xCD7A, 0)
    assert cs.checksum(new) == 0x0000
    assert cs.update16(0xDD2F, 0x5555, 0x3285) == 0x0000


@given(data=st.binary(min_size=2, max_size=200).filter(lambda b: len(b) % 2 == 0),
       index=st.integers(0, 99), new=st.integers(0, 0xFFFF))
def test_rfc1624_update_equals_recompute(data, index, new):
    index %= len(data) // 2
    (old,) = struct.unpack_from("!H", data, 2 * index)
    changed = data[: 2 * index] + struct.pack("!H", new) + data[2 * index + 2 :]
    # All-zero data is the one case where the incremental result (0) and a recompute (0xffff) are the
    # two zeros of ones' complement; no real header is all zeros (IPv4 has its version nibble).
    assume(any(changed))
    assert cs.update16(cs.checksum(data), old, new) == cs.checksum(changed)


@given(src=v4_addresses, new_src=v4_addresses, dst=v4_addresses, port=st.integers(0, 0xFFFF),
       payload=st.binary(max_size=40))
def test_rfc1624_nat_rewrite_of_an_address(src, new_src, dst, port, payload):
    # what SNAT does to a UDP datagram: the address is in the pseudo-header, so the checksum moves
    segment = struct.pack("!HHHH", port, 53, 8 + len(payload), 0) + payload
    before = cs.transport_checksum(src, dst, cs.PROTO_UDP, segment)
    after = cs.transport_checksum(new_src, dst, cs.PROTO_UDP, segment)
    assume(any(cs.pseudo_header_v4(new_src, dst, cs.PROTO_UDP, len(segment)) + segment))
    assert cs.update_bytes(before, src, new_src) == after


def test_update_bytes_rejects_odd_fields():
    try:
        cs.update_bytes(0, b"\x01", b"\x02")
    except ValueError:
        return
    raise AssertionError("odd-length update accepted")


def test_udp_zero_is_sent_as_ffff():
    src, dst = socket.inet_aton(V4_A), socket.inet_aton(V4_B)
    head = struct.pack("!HHHH", 1, 2, 10, 0)
    cancel = struct.pack("!H", cs.transport_checksum(src, dst, cs.PROTO_UDP, head + b"\0\0"))
    segment = head + cancel
    assert cs.transport_checksum(src, dst, cs.PROTO_UDP, segment) == 0
    assert cs.udp_wire_checksum(src, dst, segment) == 0xFFFF
    wire = segment[:6] + b"\xff\xff" + segment[8:]
    assert cs.verify_transport(src, dst, cs.PROTO_UDP, wire)  # -0 verifies just like +0
    assert bytes((IP(src=V4_A, dst=V4_B) / UDP(sport=1, dport=2) / Raw(cancel))[UDP])[6:8] == b"\xff\xff"


@given(src=v4_addresses, dst=v4_addresses, proto=st.sampled_from([cs.PROTO_TCP, cs.PROTO_UDP]),
       segment=st.binary(min_size=8, max_size=300))
def test_pseudo_header_v4_matches_scapy(src, dst, proto, segment):
    header = IP(src=socket.inet_ntoa(src), dst=socket.inet_ntoa(dst), proto=proto)
    assert cs.transport_checksum(src, dst, proto, segment) == in4_chksum(proto, header, segment)
    assert cs.pseudo_header_v4(src, dst, proto, len(segment)) == src + dst + bytes([0, proto]) + struct.pack(
        "!H", len(segment)
    )


@given(src=v6_addresses, dst=v6_addresses,
       proto=st.sampled_from([cs.PROTO_TCP, cs.PROTO_UDP, cs.PROTO_ICMPV6]),
       segment=st.binary(min_size=8, max_size=300))
def test_pseudo_header_v6_matches_scapy(src, dst, proto, segment):
    text = [socket.inet_ntop(socket.AF_INET6, address) for address in (src, dst)]
    header = IPv6(src=text[0], dst=text[1], nh=proto)
    assert cs.transport_checksum(src, dst, proto, segment) == in6_chksum(proto, header, segment)
    assert len(cs.pseudo_header_v6(src, dst, proto, len(segment))) == 40


def test_verify_transport_on_scapy_packets():
    for outer, src, dst in (
        (IP(src=V4_A, dst=V4_B), socket.inet_aton(V4_A), socket.inet_aton(V4_B)),
        (IPv6(src=V6_A, dst=V6_B), *(socket.inet_pton(socket.AF_INET6, a) for a in (V6_A, V6_B))),
    ):
        for l4, proto in ((UDP(sport=9, dport=7), cs.PROTO_UDP), (TCP(sport=9, dport=7), cs.PROTO_TCP)):
            segment = bytes((outer / l4 / Raw(b"odd length"))[l4.__class__])
            assert cs.verify_transport(src, dst, proto, segment)
            assert not cs.verify_transport(src, dst, proto, segment[:-1] + b"H")
            assert cs.pseudo_sum(src, dst, proto, len(segment)) == cs.add(
                0, cs.pseudo_header(src, dst, proto, len(segment))
            )


def test_address_bytes():
    assert cs.address_bytes(V4_A) == socket.inet_aton(V4_A)
    assert cs.address_bytes(V6_A) == socket.inet_pton(socket.AF_INET6, V6_A)

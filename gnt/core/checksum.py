"""The Internet checksum (RFC 1071), pseudo-headers, and the RFC 1624 incremental update.

The ones' complement sum of 16-bit big-endian words equals the whole buffer read as one
big-endian integer taken modulo 0xffff (because 2**16 == 1 mod 0xffff), so the sum is
computed by `int.from_bytes` and one modulo, both in C. That keeps pure Python well above
the 200 MB/s target on 1500-byte buffers (see bench/bench_checksum.py).

Use as an accumulator, the way a header and its payload are summed without concatenating:

    acc = add(0, pseudo_header_v4(src, dst, PROTO_UDP, len(seg)))
    acc = add(acc, seg)
    csum = finish(acc)

Every piece handed to `add` except the last must have an even length (word alignment);
the pseudo-header pieces always do.
"""

from __future__ import annotations

import socket
import struct

PROTO_TCP = 6  # IANA protocol number, RFC 9293
PROTO_UDP = 17  # IANA protocol number, RFC 768
PROTO_ICMPV6 = 58  # IANA protocol number, RFC 4443

_FOLD = 0xFFFF  # the modulus of ones' complement 16-bit arithmetic
_from_bytes = int.from_bytes


def add(acc: int, data: bytes | bytearray | memoryview) -> int:
    """Add `data` to a running ones' complement sum `acc` (0..0xffff); returns the new sum."""
    n = _from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8  # an odd trailing byte is the high byte of a zero-padded word
    total = acc + n
    folded = total % _FOLD
    # Ones' complement has two zeros; a non-zero sum that is a multiple of 0xffff is 0xffff
    # ("negative zero"), as hardware and the kernel compute it.
    if folded == 0 and total != 0:
        return _FOLD
    return folded


def finish(acc: int) -> int:
    """The checksum field value for a running sum: its ones' complement."""
    return ~acc & 0xFFFF


def checksum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 checksum of one buffer (IPv4 header, ICMP message)."""
    return finish(add(0, data))


def verify(data: bytes | bytearray | memoryview) -> bool:
    """True when a buffer that carries its own checksum field sums to 0xffff (RFC 1071 §1)."""
    return add(0, data) == _FOLD


def pseudo_header_v4(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The IPv4 pseudo-header (RFC 768, RFC 9293 §3.1): src, dst, zero, protocol, length."""
    return src + dst + struct.pack("!BBH", 0, proto, length)


def pseudo_header_v6(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The IPv6 pseudo-header (RFC 8200 §8.1): src, dst, 32-bit length, 3 zero bytes, next header."""
    return src + dst + struct.pack("!I3xB", length, proto)


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The pseudo-header for the address family the address length implies (4 or 16 bytes)."""
    if len(src) == 4:
        return pseudo_header_v4(src, dst, proto, length)
    return pseudo_header_v6(src, dst, proto, length)


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The ones' complement sum of the pseudo-header alone, folded and not inverted.

    With tx checksum offload (CHECKSUM_PARTIAL) the kernel leaves exactly this value in the
    checksum field for the NIC to finish; a capture taken on the sender shows it. `length` may
    exceed 65535 (an IPv6 jumbogram, RFC 2675, or a BIG TCP / GSO super-frame over either family):
    it is summed as the 32-bit field of the IPv6 pseudo-header is, as two 16-bit words, which is also
    what the kernel's csum_tcpudp_magic() does with its 32-bit length for IPv4.
    """
    return add(proto + (length >> 16) + (length & 0xFFFF), src + dst)


def transport_checksum(src: bytes, dst: bytes, proto: int, segment: bytes | bytearray | memoryview) -> int:
    """Checksum of a TCP/UDP/ICMPv6 segment (checksum field zeroed by the caller) with its pseudo-header.

    Returns the raw ones' complement result; for UDP use `udp_wire_checksum`, which maps 0 to 0xffff.
    """
    return finish(add(pseudo_sum(src, dst, proto, len(segment)), segment))


def udp_wire_checksum(src: bytes, dst: bytes, segment: bytes | bytearray | memoryview) -> int:
    """The UDP checksum as sent: a computed 0 goes out as 0xffff, since 0 means "none" (RFC 768)."""
    value = transport_checksum(src, dst, PROTO_UDP, segment)
    return value or 0xFFFF


def verify_transport(src: bytes, dst: bytes, proto: int, segment: bytes | bytearray | memoryview) -> bool:
    """True when a TCP/UDP/ICMPv6 segment, checksum field included, sums correctly with its pseudo-header."""
    return add(pseudo_sum(src, dst, proto, len(segment)), segment) == _FOLD


def update16(csum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changes from `old` to `new`.

    HC' = ~(~HC + ~m + m'). This is the update NAT applies to a rewritten port or address.
    """
    acc = add(0, struct.pack("!HHH", ~csum & 0xFFFF, ~old & 0xFFFF, new))
    return finish(acc)


def update_bytes(csum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 update for a changed field of even length (an address or a port)."""
    if len(old) != len(new) or len(old) & 1:
        raise ValueError("old and new fields must have the same even length")
    inverted_old = bytes(b ^ 0xFF for b in old)
    acc = add(0, struct.pack("!H", ~csum & 0xFFFF))
    acc = add(acc, inverted_old)
    return finish(add(acc, new))


def address_bytes(address: str) -> bytes:
    """Packed form of a textual IPv4 or IPv6 address (helper for pseudo-headers)."""
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address)
    return socket.inet_pton(socket.AF_INET, address)

"""`gnt vxlan-csum scan`: verify the outer UDP checksum of every VXLAN packet in a capture.

The outer checksum of a VXLAN packet is one of (RFC 768, RFC 7348 §5):
  - zero: none sent (VXLAN over IPv4 usually sends none; over IPv6 only where configured);
  - ok: it verifies; or, when the inner TCP/UDP checksum is still partial (captured on the sender
    or on a veth, before offload), it verifies over the inner segment as offload will finish it:
    the kernel computes the outer checksum that way (local checksum offload,
    Documentation/networking/checksum-offloads.rst);
  - partial: it equals the sum of the pseudo-header alone — the value the kernel leaves for the
    NIC to finish under tx checksum offload (CHECKSUM_PARTIAL), seen in captures taken on the
    sender; not a wire error, counted apart;
  - bad: anything else. The receiving kernel drops the packet. 0xffff is the signature of the
    kernel NAT bug ("netfilter: nat: never update the UDP checksum when it's 0", fixed in 5.7):
    NAT "incrementally updated" a checksum that was 0 and offload finished it wrongly.
The inner IPv4 header checksum and the inner TCP/UDP checksum are verified too and counted apart.

Speed is the point (a node's capture has millions of packets): the loop below decodes fields
in place with `struct.unpack_from` at offsets into the capture buffer, takes the flow key as two
slices of the frame, and sums each byte once — the inner segment's sum is reused for the outer
checksum (ones' complement sums add, and the inner segment starts at an even offset of the UDP
payload). The per-header codecs in gnt.core.packets are the oracle in the tests.
"""

from __future__ import annotations

import mmap
import socket
import struct
import sys
from collections.abc import Iterable, Iterator

from gnt.core.capture import (
    EPB_HEADER,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    MAX_SANE_RECORD,
    PCAPNG_EPB,
    Buffer,
    CaptureFile,
    Record,
)
from gnt.core.checksum import PROTO_TCP, PROTO_UDP, add, pseudo_sum, verify
from gnt.core.packets.ethernet import ETH_P_8021AD as ETH_QINQ
from gnt.core.packets.ethernet import ETH_P_8021Q as ETH_VLAN
from gnt.core.packets.ethernet import ETH_P_IP as ETH_IPV4
from gnt.core.packets.ethernet import ETH_P_IPV6 as ETH_IPV6
from gnt.core.packets.ipv4 import FLAG_MF, OFFSET_MASK
from gnt.core.packets.ipv6 import (
    DSTOPTS,
    FRAG_M,
    FRAG_OFFSET_MASK,
    FRAGMENT_HEADER,
    HOPOPT,
    OPT_JUMBO,
    ROUTING,
    ROUTING_HOME,
    ROUTING_SOURCE,
    ROUTING_SRH,
)
from gnt.core.packets.vxlan import HEADER as VXLAN_HEADER
from gnt.core.packets.vxlan import PORT_IANA, PORT_LINUX
from gnt.vxlan.models import ScanReport, ScanSummary, VxlanFlow

DEFAULT_PORTS = (PORT_LINUX, PORT_IANA)  # the order they are named in messages
BUG_SIGNATURE = 0xFFFF  # the bad outer checksum the kernel NAT bug leaves on the wire
IPV6_EXT_HEADERS = frozenset({HOPOPT, ROUTING, DSTOPTS, FRAGMENT_HEADER})  # walked through
IPV4_FRAG = FLAG_MF | OFFSET_MASK  # MF flag + fragment offset: any fragment
FOLD = 0xFFFF  # ones' complement modulus
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}  # IANA protocol numbers

# Per-flow tally slots. Every packet is counted in exactly one of _ZERO, _OK, _BAD, _PARTIAL, _TRUNC and
# _FRAGMENT (_BUG is a part of _BAD, _INNER_BAD apart), so the scan leaves _PACKETS to build_report,
# which adds them up: one store less per packet.
_PACKETS, _ZERO, _OK, _BAD, _BUG, _PARTIAL, _INNER_BAD, _TRUNC, _FIRST, _LAST, _FRAGMENT = range(11)
# What an IPv6 header chain walk found about fragmentation.
NOT_FRAGMENT, FIRST_FRAGMENT, LATER_FRAGMENT = range(3)

_H = struct.Struct("!H").unpack_from  # one 16-bit field (ethertype, checksum)
_PORTS = struct.Struct("!HH")  # a source and a destination port (a TCP/UDP header's first, a flow key's)
_HH = _PORTS.unpack_from
_UDP = struct.Struct("!HHHH").unpack_from  # sport, dport, length, checksum
_IP4 = struct.Struct("!BxHxxHxBH4s4s").unpack_from  # ver/ihl, total length, frag, proto, csum, src, dst
_IP6 = struct.Struct("!4xHBx16s16s").unpack_from  # payload length, next header, src, dst
_VNI = VXLAN_HEADER.unpack_from  # flags and reserved, VNI << 8 | reserved


class Tally:
    """Counters the scan keeps besides the flows."""

    __slots__ = ("inner_ipv4_header_bad", "inner_l4_bad", "inner_l4_partial", "other")

    def __init__(self) -> None:
        self.other = 0
        self.inner_ipv4_header_bad = 0
        self.inner_l4_bad = 0
        self.inner_l4_partial = 0


def _ipv6_chain(buf: Buffer, u: int, end: int, proto: int, dst: bytes) -> tuple[int, int, bytes, int, int]:
    """Walk the IPv6 extension headers from `u` (just past the fixed header) up to the upper layer.

    Returns (proto, offset of the upper-layer header, the destination the pseudo-header uses,
    jumbo payload length or -1, NOT_FRAGMENT / FIRST_FRAGMENT / LATER_FRAGMENT). The pseudo-header
    destination is the final one (RFC 8200 §8.1): with a routing header that still has segments left,
    the last address of a type 0/2 header, or Segment List[0] of a segment routing header (RFC 8754).
    A hop-by-hop jumbo payload option (RFC 2675) gives the 32-bit payload length.
    """
    jumbo = -1
    fragment = NOT_FRAGMENT
    while proto in IPV6_EXT_HEADERS and u + 8 <= end:
        nxt = buf[u]
        if proto == FRAGMENT_HEADER:
            field = _H(buf, u + 2)[0]
            if field & FRAG_OFFSET_MASK:
                return nxt, u + 8, dst, jumbo, LATER_FRAGMENT
            if field & FRAG_M:
                fragment = FIRST_FRAGMENT
            u += 8
            proto = nxt
            continue
        hlen = (buf[u + 1] + 1) * 8
        if proto == ROUTING and buf[u + 3] and u + hlen <= end and hlen >= 24:
            kind = buf[u + 2]
            if kind == ROUTING_SRH:
                dst = bytes(buf[u + 8 : u + 24])
            elif kind in (ROUTING_SOURCE, ROUTING_HOME):
                dst = bytes(buf[u + hlen - 16 : u + hlen])
        elif proto == HOPOPT:
            i, stop = u + 2, min(u + hlen, end)
            while i + 2 <= stop:
                if buf[i] == 0:  # Pad1
                    i += 1
                    continue
                if buf[i] == OPT_JUMBO and buf[i + 1] == 4 and i + 6 <= stop:
                    jumbo = int.from_bytes(buf[i + 2 : i + 6], "big")
                i += 2 + buf[i + 1]
        u += hlen
        proto = nxt
    return proto, u, dst, jumbo, fragment


def _inner(
    buf: Buffer, mv: memoryview, pos: int, end: int, tally: Tally,
    whole: bool = True,
) -> tuple[int, bytes | None, int | None, bytes | None, int | None, bool, int, int, int]:
    """Decode and verify the inner frame of a VXLAN packet at `pos` (its Ethernet header).

    Returns (proto, src, sport, dst, dport, bad, segment_sum, segment_start, partial_pseudo), where
    segment_sum is the ones' complement sum of buf[segment_start:end] (-1 when not computed), for the
    caller to reuse in the outer checksum, and partial_pseudo the inner pseudo-header sum when the
    TCP/UDP checksum is partial (-1 otherwise): the outer checksum may then be computed over the
    segment as offload will finish it (local checksum offload, see the module docstring). With `whole`
    False (the capture cut the frame) the TCP/UDP checksum is not verified, only the headers that are
    there decoded. A length field of 0 (IPv4 total length, IPv6 payload length: a BIG TCP / GSO
    super-frame) means the packet runs to the end of the frame.
    """
    if pos + 14 > end:
        return -1, None, None, None, None, False, -1, 0, -1
    et = _H(buf, pos + 12)[0]
    p = pos + 14
    while et in (ETH_VLAN, ETH_QINQ) and p + 4 <= end:
        et = _H(buf, p + 2)[0]
        p += 4
    bad = False
    if et == ETH_IPV4:
        if p + 20 > end:
            return -1, None, None, None, None, False, -1, 0, -1
        vihl, total, frag, proto, _csum, src, dst = _IP4(buf, p)
        ihl = (vihl & 15) * 4
        if vihl >> 4 != 4 or ihl < 20 or p + ihl > end:
            return -1, None, None, None, None, False, -1, 0, -1
        if not verify(mv[p : p + ihl]):
            tally.inner_ipv4_header_bad += 1
            bad = True
        seg = p + ihl
        seg_end = p + total
        if seg_end > end or seg_end < seg:
            seg_end = end  # 0 (BIG TCP) or a lying total length: verify what is there
        if frag & IPV4_FRAG:
            return proto, src, None, dst, None, bad, -1, 0, -1
        pseudo_dst = dst
    elif et == ETH_IPV6:
        if p + 40 > end:
            return -1, None, None, None, None, False, -1, 0, -1
        plen, proto, src, dst = _IP6(buf, p)
        proto, seg, pseudo_dst, jumbo, fragment = _ipv6_chain(buf, p + 40, end, proto, dst)
        seg_end = p + 40 + (plen or (jumbo if jumbo >= 0 else end - p - 40))
        if seg_end > end:
            seg_end = end
        if fragment or seg > seg_end:  # a fragment: no checksum to verify here
            return proto, src, None, dst, None, False, -1, 0, -1
    else:
        return -1, None, None, None, None, False, -1, 0, -1
    if not whole:
        if seg + 4 <= seg_end and proto in (PROTO_TCP, PROTO_UDP):
            sport, dport = _HH(buf, seg)
            return proto, src, sport, dst, dport, bad, -1, 0, -1
        return proto, src, None, dst, None, bad, -1, 0, -1
    if proto == PROTO_TCP:
        if seg + 20 > seg_end:
            return proto, src, None, dst, None, bad, -1, 0, -1
        sport, dport = _HH(buf, seg)
        field = _H(buf, seg + 16)[0]
    elif proto == PROTO_UDP:
        if seg + 8 > seg_end:
            return proto, src, None, dst, None, bad, -1, 0, -1
        sport, dport = _HH(buf, seg)
        field = _H(buf, seg + 6)[0]
        if field == 0 and et == ETH_IPV4:  # inner UDP over IPv4 without a checksum
            ssum = add(0, mv[seg:seg_end]) if seg_end == end and seg_end - seg <= LAZY_SUM_ABOVE else -1
            return proto, src, sport, dst, dport, bad, ssum, seg, -1
    else:
        ssum = add(0, mv[seg:seg_end]) if seg_end == end else -1
        return proto, src, None, dst, None, bad, ssum, seg, -1
    pseudo = pseudo_sum(src, pseudo_dst, proto, seg_end - seg)
    whole_segment = seg_end == end  # the segment's sum is the outer checksum's too
    ssum = -1
    if seg_end - seg <= LAZY_SUM_ABOVE:
        ssum = add(0, mv[seg:seg_end])
        if not (pseudo + ssum) % FOLD:
            return proto, src, sport, dst, dport, bad, (ssum if whole_segment else -1), seg, -1
    if field == pseudo:
        # Partial (offload pending). A super-frame's 16-512 KB are not summed to find that out: one
        # that would also verify with this field (a 1 in 65,535 coincidence) is counted partial, not
        # ok. The fast path orders its checks the same way.
        tally.inner_l4_partial += 1
        return proto, src, sport, dst, dport, bad, (ssum if whole_segment else -1), seg, (
            pseudo if whole_segment else -1)
    if ssum < 0:
        ssum = add(0, mv[seg:seg_end])
        if not (pseudo + ssum) % FOLD:
            return proto, src, sport, dst, dport, bad, (ssum if whole_segment else -1), seg, -1
    tally.inner_l4_bad += 1
    return proto, src, sport, dst, dport, True, (ssum if whole_segment else -1), seg, -1


FlowKey = tuple[bytes, int | None, int, bytes | None]  # see flow_key
Flows = dict[FlowKey, list[float]]  # flow key -> tallies (see the _PACKETS.. slots)


def flow_key(
    src: bytes, sport: int, dst: bytes, dport: int, vni: int | None, iproto: int,
    isrc: bytes | None, isport: int | None, idst: bytes | None, idport: int | None,
) -> FlowKey:
    """The key of a flow: (outer, VNI, inner protocol, inner), where `outer` is the outer source and
    destination addresses and UDP ports as the frame carries them (12 bytes over IPv4, 36 over IPv6)
    and `inner` the inner addresses, then the inner ports where there are any (8 or 12 bytes for
    IPv4, 32 or 36 for IPv6), or None. The fast path slices both straight out of the frame, where
    they lie in this order; `split_key` takes a key apart."""
    inner = None
    if isrc is not None and idst is not None:
        inner = isrc + idst if isport is None or idport is None else isrc + idst + _PORTS.pack(isport, idport)
    return src + dst + _PORTS.pack(sport, dport), vni, iproto, inner


def split_key(
    key: FlowKey,
) -> tuple[bytes, int, bytes, int, int | None, int, bytes | None, int | None, bytes | None, int | None]:
    """The fields of a flow key: (src, sport, dst, dport, vni, iproto, isrc, isport, idst, idport)."""
    outer, vni, iproto, inner = key
    a = (len(outer) - 4) // 2
    sport, dport = _HH(outer, 2 * a)
    isrc = idst = isport = idport = None
    if inner is not None:
        i = 16 if len(inner) >= 32 else 4
        isrc, idst = inner[:i], inner[i : 2 * i]
        if len(inner) == 2 * i + 4:
            isport, idport = _HH(inner, 2 * i)
    return outer[:a], sport, outer[a : 2 * a], dport, vni, iproto, isrc, isport, idst, idport

# The common layout, decoded with one unpack: Ethernet, IPv4 without options, UDP, VXLAN, inner
# Ethernet, inner IPv4 without options, the first 8 bytes of the inner TCP/UDP header. The addresses
# and ports that name the flow are not unpacked: they are contiguous in the frame, and the flow key
# takes them as two slices (see `flow_key`); the inner addresses come as integers, for the inner
# pseudo-header sum.
_FAST = struct.Struct(  # see the comment above
    "!12xH"  # ethertype
    "BxHxxHxB10x"  # outer IPv4 at 14: ver/ihl, total length, frag, proto (addresses at 26: the key's)
    "2xHHH"  # outer UDP at 34: (sport: the key's) dport, length, checksum
    "4xI"  # VXLAN at 42: VNI << 8
    "12xH"  # inner Ethernet at 50: ethertype
    "BxHxxHxB2xII"  # inner IPv4 at 64: ver/ihl, total length, frag, proto, src, dst
    "6xH"  # inner TCP/UDP at 84: (ports: the key's) (UDP) checksum
).unpack_from
_FAST_LEN = 92  # bytes the fast layout reads
# The same behind an IPv6 underlay without extension headers (the inner frame still IPv4).
_FAST6 = struct.Struct(  # see the comment above
    "!18x"  # Ethernet (the ethertype read by _FAST), IPv6 version/class/flow
    "HB33x"  # outer IPv6 at 14: payload length, next header (addresses at 22: the key's)
    "2xHHH"  # outer UDP at 54: (sport: the key's) dport, length, checksum
    "4xI"  # VXLAN at 62
    "12xH"  # inner Ethernet at 70: ethertype
    "BxHxxHxB2xII"  # inner IPv4 at 84
    "6xH"  # inner TCP/UDP at 104
).unpack_from
_FAST6_LEN = 112  # bytes the IPv6 fast layout reads
FOLD_ABOVE = 512  # segment bytes above which summing in quarters pays off (measured: even at 384, ahead at 512)
# Segments longer than any MTU-sized frame (9,000-byte jumbo frames included) are GSO/GRO super-frames:
# their checksums are told partial before anything is summed, and summed only if they are not.
LAZY_SUM_ABOVE = 9216
_QUARTERS: dict[int, tuple[int, int, int]] = {}  # segment length -> _quarters_for(length)


def _quarters_for(seglen: int) -> tuple[int, int, int]:
    """How the fast path sums a `seglen`-byte segment: (q, bits, mask). It reads the segment as four
    numbers, three of q bytes and the rest, adds them and halves the sum at `bits` before the modulo.
    Both keep the ones' complement sum: a piece of an even length q starts a whole 16-bit word, and
    2**(16k) == 1 (mod 0xffff), so parts split at 16k bits add up to the same sum."""
    q = (seglen >> 3) << 1
    bits = (q >> 2) << 4
    return q, bits, (1 << bits) - 1


def scan(
    source: CaptureFile | Iterable[Record], ports: Iterable[int] = DEFAULT_PORTS, *,
    flows: Flows | None = None, tally: Tally | None = None, limit: int | None = None,
) -> tuple[Flows, Tally]:
    """Tally every VXLAN packet of `source` by flow (at most `limit` records). The hot loop.

    A pcap `CaptureFile` is walked in place (one record header unpack per packet, no generator);
    anything else is iterated as `Record` tuples. Frames in the common layout (Ethernet, untagged or
    with one 802.1Q tag, IPv4 without options outside and inside, TCP or UDP inside) are verified
    right here with one unpack and four sums; everything else goes through `_general_packet`. Pass `flows` and `tally`
    to keep what was counted if the loop is interrupted.

    The fast path sums with `int.from_bytes` and one modulo directly: the identity
    gnt.core.checksum.add rests on (a big-endian buffer read as one integer is congruent to its
    16-bit word sum modulo 0xffff), inlined because a call per field costs more than the sum of a
    small packet. It reads slices of the buffer itself (a copy of up to a frame is cheaper than a
    memoryview object). The general path calls `add`; the tests hold both paths to the same verdicts.
    """
    port_set = frozenset(ports)
    flows = {} if flows is None else flows
    tally = Tally() if tally is None else tally
    remaining = sys.maxsize if limit is None else limit
    flows_get = flows.get
    from_bytes = int.from_bytes
    struct_error = struct.error
    fast = _FAST
    quarters_by_length = _QUARTERS
    quarters_get = quarters_by_length.get
    # Module constants as locals: the loop reads them for every packet.
    fold, bug, fold_above, lazy_above, fast_len, fast6_len, max_record = (
        FOLD, BUG_SIGNATURE, FOLD_ABOVE, LAZY_SUM_ABOVE, _FAST_LEN, _FAST6_LEN, MAX_SANE_RECORD
    )
    fast6 = _FAST6
    general = _general_packet
    other = ip_bad = l4_bad = l4_partial = 0
    # Source: walk a pcap buffer in place, or iterate records.
    walk = isinstance(source, CaptureFile) and source.format == "pcap" and source.mapped
    walk_ng = isinstance(source, CaptureFile) and source.format == "pcapng" and source.mapped
    it: Iterator[Record] | None = None
    if isinstance(source, CaptureFile):
        capture = source
        data, pos, rec_unpack, scale, lt0 = source.pcap_layout() if walk else (b"", 0, _H, 0.0, 0)
        if walk_ng:
            data = source.data
            section = source.pcapng_section()
            epb_whole, ifaces, trailer, step = section.epb_whole, section.ifaces, section.trailer, source.pcapng_step
            epb, epb_header = PCAPNG_EPB, EPB_HEADER
        elif not walk:
            it = iter(source.records())
    else:
        capture = None
        data, pos, rec_unpack, scale, lt0 = b"", 0, _H, 0.0, 0
        it = iter(source)
    n = len(data)
    index = 0
    buf: bytes | mmap.mmap = data  # bytes or a mapping: slices of it are bytes, flow keys
    mv = memoryview(data)
    last_buf: object = data
    try:
        while remaining > 0:
            remaining -= 1
            if walk:
                if pos + 16 > n:
                    if pos < n and capture is not None:
                        capture.pcap_damage(index + 1, pos, -1, n - pos)
                    break
                index += 1
                sec, frac, caplen, wirelen = rec_unpack(data, pos)
                off = pos + 16
                pos = off + caplen
                if pos > n or caplen > max_record:
                    if capture is not None:
                        capture.pcap_damage(index, off - 16, caplen, n - off)
                    if caplen > max_record:
                        break
                    wirelen = max(wirelen, caplen)
                    caplen = n - off
                    pos = n
                    remaining = 1
                lt = lt0
                ts = sec + frac * scale
            elif walk_ng:
                # A whole enhanced packet block of a known interface, its trailing length right, read
                # as CaptureFile._pcapng_records reads it. Any other block raises below (it is rare: a
                # section or interface header, a statistics block, damage) and goes through the file's
                # own step; so does the end of the file, and pos -1 (a step found nothing more to read),
                # where the unpack finds too few bytes.
                try:
                    btype, blen, iface, ts_hi, ts_lo, caplen, wirelen = epb_whole(data, pos)
                    if (btype != epb or blen & 3 or epb_header + caplen + 4 > blen
                            or trailer(data, pos + blen - 4)[0] != blen):  # (past the end: struct.error)
                        raise LookupError
                    lt, _snap, tick, base = ifaces[iface]  # an undeclared interface: IndexError
                except (LookupError, struct_error):
                    if pos < 0:
                        break
                    rec, pos = step(pos, section)
                    epb_whole, ifaces, trailer = section.epb_whole, section.ifaces, section.trailer  # a new section's
                    if rec is None:
                        remaining += 1  # not a packet: the count is of packets
                        continue
                    _data, off, caplen, wirelen, lt, ts = rec  # a record of this same mapped file
                else:
                    ts = ((ts_hi << 32) | ts_lo) / tick + base
                    off = pos + epb_header
                    pos += blen
            else:
                assert it is not None
                rec = next(it, None)
                if rec is None:
                    break
                frame, off, caplen, wirelen, lt, ts = rec
                if frame is not last_buf:
                    last_buf = frame
                    # The fast path slices its flow keys out of the frame: they must be bytes, to hash.
                    buf = bytes(frame) if isinstance(frame, (bytearray, memoryview)) else frame
                    mv = memoryview(buf)
            if lt != 1 or caplen < fast_len:
                other += general(buf, mv, off, caplen, lt, ts, port_set, flows, tally)
                continue
            b = off  # where the fast layout starts: the frame, or 4 bytes on past one 802.1Q tag
            et = buf[b + 12] << 8 | buf[b + 13]  # read first: the layout to unpack depends on it
            if et == 0x8100 and caplen >= fast_len + 4:
                b += 4  # read at b, the layout's "ethertype" is the tag's and every header follows it
                et = buf[b + 12] << 8 | buf[b + 13]
            if et == 0x0800:
                (et, vihl, total, frag, proto, dport, ulen, csum, vniw, iet, ivihl, itotal, ifrag, iproto, isrc,
                 idst, iudpsum) = fast(buf, b)
                # (The IP total length must be the UDP length's, or both 0 for a super-frame: any other
                # value is the general path's to judge.)
                if vihl != 0x45 or proto != 17 or frag & 0x3FFF or (total != ulen + 20 and (total or ulen)):
                    other += general(buf, mv, off, caplen, lt, ts, port_set, flows, tally)
                    continue
                addrs, udp, inner_ip = b + 26, b + 34, b + 64  # outer addresses, UDP, inner IPv4
            elif et == 0x86DD and caplen >= fast6_len + b - off:
                # An IPv6 underlay without extension headers: the same layout 20 bytes further on.
                (plen, proto, dport, ulen, csum, vniw, iet, ivihl, itotal, ifrag, iproto, isrc, idst,
                 iudpsum) = fast6(buf, b)
                if proto != 17 or plen != ulen:
                    other += general(buf, mv, off, caplen, lt, ts, port_set, flows, tally)
                    continue
                addrs, udp, inner_ip = b + 22, b + 54, b + 84
            else:
                other += general(buf, mv, off, caplen, lt, ts, port_set, flows, tally)
                continue
            if dport not in port_set:
                other += 1
                continue
            if not ulen:
                # A BIG TCP / GSO super-frame, as a sender's capture or one after GRO has it: the outer IP
                # and UDP lengths are 0 (RFC 2675), and the inner IPv4 total length too; the lengths are
                # the frame's. Its checksums are partial, or else told apart as the general path does.
                if itotal:
                    other += general(buf, mv, off, caplen, lt, ts, port_set, flows, tally)
                    continue
                ulen = off + caplen - udp
                itotal = ulen - 30
            if (iet != 0x0800 or ivihl != 0x45 or ifrag & 0x3FFF or ulen != 30 + itotal
                    or udp + ulen > off + caplen
                    or not ((iproto == 6 and itotal >= 40) or (iproto == 17 and itotal >= 28))):
                other += general(buf, mv, off, caplen, lt, ts, port_set, flows, tally)
                continue
            seg = inner_ip + 20
            end = udp + ulen
            h = from_bytes(buf[inner_ip:seg], "big")
            key = (buf[addrs : udp + 4], vniw >> 8, iproto, buf[inner_ip + 12 : seg + 4])  # as flow_key builds it
            st = flows_get(key)
            if st is None:
                st = flows[key] = [0, 0, 0, 0, 0, 0, 0, 0, ts, ts, 0]
            st[9] = ts
            ibad = False
            if h % fold:
                ip_bad += 1
                ibad = True
            seglen = end - seg
            s = -1  # the segment's sum mod 0xffff: up front for MTU-sized frames, a super-frame's when needed
            if seglen <= fold_above:
                s = from_bytes(buf[seg:end], "big")
                if seglen & 1:
                    s <<= 8  # an odd trailing byte is the high byte of a zero-padded word
                s %= fold
            elif seglen <= lazy_above:
                # Four quarters of an even length read as four numbers and added, then halved once
                # before the modulo (see _quarters_for): a quarter of the digits for the per-digit
                # division the modulo does, and shorter conversions.
                quarters = quarters_get(seglen)
                if quarters is None:
                    quarters = quarters_by_length[seglen] = _quarters_for(seglen)
                q, bits, mask = quarters
                q1 = seg + q
                q2 = q1 + q
                q3 = q2 + q
                last = from_bytes(buf[q3:end], "big")
                if seglen & 1:
                    last <<= 8  # an odd trailing byte is the high byte of a zero-padded word
                s = (from_bytes(buf[seg:q1], "big") + from_bytes(buf[q1:q2], "big") + from_bytes(buf[q2:q3], "big")
                     + last)
                s = ((s >> bits) + (s & mask)) % fold
            # Checks in the general path's order: verified first when the sum is at hand, else partial
            # (and local checksum offload) first, so a super-frame is summed only when that is not enough.
            lco = -1  # the inner pseudo-header sum when the inner checksum is partial
            if iproto == 6 or iudpsum:
                ipseudo = isrc + idst + iproto + seglen  # 2**16 == 1 (mod 0xffff): 32-bit words sum as two 16-bit ones
                if s < 0 or (ipseudo + s) % fold:
                    field = iudpsum if iproto == 17 else _H(buf, seg + 16)[0]
                    if field == (ipseudo % fold or fold):
                        l4_partial += 1
                        lco = ipseudo
                    else:
                        if s < 0:
                            s = add(0, mv[seg:end])
                        if (ipseudo + s) % fold:
                            l4_bad += 1
                            ibad = True
            if ibad:
                st[6] += 1
            if not csum:
                st[1] += 1
                continue
            # Outer: addresses, UDP, VXLAN and inner Ethernet in one piece, plus the inner sums.
            head = from_bytes(buf[addrs:inner_ip], "big") + 17 + ulen
            if s >= 0 and not (head + h + s) % fold:
                st[2] += 1
            elif csum == ((from_bytes(buf[addrs:udp], "big") + 17 + ulen) % fold or fold):
                st[5] += 1
            elif lco >= 0 and not (head + h - lco) % fold:
                st[2] += 1  # right for the inner segment as offload finishes it: local checksum offload
            elif s < 0 and not (head + h + add(0, mv[seg:end])) % fold:
                st[2] += 1
            elif not _H(buf, addrs - 10 if et == 0x0800 else addrs - 4)[0]:
                # Outer length 0: captured before segmentation, where GSO computes each segment's outer
                # checksum; the super-frame's field is whatever the stack left, not a wire checksum.
                st[5] += 1
            else:
                st[3] += 1
                if csum == bug:
                    st[4] += 1
    finally:
        tally.other += other
        tally.inner_ipv4_header_bad += ip_bad
        tally.inner_l4_bad += l4_bad
        tally.inner_l4_partial += l4_partial
    return flows, tally


def _general_packet(
    buf: Buffer, mv: memoryview, off: int, caplen: int, lt: int, ts: float,
    port_set: frozenset[int], flows: Flows, tally: Tally,
) -> int:
    """Any frame the fast path does not take: VLAN tags, IPv6, IP options, cooked captures, cut
    frames, non-VXLAN. Returns 1 when the frame is not a VXLAN packet (counted as other), else 0."""
    end = off + caplen
    H = _H
    # Link layer -> network layer offset `p` and ethertype `et`.
    if lt == LINKTYPE_ETHERNET:
        if caplen < 34:
            return 1
        et = H(buf, off + 12)[0]
        p = off + 14
    elif lt == LINKTYPE_LINUX_SLL:
        if caplen < 36:
            return 1
        et = H(buf, off + 14)[0]
        p = off + 16
    elif lt == LINKTYPE_LINUX_SLL2:
        if caplen < 40:
            return 1
        et = H(buf, off)[0]
        p = off + 20
    elif lt in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_NULL):
        p = off + 4 if lt == LINKTYPE_NULL else off
        if p >= end:
            return 1
        et = ETH_IPV4 if buf[p] >> 4 == 4 else ETH_IPV6
    else:
        return 1
    while et in (ETH_VLAN, ETH_QINQ):
        if p + 4 > end:
            return 1
        et = H(buf, p + 2)[0]
        p += 4
    # Outer IP header -> UDP offset `u`, the end of the IP packet `ip_end`, the pseudo-header
    # destination, and whether the lengths come from the frame (a BIG TCP / GSO super-frame).
    if et == ETH_IPV4:
        if p + 20 > end:
            return 1
        vihl, total, frag, proto, _c, src, dst = _IP4(buf, p)
        ihl = (vihl & 15) * 4
        # A header length under 5 words is no IPv4 header (RFC 791): the "UDP header" would be read
        # from the addresses. A non-first fragment carries no UDP header.
        if proto != PROTO_UDP or vihl >> 4 != 4 or ihl < 20 or frag & OFFSET_MASK or 0 < total < ihl:
            return 1
        u = p + ihl
        ip_end = p + total if total else end  # total length 0: BIG TCP, the length is the frame's
        super_frame = not total
        fragment = FIRST_FRAGMENT if frag & FLAG_MF else NOT_FRAGMENT
        pseudo_dst = dst
    elif et == ETH_IPV6:
        if p + 40 > end:
            return 1
        plen, proto, src, dst = _IP6(buf, p)
        proto, u, pseudo_dst, jumbo, fragment = _ipv6_chain(buf, p + 40, end, proto, dst)
        if proto != PROTO_UDP or fragment == LATER_FRAGMENT:
            return 1
        # Payload length 0: a jumbogram (RFC 2675) with its 32-bit length in a hop-by-hop option, or,
        # without one, a BIG TCP / GSO super-frame whose length is the frame's.
        super_frame = not plen and jumbo < 0
        ip_end = p + 40 + (plen or (jumbo if jumbo >= 0 else end - p - 40))
    else:
        return 1
    if u + 8 > end:
        return 1
    sport, dport, ulen, csum = _UDP(buf, u)
    if dport not in port_set:
        return 1
    if not ulen:  # RFC 2675 §4: UDP length 0, the length is the IP layer's (a jumbogram, BIG TCP)
        ulen = ip_end - u
    if ulen < 8:
        return 1  # no UDP datagram: its length cannot even hold the UDP header
    udp_end = u + ulen
    if udp_end > end or fragment:
        # Cut by the snap length (or a lying UDP length), or the first fragment of a datagram whose
        # checksum covers every fragment: decode what is there, verify nothing.
        limit = min(end, udp_end)
        vni = _VNI(buf, u + 8)[1] >> 8 if u + 16 <= limit else None
        iproto, isrc, isport, idst, idport, ibad, _s, _o, _p = _inner(buf, mv, u + 16, limit, tally, False)
        st = _flow(flows, flow_key(src, sport, dst, dport, vni, iproto, isrc, isport, idst, idport), ts)
        st[_FRAGMENT if fragment else _TRUNC] += 1
        if ibad:
            st[_INNER_BAD] += 1
        return 0
    if ulen >= 16:
        vni = _VNI(buf, u + 8)[1] >> 8
        iproto, isrc, isport, idst, idport, ibad, seg_sum, seg, partial_pseudo = _inner(
            buf, mv, u + 16, udp_end, tally)
    else:  # a whole datagram too short for a VXLAN header: its checksum is still verified
        vni, iproto, isrc, isport, idst, idport = None, -1, None, None, None, None
        ibad, seg_sum, seg, partial_pseudo = False, -1, 0, -1
    st = _flow(flows, flow_key(src, sport, dst, dport, vni, iproto, isrc, isport, idst, idport), ts)
    if ibad:
        st[_INNER_BAD] += 1
    if csum == 0:
        st[_ZERO] += 1
        return 0
    pseudo = pseudo_sum(src, pseudo_dst, PROTO_UDP, ulen)
    # With the inner segment's sum at hand (it ends where the UDP payload ends) the checksum is
    # verified first; without it (a super-frame whose inner checksum is partial) the checks that need
    # no sum over the payload come first: partial, then local checksum offload (right for the inner
    # segment as offload finishes it: the segment then sums to minus its pseudo-header).
    even = not (seg - u) & 1
    have_sum = seg_sum >= 0 and even
    if have_sum:
        total = add(pseudo, mv[u:seg]) + seg_sum
        if total and not total % FOLD:
            st[_OK] += 1
            return 0
    if csum == pseudo:
        st[_PARTIAL] += 1
        return 0
    if partial_pseudo >= 0 and even and not (add(pseudo, mv[u:seg]) - partial_pseudo) % FOLD:
        st[_OK] += 1
        return 0
    if not have_sum:
        total = add(pseudo, mv[u:udp_end])
    if not have_sum and total and not total % FOLD:
        st[_OK] += 1
    elif super_frame:
        # Captured before segmentation: GSO computes each segment's outer checksum; the super-frame's
        # field is whatever the stack left for it (tcpdump calls such a one bad), not a wire checksum.
        st[_PARTIAL] += 1
    else:
        st[_BAD] += 1
        if csum == BUG_SIGNATURE:
            st[_BUG] += 1
    return 0


def _flow(flows: Flows, key: FlowKey, ts: float) -> list[float]:
    """The tallies of flow `key`, created on its first packet, with this packet's time as the last."""
    st = flows.get(key)
    if st is None:
        st = flows[key] = [0, 0, 0, 0, 0, 0, 0, 0, ts, ts, 0]
    st[_LAST] = ts
    return st


def _addr(raw: object) -> str | None:
    if not isinstance(raw, bytes):
        return None
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def build_report(
    flows: Flows, tally: Tally, *, source: str, ports: Iterable[int],
    problems: list[str] | None = None, kernel_drops: int | None = None,
) -> ScanReport:
    """Turn the scan's tallies into model objects, flows in order of first appearance."""
    out: list[VxlanFlow] = []
    totals = [0] * 8
    fragments = 0
    for key, st in flows.items():
        src, sport, dst, dport, vni, iproto, isrc, isport, idst, idport = split_key(key)
        counts = [int(x) for x in st[:8]]
        counts[_PACKETS] = (counts[_ZERO] + counts[_OK] + counts[_BAD] + counts[_PARTIAL] + counts[_TRUNC]
                            + int(st[_FRAGMENT]))
        for i in range(8):
            totals[i] += counts[i]
        fragments += int(st[_FRAGMENT])
        out.append(VxlanFlow(
            outer_src=_addr(src) or "?", outer_sport=sport, outer_dst=_addr(dst) or "?", outer_dport=dport, vni=vni,
            inner_proto=(PROTO_NAMES.get(iproto, str(iproto)) if isinstance(iproto, int) and iproto >= 0
                         else None),
            inner_src=_addr(isrc), inner_sport=isport if isinstance(isport, int) else None,
            inner_dst=_addr(idst), inner_dport=idport if isinstance(idport, int) else None,
            packets=counts[_PACKETS], checksum_zero=counts[_ZERO], checksum_ok=counts[_OK],
            checksum_bad=counts[_BAD], bug_signature=counts[_BUG], checksum_partial=counts[_PARTIAL],
            inner_bad=counts[_INNER_BAD], truncated=counts[_TRUNC], fragments=int(st[_FRAGMENT]),
            first_seen=st[_FIRST], last_seen=st[_LAST],
        ))
    summary = ScanSummary(
        source=source, vxlan_packets=totals[_PACKETS], checksum_zero=totals[_ZERO], checksum_ok=totals[_OK],
        checksum_bad=totals[_BAD], bug_signature=totals[_BUG], checksum_partial=totals[_PARTIAL],
        inner_bad=totals[_INNER_BAD], inner_ipv4_header_bad=tally.inner_ipv4_header_bad,
        inner_l4_bad=tally.inner_l4_bad, inner_l4_partial=tally.inner_l4_partial,
        truncated_packets=totals[_TRUNC], fragments=fragments, other_packets=tally.other, flows=len(out),
        ports=sorted(set(ports)), kernel_drops=kernel_drops, problems=list(problems or []), verdict="",
    )
    summary.verdict = verdict(summary)
    return ScanReport(summary=summary, flows=out)


def verdict(s: ScanSummary) -> str:
    """The first sentence of the report. "Good" is said only of checksums that were verified."""
    n = s.vxlan_packets
    noun = "VXLAN packet" if n == 1 else "VXLAN packets"
    if n == 0:
        return f"no VXLAN packets (UDP to port {', '.join(map(str, s.ports))}) in {s.other_packets} packets"
    parts: list[str] = []
    if s.checksum_bad:
        text = f"{s.checksum_bad} of {n} {noun} carry a bad outer UDP checksum"
        if s.bug_signature:
            are = "is" if s.bug_signature == 1 else "are"
            text += f"; {s.bug_signature} {are} 0xffff, the signature of the kernel NAT checksum bug"
        parts.append(text)
    elif s.checksum_ok == n:
        parts.append(f"all {n} {noun} have a good outer UDP checksum" if n > 1
                     else f"the {noun} has a good outer UDP checksum")
    else:
        # No bad one, but not every packet was verified: say what each of them is.
        kinds = [(s.checksum_ok, "verified good"), (s.checksum_zero, "sent without one"),
                 (s.checksum_partial, "partial (captured before offload or segmentation)"),
                 (s.truncated_packets, "cut short in the capture, not verified"),
                 (s.fragments, "IP fragments, not verified")]
        detail = ", ".join(f"{count} {what}" for count, what in kinds if count)
        parts.append(f"no bad outer UDP checksum in {n} {noun}: {detail}")
    if s.inner_bad:
        parts.append(f"{s.inner_bad} carry a bad inner checksum")
    return "; ".join(parts)

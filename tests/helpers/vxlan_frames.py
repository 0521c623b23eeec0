"""VXLAN test frames built with scapy, and pcap/pcapng writers that choose byte order and format.

Checksum variants of the outer UDP header (what `gnt vxlan-csum scan` must tell apart):
  zero     no checksum (0)
  ok       the right checksum (computed by scapy)
  ffff     0xffff where it is wrong: the kernel NAT bug's signature
  bad      another wrong value
  partial  the pseudo-header sum alone (what the sender leaves for offload to finish)

The pseudo-header sum here is computed independently of gnt (a plain 16-bit word loop).
"""

from __future__ import annotations

import socket
import struct

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

CSUM_VARIANTS = ("zero", "ok", "ffff", "bad", "partial")


def word_sum(data: bytes) -> int:
    """Ones' complement 16-bit word sum, the slow obvious way (test oracle)."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_sum(src: str, dst: str, length: int) -> int:
    if ":" in src:
        ph = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        ph += struct.pack("!I3xB", length, 17)
    else:
        ph = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
        ph += struct.pack("!BBH", 0, 17, length)
    return word_sum(ph)


def inner_frame(proto: str = "tcp", *, v6: bool = False, sport: int = 40000, dport: int = 80,
                payload: int = 0, bad: str | None = None) -> Packet:
    """The inner Ethernet frame of a VXLAN packet; `bad` is None, "ip" (IPv4 header) or "l4"."""
    eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:02")
    net: Packet = IPv6(src="fd00:244::1", dst="fd00:244::2") if v6 else IP(src="10.244.0.5", dst="10.244.1.7")
    if proto == "tcp":
        l4: Packet = TCP(sport=sport, dport=dport, flags="PA" if payload else "S", seq=1000)
    elif proto == "udp":
        l4 = UDP(sport=sport, dport=dport)
    else:
        l4 = ICMP(id=7, seq=1)
    pkt = eth / net / l4
    if payload:
        pkt = pkt / Raw(bytes(range(256)) * (payload // 256) + bytes(payload % 256))
    raw = bytearray(bytes(pkt))
    if bad == "ip":
        raw[14 + 10] ^= 0x5A  # IPv4 header checksum
    elif bad == "l4":
        off = 14 + (40 if v6 else 20) + (16 if proto == "tcp" else 6)
        raw[off] ^= 0x5A
    return Ether(bytes(raw))


def vxlan_frame(csum: str = "ok", *, v6: bool = False, vlan: int | None = None, vni: int = 1,
                sport: int = 51000, dport: int = 8472, inner: Packet | None = None) -> bytes:
    """A whole Ethernet frame carrying VXLAN, with the outer UDP checksum set as `csum` says."""
    if inner is None:
        inner = inner_frame()
    src, dst = ("2001:db8:100::1", "2001:db8:100::2") if v6 else ("198.18.100.1", "198.18.100.2")
    eth: Packet = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    net: Packet = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    udp = UDP(sport=sport, dport=dport)
    pkt = eth / net / udp / VXLAN(vni=vni, flags=0x08) / inner
    raw = bytearray(bytes(pkt))  # scapy fills in the right UDP checksum
    l3 = 14 + (4 if vlan is not None else 0)
    u = l3 + (40 if v6 else 20)
    right = struct.unpack_from("!H", raw, u + 6)[0]
    length = struct.unpack_from("!H", raw, u + 4)[0]
    if csum == "zero":
        value = 0
    elif csum == "ok":
        value = right
    elif csum == "ffff":
        value = 0xFFFF if right != 0xFFFF else 0x1234
    elif csum == "bad":
        value = right ^ 0x0F0F
    elif csum == "partial":
        value = pseudo_sum(src, dst, length)
    else:
        raise ValueError(csum)
    struct.pack_into("!H", raw, u + 6, value)
    return bytes(raw)


def write_pcap(path: str, frames: list[bytes], *, big_endian: bool = False, nanoseconds: bool = False,
               linktype: int = 1, snaplen: int = 65535, start: float = 1_700_000_000.0,
               truncate_last: int = 0) -> None:
    """pcap-savefile(5); `snaplen` cuts frames as a capture would; `truncate_last` chops the file's tail."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    for i, frame in enumerate(frames):
        ts = start + i * 0.001
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanoseconds else 1e6))
        data = frame[:snaplen]
        out += struct.pack(e + "IIII", sec, frac, len(data), len(frame)) + data
    if truncate_last:
        del out[-truncate_last:]
    with open(path, "wb") as f:
        f.write(out)


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(e + "II", btype, length) + body + struct.pack(e + "I", length)


def write_pcapng(path: str, frames: list[bytes], *, big_endian: bool = False, linktype: int = 1,
                 tsresol: int | None = 9, simple: bool = False, start: float = 1_700_000_000.0,
                 truncate_last: int = 0) -> None:
    """pcapng with one section and interface; EPBs (or SPBs with `simple`), optional if_tsresol."""
    e = ">" if big_endian else "<"
    shb = _block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
    idb = _block(e, 1, struct.pack(e + "HHI", linktype, 0, 0) + opts)
    out = bytearray(shb + idb)
    unit = 10 ** (tsresol if tsresol is not None else 6)
    for i, frame in enumerate(frames):
        if simple:
            out += _block(e, 3, struct.pack(e + "I", len(frame)) + frame)
        else:
            ticks = round((start + i * 0.001) * unit)
            out += _block(e, 6, struct.pack(e + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                            len(frame)) + frame)
    if truncate_last:
        del out[-truncate_last:]
    with open(path, "wb") as f:
        f.write(out)


def to_sll(frame: bytes) -> bytes:
    """An Ethernet frame as Linux cooked v1 (LINKTYPE_LINUX_SLL) would record it."""
    return struct.pack("!HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", struct.unpack_from("!H", frame, 12)[0]) + frame[14:]


def to_sll2(frame: bytes) -> bytes:
    """An Ethernet frame as Linux cooked v2 (LINKTYPE_LINUX_SLL2) would record it."""
    proto = struct.unpack_from("!H", frame, 12)[0]
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, 0, 6, frame[6:12] + b"\0\0") + frame[14:]


# --- BIG TCP / GSO super-frames, built by hand past scapy's 16-bit length fields ---------------------

def pseudo_sum32(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The pseudo-header sum with a 32-bit length (RFC 8200 §8.1 / RFC 2675), by the word loop."""
    return word_sum(src + dst + struct.pack("!IHH", length, 0, proto))


def _fold(value: int) -> int:
    while value > 0xFFFF:
        value = (value & 0xFFFF) + (value >> 16)
    return value


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes, field_at: int) -> int:
    """The right TCP/UDP checksum of `segment` (its checksum field at `field_at` taken as zero)."""
    seg = segment[:field_at] + b"\0\0" + segment[field_at + 2 :]
    return (~_fold(pseudo_sum32(src, dst, proto, len(seg)) + word_sum(seg)) & 0xFFFF) or 0xFFFF


INNER_PAYLOAD = 80_000  # a BIG TCP segment: more than an IPv4 total length or a UDP length can say


def big_inner(inner_v6: bool, payload: int = INNER_PAYLOAD, *, partial: bool = False) -> bytes:
    """An inner Ethernet frame carrying one 80,000-byte TCP segment, its IP length field 0 (BIG TCP),
    its TCP checksum right for the 32-bit length."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    net = IPv6(src="fd00:244::1", dst="fd00:244::2") if inner_v6 else IP(src="10.244.0.5", dst="10.244.1.7")
    eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:02")
    headers = bytes(eth / net / TCP(sport=40000, dport=80, flags="PA"))
    # (the payload is added past scapy: too long for its length fields)
    raw = bytearray(headers + (bytes(range(256)) * (payload // 256 + 1))[:payload])
    ip, l4 = 14, 14 + (40 if inner_v6 else 20)
    if inner_v6:
        struct.pack_into("!H", raw, ip + 4, 0)
        src, dst = bytes(raw[ip + 8 : ip + 24]), bytes(raw[ip + 24 : ip + 40])
    else:
        struct.pack_into("!H", raw, ip + 2, 0)  # total length 0, and the header checksum made again
        struct.pack_into("!H", raw, ip + 10, 0)
        struct.pack_into("!H", raw, ip + 10, ~word_sum(bytes(raw[ip : ip + 20])) & 0xFFFF)
        src, dst = bytes(raw[ip + 12 : ip + 16]), bytes(raw[ip + 16 : ip + 20])
    if partial:  # as the sender's stack leaves it for offload: the pseudo-header sum alone
        struct.pack_into("!H", raw, l4 + 16, _fold(pseudo_sum32(src, dst, 6, len(raw) - l4)))
    else:
        struct.pack_into("!H", raw, l4 + 16, l4_checksum(src, dst, 6, bytes(raw[l4:]), 16))
    return bytes(raw)


def super_frame(csum: str, *, outer_v6: bool = False, inner_v6: bool = False, payload: int = INNER_PAYLOAD,
                sport: int = 51000, partial_inner: bool = False) -> bytes:
    """A VXLAN super-frame as captured on the sender before GSO: outer IPv4 total length / IPv6 payload
    length 0 and UDP length 0, the lengths being the frame's. `csum`: "ok" (right over the whole frame with
    a 32-bit length), "partial" (the pseudo-header sum alone), "other" (whatever the stack left)."""
    inner = big_inner(inner_v6, payload, partial=partial_inner)
    u = 14 + (40 if outer_v6 else 20)
    head = bytearray(vxlan_frame("zero", v6=outer_v6, sport=sport, inner=inner_frame("udp"))[: u + 16])
    if outer_v6:
        struct.pack_into("!H", head, 18, 0)
        src, dst = bytes(head[22:38]), bytes(head[38:54])
    else:
        struct.pack_into("!H", head, 16, 0)
        struct.pack_into("!H", head, 24, 0)
        struct.pack_into("!H", head, 24, ~word_sum(bytes(head[14:34])) & 0xFFFF)
        src, dst = bytes(head[26:30]), bytes(head[30:34])
    struct.pack_into("!HH", head, u + 4, 0, 0)
    frame = bytearray(head + inner)
    length = len(frame) - u
    if csum == "ok":
        value = l4_checksum(src, dst, 17, bytes(frame[u:]), 6)
    elif csum == "partial":
        value = _fold(pseudo_sum32(src, dst, 17, length))
    else:
        value = 0x5A5A
    struct.pack_into("!H", frame, u + 6, value)
    return bytes(frame)

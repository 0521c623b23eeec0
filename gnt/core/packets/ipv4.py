"""IPv4 header codec (RFC 791)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

from gnt.core.checksum import checksum, verify
from gnt.core.packets import Buffer, DecodeError, need

LAYER = "ipv4"  # the layer name DecodeError reports
HEADER = struct.Struct("!BBHHHBBH4s4s")  # ver/ihl, tos, total length, id, flags/frag, ttl, proto, csum, addrs
MIN_LEN = 20  # header without options, RFC 791 §3.1
FLAG_DF = 0x4000  # don't fragment
FLAG_MF = 0x2000  # more fragments: with offset 0, the first fragment of a datagram
OFFSET_MASK = 0x1FFF  # fragment offset, in 8-byte units


@dataclass(slots=True)
class IPv4:
    """An IPv4 header. Addresses are kept packed (4 bytes); `src_text`/`dst_text` format them."""

    src: bytes
    dst: bytes
    proto: int
    ttl: int = 64
    tos: int = 0
    ident: int = 0
    flags_frag: int = 0
    total_length: int = 0  # 0 on encode: computed from the payload
    checksum: int = 0  # 0 on encode: computed
    options: bytes = b""
    payload_offset: int = field(default=0, compare=False)

    @property
    def header_length(self) -> int:
        return MIN_LEN + len(self.options)

    @property
    def src_text(self) -> str:
        return socket.inet_ntop(socket.AF_INET, self.src)

    @property
    def dst_text(self) -> str:
        return socket.inet_ntop(socket.AF_INET, self.dst)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags_frag & FLAG_DF)

    @property
    def fragment_offset(self) -> int:
        return (self.flags_frag & OFFSET_MASK) * 8

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> IPv4:
        need(buf, offset, MIN_LEN, LAYER)
        ver_ihl, tos, total, ident, frag, ttl, proto, csum, src, dst = HEADER.unpack_from(buf, offset)
        if ver_ihl >> 4 != 4:
            raise DecodeError(LAYER, offset, f"version {ver_ihl >> 4}, not 4")
        hlen = (ver_ihl & 0x0F) * 4
        if hlen < MIN_LEN:
            raise DecodeError(LAYER, offset, f"header length {hlen} below 20")
        need(buf, offset, hlen, LAYER)
        options = bytes(buf[offset + MIN_LEN : offset + hlen])
        return cls(
            src=src, dst=dst, proto=proto, ttl=ttl, tos=tos, ident=ident, flags_frag=frag,
            total_length=total, checksum=csum, options=options, payload_offset=offset + hlen,
        )

    def encode(self, payload: bytes = b"") -> bytes:
        if len(self.options) % 4:
            raise ValueError("IPv4 options must be padded to a multiple of 4 bytes")
        hlen = self.header_length
        total = self.total_length or hlen + len(payload)
        head = HEADER.pack(
            0x40 | hlen // 4, self.tos, total, self.ident, self.flags_frag, self.ttl, self.proto,
            0, self.src, self.dst,
        ) + self.options
        csum = self.checksum or checksum(head)
        return head[:10] + struct.pack("!H", csum) + head[12:] + payload

    def header_valid(self, buf: Buffer, offset: int = 0) -> bool:
        """True when the header checksum of the header at `offset` in `buf` verifies."""
        return verify(memoryview(buf)[offset : offset + self.header_length])

"""UDP header codec (RFC 768)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gnt.core.checksum import PROTO_UDP, udp_wire_checksum, verify_transport
from gnt.core.packets import Buffer, DecodeError, need

LAYER = "udp"  # the layer name DecodeError reports
HEADER = struct.Struct("!HHHH")  # source port, destination port, length, checksum
HEADER_LEN = 8  # the fixed UDP header, RFC 768
NO_CHECKSUM = 0  # "no checksum computed": allowed over IPv4, not over IPv6 (RFC 8200 §8.1)


@dataclass(slots=True)
class UDP:
    """A UDP header. `length` covers header and payload."""

    sport: int
    dport: int
    length: int = 0  # 0 on encode: computed from the payload
    checksum: int = 0  # 0 on encode: computed when the addresses are given, else sent as "none"
    payload_offset: int = field(default=0, compare=False)

    @property
    def payload_length(self) -> int:
        return self.length - HEADER_LEN

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> UDP:
        need(buf, offset, HEADER_LEN, LAYER)
        sport, dport, length, csum = HEADER.unpack_from(buf, offset)
        return cls(sport=sport, dport=dport, length=length, checksum=csum, payload_offset=offset + HEADER_LEN)

    def encode(self, payload: bytes = b"", *, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        """The datagram. With `src`/`dst` (packed addresses) and `checksum` 0, the checksum is computed."""
        length = self.length or HEADER_LEN + len(payload)
        csum = self.checksum
        if not csum and src is not None and dst is not None:
            segment = HEADER.pack(self.sport, self.dport, length, 0) + payload
            csum = udp_wire_checksum(src, dst, segment)
        return HEADER.pack(self.sport, self.dport, length, csum) + payload

    def checksum_ok(self, buf: Buffer, src: bytes, dst: bytes, offset: int = 0) -> bool | None:
        """Verify the datagram at `offset` in `buf` (its `length` bytes) against its pseudo-header.

        None when the checksum field is 0 over IPv4 ("none computed"); a zero checksum over IPv6
        is invalid and gives False.
        """
        if self.checksum == NO_CHECKSUM:
            return None if len(src) == 4 else False
        end = offset + self.length
        if self.length < HEADER_LEN or end > len(buf):
            have = len(buf) - offset
            raise DecodeError(LAYER, offset, f"length {self.length} does not fit the {have} bytes present")
        return verify_transport(src, dst, PROTO_UDP, memoryview(buf)[offset:end])

"""VXLAN header codec (RFC 7348 §5): 8 bytes over UDP, followed by the inner Ethernet frame.

    flags (8) | reserved (24) | VNI (24) | reserved (8)

Only the I flag is defined; the reserved bits are kept as received (VXLAN-GBP, draft-smith-vxlan-
group-policy, carries a group policy id in the first reserved field) so decode/encode is exact.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gnt.core.packets import Buffer, need

LAYER = "vxlan"  # the layer name DecodeError reports
HEADER = struct.Struct("!II")  # flags and 24 reserved bits, VNI and 8 reserved bits
HEADER_LEN = 8  # RFC 7348 §5
FLAG_I = 0x08  # "VNI is valid", the one flag RFC 7348 defines; receivers must see it set
VNI_MAX = 0xFFFFFF  # 24-bit VXLAN network identifier
PORT_IANA = 4789  # IANA-assigned UDP destination port, RFC 7348 §5
PORT_LINUX = 8472  # the Linux kernel's historical default (flannel uses it), pre-dates the IANA port
PORTS = frozenset({PORT_IANA, PORT_LINUX})  # UDP destination ports decoded as VXLAN


@dataclass(slots=True)
class VXLAN:
    """A VXLAN header. `reserved1` is the 24 bits after the flags, `reserved2` the byte after the VNI."""

    vni: int
    flags: int = FLAG_I
    reserved1: int = 0
    reserved2: int = 0
    payload_offset: int = field(default=0, compare=False)

    @property
    def vni_valid(self) -> bool:
        """The I flag: RFC 7348 says a receiver must see it set."""
        return bool(self.flags & FLAG_I)

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> VXLAN:
        need(buf, offset, HEADER_LEN, LAYER)
        word0, word1 = HEADER.unpack_from(buf, offset)
        return cls(
            vni=word1 >> 8, flags=word0 >> 24, reserved1=word0 & 0xFFFFFF, reserved2=word1 & 0xFF,
            payload_offset=offset + HEADER_LEN,
        )

    def encode(self, payload: bytes = b"") -> bytes:
        if not 0 <= self.vni <= VNI_MAX:
            raise ValueError(f"VNI {self.vni} outside 0..{VNI_MAX}")
        word0 = (self.flags & 0xFF) << 24 | self.reserved1 & 0xFFFFFF
        word1 = self.vni << 8 | self.reserved2 & 0xFF
        return HEADER.pack(word0, word1) + payload

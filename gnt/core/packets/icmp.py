"""ICMP for IPv4 (RFC 792): echo request/reply, and the errors that quote an IP packet."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gnt.core.checksum import add, finish
from gnt.core.packets import Buffer, need

LAYER = "icmp"  # the layer name DecodeError reports
HEADER = struct.Struct("!BBHHH")  # type, code, checksum, rest-of-header (id/seq, or unused/mtu)

ECHO_REPLY = 0  # RFC 792
DEST_UNREACH = 3  # RFC 792
SOURCE_QUENCH = 4  # RFC 792, deprecated by RFC 6633
REDIRECT = 5  # RFC 792
ECHO_REQUEST = 8  # RFC 792
TIME_EXCEEDED = 11  # RFC 792
PARAMETER_PROBLEM = 12  # RFC 792

ERROR_TYPES = frozenset({DEST_UNREACH, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAMETER_PROBLEM})

# Destination unreachable codes (RFC 792, RFC 1812 §5.2.7.1), with iputils' wording.
UNREACH_TEXT = {
    0: "Destination Net Unreachable",
    1: "Destination Host Unreachable",
    2: "Destination Protocol Unreachable",
    3: "Destination Port Unreachable",
    4: "Frag needed and DF set",
    5: "Source Route Failed",
    6: "Destination Net Unknown",
    7: "Destination Host Unknown",
    8: "Source Host Isolated",
    9: "Destination Net Prohibited",
    10: "Destination Host Prohibited",
    11: "Destination Net Unreachable for Type of Service",
    12: "Destination Host Unreachable for Type of Service",
    13: "Packet filtered",
    14: "Precedence Violation",
    15: "Precedence Cutoff",
}
TIME_EXCEEDED_TEXT = {0: "Time to live exceeded", 1: "Frag reassembly time exceeded"}
REDIRECT_TEXT = {
    0: "Redirect Network",
    1: "Redirect Host",
    2: "Redirect Type of Service and Network",
    3: "Redirect Type of Service and Host",
}


def describe(icmp_type: int, code: int, info: int = 0) -> str:
    """The iputils wording for an ICMP error.

    `info` is either the message's 32-bit rest-of-header word (a raw socket's view) or the kernel's
    `ee_info` from the error queue (the MTU, or the parameter-problem pointer); both read right.
    """
    if icmp_type == DEST_UNREACH:
        if code == 4:
            return f"Frag needed and DF set (mtu = {info & 0xFFFF})"  # RFC 1191: MTU in the low 16 bits
        return UNREACH_TEXT.get(code, f"Dest Unreachable, Bad Code: {code}")
    if icmp_type == TIME_EXCEEDED:
        return TIME_EXCEEDED_TEXT.get(code, f"Time exceeded, Bad Code: {code}")
    if icmp_type == REDIRECT:
        return REDIRECT_TEXT.get(code, f"Redirect, Bad Code: {code}")
    if icmp_type == SOURCE_QUENCH:
        return "Source Quench"
    if icmp_type == PARAMETER_PROBLEM:
        return f"Parameter problem: pointer = {info >> 24 if info > 0xFF else info}"
    return f"Bad ICMP type: {icmp_type}"


@dataclass(slots=True)
class ICMP:
    """An ICMPv4 message. `rest` is the 4-byte rest-of-header as an int (id<<16|seq for echo)."""

    type: int
    code: int = 0
    checksum: int = 0  # 0 on encode: computed
    rest: int = 0
    payload_offset: int = field(default=0, compare=False)

    @property
    def ident(self) -> int:
        return self.rest >> 16

    @property
    def seq(self) -> int:
        return self.rest & 0xFFFF

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    @classmethod
    def echo(cls, ident: int, seq: int, *, reply: bool = False) -> ICMP:
        return cls(type=ECHO_REPLY if reply else ECHO_REQUEST, rest=(ident & 0xFFFF) << 16 | seq & 0xFFFF)

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> ICMP:
        need(buf, offset, HEADER.size, LAYER)
        icmp_type, code, csum, hi, lo = HEADER.unpack_from(buf, offset)
        return cls(type=icmp_type, code=code, checksum=csum, rest=hi << 16 | lo, payload_offset=offset + 8)

    def encode(self, payload: bytes = b"") -> bytes:
        head = HEADER.pack(self.type, self.code, 0, self.rest >> 16, self.rest & 0xFFFF)
        csum = self.checksum or finish(add(add(0, head), payload))  # summed without concatenating
        return head[:2] + struct.pack("!H", csum) + head[4:] + payload

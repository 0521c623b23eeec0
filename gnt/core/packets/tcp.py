"""TCP header codec (RFC 9293), options kept as their wire bytes and walked on demand."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from gnt.core.checksum import PROTO_TCP, transport_checksum, verify_transport
from gnt.core.packets import Buffer, DecodeError, need

LAYER = "tcp"  # the layer name DecodeError reports
HEADER = struct.Struct("!HHIIHHHH")  # sport, dport, seq, ack, data offset/flags, window, checksum, urgent
MIN_LEN = 20  # header without options, RFC 9293 §3.1
MAX_LEN = 60  # data offset is 4 bits of 32-bit words

FIN = 0x001  # no more data from sender
SYN = 0x002  # synchronize sequence numbers
RST = 0x004  # reset the connection
PSH = 0x008  # push function
ACK = 0x010  # acknowledgment field is significant
URG = 0x020  # urgent pointer field is significant
ECE = 0x040  # ECN-echo, RFC 3168
CWR = 0x080  # congestion window reduced, RFC 3168
AE = 0x100  # accurate ECN (was NS, RFC 3540), RFC 9768
FLAGS_MASK = 0x0FFF  # the 12 bits below the data offset: 3 reserved bits and 9 flags

OPT_EOL = 0  # end of option list, RFC 9293
OPT_NOP = 1  # no-operation (padding), RFC 9293
OPT_MSS = 2  # maximum segment size, RFC 9293
OPT_WSCALE = 3  # window scale, RFC 7323
OPT_SACK_PERMITTED = 4  # SACK permitted, RFC 2018
OPT_TIMESTAMP = 8  # timestamps, RFC 7323

# tcpdump's letters, in the order it prints them ("[S.]" is SYN+ACK).
_FLAG_LETTERS = (
    (FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"), (CWR, "W"), (AE, "e"),
)


def flags_text(flags: int) -> str:
    """tcpdump's rendering of TCP flags: `S`, `S.`, `P.`, `F.`, `R`, and `.` for a bare ACK; `none` for 0."""
    text = "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)
    if flags & ACK:
        text += "."
    return text or "none"


def parse_options(options: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (kind, data) for each TCP option; EOL ends the list, NOPs are yielded with empty data.

    Raises DecodeError (offset within the options) for a length byte that is missing, below 2,
    or runs past the end.
    """
    pos = 0
    while pos < len(options):
        kind = options[pos]
        if kind == OPT_EOL:
            return
        if kind == OPT_NOP:
            yield kind, b""
            pos += 1
            continue
        if pos + 1 >= len(options):
            raise DecodeError(LAYER, MIN_LEN + pos, f"option {kind} has no length byte")
        size = options[pos + 1]
        if size < 2 or pos + size > len(options):
            raise DecodeError(LAYER, MIN_LEN + pos, f"option {kind} length {size} is invalid")
        yield kind, options[pos + 2 : pos + size]
        pos += size


@dataclass(slots=True)
class TCP:
    """A TCP header. `flags` is the low 12 bits of the data-offset word (reserved bits included)."""

    sport: int
    dport: int
    seq: int = 0
    ack: int = 0
    flags: int = SYN
    window: int = 65535
    checksum: int = 0  # 0 on encode: computed when the addresses are given
    urgent: int = 0
    options: bytes = b""  # raw option bytes, a multiple of 4 long (pad with NOP/EOL)
    payload_offset: int = field(default=0, compare=False)

    @property
    def header_length(self) -> int:
        return MIN_LEN + len(self.options)

    @property
    def flags_text(self) -> str:
        return flags_text(self.flags)

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def is_ack(self) -> bool:
        """The ACK flag (named so as not to clash with the acknowledgment number `ack`)."""
        return bool(self.flags & ACK)

    def has_flags(self, *bits: int) -> bool:
        """True when every flag in `bits` is set (`tcp.has_flags(SYN, ACK)`)."""
        wanted = 0
        for bit in bits:
            wanted |= bit
        return self.flags & wanted == wanted

    def option_list(self) -> list[tuple[int, bytes]]:
        """The options as (kind, data) pairs; DecodeError for a malformed list."""
        return list(parse_options(self.options))

    def mss(self) -> int | None:
        """The MSS option's value, if present and well formed."""
        for kind, data in parse_options(self.options):
            if kind == OPT_MSS and len(data) == 2:
                return int.from_bytes(data, "big")
        return None

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> TCP:
        need(buf, offset, MIN_LEN, LAYER)
        sport, dport, seq, ack, off_flags, window, csum, urgent = HEADER.unpack_from(buf, offset)
        hlen = (off_flags >> 12) * 4
        if hlen < MIN_LEN:
            raise DecodeError(LAYER, offset, f"data offset {hlen} below 20")
        need(buf, offset, hlen, LAYER)
        return cls(
            sport=sport, dport=dport, seq=seq, ack=ack, flags=off_flags & FLAGS_MASK, window=window,
            checksum=csum, urgent=urgent, options=bytes(buf[offset + MIN_LEN : offset + hlen]),
            payload_offset=offset + hlen,
        )

    def encode(self, payload: bytes = b"", *, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        """The segment. With `src`/`dst` (packed addresses) and `checksum` 0, the checksum is computed."""
        if len(self.options) % 4 or self.header_length > MAX_LEN:
            raise ValueError("TCP options must be padded to a multiple of 4 bytes, at most 40")
        off_flags = (self.header_length // 4) << 12 | self.flags & FLAGS_MASK
        fields = (self.sport, self.dport, self.seq, self.ack, off_flags, self.window)
        csum = self.checksum
        if not csum and src is not None and dst is not None:
            segment = HEADER.pack(*fields, 0, self.urgent) + self.options + payload
            csum = transport_checksum(src, dst, PROTO_TCP, segment)
        return HEADER.pack(*fields, csum, self.urgent) + self.options + payload

    @staticmethod
    def checksum_ok(segment: Buffer, src: bytes, dst: bytes) -> bool:
        """True when a whole TCP segment (header and payload) verifies with its pseudo-header."""
        return verify_transport(src, dst, PROTO_TCP, segment)

"""Wire codecs, one module per header (ethernet, ipv4, ipv6, icmp, icmpv6, udp, tcp, vxlan).

Every header is a dataclass with a `decode(buf, offset)` classmethod returning the header
(its `payload_offset` says where the next layer starts) and an `encode(payload)` method
returning bytes. Decoding a short or malformed buffer raises exactly one exception type,
`gnt.errors.DecodeError`, carrying the layer and the offset: callers never see IndexError
or struct.error. Field layouts are `struct.Struct` tables next to the RFC they come from.

Codecs decode their own header and leave length fields as data: an ICMP error quotes a
datagram whose IPv4 total length exceeds the bytes quoted, and that is not an error.
`gnt.core.packets.dispatch.dissect(..., strict=True)` is where length fields are checked
against the bytes present.
"""

from __future__ import annotations

from gnt.errors import DecodeError

__all__ = ["Buffer", "DecodeError", "need"]

Buffer = bytes | bytearray | memoryview  # anything the codecs decode from


def need(buf: Buffer, offset: int, size: int, layer: str) -> None:
    """Raise DecodeError unless `size` bytes are available at `offset`."""
    if offset < 0 or len(buf) - offset < size:
        have = max(len(buf) - offset, 0)
        raise DecodeError(layer, offset, f"need {size} bytes, {have} available")

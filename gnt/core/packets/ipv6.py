"""IPv6 header codec (RFC 8200), walking the extension header chain (RFC 8200 §4, RFC 7045).

Decoding follows Next Header through hop-by-hop, routing, fragment, destination options,
authentication (RFC 4302) and the other RFC 7045 extension headers, and stops at the first
upper-layer protocol, at "no next header" (59), at ESP (50: what follows is encrypted) and
after the fragment header of a non-first fragment (what follows is the middle of a datagram).
`IPv6.proto` is where it stopped and `payload_offset` where that protocol's bytes start.

Extension headers are kept as their wire bytes minus the Next Header byte; on encode the
Next Header chain is rebuilt from the kinds in order, ending with `proto`, so decoding then
encoding gives back the same bytes.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

from gnt.core.packets import Buffer, DecodeError, need

LAYER = "ipv6"  # the layer name DecodeError reports
HEADER = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next header, hop limit, src, dst
HEADER_LEN = 40  # the fixed header, RFC 8200 §3
FRAGMENT = struct.Struct("!BBHI")  # next header, reserved, offset/res/M, identification (RFC 8200 §4.5)

HOPOPT = 0  # hop-by-hop options, RFC 8200 §4.3
ROUTING = 43  # routing header, RFC 8200 §4.4
FRAGMENT_HEADER = 44  # fragment header, RFC 8200 §4.5
ESP = 50  # encapsulating security payload, RFC 4303: the walk stops, the rest is encrypted
AH = 51  # authentication header, RFC 4302 (length in 4-byte units)
NO_NEXT_HEADER = 59  # nothing follows, RFC 8200 §4.7
DSTOPTS = 60  # destination options, RFC 8200 §4.6
MOBILITY = 135  # mobility header, RFC 6275 (generic extension header format)
HIP = 139  # host identity protocol, RFC 7401 (generic extension header format)
SHIM6 = 140  # shim6 protocol, RFC 5533 (generic extension header format)
EXPERIMENT_1 = 253  # for experimentation, RFC 3692 / RFC 4727
EXPERIMENT_2 = 254  # for experimentation, RFC 3692 / RFC 4727

GENERIC_EXTENSIONS = frozenset(  # length byte in 8-byte units beyond the first 8 (RFC 8200 §4, RFC 7045)
    {HOPOPT, ROUTING, DSTOPTS, MOBILITY, HIP, SHIM6, EXPERIMENT_1, EXPERIMENT_2}
)
EXTENSION_HEADERS = GENERIC_EXTENSIONS | {FRAGMENT_HEADER, AH}  # everything the decoder walks through

EXTENSION_NAMES = {  # for DecodeError reasons and reports
    HOPOPT: "hop-by-hop options",
    ROUTING: "routing",
    FRAGMENT_HEADER: "fragment",
    AH: "authentication",
    DSTOPTS: "destination options",
    MOBILITY: "mobility",
    HIP: "host identity",
    SHIM6: "shim6",
    EXPERIMENT_1: "experimental (253)",
    EXPERIMENT_2: "experimental (254)",
}

OPT_PAD1 = 0  # one byte of padding, RFC 8200 §4.2
OPT_PADN = 1  # N bytes of padding, RFC 8200 §4.2
FRAG_OFFSET_MASK = 0xFFF8  # fragment offset in 8-byte units, high 13 bits of the 16-bit field
FRAG_M = 0x0001  # more fragments follow
OPT_JUMBO = 0xC2  # jumbo payload option (hop-by-hop), RFC 2675: a 32-bit payload length
ROUTING_SOURCE = 0  # type 0 routing header (deprecated, RFC 5095): addresses, the final one last
ROUTING_HOME = 2  # type 2 routing header, RFC 6275: one address, the final destination
ROUTING_SRH = 4  # segment routing header, RFC 8754: Segment List[0] is the final destination


def extension_length(kind: int, length_byte: int) -> int:
    """Total byte length of an extension header from its kind and its second byte."""
    if kind == FRAGMENT_HEADER:
        return FRAGMENT.size
    if kind == AH:
        return (length_byte + 2) * 4
    return (length_byte + 1) * 8


def pad_options(options: bytes) -> bytes:
    """Options padded with Pad1/PadN so that 2 + len(result) is a multiple of 8 (RFC 8200 §4.2)."""
    missing = -(2 + len(options)) % 8
    if missing == 0:
        return options
    if missing == 1:
        return options + bytes([OPT_PAD1])
    return options + bytes([OPT_PADN, missing - 2]) + bytes(missing - 2)


@dataclass(slots=True)
class Fragment:
    """The fields of a fragment header (RFC 8200 §4.5). `offset` is in bytes."""

    offset: int
    more: bool
    ident: int
    next_header: int


@dataclass(slots=True)
class ExtensionHeader:
    """One extension header. `body` is its wire bytes after the Next Header byte (length byte included)."""

    kind: int  # its own protocol number: HOPOPT, ROUTING, FRAGMENT_HEADER, DSTOPTS, AH, ...
    body: bytes
    offset: int = field(default=0, compare=False)  # where it started in the decoded buffer

    @property
    def name(self) -> str:
        return EXTENSION_NAMES.get(self.kind, str(self.kind))

    @property
    def length(self) -> int:
        return 1 + len(self.body)

    @property
    def data(self) -> bytes:
        """The bytes after the Next Header and length bytes (options, routing data, AH fields)."""
        return self.body[1:]

    @classmethod
    def options(cls, kind: int, options: bytes = b"") -> ExtensionHeader:
        """A hop-by-hop or destination options header; `options` are TLVs, padded here."""
        padded = pad_options(options)
        return cls(kind, bytes([(2 + len(padded)) // 8 - 1]) + padded)

    @classmethod
    def routing(cls, routing_type: int, segments_left: int, data: bytes = bytes(4)) -> ExtensionHeader:
        """A routing header; `data` is what follows the segments-left byte (reserved/flags, addresses)."""
        if (4 + len(data)) % 8:
            raise ValueError("routing header length must be a multiple of 8 bytes")
        return cls(ROUTING, bytes([(4 + len(data)) // 8 - 1, routing_type, segments_left]) + data)

    @classmethod
    def fragment(cls, offset: int, more: bool, ident: int) -> ExtensionHeader:
        """A fragment header; `offset` in bytes, a multiple of 8."""
        if offset % 8 or not 0 <= offset <= FRAG_OFFSET_MASK:
            raise ValueError("fragment offset must be a multiple of 8 below 65536")
        return cls(FRAGMENT_HEADER, FRAGMENT.pack(0, 0, offset | more, ident)[1:])

    @classmethod
    def authentication(cls, spi: int, seq: int, icv: bytes = b"") -> ExtensionHeader:
        """An AH header (RFC 4302 §2); `icv` must make the total a multiple of 8 bytes for IPv6."""
        total = 12 + len(icv)
        if total % 8:
            raise ValueError("AH length must be a multiple of 8 bytes over IPv6")
        return cls(AH, struct.pack("!BHII", total // 4 - 2, 0, spi, seq) + icv)

    def as_fragment(self, next_header: int) -> Fragment:
        _, _, off_m, ident = FRAGMENT.unpack(b"\0" + self.body)
        more = bool(off_m & FRAG_M)
        return Fragment(offset=off_m & FRAG_OFFSET_MASK, more=more, ident=ident, next_header=next_header)


@dataclass(slots=True)
class IPv6:
    """An IPv6 header with its extension headers. Addresses are kept packed (16 bytes)."""

    src: bytes
    dst: bytes
    proto: int  # the upper-layer protocol (or ESP / no next header) after the extension headers
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    payload_length: int = 0  # 0 on encode: computed from the extensions and the payload
    extensions: tuple[ExtensionHeader, ...] = ()
    payload_offset: int = field(default=0, compare=False)

    @property
    def header_length(self) -> int:
        """Fixed header plus extension headers: where the upper-layer protocol starts."""
        return HEADER_LEN + sum(ext.length for ext in self.extensions)

    @property
    def next_header(self) -> int:
        """The Next Header field of the fixed header."""
        return self.extensions[0].kind if self.extensions else self.proto

    @property
    def src_text(self) -> str:
        return socket.inet_ntop(socket.AF_INET6, self.src)

    @property
    def dst_text(self) -> str:
        return socket.inet_ntop(socket.AF_INET6, self.dst)

    @property
    def fragment(self) -> Fragment | None:
        """The fragment header's fields, if the packet is a fragment."""
        for index, ext in enumerate(self.extensions):
            if ext.kind == FRAGMENT_HEADER:
                following = self.extensions[index + 1 :]
                return ext.as_fragment(following[0].kind if following else self.proto)
        return None

    @property
    def upper_layer_present(self) -> bool:
        """False for a non-first fragment, ESP, or no next header: no upper-layer header follows."""
        if self.proto in (ESP, NO_NEXT_HEADER):
            return False
        frag = self.fragment
        return frag is None or frag.offset == 0

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> IPv6:
        need(buf, offset, HEADER_LEN, LAYER)
        vtf, plen, next_header, hop_limit, src, dst = HEADER.unpack_from(buf, offset)
        if vtf >> 28 != 6:
            raise DecodeError(LAYER, offset, f"version {vtf >> 28}, not 6")
        pos = offset + HEADER_LEN
        extensions: list[ExtensionHeader] = []
        while next_header in EXTENSION_HEADERS:
            have = len(buf) - pos
            size = extension_length(next_header, buf[pos + 1]) if have >= 2 else 2
            if have < size:
                name = EXTENSION_NAMES[next_header]
                raise DecodeError(LAYER, pos, f"{name} header truncated: need {size} bytes, {have} available")
            ext = ExtensionHeader(next_header, bytes(buf[pos + 1 : pos + size]), offset=pos)
            extensions.append(ext)
            next_header = buf[pos]
            pos += size
            if ext.kind == FRAGMENT_HEADER and ext.as_fragment(next_header).offset:
                break  # a non-first fragment: what follows is data from the middle of the datagram
        return cls(
            src=src, dst=dst, proto=next_header, hop_limit=hop_limit, traffic_class=vtf >> 20 & 0xFF,
            flow_label=vtf & 0xFFFFF, payload_length=plen, extensions=tuple(extensions), payload_offset=pos,
        )

    def encode(self, payload: bytes = b"") -> bytes:
        parts: list[bytes] = []
        kinds = [ext.kind for ext in self.extensions] + [self.proto]
        for ext, following in zip(self.extensions, kinds[1:], strict=True):
            if not ext.body or extension_length(ext.kind, ext.body[0]) != ext.length:
                raise ValueError(f"{ext.name} header: length byte does not match its {ext.length} bytes")
            parts.append(bytes([following]) + ext.body)
        parts.append(payload)
        rest = b"".join(parts)
        plen = self.payload_length or len(rest)
        vtf = 6 << 28 | (self.traffic_class & 0xFF) << 20 | self.flow_label & 0xFFFFF
        return HEADER.pack(vtf, plen, kinds[0], self.hop_limit, self.src, self.dst) + rest


def solicited_node(address: bytes) -> bytes:
    """The solicited-node multicast group of an address, ff02::1:ffXX:XXXX (RFC 4291 §2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet address an IPv6 multicast group maps to: 33:33 and its last 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + group[12:]

"""ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) messages with their options.

The ICMPv6 header is 4 bytes (type, code, checksum) followed by a 4-byte message body
that differs per type (echo id/seq, the MTU of Packet Too Big, the pointer of Parameter
Problem, NDP flags). `ICMPv6` keeps that body as `rest`, so any message decodes; the NDP
messages (RS, RA, NS, NA, Redirect) are separate dataclasses with their options decoded:
source/target link-layer address, prefix information, redirected header, MTU (RFC 4861
§4.6), route information (RFC 4191), RDNSS and DNSSL (RFC 8106).

Option validation follows RFC 4861 §4.6 and the per-option RFCs: a zero length, an option
that runs past the message, or an option too short for its type makes the whole message
invalid, and the decoder raises `DecodeError` ("a node MUST silently discard an ND packet
that contains an option with length zero"). Unknown option types are kept as raw bytes.

The checksum covers an IPv6 pseudo-header (RFC 8200 §8.1), so `encode` takes the source and
destination addresses; without them it leaves the checksum 0, which is what a raw ICMPv6
socket wants (the kernel always computes it, RFC 3542 §3.1).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from gnt.core.checksum import PROTO_ICMPV6, transport_checksum, verify_transport
from gnt.core.packets import Buffer, DecodeError, ethernet, need

LAYER = "icmpv6"
HEADER = struct.Struct("!BBH")  # type, code, checksum
REST = struct.Struct("!I")  # the 4-byte message body after the header
HEADER_LEN = 8  # header plus message body: the smallest ICMPv6 message we decode

# ICMPv6 types (IANA "ICMPv6 Parameters")
DEST_UNREACH = 1  # RFC 4443 §3.1
PACKET_TOO_BIG = 2  # RFC 4443 §3.2
TIME_EXCEEDED = 3  # RFC 4443 §3.3
PARAMETER_PROBLEM = 4  # RFC 4443 §3.4
ECHO_REQUEST = 128  # RFC 4443 §4.1
ECHO_REPLY = 129  # RFC 4443 §4.2
ROUTER_SOLICIT = 133  # RFC 4861 §4.1
ROUTER_ADVERT = 134  # RFC 4861 §4.2
NEIGHBOR_SOLICIT = 135  # RFC 4861 §4.3
NEIGHBOR_ADVERT = 136  # RFC 4861 §4.4
REDIRECT = 137  # RFC 4861 §4.5

ERROR_TYPES = frozenset({DEST_UNREACH, PACKET_TOO_BIG, TIME_EXCEEDED, PARAMETER_PROBLEM})
NDP_TYPES = frozenset({ROUTER_SOLICIT, ROUTER_ADVERT, NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT, REDIRECT})

# Wording of the error codes, as iputils' ping prints them.
UNREACH_TEXT = {
    0: "No route",
    1: "Administratively prohibited",
    2: "Beyond scope of source address",
    3: "Address unreachable",
    4: "Port unreachable",
    5: "Source address failed ingress/egress policy",
    6: "Reject route to destination",
}
TIME_EXCEEDED_TEXT = {0: "Hop limit", 1: "Defragmentation failure"}
PARAMETER_PROBLEM_TEXT = {
    0: "Wrong header field",
    1: "Unknown header",
    2: "Unknown option",
}


def describe(icmp_type: int, code: int, info: int = 0) -> str:
    """The iputils wording for an ICMPv6 error (`info` is the MTU or the pointer)."""
    if icmp_type == DEST_UNREACH:
        return f"Destination unreachable: {UNREACH_TEXT.get(code, f'Unknown code {code}')}"
    if icmp_type == PACKET_TOO_BIG:
        return f"Packet too big: mtu={info}"
    if icmp_type == TIME_EXCEEDED:
        return f"Time exceeded: {TIME_EXCEEDED_TEXT.get(code, f'Unknown code {code}')}"
    if icmp_type == PARAMETER_PROBLEM:
        text = PARAMETER_PROBLEM_TEXT.get(code, f"code {code}")
        return f"Parameter problem: {text} at {info}"
    return f"Unknown ICMPv6 type {icmp_type}"


def addr_text(packed: bytes) -> str:
    """Compressed text form of a 16-byte IPv6 address."""
    return socket.inet_ntop(socket.AF_INET6, packed)


def addr_bytes(text: str) -> bytes:
    """The 16 bytes of a textual IPv6 address (a zone `%eth0` is dropped)."""
    return socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0])


def mac_text(mac: bytes) -> str:
    """`9A:C1:CD:12:78:EC`: upper-case, as ndisc6 prints link-layer addresses."""
    return ethernet.mac_text(mac).upper()


@dataclass(slots=True)
class ICMPv6:
    """Any ICMPv6 message: header and the 4-byte body (`rest`); `payload_offset` is after the body."""

    type: int
    code: int = 0
    checksum: int = 0  # 0 on encode: computed when addresses are given
    rest: int = 0
    payload_offset: int = field(default=0, compare=False)

    @property
    def ident(self) -> int:
        return self.rest >> 16

    @property
    def seq(self) -> int:
        return self.rest & 0xFFFF

    @property
    def mtu(self) -> int:
        return self.rest  # Packet Too Big, RFC 4443 §3.2

    @property
    def pointer(self) -> int:
        return self.rest  # Parameter Problem, RFC 4443 §3.4

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    @classmethod
    def echo(cls, ident: int, seq: int, *, reply: bool = False) -> ICMPv6:
        return cls(type=ECHO_REPLY if reply else ECHO_REQUEST, rest=(ident & 0xFFFF) << 16 | seq & 0xFFFF)

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> ICMPv6:
        need(buf, offset, HEADER_LEN, LAYER)
        icmp_type, code, csum = HEADER.unpack_from(buf, offset)
        (rest,) = REST.unpack_from(buf, offset + 4)
        return cls(type=icmp_type, code=code, checksum=csum, rest=rest, payload_offset=offset + HEADER_LEN)

    def encode(self, payload: bytes = b"", src: bytes | None = None, dst: bytes | None = None) -> bytes:
        body = HEADER.pack(self.type, self.code, 0) + REST.pack(self.rest) + payload
        return _with_checksum(body, self.checksum, src, dst)


def _with_checksum(message: bytes, csum: int, src: bytes | None, dst: bytes | None) -> bytes:
    """`message` (checksum field zero) with `csum`, or the computed checksum when both addresses are given."""
    if not csum and src is not None and dst is not None:
        csum = transport_checksum(src, dst, PROTO_ICMPV6, message)
    return message[:2] + struct.pack("!H", csum) + message[4:]


def verify(src: bytes, dst: bytes, message: Buffer) -> bool:
    """True when an ICMPv6 message (checksum included) sums correctly with its pseudo-header."""
    return verify_transport(src, dst, PROTO_ICMPV6, message)


# ---------------------------------------------------------------------------------------------
# NDP options (RFC 4861 §4.6): type, length in units of 8 bytes (the 2 header bytes included)
# ---------------------------------------------------------------------------------------------

OPT_SOURCE_LLADDR = 1  # RFC 4861 §4.6.1
OPT_TARGET_LLADDR = 2  # RFC 4861 §4.6.1
OPT_PREFIX_INFO = 3  # RFC 4861 §4.6.2
OPT_REDIRECTED_HEADER = 4  # RFC 4861 §4.6.3
OPT_MTU = 5  # RFC 4861 §4.6.4
OPT_ROUTE_INFO = 24  # RFC 4191 §2.3
OPT_RDNSS = 25  # RFC 8106 §5.1
OPT_DNSSL = 31  # RFC 8106 §5.2

OPT_HEADER = struct.Struct("!BB")  # option type, length in 8-byte units
OPT_UNIT = 8  # option lengths count 8-byte units
PREFIX_INFO = struct.Struct("!BBIII16s")  # prefix length, flags, valid, preferred, reserved2, prefix
MTU_BODY = struct.Struct("!HI")  # reserved, MTU
ROUTE_INFO_HEAD = struct.Struct("!BBI")  # prefix length, flags (preference), route lifetime
LIFETIME_BODY = struct.Struct("!HI")  # reserved, lifetime (RDNSS and DNSSL)

PREFIX_ON_LINK = 0x80  # L flag, RFC 4861 §4.6.2
PREFIX_AUTONOMOUS = 0x40  # A flag, RFC 4861 §4.6.2
PREFIX_ROUTER_ADDRESS = 0x20  # R flag, RFC 6275 §7.2
INFINITY = 0xFFFFFFFF  # a lifetime that never expires, RFC 4861 §4.6.2

# Router preference (RFC 4191 §2.1): 2-bit signed value.
PREFERENCE_TEXT = {0: "medium", 1: "high", 2: "reserved", 3: "low"}


def _option(opt_type: int, body: bytes) -> bytes:
    """Type, length and `body` padded with zeros to a multiple of 8 bytes."""
    total = 2 + len(body)
    padded = -(-total // OPT_UNIT) * OPT_UNIT
    return OPT_HEADER.pack(opt_type, padded // OPT_UNIT) + body + b"\0" * (padded - total)


@dataclass(slots=True)
class LinkLayerOption:
    """Source (type 1) or target (type 2) link-layer address, RFC 4861 §4.6.1."""

    type: int
    lladdr: bytes

    @property
    def lladdr_text(self) -> str:
        return mac_text(self.lladdr)

    @classmethod
    def source(cls, lladdr: bytes) -> LinkLayerOption:
        return cls(OPT_SOURCE_LLADDR, lladdr)

    @classmethod
    def target(cls, lladdr: bytes) -> LinkLayerOption:
        return cls(OPT_TARGET_LLADDR, lladdr)

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> LinkLayerOption:
        # On Ethernet the address is 6 bytes and fills the option exactly (RFC 2464 §6); other
        # links have other sizes and no length of their own, so the whole body is kept.
        return cls(opt_type, bytes(body))

    def encode(self) -> bytes:
        return _option(self.type, self.lladdr)


@dataclass(slots=True)
class PrefixInformation:
    """Prefix Information option, RFC 4861 §4.6.2 (prefix kept packed, 16 bytes)."""

    prefix: bytes
    prefix_length: int
    on_link: bool = True
    autonomous: bool = True
    router_address: bool = False
    valid_lifetime: int = 2592000  # RFC 4861 §6.2.1 default AdvValidLifetime: 30 days
    preferred_lifetime: int = 604800  # RFC 4861 §6.2.1 default AdvPreferredLifetime: 7 days
    type: ClassVar[int] = OPT_PREFIX_INFO

    @property
    def prefix_text(self) -> str:
        return f"{addr_text(self.prefix)}/{self.prefix_length}"

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> PrefixInformation:
        if len(body) != PREFIX_INFO.size:
            raise DecodeError(LAYER, offset, f"prefix information option of {len(body) + 2} bytes, not 32")
        plen, flags, valid, preferred, _reserved, prefix = PREFIX_INFO.unpack_from(body, 0)
        if plen > 128:
            raise DecodeError(LAYER, offset, f"prefix length {plen} above 128")
        return cls(
            prefix=prefix, prefix_length=plen, on_link=bool(flags & PREFIX_ON_LINK),
            autonomous=bool(flags & PREFIX_AUTONOMOUS), router_address=bool(flags & PREFIX_ROUTER_ADDRESS),
            valid_lifetime=valid, preferred_lifetime=preferred,
        )

    def encode(self) -> bytes:
        flags = (
            (PREFIX_ON_LINK if self.on_link else 0)
            | (PREFIX_AUTONOMOUS if self.autonomous else 0)
            | (PREFIX_ROUTER_ADDRESS if self.router_address else 0)
        )
        return _option(OPT_PREFIX_INFO, PREFIX_INFO.pack(
            self.prefix_length, flags, self.valid_lifetime, self.preferred_lifetime, 0, self.prefix))


@dataclass(slots=True)
class RedirectedHeader:
    """Redirected Header option, RFC 4861 §4.6.3: as much of the redirected packet as fits."""

    data: bytes
    type: ClassVar[int] = OPT_REDIRECTED_HEADER

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> RedirectedHeader:
        if len(body) < 6:
            raise DecodeError(LAYER, offset, "redirected header option too short")
        return cls(bytes(body[6:]))

    def encode(self) -> bytes:
        return _option(OPT_REDIRECTED_HEADER, b"\0" * 6 + self.data)


@dataclass(slots=True)
class MTUOption:
    """MTU option, RFC 4861 §4.6.4."""

    mtu: int
    type: ClassVar[int] = OPT_MTU

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> MTUOption:
        if len(body) != MTU_BODY.size:
            raise DecodeError(LAYER, offset, f"MTU option of {len(body) + 2} bytes, not 8")
        _reserved, mtu = MTU_BODY.unpack_from(body, 0)
        return cls(mtu)

    def encode(self) -> bytes:
        return _option(OPT_MTU, MTU_BODY.pack(0, self.mtu))


@dataclass(slots=True)
class RouteInformation:
    """Route Information option, RFC 4191 §2.3: a more-specific route with its preference."""

    prefix: bytes  # 16 bytes, zero beyond the prefix length
    prefix_length: int
    preference: int = 0  # 2-bit value: 0 medium, 1 high, 3 low (PREFERENCE_TEXT)
    lifetime: int = INFINITY
    length: int = field(default=0, compare=False)  # option length in 8-byte units; 0: the smallest that fits

    @property
    def prefix_text(self) -> str:
        return f"{addr_text(self.prefix)}/{self.prefix_length}"

    @property
    def preference_text(self) -> str:
        return PREFERENCE_TEXT[self.preference]

    type: ClassVar[int] = OPT_ROUTE_INFO

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> RouteInformation:
        length_units = (len(body) + 2) // OPT_UNIT
        if len(body) < ROUTE_INFO_HEAD.size or length_units > 3:
            raise DecodeError(LAYER, offset, f"route information option of length {length_units}")
        plen, flags, lifetime = ROUTE_INFO_HEAD.unpack_from(body, 0)
        # RFC 4191 §2.3: Length 1 carries no prefix bytes (plen 0), 2 up to /64, 3 up to /128.
        if plen > 128 or (plen > 64 and length_units < 3) or (plen > 0 and length_units < 2):
            raise DecodeError(LAYER, offset, f"route information /{plen} in option length {length_units}")
        prefix = bytes(body[ROUTE_INFO_HEAD.size:]).ljust(16, b"\0")[:16]
        return cls(prefix=prefix, prefix_length=plen, preference=(flags >> 3) & 0x3, lifetime=lifetime,
                   length=length_units)

    def encode(self) -> bytes:
        smallest = 0 if self.prefix_length == 0 else 8 if self.prefix_length <= 64 else 16
        prefix_bytes = (self.length - 1) * OPT_UNIT if self.length else smallest
        head = ROUTE_INFO_HEAD.pack(self.prefix_length, (self.preference & 0x3) << 3, self.lifetime)
        return _option(OPT_ROUTE_INFO, head + self.prefix[:prefix_bytes])


@dataclass(slots=True)
class RDNSSOption:
    """Recursive DNS Server option, RFC 8106 §5.1 (servers kept packed, 16 bytes each)."""

    servers: list[bytes]
    lifetime: int = INFINITY
    type: ClassVar[int] = OPT_RDNSS

    @property
    def servers_text(self) -> list[str]:
        return [addr_text(s) for s in self.servers]

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> RDNSSOption:
        length_units = (len(body) + 2) // OPT_UNIT
        # RFC 8106 §5.1: minimum length 3 (one address); the address list fills 16-byte slots.
        if length_units < 3 or (length_units - 1) % 2:
            raise DecodeError(LAYER, offset, f"RDNSS option of length {length_units}")
        _reserved, lifetime = LIFETIME_BODY.unpack_from(body, 0)
        start = LIFETIME_BODY.size
        servers = [bytes(body[i : i + 16]) for i in range(start, len(body), 16)]
        return cls(servers=servers, lifetime=lifetime)

    def encode(self) -> bytes:
        return _option(OPT_RDNSS, LIFETIME_BODY.pack(0, self.lifetime) + b"".join(self.servers))


def _decode_domain_names(data: bytes, offset: int) -> list[str]:
    """The DNS search list of a DNSSL option: uncompressed wire-format names, zero padded (RFC 8106 §5.2)."""
    names: list[str] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break  # padding: the rest must be zeros
        labels: list[str] = []
        while True:
            if pos >= len(data):
                raise DecodeError(LAYER, offset, "DNSSL domain name runs past the option")
            size = data[pos]
            if size == 0:
                pos += 1
                break
            if size > 63:
                raise DecodeError(LAYER, offset, f"DNSSL label length {size} (compression is not allowed)")
            if pos + 1 + size > len(data):
                raise DecodeError(LAYER, offset, "DNSSL label runs past the option")
            labels.append(data[pos + 1 : pos + 1 + size].decode("ascii", "replace"))
            pos += 1 + size
        names.append(".".join(labels))
    return names


def _encode_domain_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) <= 63:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


@dataclass(slots=True)
class DNSSLOption:
    """DNS Search List option, RFC 8106 §5.2."""

    domains: list[str]
    lifetime: int = INFINITY
    type: ClassVar[int] = OPT_DNSSL

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> DNSSLOption:
        length_units = (len(body) + 2) // OPT_UNIT
        if length_units < 2:
            raise DecodeError(LAYER, offset, f"DNSSL option of length {length_units}")
        _reserved, lifetime = LIFETIME_BODY.unpack_from(body, 0)
        domains = _decode_domain_names(bytes(body[LIFETIME_BODY.size:]), offset)
        return cls(domains=domains, lifetime=lifetime)

    def encode(self) -> bytes:
        names = b"".join(_encode_domain_name(d) for d in self.domains)
        return _option(OPT_DNSSL, LIFETIME_BODY.pack(0, self.lifetime) + names)


@dataclass(slots=True)
class UnknownOption:
    """An option type this codec does not interpret; kept so encode(decode(x)) == x."""

    type: int
    data: bytes

    @classmethod
    def decode_body(cls, opt_type: int, body: Buffer, offset: int) -> UnknownOption:
        return cls(opt_type, bytes(body))

    def encode(self) -> bytes:
        return OPT_HEADER.pack(self.type, (len(self.data) + 2) // OPT_UNIT) + self.data


NDOption = (
    LinkLayerOption | PrefixInformation | RedirectedHeader | MTUOption | RouteInformation
    | RDNSSOption | DNSSLOption | UnknownOption
)

_OPTION_DECODERS: dict[int, Callable[[int, Buffer, int], NDOption]] = {
    OPT_SOURCE_LLADDR: LinkLayerOption.decode_body,
    OPT_TARGET_LLADDR: LinkLayerOption.decode_body,
    OPT_PREFIX_INFO: PrefixInformation.decode_body,
    OPT_REDIRECTED_HEADER: RedirectedHeader.decode_body,
    OPT_MTU: MTUOption.decode_body,
    OPT_ROUTE_INFO: RouteInformation.decode_body,
    OPT_RDNSS: RDNSSOption.decode_body,
    OPT_DNSSL: DNSSLOption.decode_body,
}


def decode_options(buf: Buffer, offset: int, end: int) -> list[NDOption]:
    """Every option in buf[offset:end]; a zero length or an overrun is a DecodeError (RFC 4861 §4.6)."""
    options: list[NDOption] = []
    pos = offset
    while pos < end:
        if end - pos < 2:
            raise DecodeError(LAYER, pos, "truncated option header")
        opt_type, units = OPT_HEADER.unpack_from(buf, pos)
        if units == 0:
            raise DecodeError(LAYER, pos, f"option type {opt_type} with length zero")
        size = units * OPT_UNIT
        if pos + size > end:
            raise DecodeError(LAYER, pos, f"option type {opt_type} of {size} bytes runs past the message")
        body = memoryview(buf)[pos + 2 : pos + size]
        decoder = _OPTION_DECODERS.get(opt_type, UnknownOption.decode_body)
        options.append(decoder(opt_type, body, pos))
        pos += size
    return options


def encode_options(options: list[NDOption]) -> bytes:
    return b"".join(opt.encode() for opt in options)


# ---------------------------------------------------------------------------------------------
# NDP messages (RFC 4861 §4)
# ---------------------------------------------------------------------------------------------

RA_BODY = struct.Struct("!BBHII")  # cur hop limit, flags, router lifetime, reachable time, retrans timer
NA_FLAGS = struct.Struct("!I")  # R, S, O flags and 29 reserved bits
RA_MANAGED = 0x80  # M flag, RFC 4861 §4.2
RA_OTHER = 0x40  # O flag, RFC 4861 §4.2
RA_HOME_AGENT = 0x20  # H flag, RFC 6275 §7.1
RA_PROXY = 0x04  # P flag, RFC 4389 §4.1.3.3
RA_PREF_SHIFT = 3  # Prf field, bits 3-4 of the flags byte, RFC 4191 §2.2
NA_ROUTER = 0x80000000  # R flag, RFC 4861 §4.4
NA_SOLICITED = 0x40000000  # S flag
NA_OVERRIDE = 0x20000000  # O flag

RS_MIN_LEN = 8  # RFC 4861 §6.1.1: ICMP length 8 or more
RA_MIN_LEN = 16  # RFC 4861 §6.1.2
NS_MIN_LEN = 24  # RFC 4861 §7.1.1
NA_MIN_LEN = 24  # RFC 4861 §7.1.2
REDIRECT_MIN_LEN = 40  # RFC 4861 §8.1


def _ndp_header(buf: Buffer, offset: int, expected: int, min_len: int) -> tuple[int, int]:
    """Check type and length of an NDP message at `offset`; returns (code, checksum)."""
    need(buf, offset, min_len, LAYER)
    icmp_type, code, csum = HEADER.unpack_from(buf, offset)
    if icmp_type != expected:
        raise DecodeError(LAYER, offset, f"type {icmp_type}, not {expected}")
    return code, csum


def _first(options: list[NDOption], opt_type: int) -> NDOption | None:
    return next((o for o in options if o.type == opt_type), None)


@dataclass(slots=True)
class _NDPBase:
    """What every NDP message carries: code, checksum as received, and its options."""

    options: list[NDOption] = field(default_factory=list)
    code: int = 0
    checksum: int = 0

    def option(self, opt_type: int) -> NDOption | None:
        """The first option of a type, or None."""
        return _first(self.options, opt_type)

    @property
    def source_lladdr(self) -> bytes | None:
        opt = _first(self.options, OPT_SOURCE_LLADDR)
        return opt.lladdr if isinstance(opt, LinkLayerOption) else None

    @property
    def target_lladdr(self) -> bytes | None:
        opt = _first(self.options, OPT_TARGET_LLADDR)
        return opt.lladdr if isinstance(opt, LinkLayerOption) else None


@dataclass(slots=True)
class RouterSolicitation(_NDPBase):
    """Router Solicitation, RFC 4861 §4.1."""

    type: ClassVar[int] = ROUTER_SOLICIT

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0, end: int | None = None) -> RouterSolicitation:
        end = len(buf) if end is None else end
        code, csum = _ndp_header(buf, offset, ROUTER_SOLICIT, RS_MIN_LEN)
        return cls(options=decode_options(buf, offset + 8, end), code=code, checksum=csum)

    def encode(self, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        body = HEADER.pack(ROUTER_SOLICIT, self.code, 0) + b"\0" * 4 + encode_options(self.options)
        return _with_checksum(body, self.checksum, src, dst)


@dataclass(slots=True)
class RouterAdvertisement(_NDPBase):
    """Router Advertisement, RFC 4861 §4.2, with the RFC 4191 preference and RFC 4389 proxy flag."""

    cur_hop_limit: int = 0
    managed: bool = False
    other: bool = False
    home_agent: bool = False
    preference: int = 0  # 2-bit value: 0 medium, 1 high, 3 low (PREFERENCE_TEXT)
    proxy: bool = False
    router_lifetime: int = 0
    reachable_time: int = 0
    retrans_timer: int = 0
    type: ClassVar[int] = ROUTER_ADVERT

    @property
    def preference_text(self) -> str:
        return PREFERENCE_TEXT[self.preference]

    @property
    def mtu(self) -> int | None:
        opt = _first(self.options, OPT_MTU)
        return opt.mtu if isinstance(opt, MTUOption) else None

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0, end: int | None = None) -> RouterAdvertisement:
        end = len(buf) if end is None else end
        code, csum = _ndp_header(buf, offset, ROUTER_ADVERT, RA_MIN_LEN)
        hop, flags, lifetime, reachable, retrans = RA_BODY.unpack_from(buf, offset + 4)
        return cls(
            options=decode_options(buf, offset + RA_MIN_LEN, end), code=code, checksum=csum,
            cur_hop_limit=hop, managed=bool(flags & RA_MANAGED), other=bool(flags & RA_OTHER),
            home_agent=bool(flags & RA_HOME_AGENT), preference=(flags >> RA_PREF_SHIFT) & 0x3,
            proxy=bool(flags & RA_PROXY), router_lifetime=lifetime, reachable_time=reachable,
            retrans_timer=retrans,
        )

    def encode(self, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        flags = (
            (RA_MANAGED if self.managed else 0) | (RA_OTHER if self.other else 0)
            | (RA_HOME_AGENT if self.home_agent else 0) | (RA_PROXY if self.proxy else 0)
            | (self.preference & 0x3) << RA_PREF_SHIFT
        )
        body = HEADER.pack(ROUTER_ADVERT, self.code, 0) + RA_BODY.pack(
            self.cur_hop_limit, flags, self.router_lifetime, self.reachable_time, self.retrans_timer
        ) + encode_options(self.options)
        return _with_checksum(body, self.checksum, src, dst)


@dataclass(slots=True)
class NeighborSolicitation(_NDPBase):
    """Neighbor Solicitation, RFC 4861 §4.3 (target kept packed, 16 bytes)."""

    target: bytes = b"\0" * 16
    type: ClassVar[int] = NEIGHBOR_SOLICIT

    @property
    def target_text(self) -> str:
        return addr_text(self.target)

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0, end: int | None = None) -> NeighborSolicitation:
        end = len(buf) if end is None else end
        code, csum = _ndp_header(buf, offset, NEIGHBOR_SOLICIT, NS_MIN_LEN)
        target = bytes(buf[offset + 8 : offset + 24])
        return cls(options=decode_options(buf, offset + NS_MIN_LEN, end), code=code, checksum=csum,
                   target=target)

    def encode(self, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        body = HEADER.pack(NEIGHBOR_SOLICIT, self.code, 0) + b"\0" * 4 + self.target
        return _with_checksum(body + encode_options(self.options), self.checksum, src, dst)


@dataclass(slots=True)
class NeighborAdvertisement(_NDPBase):
    """Neighbor Advertisement, RFC 4861 §4.4 (target kept packed, 16 bytes)."""

    target: bytes = b"\0" * 16
    router: bool = False
    solicited: bool = False
    override: bool = False
    type: ClassVar[int] = NEIGHBOR_ADVERT

    @property
    def target_text(self) -> str:
        return addr_text(self.target)

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0, end: int | None = None) -> NeighborAdvertisement:
        end = len(buf) if end is None else end
        code, csum = _ndp_header(buf, offset, NEIGHBOR_ADVERT, NA_MIN_LEN)
        (flags,) = NA_FLAGS.unpack_from(buf, offset + 4)
        target = bytes(buf[offset + 8 : offset + 24])
        return cls(
            options=decode_options(buf, offset + NA_MIN_LEN, end), code=code, checksum=csum,
            target=target, router=bool(flags & NA_ROUTER), solicited=bool(flags & NA_SOLICITED),
            override=bool(flags & NA_OVERRIDE),
        )

    def encode(self, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        flags = (
            (NA_ROUTER if self.router else 0) | (NA_SOLICITED if self.solicited else 0)
            | (NA_OVERRIDE if self.override else 0)
        )
        body = HEADER.pack(NEIGHBOR_ADVERT, self.code, 0) + NA_FLAGS.pack(flags) + self.target
        return _with_checksum(body + encode_options(self.options), self.checksum, src, dst)


@dataclass(slots=True)
class Redirect(_NDPBase):
    """Redirect, RFC 4861 §4.5: a better first hop (`target`) for `destination`."""

    target: bytes = b"\0" * 16
    destination: bytes = b"\0" * 16
    type: ClassVar[int] = REDIRECT

    @property
    def target_text(self) -> str:
        return addr_text(self.target)

    @property
    def destination_text(self) -> str:
        return addr_text(self.destination)

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0, end: int | None = None) -> Redirect:
        end = len(buf) if end is None else end
        code, csum = _ndp_header(buf, offset, REDIRECT, REDIRECT_MIN_LEN)
        target = bytes(buf[offset + 8 : offset + 24])
        destination = bytes(buf[offset + 24 : offset + 40])
        return cls(options=decode_options(buf, offset + REDIRECT_MIN_LEN, end), code=code, checksum=csum,
                   target=target, destination=destination)

    def encode(self, src: bytes | None = None, dst: bytes | None = None) -> bytes:
        body = HEADER.pack(REDIRECT, self.code, 0) + b"\0" * 4 + self.target + self.destination
        return _with_checksum(body + encode_options(self.options), self.checksum, src, dst)


NDPMessage = (
    RouterSolicitation | RouterAdvertisement | NeighborSolicitation | NeighborAdvertisement | Redirect
)

_NDP_DECODERS: dict[int, Callable[[Buffer, int, int | None], NDPMessage]] = {
    ROUTER_SOLICIT: RouterSolicitation.decode,
    ROUTER_ADVERT: RouterAdvertisement.decode,
    NEIGHBOR_SOLICIT: NeighborSolicitation.decode,
    NEIGHBOR_ADVERT: NeighborAdvertisement.decode,
    REDIRECT: Redirect.decode,
}


def decode_ndp(buf: Buffer, offset: int = 0, end: int | None = None) -> NDPMessage:
    """Decode the NDP message at `offset` (dispatch on its type); anything else is a DecodeError."""
    need(buf, offset, HEADER.size, LAYER)
    icmp_type = buf[offset]
    decoder = _NDP_DECODERS.get(icmp_type)
    if decoder is None:
        raise DecodeError(LAYER, offset, f"type {icmp_type} is not a neighbor discovery message")
    return decoder(buf, offset, end)

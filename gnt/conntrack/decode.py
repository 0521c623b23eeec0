"""Lean decoding of ctnetlink entry messages into one flat tuple of values per entry.

A generic walk reads any message attribute by attribute (the reference, and the path for
rare shapes). Most messages of a table share a handful of byte layouts (IPv4 TCP, IPv4 UDP,
IPv6 TCP, ...): the walk also records the layout of each message it decodes, and that layout
is compiled into one `struct.Struct` over the whole message plus the attribute headers it
must find. The next message of the same length is checked against those headers (type and
length of every attribute, nested ones included, and the address family) and, if they match,
unpacked in one C call; else the generic walk decodes it. Both paths produce the same
flat tuple (`FIELDS` order), so the fast path can only be faster, never different
(tests/unit/test_conntrack_decode.py holds them equal).

Attribute headers are host-endian and payloads big-endian: the compiled struct reads the
values big-endian (">"), and the headers are compared as raw bytes, all at once (`_Layout.fits`).
"""

from __future__ import annotations

import socket
import struct
from operator import itemgetter

from gnt.conntrack import netlink as nl
from gnt.core import netlink as core_nl
from gnt.errors import DecodeError

# The flat tuple of one entry, in this order. Addresses stay packed bytes (text comes later, cached).
FIELDS = (
    "family",
    "o_src", "o_dst", "proto", "o_sport", "o_dport", "o_icmp_type", "o_icmp_code", "o_icmp_id",
    "r_src", "r_dst", "r_sport", "r_dport", "r_icmp_type", "r_icmp_code", "r_icmp_id",
    "status", "timeout", "mark", "id", "use", "zone", "state",
    "o_packets", "o_bytes", "r_packets", "r_bytes", "start", "stop", "helper", "secctx",
    "o_zone", "r_zone", "labels",
)
_INDEX = {name: i for i, name in enumerate(FIELDS)}
N_FIELDS = len(FIELDS)

# How each attribute is read: (struct code, padded size, field) for leaves; a dict for nests.
# A field of None means "skip the payload" (still checked by its header on the fast path).
Leaf = tuple[str, int, str | None]
Spec = dict[int, "Leaf | Spec"]


def _leaf(code: str, size: int, field: str) -> Leaf:
    return (code, size, field)


def _tuple_spec(prefix: str) -> Spec:
    proto: Spec = {
        nl.CTA_PROTO_SRC_PORT: _leaf("H", 2, prefix + "sport"),
        nl.CTA_PROTO_DST_PORT: _leaf("H", 2, prefix + "dport"),
        nl.CTA_PROTO_ICMP_ID: _leaf("H", 2, prefix + "icmp_id"),
        nl.CTA_PROTO_ICMP_TYPE: _leaf("B", 1, prefix + "icmp_type"),
        nl.CTA_PROTO_ICMP_CODE: _leaf("B", 1, prefix + "icmp_code"),
        nl.CTA_PROTO_ICMPV6_ID: _leaf("H", 2, prefix + "icmp_id"),
        nl.CTA_PROTO_ICMPV6_TYPE: _leaf("B", 1, prefix + "icmp_type"),
        nl.CTA_PROTO_ICMPV6_CODE: _leaf("B", 1, prefix + "icmp_code"),
    }
    if prefix == "o_":
        proto[nl.CTA_PROTO_NUM] = _leaf("B", 1, "proto")
    return {
        nl.CTA_TUPLE_IP: {
            nl.CTA_IP_V4_SRC: _leaf("4s", 4, prefix + "src"),
            nl.CTA_IP_V4_DST: _leaf("4s", 4, prefix + "dst"),
            nl.CTA_IP_V6_SRC: _leaf("16s", 16, prefix + "src"),
            nl.CTA_IP_V6_DST: _leaf("16s", 16, prefix + "dst"),
        },
        nl.CTA_TUPLE_PROTO: proto,
        nl.CTA_TUPLE_ZONE: _leaf("H", 2, prefix + "zone"),  # per-direction zone (--orig-zone/--reply-zone)
    }


_STATE: Spec = {nl.CTA_PROTOINFO_TCP_STATE: _leaf("B", 1, "state")}
TOP: Spec = {
    nl.CTA_TUPLE_ORIG: _tuple_spec("o_"),
    nl.CTA_TUPLE_REPLY: _tuple_spec("r_"),
    nl.CTA_STATUS: _leaf("I", 4, "status"),
    nl.CTA_TIMEOUT: _leaf("I", 4, "timeout"),
    nl.CTA_MARK: _leaf("I", 4, "mark"),
    nl.CTA_ID: _leaf("I", 4, "id"),
    nl.CTA_USE: _leaf("I", 4, "use"),
    nl.CTA_ZONE: _leaf("H", 2, "zone"),
    nl.CTA_PROTOINFO: {nl.CTA_PROTOINFO_TCP: _STATE, nl.CTA_PROTOINFO_DCCP: _STATE, nl.CTA_PROTOINFO_SCTP: _STATE},
    nl.CTA_COUNTERS_ORIG: {nl.CTA_COUNTERS_PACKETS: _leaf("Q", 8, "o_packets"),
                           nl.CTA_COUNTERS_BYTES: _leaf("Q", 8, "o_bytes")},
    nl.CTA_COUNTERS_REPLY: {nl.CTA_COUNTERS_PACKETS: _leaf("Q", 8, "r_packets"),
                            nl.CTA_COUNTERS_BYTES: _leaf("Q", 8, "r_bytes")},
    nl.CTA_TIMESTAMP: {nl.CTA_TIMESTAMP_START: _leaf("Q", 8, "start"),
                       nl.CTA_TIMESTAMP_STOP: _leaf("Q", 8, "stop")},
}
STRING_ATTRS = {nl.CTA_HELP: "helper", nl.CTA_SECCTX: "secctx"}  # nested name strings: generic path only

_LEAF_UNPACK = {"B": struct.Struct(">B"), "H": struct.Struct(">H"), "I": struct.Struct(">I"),
                "Q": struct.Struct(">Q")}


class _Layout:
    """A compiled message layout: one struct for the values, and the attribute headers it must find.

    The headers are checked all at once: the message read as one little-endian integer, masked
    to the header bytes, must equal the recorded headers (type and length of every attribute,
    nested ones included).
    """

    __slots__ = ("expected", "family", "field_idx", "mask", "size", "struct", "take")

    def __init__(self, fmt: str, size: int, family: int, headers: list[tuple[int, bytes]],
                 field_idx: list[int]) -> None:
        self.struct = struct.Struct(">" + fmt)
        self.size = size
        self.family = family  # nfgenmsg.nfgen_family is part of the layout (checked with the headers)
        self.mask = 0xFF
        self.expected = family
        for position, raw in headers:
            self.mask |= 0xFFFFFFFF << (8 * position)
            self.expected |= int.from_bytes(raw, "little") << (8 * position)
        # field_idx: for each FIELDS slot, its index in the unpacked values, or -1 (absent -> None)
        self.field_idx = field_idx
        n_values = len(self.struct.unpack(bytes(self.struct.size)))
        self.take = itemgetter(*[i if i >= 0 else n_values for i in field_idx])

    def fits(self, buf: bytes, off: int) -> bool:
        return int.from_bytes(buf[off:off + self.size], "little") & self.mask == self.expected


class _Recorder:
    """Collects the compiled form of a layout while the generic walk reads a message."""

    __slots__ = ("compilable", "field_idx", "fmt", "headers", "n_values", "pos", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.fmt: list[str] = ["B3x"]  # nfgenmsg: family, version and res_id skipped
        self.n_values = 1
        self.headers: list[tuple[int, bytes]] = []  # (offset in the message, the 4 header bytes)
        self.field_idx = [-1] * N_FIELDS
        self.field_idx[0] = 0
        self.pos = start + 4
        self.compilable = True

    def skip_to(self, offset: int) -> None:
        if offset > self.pos:
            self.fmt.append(f"{offset - self.pos}x")
        self.pos = offset

    def header(self, buf: bytes, offset: int) -> None:
        self.headers.append((offset - self.start, bytes(buf[offset:offset + 4])))

    def value(self, code: str, offset: int, field: str) -> None:
        self.skip_to(offset)
        self.fmt.append(code)
        self.field_idx[_INDEX[field]] = self.n_values
        self.n_values += 1
        self.pos = offset + struct.calcsize(">" + code)


def _walk(buf: bytes, off: int, end: int, spec: Spec, out: list[object], rec: _Recorder | None) -> None:
    unpack = core_nl.NLA.unpack_from
    while off + 4 <= end:
        nla_len, nla_type = unpack(buf, off)
        if nla_len < 4 or off + nla_len > end:
            if rec is not None:
                rec.compilable = False
            return
        kind = nla_type & core_nl.NLA_TYPE_MASK
        start, stop = off + 4, off + nla_len
        if rec is not None:
            rec.header(buf, off)
        sub = spec.get(kind)
        if isinstance(sub, dict):
            _walk(buf, start, stop, sub, out, rec)
        elif sub is not None:
            code, size, field = sub
            if field is not None and stop - start >= size:
                if code in ("4s", "16s"):
                    out[_INDEX[field]] = bytes(buf[start:start + size])
                else:
                    out[_INDEX[field]] = _LEAF_UNPACK[code].unpack_from(buf, start)[0]
                if rec is not None:
                    rec.value(code, start, field)
        elif spec is TOP and kind in STRING_ATTRS:
            for s_kind, a, b in core_nl.iter_attrs(buf, start, stop):
                if s_kind == 1:  # CTA_HELP_NAME / CTA_SECCTX_NAME
                    text = bytes(buf[a:b]).split(b"\0", 1)[0].decode("ascii", "replace")
                    out[_INDEX[STRING_ATTRS[kind]]] = text
            if rec is not None:
                rec.compilable = False  # a string of any length: not worth a layout
        elif spec is TOP and kind == nl.CTA_LABELS:
            out[_INDEX["labels"]] = bytes(buf[start:stop])  # a bitmap of any length: generic path only
            if rec is not None:
                rec.compilable = False
        off += (nla_len + 3) & ~3


def decode_generic(buf: bytes, off: int, end: int) -> tuple[object, ...]:
    """The flat `FIELDS` tuple of the message whose nfgenmsg is at `buf[off]`, attribute by attribute."""
    _check_header(buf, off, end)
    out: list[object] = [None] * N_FIELDS
    out[0] = buf[off]
    _walk(buf, off + core_nl.NFGENMSG.size, end, TOP, out, None)
    return tuple(out)


def _check_header(buf: bytes, off: int, end: int) -> None:
    """A message must hold its nfgenmsg header (the kernel never sends less; a decoder says so itself)."""
    if end - off < core_nl.NFGENMSG.size or end > len(buf):
        raise DecodeError("ctnetlink", off, f"{max(end - off, 0)} bytes, less than the nfgenmsg header")


LAYOUTS_MAX = 256  # compiled layouts kept; cleared past this (a table has a few dozen at most)
LAYOUTS_PER_SIZE = 4  # layouts of one message length tried before the generic walk


class EntryDecoder:
    """Decodes entry messages, learning and reusing their layouts."""

    def __init__(self) -> None:
        self.layouts: dict[int, list[_Layout]] = {}
        self.fast = 0  # messages decoded through a compiled layout (for tests and benchmarks)

    def decode(self, buf: bytes, off: int, end: int) -> tuple[object, ...]:
        size = end - off
        candidates = self.layouts.get(size)
        if candidates is not None:
            for layout in candidates:
                if layout.fits(buf, off):
                    self.fast += 1
                    return layout.take((*layout.struct.unpack_from(buf, off), None))  # type: ignore[no-any-return]
        return self._learn(buf, off, end)

    def _learn(self, buf: bytes, off: int, end: int) -> tuple[object, ...]:
        _check_header(buf, off, end)
        out: list[object] = [None] * N_FIELDS
        out[0] = buf[off]
        bucket = self.layouts.get(end - off, [])
        if len(bucket) >= LAYOUTS_PER_SIZE:  # this size has layouts enough: just decode
            _walk(buf, off + core_nl.NFGENMSG.size, end, TOP, out, None)
            return tuple(out)
        rec = _Recorder(off)
        _walk(buf, off + core_nl.NFGENMSG.size, end, TOP, out, rec)
        if rec.compilable and len(rec.headers) > 1:
            rec.skip_to(end)
            layout = _Layout("".join(rec.fmt), end - off, buf[off], rec.headers, rec.field_idx)
            if layout.struct.size == end - off:
                if sum(len(v) for v in self.layouts.values()) >= LAYOUTS_MAX:
                    self.layouts.clear()
                self.layouts.setdefault(end - off, []).append(layout)
        return tuple(out)


ADDRESS_CACHE_MAX = 1 << 13  # distinct addresses remembered as text; cleared past this (memory stays flat)
_address_text: dict[bytes, str] = {}


def address_text(packed: bytes | None) -> str:
    """inet_ntop of a 4- or 16-byte address, cached: tables repeat a few addresses many times."""
    if packed is None:
        return ""
    text = _address_text.get(packed)
    if text is None:
        if len(_address_text) >= ADDRESS_CACHE_MAX:
            _address_text.clear()
        text = socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)
        _address_text[packed] = text
    return text

"""From decoded ctnetlink messages to the `Entry` models, with NAT read off the tuples.

Names come from the kernel: include/uapi/linux/netfilter/nf_conntrack_common.h (IPS_* status
bits), nf_conntrack_tcp.h / nf_conntrack_sctp.h (state tables).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gnt.conntrack.decode import _address_text, address_text
from gnt.conntrack.models import AddrTuple, Counters, Entry, IcmpTuple, PortTuple, Tuple

AF_INET = 2  # nfgenmsg.nfgen_family of IPv4 entries
AF_INET6 = 10  # nfgenmsg.nfgen_family of IPv6 entries
FAMILY_NAMES = {AF_INET: "ipv4", AF_INET6: "ipv6"}

IPPROTO_ICMP = 1  # RFC 792
IPPROTO_TCP = 6  # RFC 9293
IPPROTO_UDP = 17  # RFC 768
IPPROTO_DCCP = 33  # RFC 4340
IPPROTO_GRE = 47  # RFC 2784
IPPROTO_ICMPV6 = 58  # RFC 4443
IPPROTO_SCTP = 132  # RFC 9260
IPPROTO_UDPLITE = 136  # RFC 3828
PROTO_NAMES = {  # the names conntrack-tools prints
    IPPROTO_ICMP: "icmp", IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_DCCP: "dccp",
    IPPROTO_GRE: "gre", IPPROTO_ICMPV6: "icmpv6", IPPROTO_SCTP: "sctp", IPPROTO_UDPLITE: "udplite",
}
PROTO_NUMBERS = {name: num for num, name in PROTO_NAMES.items()}
PORT_PROTOS = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_UDPLITE))  # have ports


# enum tcp_conntrack, in kernel order (SYN_SENT2 is simultaneous open; conntrack-tools prints SYN_SENT2 too)
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
              "TIME_WAIT", "CLOSE", "SYN_SENT2")
# enum sctp_conntrack
SCTP_STATES = ("NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT",
               "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED")
# enum ct_dccp_states
DCCP_STATES = ("NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
               "IGNORE", "INVALID")

# enum ip_conntrack_status, bit by bit
STATUS_BITS = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
               "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "NAT_CLASH",
               "HELPER", "OFFLOAD", "HW_OFFLOAD")
IPS_EXPECTED = 1 << 0  # an expected connection (of a helper's master)
IPS_SEEN_REPLY = 1 << 1  # a packet was seen in the reply direction ([UNREPLIED] when clear)
IPS_SRC_NAT_DONE = 1 << 7  # source NAT applied
IPS_DST_NAT_DONE = 1 << 8  # destination NAT applied
IPS_ASSURED = 1 << 2  # will not be early-dropped
IPS_FIXED_TIMEOUT = 1 << 10  # the timeout is not refreshed
IPS_OFFLOAD = 1 << 14  # in the flowtable
IPS_HW_OFFLOAD = 1 << 15  # in hardware
NSEC = 1_000_000_000  # ns per second (CTA_TIMESTAMP is in ns)

_status_names: dict[int, tuple[str, ...]] = {}
CONNLABEL_FILES = ("/etc/xtables/connlabel.conf", "/etc/connlabel.conf")  # where conntrack-tools reads label names
_label_map: dict[int, str] | None = None


def label_map() -> dict[int, str]:
    """bit -> name from connlabel.conf ("N name" lines), read once; empty when there is none."""
    global _label_map
    if _label_map is None:
        _label_map = {}
        for path in CONNLABEL_FILES:
            try:
                with open(path, encoding="utf-8", errors="replace") as lines:
                    for line in lines:
                        fields = line.split("#", 1)[0].split()
                        if len(fields) >= 2 and fields[0].isdecimal() and int(fields[0]) < 128:
                            _label_map.setdefault(int(fields[0]), fields[1])
                break
            except OSError:
                continue
    return _label_map


_label_bits: dict[str, int] | None = None


def label_bits_by_name() -> dict[str, int]:
    """name -> bit: label_map() reversed, made once."""
    global _label_bits
    if _label_bits is None:
        _label_bits = {name: bit for bit, name in label_map().items()}
    return _label_bits


def label_names(bitmap: bytes) -> tuple[str, ...]:
    """The names of the labels set in a CTA_LABELS bitmap (host-order 32-bit words), bit numbers where unnamed."""
    names = label_map()
    out = []
    for word_index in range(len(bitmap) // 4):
        word = int.from_bytes(bitmap[4 * word_index:4 * word_index + 4], sys.byteorder)
        while word:
            low = word & -word
            bit = 32 * word_index + low.bit_length() - 1
            out.append(names.get(bit, str(bit)))
            word ^= low
    return tuple(out)


def status_names(bits: int) -> tuple[str, ...]:
    """The IPS_* names set in `bits` (a handful of distinct values per table: cached)."""
    names = _status_names.get(bits)
    if names is None:
        names = tuple(name for i, name in enumerate(STATUS_BITS) if bits >> i & 1)
        if bits >> len(STATUS_BITS):
            names += (f"0x{bits >> len(STATUS_BITS) << len(STATUS_BITS):x}",)
        if len(_status_names) < 4096:
            _status_names[bits] = names
    return names


def state_name(proto: int, state: int) -> str:
    table = SCTP_STATES if proto == IPPROTO_SCTP else DCCP_STATES if proto == IPPROTO_DCCP else TCP_STATES
    return table[state] if state < len(table) else str(state)


def nat_of(orig: Tuple, reply: Tuple, status: int | None) -> tuple[str, ...]:
    """("snat",) / ("dnat",) / both / (): what conntrack-tools calls source and destination NAT.

    Source NAT: the kernel applied it (IPS_SRC_NAT_DONE; assumed when no status was sent) and
    the reply goes to another address or port than the original came from. Destination NAT:
    IPS_DST_NAT_DONE and the reply comes from another address or port than the original went to
    (libnetfilter_conntrack's NFCT_GOPT_IS_SNAT/IS_SPAT/IS_DNAT/IS_DPAT, as `--src-nat` tests them).
    """
    if not reply.src and not reply.dst:
        return ()
    snat = reply.dst != orig.src
    dnat = reply.src != orig.dst
    if type(orig) is PortTuple and type(reply) is PortTuple:
        snat = snat or reply.dport != orig.sport
        dnat = dnat or reply.sport != orig.dport
    if status is not None:
        snat = snat and bool(status & IPS_SRC_NAT_DONE)
        dnat = dnat and bool(status & IPS_DST_NAT_DONE)
    return _NAT[snat, dnat]


_NAT = {(False, False): (), (True, False): ("snat",), (False, True): ("dnat",), (True, True): ("snat", "dnat")}


def to_entry(v: tuple[Any, ...], cls: type[Entry] = Entry) -> Entry:
    """The model of one decoded message (`v` in gnt.conntrack.decode.FIELDS order)."""
    (family, osrc, odst, proto, osp, odp, oit, oic, oid, rsrc, rdst, rsp, rdp, rit, ric, rid,
     status, timeout, mark, id_, use, zone, state, op, ob, rp, rb, start, stop, helper, secctx,
     o_zone, r_zone, labels) = v
    text = _address_text
    o_src = text.get(osrc) or address_text(osrc)
    o_dst = text.get(odst) or address_text(odst)
    r_src = text.get(rsrc) or address_text(rsrc)
    r_dst = text.get(rdst) or address_text(rdst)
    original: Tuple
    reply: Tuple
    if proto is None:
        proto = 0
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        original = IcmpTuple(o_src, o_dst, oit or 0, oic or 0, oid or 0)
        reply = IcmpTuple(r_src, r_dst, rit or 0, ric or 0, rid or 0)
    elif osp is not None or proto in PORT_PROTOS:
        # A port protocol the kernel tracks generically (DCCP on kernels without its tracker)
        # sends no ports: conntrack-tools shows them as 0, and so does gnt.
        original = PortTuple(o_src, o_dst, osp or 0, odp or 0)
        reply = PortTuple(r_src, r_dst, rsp or 0, rdp or 0)
    else:
        original = AddrTuple(o_src, o_dst)
        reply = AddrTuple(r_src, r_dst)
    nat = nat_of(original, reply, status)
    if status is None:
        names: tuple[str, ...] = ()
    else:
        names = _status_names.get(status) or status_names(status)
    counters = None
    if op is not None or rp is not None:
        counters = Counters(op or 0, ob or 0, rp or 0, rb or 0)
    return cls(
        FAMILY_NAMES.get(family) or str(family),
        PROTO_NAMES.get(proto) or str(proto),
        None if state is None else state_name(proto, state),
        names,
        original,
        reply,
        nat,
        mark,
        zone or 0,
        timeout,
        id_,
        start / NSEC if start else None,
        stop / NSEC if stop else None,
        counters,
        helper,
        proto,
        status,
        use,
        secctx,
        o_zone,
        r_zone,
        None if labels is None else label_names(labels),
    )


# ---- the fused fast path ------------------------------------------------------------------
#
# For each message layout the decoder has compiled, generate one function that unpacks the
# message, checks its attribute headers and builds the Entry straight from the unpacked values
# (what `to_entry(decoder.decode(...))` does, minus the intermediate tuple and the per-field
# presence tests, which the layout settles once). The generated code is made from FIELDS
# indexes only, never from message contents. A message it does not fit returns None and takes
# the general path; tests hold both paths equal.

_BUILDER_TEMPLATE = '''
def build(buf, off):
    if int.from_bytes(buf[off:off + size], "little") & mask != expected:
        return None
    {values} = unpack(buf, off)
    proto = {proto}
    if {kind_guard}:
        return None
    o_src = {o_src}
    o_dst = {o_dst}
    r_src = {r_src}
    r_dst = {r_dst}
    return {result}
'''
_ENTRY_RESULT = '''cls(
        {family!r},
        PROTO_NAMES.get(proto) or str(proto),
        {state},
        {names},
        {original},
        {reply},
        {nat},
        {mark}, {zone}, {timeout}, {id}, {start}, {stop}, {counters}, None, proto, {status}, {use}, None,
        {o_zone}, {r_zone}, None,
    )'''
LineRender = Callable[[dict[str, str]], "str | None"]  # field expressions -> a line expression, or None




def compile_builder(layout: Any, cls: type[Entry], render: LineRender | None = None,
                    helpers: dict[str, Any] | None = None) -> Callable[[bytes, int], Any] | None:
    """The fused decode+build function of one compiled layout (see the note above).

    With `render` (from the output layer), the function returns a formatted line instead of
    an Entry: `render` gets the expression of every field in this layout and returns the
    expression of the line (names from `helpers` may be used), or None when the layout does not
    fit its fast form (then there is no fused function: None is returned)."""
    from gnt.conntrack.decode import FIELDS

    where = {name: layout.field_idx[i] for i, name in enumerate(FIELDS)}
    n_values = len(layout.struct.unpack(bytes(layout.struct.size)))

    def value(name: str) -> str:
        return f"x{where[name]}" if where[name] >= 0 else "None"

    def address(name: str) -> str:
        return f"(text.get(x{where[name]}) or addr(x{where[name]}))" if where[name] >= 0 else "''"

    def number(name: str) -> str:  # struct values are never None: 0 stands in only for an absent one
        return f"x{where[name]}" if where[name] >= 0 else "0"

    def stamp(name: str) -> str:
        return f"(x{where[name]} / NSEC if x{where[name]} else None)" if where[name] >= 0 else "None"

    icmp = where["o_icmp_type"] >= 0 or where["o_icmp_id"] >= 0
    ports = where["o_sport"] >= 0
    status = value("status")
    # nat_of's rule, unrolled: the *_NAT_DONE bit (assumed when no status came) and a changed address/port
    snat_done = f"{status} & {IPS_SRC_NAT_DONE} and " if status != "None" else ""
    dnat_done = f"{status} & {IPS_DST_NAT_DONE} and " if status != "None" else ""
    if icmp:
        kind_guard = "proto != IPPROTO_ICMP and proto != IPPROTO_ICMPV6"
        original = (f"IcmpTuple(o_src, o_dst, {number('o_icmp_type')}, {number('o_icmp_code')}, "
                    f"{number('o_icmp_id')})")
        reply = (f"IcmpTuple(r_src, r_dst, {number('r_icmp_type')}, {number('r_icmp_code')}, "
                 f"{number('r_icmp_id')})")
        nat = f"_NAT[bool({snat_done}r_dst != o_src), bool({dnat_done}r_src != o_dst)]"
    elif ports:
        kind_guard = "proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6"
        original = f"PortTuple(o_src, o_dst, {value('o_sport')}, {number('o_dport')})"
        reply = f"PortTuple(r_src, r_dst, {number('r_sport')}, {number('r_dport')})"
        nat = (f"_NAT[bool({snat_done}(r_dst != o_src or {number('r_dport')} != {value('o_sport')})), "
               f"bool({dnat_done}(r_src != o_dst or {number('r_sport')} != {number('o_dport')}))]")
    else:
        kind_guard = "proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6 or proto in PORT_PROTOS"
        original = "AddrTuple(o_src, o_dst)"
        reply = "AddrTuple(r_src, r_dst)"
        nat = f"_NAT[bool({snat_done}r_dst != o_src), bool({dnat_done}r_src != o_dst)]"
    counters = "None"
    if where["o_packets"] >= 0 or where["r_packets"] >= 0:
        counters = (f"Counters({number('o_packets')}, {number('o_bytes')}, {number('r_packets')}, "
                    f"{number('r_bytes')})")
    state = value("state")
    fields = dict(
        family=FAMILY_NAMES.get(layout.family) or str(layout.family),
        state=(f"(TCP_STATES[{state}] if proto == IPPROTO_TCP and {state} < {len(TCP_STATES)} "
               f"else state_name(proto, {state}))") if state != "None" else "None",
        names=f"(_status_names.get({status}) or status_names({status}))" if status != "None" else "()",
        nat=f"({nat} if r_src or r_dst else ())",
        mark=value("mark"), timeout=value("timeout"), id=value("id"),
        start=stamp("start"), stop=stamp("stop"), counters=counters, status=status, use=value("use"),
        zone=number("zone"),
        o_zone=value("o_zone"), r_zone=value("r_zone"),
        original=original, reply=reply,
    )
    if render is None:
        result = _ENTRY_RESULT.format(**fields)
    else:
        ports = {name: value(name) for name in ("o_sport", "o_dport", "r_sport", "r_dport")}
        rendered = render({**fields, **ports, "kind": "ports" if where["o_sport"] >= 0 else "other"})
        if rendered is None:
            return None
        result = rendered
    source = _BUILDER_TEMPLATE.format(
        values="(" + "".join(f"x{i}, " for i in range(n_values)) + ")",
        proto=number("proto"),
        kind_guard=kind_guard,
        o_src=address("o_src"), o_dst=address("o_dst"), r_src=address("r_src"), r_dst=address("r_dst"),
        result=result,
    )
    namespace: dict[str, Any] = {
        "unpack": layout.struct.unpack_from, "size": layout.size, "mask": layout.mask, "expected": layout.expected,
        "cls": cls, "PortTuple": PortTuple, "IcmpTuple": IcmpTuple, "AddrTuple": AddrTuple,
        "Counters": Counters, "text": _address_text, "addr": address_text, "_status_names": _status_names,
        "status_names": status_names, "state_name": state_name, "TCP_STATES": TCP_STATES,
        "PROTO_NAMES": PROTO_NAMES, "_NAT": _NAT, "NSEC": NSEC, "IPPROTO_ICMP": IPPROTO_ICMP,
        "IPPROTO_ICMPV6": IPPROTO_ICMPV6, "IPPROTO_TCP": IPPROTO_TCP, "PORT_PROTOS": PORT_PROTOS,
        **(helpers or {}),
    }
    exec(compile(source, f"<conntrack layout {layout.struct.size}>", "exec"), namespace)
    return namespace["build"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class FusedLines:
    """An output format the builder may produce straight from the message (no Entry in between):
    `render` and `helpers` as compile_builder takes them, `general` for every other entry."""

    render: LineRender
    helpers: dict[str, Any]
    general: Callable[[Entry], str | None]


class EntryBuilder:
    """Entry messages to models (or, with `lines`, to lines): the fused per-layout functions first,
    the decoder otherwise."""

    def __init__(self, cls: type[Entry] = Entry, lines: FusedLines | None = None) -> None:
        from gnt.conntrack.decode import EntryDecoder

        self.cls = cls
        self.lines = lines
        self.decoder = EntryDecoder()
        self.builders: dict[int, list[Callable[[bytes, int], Entry | None]]] = {}
        self.line_builders: dict[int, list[Callable[[bytes, int], str | None]]] = {}
        self.compiled: dict[int, int] = {}  # message size -> how many of its layouts are compiled

    def build(self, buf: bytes, off: int, end: int) -> Entry:
        size = end - off
        builders = self.builders.get(size)
        if builders is not None:
            for fn in builders:
                entry = fn(buf, off)
                if entry is not None:
                    return entry
        decoder = self.decoder
        values = decoder.decode(buf, off, end)
        layouts = decoder.layouts.get(size)
        if layouts is not None and len(layouts) != self.compiled.get(size):
            if len(self.compiled) >= 256:  # as many sizes as the decoder keeps layouts at most
                self.builders.clear()
                self.line_builders.clear()
                self.compiled.clear()
            self.compiled[size] = len(layouts)
            self.builders[size] = [compile_builder(layout, self.cls) for layout in layouts]  # type: ignore[misc]
            lines = self.lines
            if lines is not None:
                made = [compile_builder(layout, self.cls, lines.render, lines.helpers) for layout in layouts]
                self.line_builders[size] = [fn for fn in made if fn is not None]
        return to_entry(values, self.cls)

"""ctnetlink decoding: messages built byte by byte as the kernel lays them out
(include/uapi/linux/netfilter/nfnetlink_conntrack.h), decoded by the generic walk, the compiled
layouts and the fused builders, which must all agree."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnt.conntrack import decode as d
from gnt.conntrack import netlink as nl
from gnt.conntrack.entries import EntryBuilder, nat_of, to_entry
from gnt.conntrack.models import AddrTuple, Counters, Entry, IcmpTuple, PortTuple
from gnt.core import netlink as core_nl
from gnt.errors import PermissionDenied, UnavailableError

NESTED = 0x8000  # NLA_F_NESTED


def nla(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nest(kind: int, *children: bytes) -> bytes:
    return nla(kind | NESTED, b"".join(children))


def be16(v: int) -> bytes:
    return struct.pack(">H", v)


def be32(v: int) -> bytes:
    return struct.pack(">I", v)


def be64(v: int) -> bytes:
    return struct.pack(">Q", v)


def ip(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


def tuple_attr(kind: int, src: str, dst: str, proto: int, sport: int | None = None, dport: int | None = None,
               icmp: tuple[int, int, int] | None = None, zone: int | None = None) -> bytes:
    v6 = ":" in src
    addresses = (nla(nl.CTA_IP_V6_SRC if v6 else nl.CTA_IP_V4_SRC, ip(src))
                 + nla(nl.CTA_IP_V6_DST if v6 else nl.CTA_IP_V4_DST, ip(dst)))
    l4 = [nla(nl.CTA_PROTO_NUM, bytes([proto]))]
    if sport is not None:
        l4 += [nla(nl.CTA_PROTO_SRC_PORT, be16(sport)), nla(nl.CTA_PROTO_DST_PORT, be16(dport or 0))]
    if icmp is not None:
        kind_id, kind_type, kind_code = ((nl.CTA_PROTO_ICMPV6_ID, nl.CTA_PROTO_ICMPV6_TYPE, nl.CTA_PROTO_ICMPV6_CODE)
                                         if v6 else (nl.CTA_PROTO_ICMP_ID, nl.CTA_PROTO_ICMP_TYPE,
                                                     nl.CTA_PROTO_ICMP_CODE))
        l4 += [nla(kind_id, be16(icmp[2])), nla(kind_type, bytes([icmp[0]])), nla(kind_code, bytes([icmp[1]]))]
    children = [nest(nl.CTA_TUPLE_IP, addresses), nest(nl.CTA_TUPLE_PROTO, *l4)]
    if zone is not None:
        children.append(nla(nl.CTA_TUPLE_ZONE, be16(zone)))
    return nest(kind, *children)


def message(attrs: list[bytes], family: int = socket.AF_INET, msg_type: int = nl.IPCTNL_MSG_CT_NEW,
            flags: int = core_nl.NLM_F_MULTI, pid: int = 0) -> bytes:
    body = struct.pack("=BBH", family, 0, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), nl.CT_TYPE_BASE | msg_type, flags, 1, pid) + body


def tcp_protoinfo(state: int) -> bytes:
    """CTA_PROTOINFO as the kernel sends it for TCP: state, window scales, flags."""
    return nest(nl.CTA_PROTOINFO, nest(
        nl.CTA_PROTOINFO_TCP,
        nla(nl.CTA_PROTOINFO_TCP_STATE, bytes([state])), nla(2, bytes([7])), nla(3, bytes([7])),
        nla(4, b"\x22\x00"), nla(5, b"\x22\x00"),
    ))


def nat_tcp_attrs(sport: int = 47858, mark: int = 0, timeout: int = 431999) -> list[bytes]:
    """The kernel's order: tuples, status, timeout, protoinfo, mark, id, use."""
    return [
        tuple_attr(nl.CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 6, sport, 8080),
        tuple_attr(nl.CTA_TUPLE_REPLY, "10.0.1.2", "10.0.1.1", 6, 80, sport),
        nla(nl.CTA_STATUS, be32(0x1BE)),  # SEEN_REPLY ASSURED CONFIRMED SRC_NAT DST_NAT SRC/DST_NAT_DONE
        nla(nl.CTA_TIMEOUT, be32(timeout)),
        tcp_protoinfo(3),
        nla(nl.CTA_MARK, be32(mark)),
        nla(nl.CTA_ID, be32(123456)),
        nla(nl.CTA_USE, be32(1)),
    ]


def parts(raw: bytes) -> tuple[bytes, int, int]:
    """(buffer, nfgenmsg offset, end) as split_datagram hands a message on."""
    ((buf, off, end, _kind, _flags),) = list(nl.split_datagram(raw))
    return buf, off, end


def test_generic_decode_of_a_nat_entry() -> None:
    v = dict(zip(d.FIELDS, d.decode_generic(*parts(message(nat_tcp_attrs()))), strict=True))
    assert v["family"] == socket.AF_INET and v["proto"] == 6
    assert (v["o_src"], v["o_dst"], v["o_sport"], v["o_dport"]) == (ip("10.0.0.1"), ip("10.0.0.2"), 47858, 8080)
    assert (v["r_src"], v["r_dst"], v["r_sport"], v["r_dport"]) == (ip("10.0.1.2"), ip("10.0.1.1"), 80, 47858)
    assert (v["status"], v["timeout"], v["mark"], v["id"], v["use"], v["state"]) == (0x1BE, 431999, 0, 123456, 1, 3)
    assert v["zone"] is None and v["start"] is None and v["o_packets"] is None and v["helper"] is None


def test_entry_model_spells_out_the_nat() -> None:
    entry = to_entry(d.decode_generic(*parts(message(nat_tcp_attrs()))))
    assert entry.family == "ipv4" and entry.proto == "tcp" and entry.state == "ESTABLISHED"
    assert entry.original == PortTuple("10.0.0.1", "10.0.0.2", 47858, 8080)
    assert entry.reply == PortTuple("10.0.1.2", "10.0.1.1", 80, 47858)
    assert entry.nat == ("snat", "dnat")
    assert entry.status == ("SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SRC_NAT_DONE",
                            "DST_NAT_DONE")
    assert (entry.mark, entry.zone, entry.timeout, entry.id, entry.use) == (0, 0, 431999, 123456, 1)


def test_compiled_layout_and_fused_builder_agree_with_the_walk() -> None:
    decoder = d.EntryDecoder()
    builder = EntryBuilder()
    for sport in (1000, 1001, 1002):
        raw = parts(message(nat_tcp_attrs(sport=sport, mark=sport)))
        assert decoder.decode(*raw) == d.decode_generic(*raw)
        assert builder.build(*raw) == to_entry(d.decode_generic(*raw))
    assert decoder.fast == 2  # the first message taught the layout, the next two used it
    assert len(builder.builders) == 1


def test_same_size_other_layout_is_not_misread() -> None:
    """A zone where the mark was: same length, other headers; the layout check must refuse it."""
    with_mark = nat_tcp_attrs()
    with_zone = [*with_mark[:5], nla(nl.CTA_ZONE, be16(7)), *with_mark[6:]]
    a, b = message(with_mark), message(with_zone)
    assert len(a) == len(b)
    builder = EntryBuilder()
    builder.build(*parts(a))
    builder.build(*parts(a))
    entry = builder.build(*parts(b))
    assert entry.zone == 7 and entry.mark is None
    assert entry == to_entry(d.decode_generic(*parts(b)))


def test_many_layouts_of_one_size() -> None:
    """Six orders of the same five 8-byte attributes: one message length, six layouts."""
    import itertools

    head = nat_tcp_attrs()[:2]
    leaves = [nla(nl.CTA_STATUS, be32(0xE)), nla(nl.CTA_TIMEOUT, be32(30)), nla(nl.CTA_MARK, be32(5)),
              nla(nl.CTA_ID, be32(6)), nla(nl.CTA_USE, be32(1))]
    raws = [message([*head, *order]) for order in itertools.islice(itertools.permutations(leaves), 6)]
    assert len({len(raw) for raw in raws}) == 1
    builder = EntryBuilder()
    for _ in range(3):
        for raw in raws:
            entry = builder.build(*parts(raw))
            assert (entry.status_bits, entry.timeout, entry.mark, entry.id, entry.use) == (0xE, 30, 5, 6, 1)
    assert len(builder.decoder.layouts[len(raws[0]) - 16]) == d.LAYOUTS_PER_SIZE


def test_icmp_and_ipv6_entries() -> None:
    v4 = message([
        tuple_attr(nl.CTA_TUPLE_ORIG, "198.18.1.1", "198.18.9.9", 1, icmp=(8, 0, 77)),
        tuple_attr(nl.CTA_TUPLE_REPLY, "198.18.9.9", "198.18.1.1", 1, icmp=(0, 0, 77)),
        nla(nl.CTA_STATUS, be32(0x8)), nla(nl.CTA_TIMEOUT, be32(29)),
    ])
    v6 = message([
        tuple_attr(nl.CTA_TUPLE_ORIG, "2001:db8:1::1", "2001:db8:4::2", 58, icmp=(128, 0, 5)),
        tuple_attr(nl.CTA_TUPLE_REPLY, "2001:db8:4::2", "2001:db8:1::1", 58, icmp=(129, 0, 5)),
        nla(nl.CTA_STATUS, be32(0xA)),
    ], family=socket.AF_INET6)
    builder = EntryBuilder()
    for _ in range(2):
        e4 = builder.build(*parts(v4))
        e6 = builder.build(*parts(v6))
    assert e4.original == IcmpTuple("198.18.1.1", "198.18.9.9", 8, 0, 77)
    assert e4.reply == IcmpTuple("198.18.9.9", "198.18.1.1", 0, 0, 77)
    assert e4.nat == () and e4.proto == "icmp" and e4.status == ("CONFIRMED",)
    assert e6.family == "ipv6" and e6.proto == "icmpv6" and e6.original == IcmpTuple(
        "2001:db8:1::1", "2001:db8:4::2", 128, 0, 5)
    assert e6.timeout is None and e6.mark is None


def test_counters_timestamps_helper_secctx_zone() -> None:
    raw = message([
        *nat_tcp_attrs()[:4],
        nest(nl.CTA_COUNTERS_ORIG, nla(nl.CTA_COUNTERS_PACKETS, be64(3)), nla(nl.CTA_COUNTERS_BYTES, be64(180))),
        nest(nl.CTA_COUNTERS_REPLY, nla(nl.CTA_COUNTERS_PACKETS, be64(2)), nla(nl.CTA_COUNTERS_BYTES, be64(112))),
        nest(nl.CTA_TIMESTAMP, nla(nl.CTA_TIMESTAMP_START, be64(1_700_000_000_500_000_000)),
             nla(nl.CTA_TIMESTAMP_STOP, be64(1_700_000_010_000_000_000))),
        tcp_protoinfo(7),
        nest(nl.CTA_HELP, nla(nl.CTA_HELP_NAME, b"ftp\0")),
        nla(nl.CTA_MARK, be32(0x4000)),
        nest(nl.CTA_SECCTX, nla(nl.CTA_SECCTX_NAME, b"system_u:object_r:unlabeled_t:s0\0")),
        nla(nl.CTA_ZONE, be16(3)),
        nla(nl.CTA_ID, be32(9)), nla(nl.CTA_USE, be32(2)),
    ])
    builder = EntryBuilder()
    entries = [builder.build(*parts(raw)) for _ in range(2)]
    assert entries[0] == entries[1] == to_entry(d.decode_generic(*parts(raw)))
    e = entries[0]
    assert e.counters == Counters(3, 180, 2, 112)
    assert e.start == 1_700_000_000.5 and e.stop == 1_700_000_010.0
    assert e.helper == "ftp" and e.secctx == "system_u:object_r:unlabeled_t:s0"
    assert (e.mark, e.zone, e.state, e.use) == (0x4000, 3, "TIME_WAIT", 2)
    assert builder.builders == {}  # a helper name has any length: never a compiled layout


def test_gre_and_other_protocols() -> None:
    gre = message([
        tuple_attr(nl.CTA_TUPLE_ORIG, "198.18.1.1", "198.18.9.9", 47, 0x10, 0x20),
        tuple_attr(nl.CTA_TUPLE_REPLY, "198.18.9.9", "198.18.1.1", 47, 0x20, 0x10),
    ])
    other = message([
        tuple_attr(nl.CTA_TUPLE_ORIG, "198.18.1.1", "198.18.9.9", 50),
        tuple_attr(nl.CTA_TUPLE_REPLY, "198.18.9.9", "198.18.1.2", 50),
    ])
    builder = EntryBuilder()
    g = [builder.build(*parts(gre)) for _ in range(2)][1]
    o = [builder.build(*parts(other)) for _ in range(2)][1]
    assert g.proto == "gre" and g.original == PortTuple("198.18.1.1", "198.18.9.9", 0x10, 0x20) and g.nat == ()
    assert o.proto == "50" and o.original == AddrTuple("198.18.1.1", "198.18.9.9") and o.nat == ("snat",)


def test_truncated_and_malformed_messages_decode_what_is_there() -> None:
    raw = message(nat_tcp_attrs())
    buf, off, end = parts(raw)
    cut = d.decode_generic(buf, off, end - 20)  # the last attributes cut off
    assert cut[d.FIELDS.index("o_sport")] == 47858 and cut[d.FIELDS.index("use")] is None
    bad = bytearray(raw)
    struct.pack_into("=H", bad, 20, 2)  # the first attribute claims a length below its header
    v = d.decode_generic(bytes(bad), off, end)
    assert v[d.FIELDS.index("o_src")] is None
    assert EntryBuilder().build(bytes(bad), off, end).original == AddrTuple("", "")


def test_nat_of() -> None:
    done = (1 << 7) | (1 << 8)  # IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE
    o = PortTuple("10.0.0.1", "10.0.0.2", 1000, 8080)
    assert nat_of(o, PortTuple("10.0.0.2", "10.0.0.1", 8080, 1000), done) == ()
    assert nat_of(o, PortTuple("10.0.1.2", "10.0.0.1", 80, 1000), done) == ("dnat",)
    assert nat_of(o, PortTuple("10.0.0.2", "10.0.0.1", 9090, 1000), done) == ("dnat",)  # REDIRECT-like: port only
    assert nat_of(o, PortTuple("10.0.0.2", "10.0.1.1", 8080, 1000), done) == ("snat",)
    assert nat_of(o, PortTuple("10.0.0.2", "10.0.0.1", 8080, 2000), done) == ("snat",)  # port translation only
    assert nat_of(o, PortTuple("10.0.1.2", "10.0.1.1", 80, 1000), done) == ("snat", "dnat")
    assert nat_of(o, PortTuple("10.0.1.2", "10.0.1.1", 80, 1000), 0) == ()  # tuples differ, no NAT was done
    assert nat_of(o, PortTuple("10.0.1.2", "10.0.1.1", 80, 1000), 1 << 7) == ("snat",)
    assert nat_of(o, PortTuple("10.0.1.2", "10.0.1.1", 80, 1000), None) == ("snat", "dnat")  # no status: assumed
    i = IcmpTuple("10.0.0.1", "10.0.0.2", 8, 0, 5)
    assert nat_of(i, IcmpTuple("10.0.0.2", "10.0.0.1", 0, 0, 6), done) == ()  # ids are not ports (conntrack)


ports = st.integers(0, 65535)
addresses4 = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.1.1", "198.18.3.4"])
addresses6 = st.sampled_from(["2001:db8::1", "2001:db8::2", "::ffff:10.0.0.1", "fe80::1"])


@st.composite
def entry_messages(draw: st.DrawFn) -> bytes:
    v6 = draw(st.booleans())
    addrs = addresses6 if v6 else addresses4
    proto = draw(st.sampled_from([6, 17, 132, 1, 58, 47, 50]))
    if proto in (1, 58):
        kw_o = {"icmp": (draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(ports))}
        kw_r = {"icmp": (draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(ports))}
    elif proto == 50:
        kw_o, kw_r = {}, {}
    else:
        kw_o = {"sport": draw(ports), "dport": draw(ports)}
        kw_r = {"sport": draw(ports), "dport": draw(ports)}
    attrs = [tuple_attr(nl.CTA_TUPLE_ORIG, draw(addrs), draw(addrs), proto, **kw_o)]  # type: ignore[arg-type]
    if draw(st.booleans()):
        attrs.append(tuple_attr(nl.CTA_TUPLE_REPLY, draw(addrs), draw(addrs), proto, **kw_r))  # type: ignore[arg-type]
    optional = [
        nla(nl.CTA_STATUS, be32(draw(st.integers(0, 0xFFFF)))),
        nla(nl.CTA_TIMEOUT, be32(draw(st.integers(0, 2**32 - 1)))),
        tcp_protoinfo(draw(st.integers(0, 12))),
        nest(nl.CTA_COUNTERS_ORIG, nla(nl.CTA_COUNTERS_PACKETS, be64(draw(st.integers(0, 2**64 - 1)))),
             nla(nl.CTA_COUNTERS_BYTES, be64(7))),
        nest(nl.CTA_TIMESTAMP, nla(nl.CTA_TIMESTAMP_START, be64(draw(st.integers(0, 2**63))))),
        nla(nl.CTA_MARK, be32(draw(st.integers(0, 2**32 - 1)))),
        nla(nl.CTA_ZONE, be16(draw(st.integers(0, 65535)))),
        nla(nl.CTA_LABELS, bytes(16)),
        nla(nl.CTA_ID, be32(draw(st.integers(0, 2**32 - 1)))),
        nla(nl.CTA_USE, be32(draw(st.integers(0, 9)))),
    ]
    attrs += [a for a in optional if draw(st.booleans())]
    return message(attrs, family=socket.AF_INET6 if v6 else socket.AF_INET)


@settings(max_examples=300, deadline=None)
@given(st.lists(entry_messages(), min_size=1, max_size=6))
def test_every_path_agrees_on_random_messages(raws: list[bytes]) -> None:
    builder = EntryBuilder()
    decoder = d.EntryDecoder()
    for _ in range(2):  # the second round goes through the layouts the first one taught
        for raw in raws:
            reference = d.decode_generic(*parts(raw))
            assert decoder.decode(*parts(raw)) == reference
            assert builder.build(*parts(raw)) == to_entry(reference)


def test_split_datagram_and_reply_end() -> None:
    a, b = message(nat_tcp_attrs(sport=1)), message(nat_tcp_attrs(sport=2))
    done = struct.pack("=IHHIIi", 20, core_nl.NLMSG_DONE, core_nl.NLM_F_MULTI, 1, 0, 0)
    datagram = a + b + done
    found = list(nl.split_datagram(datagram))
    assert [m[3] for m in found] == [nl.IPCTNL_MSG_CT_NEW, nl.IPCTNL_MSG_CT_NEW, -1]
    assert found[1][1] == len(a) + 16 and found[1][2] == len(a) + len(b)
    assert nl.ends_reply(datagram) and not nl.ends_reply(a + b)


def _error(code: int) -> bytes:
    return struct.pack("=IHHIIi", 36, core_nl.NLMSG_ERROR, 0, 1, 0, -code) + bytes(16)


def test_netlink_errors_become_one_line_with_a_hint() -> None:
    with pytest.raises(PermissionDenied) as denied:
        list(nl.split_datagram(_error(errno.EPERM)))
    assert "CAP_NET_ADMIN" in denied.value.message
    assert denied.value.hint and "cap_net_admin" in denied.value.hint.lower()
    assert denied.value.errno == errno.EPERM
    with pytest.raises(UnavailableError) as missing:
        list(nl.split_datagram(_error(errno.EOPNOTSUPP)))
    assert "not available" in missing.value.message and "nf_conntrack_netlink" in (missing.value.hint or "")
    with pytest.raises(UnavailableError):  # nfnetlink's answer when the ctnetlink module is missing
        list(nl.split_datagram(_error(errno.EINVAL)))
    assert [m[3] for m in nl.split_datagram(_error(0))] == [-1]  # an ack ends the reply


def test_event_kinds_and_sender() -> None:
    assert nl.event_kind(nl.IPCTNL_MSG_CT_NEW, nl.NLM_F_CREATE | nl.NLM_F_EXCL) == "new"
    assert nl.event_kind(nl.IPCTNL_MSG_CT_NEW, 0) == "update"
    assert nl.event_kind(nl.IPCTNL_MSG_CT_DELETE, 0) == "destroy"
    buf, off, _end = parts(message(nat_tcp_attrs(), pid=4242))
    assert nl.sender_portid(buf, off) == 4242


def test_address_cache_stays_bounded() -> None:
    for i in range(d.ADDRESS_CACHE_MAX + 10):
        d.address_text(struct.pack(">I", 0x0A000000 + i))
    assert len(d._address_text) <= d.ADDRESS_CACHE_MAX
    assert d.address_text(ip("2001:db8::1")) == "2001:db8::1"
    assert d.address_text(None) == ""


def test_entry_is_a_plain_dataclass_model() -> None:
    entry = to_entry(d.decode_generic(*parts(message(nat_tcp_attrs()))))
    assert isinstance(entry, Entry) and entry.json_type == "entry"


@settings(max_examples=300, deadline=None)
@given(entry_messages())
def test_the_nat_filters_agree_with_the_nat_the_entry_shows(raw: bytes) -> None:
    """`--snat`/`--dnat` with no address keep exactly the entries whose `nat` names that
    translation (GRE keys translated count, as ports do: libnetfilter_conntrack's IS_SPAT/IS_DPAT)."""
    from gnt.conntrack.filters import EntryFilter, NatFilter

    entry = EntryBuilder().build(*parts(raw))
    assert EntryFilter(snat=NatFilter()).matches(entry) == ("snat" in entry.nat), entry
    assert EntryFilter(dnat=NatFilter()).matches(entry) == ("dnat" in entry.nat), entry
    assert EntryFilter(nat=NatFilter()).matches(entry) == bool(entry.nat), entry


def test_a_translated_gre_key_is_nat_for_the_filter_too() -> None:
    from gnt.conntrack.filters import EntryFilter, NatFilter

    done = (1 << 7) | (1 << 8)
    original = PortTuple("10.0.0.1", "10.0.0.2", 0x10, 0x20)
    reply = PortTuple("10.0.0.2", "10.0.0.1", 0x20, 0x99)  # the key the reply goes to was translated
    gre = Entry(family="ipv4", proto="gre", state=None, status=(), original=original, reply=reply,
                nat=nat_of(original, reply, done), mark=None, zone=0, timeout=None, id=None, protonum=47,
                status_bits=done)
    assert gre.nat == ("snat",)
    assert EntryFilter(snat=NatFilter()).matches(gre)
    assert EntryFilter(snat=NatFilter(port=0x99)).matches(gre)
    assert not EntryFilter(dnat=NatFilter()).matches(gre)

"""ndisc/rdisc logic without a network: the RFC 4861 acceptance checks, the models, the text, the CLI errors."""

from __future__ import annotations

import json

import pytest
from helpers.cli import run_gnt as run

from gnt.core.packets import icmpv6 as m
from gnt.core.packets.ipv6 import multicast_mac, solicited_node
from gnt.core.sockets import NdpReceived as Received
from gnt.ndisc import ndisc, rdisc
from gnt.ndisc.models import DadResult, Neighbor
from gnt.output.json import encode
from gnt.output.text.ndisc import format_dad, format_router, ndisc_formatter

TARGET = m.addr_bytes("2001:db8:9::2")
MAC = bytes.fromhex("2e3cf2a7a186")




def na(**kw: object) -> bytes:
    fields: dict[str, object] = {"target": TARGET, "solicited": True, "override": True,
                                 "options": [m.LinkLayerOption.target(MAC)]}
    fields.update(kw)
    return m.NeighborAdvertisement(**fields).encode()  # type: ignore[arg-type]


def received(data: bytes, hop_limit: int | None = 255, source: str = "2001:db8:9::2",
             destination: str = "2001:db8:9::1") -> Received:
    return Received(data=data, source=source, hop_limit=hop_limit, destination=destination)


def test_solicited_node_group_and_its_mac() -> None:
    group = solicited_node(m.addr_bytes("2001:db8:9::abcd:1234"))
    assert m.addr_text(group) == "ff02::1:ffcd:1234"
    assert multicast_mac(group).hex(":") == "33:33:ff:cd:12:34"


def test_valid_advertisement_is_accepted() -> None:
    checked = ndisc.check_advertisement(received(na()), TARGET)
    assert isinstance(checked, m.NeighborAdvertisement)
    assert checked.target_lladdr == MAC


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (received(na(), hop_limit=64), "hop limit 64, not 255"),
        (received(na(), hop_limit=None), "hop limit None, not 255"),
        (received(na()[:20]), "need 24 bytes"),
        (received(na(options=[]) + bytes([2, 0, 0, 0, 0, 0, 0, 0])), "length zero"),
        (received(na(options=[]) + bytes([2, 1, 1, 2, 3])), "runs past"),
        (received(na(target=m.addr_bytes("2001:db8:9::3"))), "advertisement for 2001:db8:9::3"),
        (received(na(target=m.addr_bytes("ff02::1"))), "multicast target"),
        (received(na(), destination="ff02::1"), "solicited flag set on a multicast advertisement"),
        (received(m.NeighborSolicitation(target=TARGET).encode()), "not a neighbor advertisement"),
        (received(bytes([136, 1]) + na()[2:]), "code 1, not 0"),
    ],
)
def test_invalid_advertisements_are_rejected(packet: Received, reason: str) -> None:
    checked = ndisc.check_advertisement(packet, TARGET)
    assert isinstance(checked, str)
    assert reason in checked


def test_router_advertisement_checks() -> None:
    ra = m.RouterAdvertisement(cur_hop_limit=64, router_lifetime=1800).encode()
    ok = rdisc.check_advertisement(received(ra, source="fe80::1", destination="ff02::1"))
    assert isinstance(ok, m.RouterAdvertisement)
    assert rdisc.check_advertisement(received(ra, source="2001:db8::1")) == "source is not link-local"
    assert rdisc.check_advertisement(received(ra, source="fe80::1", hop_limit=1)) == "hop limit 1, not 255"
    truncated = ra + bytes([3, 4]) + bytes(10)
    assert "runs past" in str(rdisc.check_advertisement(received(truncated, source="fe80::1")))
    asked = m.addr_bytes("fe80::9")
    assert rdisc.check_advertisement(received(ra, source="fe80::1"), asked) == "not from the router asked"


def test_router_model_and_rdisc6_layout() -> None:
    a = m.addr_bytes
    ra = m.RouterAdvertisement(
        cur_hop_limit=64, managed=True, other=False, preference=3, router_lifetime=0,
        reachable_time=0, retrans_timer=1000,
        options=[
            m.PrefixInformation(a("2001:db8:9::"), 64, True, False, False, m.INFINITY, 3600),
            m.RDNSSOption([a("2001:db8::53")], lifetime=600),
            m.MTUOption(1280),
            m.LinkLayerOption.source(MAC),
        ],
    )
    router = rdisc.router_from(ra, "fe80::1", "eth0")
    assert router.preference == "low"
    assert router.mtu == 1280
    assert router.lladdr == "2E:3C:F2:A7:A1:86"
    assert [p.prefix for p in router.prefixes] == ["2001:db8:9::/64"]
    assert router.rdnss[0].address == "2001:db8::53"
    assert format_router(router).splitlines() == [
        "",
        "Hop limit                 :           64 (      0x40)",
        "Stateful address conf.    :          Yes",
        "Stateful other conf.      :           No",
        "Mobile home agent         :           No",
        "Router preference         :          low",
        "Neighbor discovery proxy  :           No",
        "Router lifetime           :            0 (0x00000000) seconds",
        "Reachable time            :  unspecified (0x00000000)",
        "Retransmit time           :         1000 (0x000003e8) milliseconds",
        " Prefix                   : 2001:db8:9::/64",
        "  On-link                 :          Yes",
        "  Autonomous address conf.:           No",
        "  Valid time              :     infinite (0xffffffff)",
        "  Pref. time              :         3600 (0x00000e10) seconds",
        " Recursive DNS server     : 2001:db8::53",
        "  DNS server lifetime     :          600 (0x00000258) seconds",
        " MTU                      :         1280 bytes (valid)",
        " Source link-layer address: 2E:3C:F2:A7:A1:86",
        " from fe80::1",
    ]
    encoded = json.loads(str(encode(router)))
    assert encoded["type"] == "router"
    assert "options" not in encoded
    assert encoded["prefixes"][0]["valid_lifetime"] == m.INFINITY


def test_neighbor_text_like_ndisc6() -> None:
    fmt = ndisc_formatter()
    neighbor = Neighbor("2001:db8:9::2", "2E:3C:F2:A7:A1:86", router=False, source="2001:db8:9::2")
    assert fmt(neighbor) == "Target link-layer address: 2E:3C:F2:A7:A1:86\n from 2001:db8:9::2"
    assert ndisc_formatter(quiet=True)(neighbor) == "2E:3C:F2:A7:A1:86"
    neighbor.router = True
    assert str(fmt(neighbor)).endswith(" from 2001:db8:9::2 (router)")


def test_dad_text() -> None:
    assert format_dad(DadResult("2001:db8::5", "eth0", duplicate=False, probes=2)) == \
        "2001:db8::5 is unique on eth0: no answer to 2 probes."
    text = format_dad(DadResult("2001:db8::5", "eth0", duplicate=True, lladdr="02:00:00:00:00:01",
                                source="2001:db8::5"))
    assert text.startswith("Duplicate: 2001:db8::5 is in use by 02:00:00:00:00:01")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("ndisc", "zz", "lo"), "'zz' is not an IPv6 address"),
        (("ndisc", "ff02::1", "lo"), "not a unicast address"),
        (("ndisc", "-r", "0", "2001:db8::1", "lo"), "invalid -r 0"),
        (("ndisc", "-w", "0", "2001:db8::1", "lo"), "invalid -w 0"),
        (("ndisc", "-w", "99999999999999999999", "2001:db8::1", "lo"), "at most 2147483647 milliseconds"),
        (("rdisc", "--listen", "-w", "2147483648", "lo"), "invalid -w 2147483648"),
        (("ndisc", "-1", "-m", "2001:db8::1", "lo"), "contradict"),
        (("ndisc", "2001:db8::1", "no-such-if0"), "unknown interface 'no-such-if0'"),
        (("ndisc", "2001:db8::1"), "Missing argument"),
        (("rdisc", "--count", "1", "lo"), "--count applies to --listen"),
        (("rdisc", "lo", "not-an-address"), "is not an IPv6 address"),
        (("rdisc", "no-such-if0"), "unknown interface"),
        (("neigh", "-4", "-6"), "contradict"),
        (("neigh", "--count", "2"), "apply to --watch"),
        (("neigh", "--watch", "--duration", "nan"), "'nan' is not a number"),
        (("neigh", "--watch", "--duration", "inf"), "'inf' is not a number"),
        (("neigh", "--watch", "--duration", "1e17"), "invalid --duration 1e+17: at most"),
        (("neigh", "-i", "no-such-if0"), "unknown interface"),
    ],
)
def test_cli_errors_exit_2_in_one_line(argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2, (out, err)
    assert message in err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith(f"gnt {argv[0]}: ")


def test_neighbor_table_lines_like_ip_neigh() -> None:
    from gnt.ndisc.models import NeighborChange, NeighborEntry
    from gnt.ndisc.neigh import state_text
    from gnt.output.text.ndisc import format_change, format_entry

    assert [state_text(s) for s in (0x02, 0x04, 0x20, 0x80, 0x00, 0x06)] == [
        "REACHABLE", "STALE", "FAILED", "PERMANENT", "NONE", "REACHABLE+STALE"]
    entry = NeighborEntry("2001:db8::2", "02:00:00:00:00:02", "eth0", "REACHABLE", router=True)
    assert format_entry(entry) == "2001:db8::2 dev eth0 lladdr 02:00:00:00:00:02 router REACHABLE"
    failed = NeighborEntry("2001:db8::9", None, "eth0", "FAILED", router=False)
    assert format_entry(failed) == "2001:db8::9 dev eth0 FAILED"
    change = NeighborChange(time=1_700_000_000.25, event="new", address="2001:db8::2", lladdr=None,
                            ifname="eth0", state="STALE", previous_state="REACHABLE", router=False)
    text = format_change(change)
    assert text.startswith("[") and text.endswith("] 2001:db8::2 dev eth0 REACHABLE -> STALE")
    assert ".250]" in text
    change.event, change.previous_state = "delete", None
    assert format_change(change).endswith("2001:db8::2 dev eth0 STALE -> deleted")

"""`gnt ip6`: address facts, EUI-64/SLAAC from a MAC, and the command run in-process."""

from __future__ import annotations

import ipaddress

import pytest
from helpers.cli import run_gnt as run
from helpers.jsonl import records
from scapy.utils6 import in6_getnsma, in6_getnsmac, in6_mactoifaceid

from gnt.errors import UsageError
from gnt.ndisc import ip6


@pytest.mark.parametrize(
    ("address", "kind", "scope"),
    [
        ("::", "unspecified", "none"),
        ("::1", "loopback", "host"),
        ("fe80::1", "link-local", "link"),
        ("fd00:1234::1", "unique-local", "site"),
        ("2001:db8::1", "documentation", "global"),
        ("2a00:1450:4001:82b::200e", "global unicast", "global"),
        ("::ffff:192.0.2.1", "ipv4-mapped", "global"),
        ("2002:c000:201::1", "6to4", "global"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo", "global"),
        ("64:ff9b::192.0.2.33", "nat64", "global"),
        ("ff02::1", "multicast", "link-local"),
        ("ff05::1:3", "multicast", "site-local"),
        ("ff0e::101", "multicast", "global"),
        ("ff01::1", "multicast", "interface-local"),
    ],
)
def test_kind_and_scope(address: str, kind: str, scope: str) -> None:
    facts = ip6.facts(address)
    assert (facts.kind, facts.scope) == (kind, scope)
    assert ipaddress.IPv6Address(facts.compressed) == ipaddress.IPv6Address(address)
    if kind != "ipv4-mapped":  # RFC 5952 §5: a mapped address keeps its dotted quad
        assert facts.compressed == str(ipaddress.IPv6Address(address))
    assert facts.full == ipaddress.IPv6Address(address).exploded
    assert facts.reverse_dns == ipaddress.IPv6Address(address).reverse_pointer + "."


@pytest.mark.parametrize("address", ["2001:db8::1", "fe80::2c3c:f2ff:fea7:a186", "2001:db8:9::abcd:1234"])
def test_solicited_node_group_and_mac_match_scapy(address: str) -> None:
    facts = ip6.facts(address)
    group = in6_getnsma(ipaddress.IPv6Address(address).packed)
    assert facts.solicited_node == str(ipaddress.IPv6Address(group))
    assert facts.solicited_node_mac == in6_getnsmac(group)


def test_eui64_mac_is_recovered_and_matches_scapy() -> None:
    mac = "2e:3c:f2:a7:a1:86"
    link_local = ip6.from_mac(mac)
    assert link_local.compressed == "fe80::" + in6_mactoifaceid(mac).lower()
    assert link_local.eui64_mac == mac
    assert link_local.kind == "link-local"
    assert ip6.facts("fe80::2c3c:f2ff:fea7:a186").eui64_mac == mac
    assert ip6.facts("2001:db8::1").eui64_mac is None


def test_slaac_address_on_a_prefix() -> None:
    facts = ip6.from_mac("00:16:3e:12:34:56", "2001:db8:9::/64")
    assert facts.compressed == "2001:db8:9:0:216:3eff:fe12:3456"
    assert facts.prefix == "2001:db8:9::/64"
    assert facts.mac == "00:16:3e:12:34:56"


def test_embedded_ipv4_and_teredo_server() -> None:
    assert ip6.facts("::ffff:c000:201").compressed == "::ffff:192.0.2.1"
    assert ip6.facts("::ffff:192.0.2.1").embedded_ipv4 == "192.0.2.1"
    assert ip6.facts("2002:c000:201::1").embedded_ipv4 == "192.0.2.1"
    teredo = ip6.facts("2001:0:4136:e378:8000:63bf:3fff:fdd2")  # RFC 4380 §4's example
    assert (teredo.teredo_server, teredo.embedded_ipv4) == ("65.54.227.120", "192.0.2.45")


def test_multicast_flags_and_mac() -> None:
    facts = ip6.facts("ff3e:30:2001:db8::1")  # RFC 3306 prefix-based, transient
    assert facts.multicast_flags == ["P", "T"]
    assert facts.multicast_mac == "33:33:00:00:00:01"
    assert facts.solicited_node is None
    assert ip6.facts("ff02::1").multicast_flags == []


@pytest.mark.parametrize("bad", ["zz", "192.0.2.1", "2001:db8::1::2", "", "fe80::1/64"])
def test_bad_address_is_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        ip6.facts(bad)


def test_bad_mac_and_prefix() -> None:
    with pytest.raises(UsageError):
        ip6.from_mac("00:16:3e:12:34")
    with pytest.raises(UsageError, match="/64"):
        ip6.from_mac("00:16:3e:12:34:56", "2001:db8::/48")


def test_cli_text_has_every_fact() -> None:
    code, out, err = run("ip6", "fe80::2c3c:f2ff:fea7:a186", "2001:db8::1")
    assert code == 0, err
    assert "Kind                      : link-local" in out
    assert "EUI-64 MAC                : 2e:3c:f2:a7:a1:86" in out
    assert "Solicited-node multicast  : ff02::1:ffa7:a186" in out
    assert "Solicited-node MAC        : 33:33:ff:a7:a1:86" in out
    assert "Kind                      : documentation" in out
    assert "\n\nAddress                   : 2001:db8::1" in out


def test_cli_json_one_address_object_per_input() -> None:
    code, out, _ = run("ip6", "--json", "::1", "ff02::2")
    assert code == 0
    objs = records(out)
    assert [o["type"] for o in objs] == ["address", "address"]
    assert [o["kind"] for o in objs] == ["loopback", "multicast"]
    assert objs[1]["multicast_mac"] == "33:33:00:00:00:02"


def test_cli_mac_with_prefix() -> None:
    code, out, _ = run("ip6", "--json", "--mac", "00:16:3e:12:34:56", "--prefix", "2001:db8:9::/64")
    assert code == 0
    assert records(out)[0]["compressed"] == "2001:db8:9:0:216:3eff:fe12:3456"


@pytest.mark.parametrize(
    "argv",
    [
        ("ip6", "not-an-address"),
        ("ip6",),
        ("ip6", "--prefix", "2001:db8::/64"),
        ("ip6", "--mac", "zz"),
        ("ip6", "::1", "--mac", "00:16:3e:12:34:56"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv: tuple[str, ...]) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert err.startswith("gnt ip6: ")
    assert "Traceback" not in err
    assert len(err.splitlines()) <= 2

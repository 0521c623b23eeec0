"""The trace rule set gnt installs (nft script, legacy TRACE rules), filter validation, and
reading rule text back from `nft -a list chain` / `iptables -S` output."""

from __future__ import annotations

import pytest

from gnt.core.process import process_start_ticks as process_start
from gnt.errors import UsageError
from gnt.iptrace import legacy
from gnt.iptrace.commands import run_alive, run_tag
from gnt.iptrace.models import Filter
from gnt.iptrace.nftrules import match_expression, parse_chain_listing, trace_table_script, validate


@pytest.mark.parametrize("flt,expected", [
    (Filter(), ""),
    (Filter(family=4, proto="icmp"), "meta nfproto ipv4 meta l4proto icmp"),
    (Filter(proto="icmp"), "meta l4proto { icmp, ipv6-icmp }"),
    (Filter(family=6, proto="icmp"), "meta nfproto ipv6 meta l4proto ipv6-icmp"),
    (Filter(src="198.18.1.1", dst="2001:db8::/64"), None),  # mixed families: refused by validate
    (Filter(src="198.18.1.0/24", proto="tcp", dport=443),
     "meta nfproto ipv4 ip saddr 198.18.1.0/24 meta l4proto tcp th dport 443"),
    (Filter(dst="2001:db8:4::2", sport=53), "meta nfproto ipv6 ip6 daddr 2001:db8:4::2 "
                                            "meta l4proto { tcp, udp, sctp, dccp, udplite } th sport 53"),
    (Filter(iif="eth0", proto="udp"), 'iifname "eth0" meta l4proto udp'),
])
def test_match_expression(flt: Filter, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UsageError):
            validate(flt)
        return
    assert match_expression(validate(flt)) == expected


@pytest.mark.parametrize("flt,message", [
    (Filter(proto="bogus"), "unknown protocol"),
    (Filter(proto="icmp", dport=80), "need a protocol with ports"),
    (Filter(family=4, proto="icmpv6"), "ICMPv6 cannot be traced with -4"),
    (Filter(src="not-an-address"), "bad source address"),
    (Filter(family=6, src="10.0.0.1"), "is not an IPv6 address"),
    (Filter(dport=70000), "out of range"),
    (Filter(iif='eth0"; flush ruleset'), "bad interface name"),
    (Filter(proto="300"), "out of range 0-255"),
])
def test_validate_refuses(flt: Filter, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        validate(flt)


def test_trace_table_script() -> None:
    script = trace_table_script(validate(Filter(family=4, proto="udp")), 4321)
    assert script.splitlines() == [
        f"table inet gnt_iptrace_{run_tag(4321)} {{",
        '  comment "gnt iptrace pid 4321"',
        "  chain pre { type filter hook prerouting priority -350; policy accept; "
        "meta nfproto ipv4 meta l4proto udp meta nftrace set 1; }",
        "  chain out { type filter hook output priority -350; policy accept; "
        "meta nfproto ipv4 meta l4proto udp meta nftrace set 1; }",
        "}",
    ]
    with_iif = trace_table_script(validate(Filter(iif="eth1")), 1)
    assert "hook output" not in with_iif and 'iifname "eth1" meta nftrace set 1' in with_iif


LISTING = """table ip filter { # handle 3
\tchain FORWARD { # handle 2
\t\ttype filter hook forward priority filter; policy drop;
\t\tmeta l4proto icmp counter packets 12 bytes 1008 jump GNTUSER # handle 5
\t\tip saddr { 10.0.0.1, 10.0.0.2 } counter packets 0 bytes 0 accept # handle 9
\t\tmeta l4proto tcp counter packets 3 bytes 180 reject # handle 7
\t}
}
"""


def test_parse_chain_listing() -> None:
    rules, policy = parse_chain_listing(LISTING)
    assert policy == "drop"
    assert rules == {
        5: (1, "meta l4proto icmp counter jump GNTUSER"),
        9: (2, "ip saddr { 10.0.0.1, 10.0.0.2 } counter accept"),
        7: (3, "meta l4proto tcp counter reject"),
    }


def test_legacy_rule_specs() -> None:
    flt = validate(Filter(family=4, proto="tcp", src="198.18.1.1", dport=22))
    assert legacy.rule_specs(flt, "PREROUTING", 77) == [[
        "-s", "198.18.1.1", "-p", "tcp", "-m", "tcp", "--dport", "22",
        "-m", "comment", "--comment", f"gnt-iptrace:{run_tag(77)}", "-j", "TRACE"]]
    both = legacy.rule_specs(validate(Filter(sport=53)), "OUTPUT", 1)
    assert [spec[1] for spec in both] == ["tcp", "udp"]
    assert legacy.rule_specs(validate(Filter(iif="eth0")), "OUTPUT", 1) == []


@pytest.mark.parametrize("line,verdict", [
    ("-A FORWARD -p icmp -j GNTUSER", "jump GNTUSER"),
    ("-A FORWARD -j ACCEPT", "accept"),
    ("-A FORWARD -p tcp -j REJECT --reject-with tcp-reset", "reject"),
    ("-A GNTUSER -j RETURN", "return"),
    ("-A INPUT -j LOG --log-prefix x", "continue"),
    ("-A KUBE-SERVICES -g KUBE-SVC-X", "goto KUBE-SVC-X"),
    ("-A POSTROUTING -j MASQUERADE", "accept"),
    ("-A INPUT -m comment --comment x", "continue"),
])
def test_legacy_target_verdicts(line: str, verdict: str) -> None:
    import shlex

    assert legacy._target_verdict(shlex.split(line)) == verdict


def test_run_tag_names_the_run_by_pid_and_start_time() -> None:
    import os

    start = process_start(os.getpid())
    assert start is not None and run_tag(os.getpid()) == f"{os.getpid()}_{start}"
    assert run_alive(os.getpid(), start) and run_alive(os.getpid(), None)
    assert not run_alive(os.getpid(), start + 1)  # this pid, another run: a reused pid is not "alive"

"""gnt why without a network: the verdict rules' order, the text and JSON shapes, DEST[:PORT] parsing,
bad input, and the rule that no tool imports `why`."""

from __future__ import annotations

import json
import pathlib
from collections import Counter

import pytest
from helpers.cli import run_gnt

from gnt.cli.why import split_target
from gnt.errors import UsageError
from gnt.output.json import encode
from gnt.output.text.why import WhyText
from gnt.why.facts import Facts, NeighbourFacts, ProbeFacts, RouteFacts, TraceFacts
from gnt.why.models import Check, Query, Verdict
from gnt.why.verdict import RULES, decide

ROOT = pathlib.Path(__file__).resolve().parents[2]


def facts(**query: object) -> Facts:
    q = Query(dest=str(query.pop("dest", "198.18.2.2")), family=4, proto=str(query.pop("proto", "icmp")),
              **query)  # type: ignore[arg-type]
    f = Facts(q)
    f.route = RouteFacts(kind="unicast", oif="eth0", gateway="198.18.1.2", prefsrc="198.18.1.1", table="main")
    return f


def answered(f: Facts) -> Facts:
    f.probe = ProbeFacts(sent=True, answered=True, outcome="echo reply from 198.18.2.2", seconds=0.001)
    return f


def silent(f: Facts) -> Facts:
    f.probe = ProbeFacts(sent=True, answered=False, outcome="no answer in 1 s", seconds=1.0)
    return f


@pytest.mark.parametrize(("text", "want"), [
    ("198.18.2.2", ("198.18.2.2", None)),
    ("198.18.2.2:80", ("198.18.2.2", 80)),
    ("2001:db8::1", ("2001:db8::1", None)),
    ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ("[2001:db8::1]", ("2001:db8::1", None)),
    ("node.example:30080", ("node.example", 30080)),
])
def test_split_target(text: str, want: tuple[str, int | None]) -> None:
    assert split_target(text) == want


@pytest.mark.parametrize("text", ["198.18.2.2:0", "198.18.2.2:65536", "198.18.2.2:http", "[2001:db8::1]80"])
def test_split_target_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        split_target(text)


def test_healthy_has_no_cause() -> None:
    v = decide(answered(facts()))
    assert v.cause is None and v.reachable and v.rule == "answered"
    assert v.line.startswith("198.18.2.2 answers: echo reply")


def test_no_route_names_table_and_missing_default() -> None:
    f = facts()
    f.route = RouteFacts(error=101, kind="no-route", tables=["main"], default_route=False)
    v = decide(f)
    assert v.line == "no route to 198.18.2.2 in table main (default route missing)"
    assert v.confidence == "high"


def test_forwarding_off_comes_before_the_refused_route() -> None:
    f = facts(source="198.18.1.1", iif="eth0", port=80, proto="tcp")
    f.route = RouteFacts(error=113, kind="unreachable-input")
    f.forwarding, f.forwarding_key = False, "ipv4.conf.eth0.forwarding"
    assert decide(f).rule == "forwarding-off"


def test_vxlan_checksums_come_before_a_failed_neighbour() -> None:
    f = silent(facts(dest="198.19.0.1"))
    f.overlay_kind, f.overlay_peer = "vxlan", "198.18.1.1"
    f.neighbour = NeighbourFacts("198.19.0.1", "vxlan0", "FAILED")
    f.counters = {"UdpInCsumErrors": 2}
    v = decide(f)
    assert v.rule == "vxlan-udp-csum"
    assert v.line.startswith("VXLAN packets from 198.18.1.1 arrive with bad outer UDP checksums")
    f.counters = {}
    assert decide(f).rule == "neighbour"


def test_rp_filter_needs_this_namespaces_counter_not_node_wide_reasons() -> None:
    f = silent(facts())
    f.rp_filter_drops, f.rp_filter_back = ["eth1"], "eth0"
    f.drop_reasons = Counter({"IP_RPFILTER": 3})  # another namespace's drops: not evidence on their own
    assert decide(f).rule == "cannot-tell"
    f.counters = {"IPReversePathFilter": 1}
    assert decide(f).line == ("dropped by rp_filter on eth1: replies arrive on another interface than the route "
                              "back (eth0)")


def test_netfilter_policy_drop_line() -> None:
    f = facts(port=80, proto="tcp")
    f.passive, f.watch_seconds = True, 4.0
    f.trace = TraceFacts(available=True, packets=3, dropped=3, drop_step="filter FORWARD policy DROP",
                         drop_chain="filter FORWARD", drop_kind="policy", drop_flow="198.18.1.1 → 198.18.2.2:80")
    assert decide(f).line == "dropped: filter FORWARD policy DROP (no rule accepted 198.18.1.1 → 198.18.2.2:80)"


def test_black_hole_is_a_cause_although_the_small_probe_answers() -> None:
    f = answered(facts())
    f.out_mtu, f.mtu_black_hole, f.path_mtu = 1500, (1400, 1401), 1400
    v = decide(f)
    assert v.cause is not None and v.line.startswith("path MTU 1400 but eth0 sends 1500 and large packets vanish")


def test_never_guesses() -> None:
    f = silent(facts())
    f.drop_reasons = Counter({"NO_SOCKET": 9})
    v = decide(f)
    assert v.rule == "cannot-tell" and v.confidence == "low" and v.cause is not None
    assert "gnt could not tell why" in v.line and "NO_SOCKET" in v.line


def test_passive_nothing_seen_and_passing() -> None:
    f = facts(port=80, proto="tcp")
    f.passive, f.watch_seconds = True, 2.0
    assert decide(f).rule == "nothing-seen"
    f.trace = TraceFacts(available=True, packets=4, accepted=4)
    v = decide(f)
    assert v.rule == "passes" and v.cause is None


def test_every_rule_is_a_function_of_facts() -> None:
    names = [rule.__name__ for rule in RULES]
    assert len(names) == len(set(names))
    assert names.index("route_refused") < names.index("neighbour_failed") < names.index("answered")


def test_text_puts_the_verdict_first_then_checks_then_fix() -> None:
    fmt = WhyText()
    assert fmt(Check("route", "ok", "198.18.2.2 via 198.18.1.2", ["asked the kernel: ip route get 198.18.2.2"])) \
        is None
    assert fmt(Check("neighbour", "fail", "gateway does not answer ARP", [], "ip neigh show dev eth0")) is None
    text = fmt(Verdict(cause="gateway x", where="eth0", fix="check x", confidence="high", reachable=False,
                       line="gateway x", rule="neighbour"))
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "gateway x"
    assert lines[1].split()[:2] == ["route", "ok"]
    assert lines[2].strip() == "asked the kernel: ip route get 198.18.2.2"
    assert lines[3].split()[:2] == ["neighbour", "fail"]
    assert lines[-2] == "fix: check x" and lines[-1] == "confidence: high"


def test_json_objects() -> None:
    check = json.loads(encode(Check("route", "ok", "s", ["e"])) or "")
    assert check == {"type": "check", "name": "route", "status": "ok", "summary": "s", "evidence": ["e"],
                     "fix": None}
    verdict = json.loads(encode(Verdict("c", "eth0", "f", "high", False, line="c", rule="neighbour")) or "")
    assert verdict == {"type": "verdict", "cause": "c", "where": "eth0", "fix": "f", "confidence": "high",
                       "reachable": False, "rule": "neighbour"}


@pytest.mark.parametrize("args", [("198.18.2.2:80", "-p", "icmp"), ("198.18.2.2", "-p", "udp"),
                                  ("198.18.2.2", "-p", "sctp"), ("198.18.2.2", "-4", "-6"),
                                  ("198.18.2.2", "--watch", "--duration", "0"), ("198.18.2.2", "-m", "x")])
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...]) -> None:
    code, out, err = run_gnt("why", *args)
    assert code == 2 and out == ""
    assert err.startswith("gnt") and "Traceback" not in err


def _imports(path: pathlib.Path) -> str:
    """The modules a file imports (not strings that name them: the schema table names gnt.why.models)."""
    import ast

    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return " ".join(names)


def test_no_tool_imports_why() -> None:
    allowed = {ROOT / "gnt/cli/why.py", ROOT / "gnt/output/text/why.py"}
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "gnt").rglob("*.py")
                 if "gnt/why/" not in str(p) and p not in allowed and "gnt.why" in _imports(p)]
    assert offenders == []

"""gnt mtu: bad input is one line and exit 2; each verdict reads as one sentence; the JSON object."""

from __future__ import annotations

import json

import pytest
from helpers.cli import run_gnt

from gnt.mtu.models import HopRef, MtuResult, OverlayFinding
from gnt.output.json import encode
from gnt.output.text.mtu import MtuText


@pytest.mark.parametrize(("argv", "message"), [
    (["mtu"], "missing host operand"),
    (["mtu", "-4", "-6", "h"], "only one of -4 and -6"),
    (["mtu", "-I", "-T", "h"], "only one of -U, -I and -T"),
    (["mtu", "-I", "-p", "80", "h"], "-p has no meaning with -I"),
    (["mtu", "-p", "0", "h"], "'0' is out of range: from 1 to 65535"),
    (["mtu", "--min", "1500", "--max", "1400", "h"], "--min 1500 is above --max 1400"),
    (["mtu", "--max", "70000", "h"], "'70000' is out of range: from 1 to 65535"),
    (["mtu", "-w", "0", "h"], "bad wait time (-w)"),
    (["mtu", "-w", "nan", "h"], "bad wait time (-w)"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run_gnt(*argv)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("gnt mtu: ") and message in err, err


def result(verdict: str, **kw: object) -> MtuResult:
    base: dict[str, object] = dict(host="h", address="198.18.4.2", protocol="udp", verdict=verdict, path_mtu=1400,
                                   largest_ok=1400, smallest_lost=1401, hop=HopRef(2, "198.18.2.2"), probes=4,
                                   local_mtu=1500, device="eth0")
    base.update(kw)
    return MtuResult(**base)  # type: ignore[arg-type]


VXLAN = OverlayFinding("vxlan0", "vxlan", 1500, "eth0", 4, 1500, 50, 1450, True)


@pytest.mark.parametrize(("obj", "line"), [
    (result("ok", path_mtu=1500, largest_ok=1500, smallest_lost=None, hop=None),
     "ok: 1500 bytes reach 198.18.4.2 (the local MTU of eth0)"),
    (result("pmtu", reported_mtu=1400), "pmtu 1400: hop 2 (198.18.2.2) reports MTU 1400; 1400 bytes pass, 1401 do not"),
    (result("pmtu", reported_mtu=1400, hop=HopRef(None, None)),
     "pmtu 1400: a hop (not named over TCP) reports MTU 1400; 1400 bytes pass, 1401 do not"),
    (result("black-hole"), "black-hole: 1400 bytes pass, 1401 vanish with no ICMP error; the large size last "
                           "reached hop 2 (198.18.2.2)"),
    (result("local-mismatch", mismatch=VXLAN, largest_ok=1450, smallest_lost=1451),
     "local-mismatch: vxlan0 (vxlan, MTU 1500) is set larger than its underlay eth0 carries (1500 - 50 = 1450); "
     "1450 bytes pass, 1451 do not"),
    (result("local-mismatch", mismatch=VXLAN, largest_ok=1500, smallest_lost=None),
     "local-mismatch: vxlan0 (vxlan, MTU 1500) is set larger than its underlay eth0 carries (1500 - 50 = 1450); "
     "1500 bytes pass only because the underlay fragments them"),
    (result("unreachable", path_mtu=None, largest_ok=None, smallest_lost=None, hop=None),
     "unreachable: no answer from 198.18.4.2 over udp, whatever the size"),
])
def test_verdict_sentences(obj: MtuResult, line: str) -> None:
    text = MtuText()(obj)
    assert text is not None
    assert text.splitlines()[0] == line


def test_json_object_carries_the_issue_fields() -> None:
    line = encode(result("black-hole"))
    assert line is not None
    obj = json.loads(line)
    assert obj["type"] == "mtu"
    for key in ("host", "protocol", "verdict", "path_mtu", "largest_ok", "smallest_lost", "hop", "probes"):
        assert key in obj
    assert obj["hop"] == {"ttl": 2, "address": "198.18.2.2"}

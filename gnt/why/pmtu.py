"""Large packets on a path where small ones pass: the black-hole check, from `gnt mtu`.

Run once the probe has answered (there is a path to measure): `gnt.mtu.discover` sends the
out device's full MTU first (one probe when it passes) and searches only when it does not.
"""

from __future__ import annotations

import socket

from gnt.errors import GntError
from gnt.why.facts import Facts
from gnt.why.models import FAIL, OK, SKIPPED, WARN, Check


def _protocol(facts: Facts) -> tuple[str, int | None]:
    q = facts.query
    if q.proto == "tcp" and facts.probe.outcome.startswith("connected"):
        return "tcp", q.port  # an open port: full segments to it
    if q.proto == "icmp":
        return "icmp", None
    return "udp", None  # a closed port answers every size with port unreachable


def check(facts: Facts) -> Check:
    """Whether packets of the out device's full MTU reach the destination."""
    from gnt.mtu import discover
    from gnt.mtu.models import BLACK_HOLE, LOCAL_MISMATCH, PMTU
    from gnt.mtu.models import OK as MTU_OK

    q = facts.query
    protocol, port = _protocol(facts)
    try:
        family = socket.AF_INET6 if q.family == 6 else socket.AF_INET
        result = discover(q.dest, protocol=protocol, family=family, port=port, source=facts.probe.source,
                          find_hop=False)
    except GntError as exc:
        return Check("path-mtu", SKIPPED, f"not measured: {exc.message}")
    facts.mtu_checked = True
    facts.path_mtu = result.path_mtu
    evidence = [f"gnt mtu -{protocol[0].upper()} {q.dest}: {result.verdict}, {result.probes} probes in "
                f"{result.elapsed_ms} ms", f"local mtu {result.local_mtu} ({result.device})"]
    if result.verdict == MTU_OK:
        return Check("path-mtu", OK, f"{result.local_mtu}-byte packets reach {q.dest}", evidence)
    if result.verdict == BLACK_HOLE:
        facts.mtu_black_hole = (result.largest_ok or 0, result.smallest_lost or 0)
        return Check("path-mtu", FAIL, f"black hole: {result.largest_ok} bytes pass, {result.smallest_lost} "
                     "vanish with no ICMP", evidence, f"ip link set {result.device} mtu {result.largest_ok}")
    if result.verdict == PMTU:
        who = result.hop.address if result.hop and result.hop.address else "a hop"
        evidence.append(f"{who} reported mtu {result.reported_mtu}")
        return Check("path-mtu", OK, f"path MTU {result.path_mtu} (reported by {who}: PMTU discovery works)",
                     evidence)
    if result.verdict == LOCAL_MISMATCH and result.mismatch is not None:
        m = result.mismatch
        return Check("path-mtu", WARN, f"{m.device} mtu {m.mtu} is larger than its underlay carries ({m.max_mtu})",
                     evidence, f"ip link set {m.device} mtu {m.max_mtu}")
    return Check("path-mtu", WARN, f"not measured: {result.verdict}", evidence)

"""`gnt why DEST[:PORT]`: why traffic to a destination fails on this node, in one answer.

The one package that composes other tools: route and neighbour lookups over rtnetlink,
sysctls, the firewall's chain policies (the readers of `gnt.iptrace`), `gnt.conntrack`,
`gnt.iptrace`'s live tracing of exactly the probe's tuple, `gnt.drops` for the kernel's
drop reasons and `gnt.mtu` for black holes and overlay MTUs. No tool imports this package.

Public API (pure logic, never prints; `gnt.output.text.why` renders):

    from gnt.why.diagnose import diagnose, watch
    from gnt.why.models import Query, Check, Verdict

    diagnose(Query(dest, family, proto, port, source, iif, mark), timeout=1.0)
        -> Iterator[Check | Verdict]      # active: the checks in order, the probe, then one Verdict
    watch(query, duration=10.0, stop=None)
        -> Iterator[Check | Verdict]      # passive: sends nothing; traces the matching traffic

The verdict is chosen from the facts the checks gathered by the ordered rules of
`gnt.why.verdict` (RULES, first match wins). Active mode changes nothing but the self-cleaning
trace table and tracing instance while the probe is out; passive mode changes nothing else
either. This module imports only the models, so a renderer importing them stays light.
"""

from gnt.why.models import Check, Query, Verdict

__all__ = ["Check", "Query", "Verdict"]

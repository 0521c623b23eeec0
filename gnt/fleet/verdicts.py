"""How one node's stream is judged, per command: a small judge that sees each object once.

A judge keeps only what its verdict needs (never the stream), so merging thousands of
streams stays flat in memory. `judge_for(meta)` picks the judge from the stream's `meta`
object; a command with no judge here is merged as `unjudged` (listed, never called bad).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(slots=True)
class Sample:
    """One Prometheus sample a judge offers (`gnt/output/prom.py` writes them)."""

    name: str  # gnt_<command>_<what>[_<unit>][_total]
    help: str
    kind: str  # gauge or counter
    value: float
    labels: dict[str, str] = field(default_factory=dict)


class Judge:
    """Base: no opinion until a result object arrives."""

    label = ""  # the command as grouped in the fleet view (set per stream)
    reads: frozenset[str] | None = None  # the object types feed() looks at (None: all of them)

    def __init__(self, meta: Obj) -> None:
        self.label = group_label(meta)
        self.verdict: str | None = None
        self.bad = False
        self.detail = ""
        self.metrics: dict[str, float] = {}
        self.samples: list[Sample] = []
        self.target = _operands([str(a) for a in meta.get("argv") or []])[-1:] or [""]

    def feed(self, obj: Obj) -> None:  # pragma: no cover - overridden
        pass

    def finish(self) -> tuple[str, bool, str]:
        if self.verdict is None:
            return "no result", True, "the stream ends before the command's result (it failed or was cut off)"
        return self.verdict, self.bad, self.detail


def _operands(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith("-")]


def group_label(meta: Obj) -> str:
    """`ping 10.0.0.1`, `vxlan-csum audit`, `conntrack stats`: what nodes are grouped by."""
    words = _operands([str(a) for a in meta.get("argv") or []])
    command = str(meta.get("command") or (words[0] if words else "?"))
    if command in ("vxlan-csum", "conntrack") and len(words) > 1:
        return f"{command} {words[1]}"
    if command in ("ping", "traceroute", "mtu", "why") and len(words) > 1:
        return f"{command} {words[-1]}"
    return command


class PingJudge(Judge):
    reads = frozenset({"summary"})

    def feed(self, obj: Obj) -> None:
        if obj.get("type") != "summary":
            return
        sent, received = int(obj.get("transmitted") or 0), int(obj.get("received") or 0)
        loss = float(obj.get("loss_percent") or 0.0)
        rtt = obj.get("rtt") or {}
        self.metrics = {"transmitted": sent, "received": received, "loss_percent": loss}
        if rtt:
            self.metrics["rtt_avg_ms"] = float(rtt.get("avg") or 0.0)
        if received == 0:
            self.verdict, self.bad = "down", True
        elif loss > 0:
            self.verdict, self.bad = "loss", True
        else:
            self.verdict, self.bad = "ok", False
        avg = f", rtt avg {rtt['avg']} ms" if rtt else ""
        self.detail = f"{received}/{sent} received, {loss:g}% loss{avg}"
        target = {"target": str(obj.get("host") or self.target[0])}
        self.samples = [
            Sample("gnt_ping_packets_sent_total", "Echo requests sent.", "counter", sent, target),
            Sample("gnt_ping_packets_received_total", "Echo replies received (duplicates not counted).",
                   "counter", received, target),
            Sample("gnt_ping_loss_ratio", "Fraction of requests not answered.", "gauge", loss / 100, target),
            Sample("gnt_ping_up", "1 when at least one reply came.", "gauge", 1.0 if received else 0.0, target),
        ]
        for stat in ("min", "avg", "max", "mdev"):
            if rtt and rtt.get(stat) is not None:
                self.samples.append(Sample("gnt_ping_rtt_seconds", "Round-trip time of the replies.", "gauge",
                                           float(rtt[stat]) / 1000, {**target, "stat": stat}))


class TracerouteJudge(Judge):
    reads = frozenset({"summary"})

    def feed(self, obj: Obj) -> None:
        if obj.get("type") != "summary":
            return
        hops = int(obj.get("hops") or 0)
        self.metrics = {"hops": hops, "reached": 1.0 if obj.get("reached") else 0.0}
        target = {"target": str(obj.get("destination") or self.target[0]), "method": str(obj.get("method"))}
        self.samples = [
            Sample("gnt_traceroute_reached", "1 when the destination answered.", "gauge",
                   1.0 if obj.get("reached") else 0.0, target),
            Sample("gnt_traceroute_hops", "Hops to the destination (or probed, when not reached).", "gauge",
                   hops, target),
        ]
        if obj.get("reached"):
            self.verdict, self.bad, self.detail = "ok", False, f"reached in {hops} hops"
        else:
            self.verdict, self.bad, self.detail = "not reached", True, f"not reached after {hops} hops"


class VxlanJudge(Judge):
    reads = frozenset({"finding", "audit", "summary"})

    def __init__(self, meta: Obj) -> None:
        super().__init__(meta)
        self.findings: list[str] = []

    def feed(self, obj: Obj) -> None:
        kind = obj.get("type")
        if kind == "finding" and obj.get("severity") == "high":
            self.findings.append(f"{obj.get('id')} ({obj.get('subject')})")
        elif kind == "audit":
            at_risk = bool(obj.get("at_risk"))
            self.metrics = {"at_risk": 1.0 if at_risk else 0.0, "findings": float(obj.get("findings") or 0)}
            self.verdict, self.bad = ("AT RISK", True) if at_risk else ("ok", False)
            self.detail = ", ".join(self.findings) if self.findings else str(obj.get("verdict") or "")
            self.samples = [
                Sample("gnt_vxlan_csum_at_risk", "1 when the node has the VXLAN checksum bug's conditions.",
                       "gauge", 1.0 if at_risk else 0.0),
                Sample("gnt_vxlan_csum_findings", "Findings of the audit.", "gauge", float(obj.get("findings") or 0)),
            ]
        elif kind == "summary":  # scan
            bad = int(obj.get("checksum_bad") or 0) + int(obj.get("inner_bad") or 0)
            packets = int(obj.get("vxlan_packets") or 0)
            self.metrics = {"vxlan_packets": packets, "checksum_bad": float(obj.get("checksum_bad") or 0),
                            "bug_signature": float(obj.get("bug_signature") or 0)}
            self.verdict, self.bad = ("bad checksums", True) if bad else ("ok", False)
            self.detail = (f"{obj.get('checksum_bad')} bad outer ({obj.get('bug_signature')} 0xffff), "
                           f"{obj.get('inner_bad')} bad inner of {packets} VXLAN packets")
            help_text = "VXLAN packets seen, by outer UDP checksum."
            self.samples = [
                Sample("gnt_vxlan_csum_packets_total", help_text, "counter", float(obj.get(f"checksum_{c}") or 0),
                       {"checksum": c}) for c in ("zero", "ok", "bad", "partial")
            ] + [
                Sample("gnt_vxlan_csum_bug_signature_total", "Outer checksums of 0xffff (the NAT bug's mark).",
                       "counter", float(obj.get("bug_signature") or 0)),
                Sample("gnt_vxlan_csum_inner_bad_total", "Packets with a bad inner checksum.", "counter",
                       float(obj.get("inner_bad") or 0)),
            ]


class ConntrackJudge(Judge):
    reads = frozenset({"stats", "summary"})

    def feed(self, obj: Obj) -> None:
        kind = obj.get("type")
        if kind == "stats":
            names = ("entries", "max_entries", "insert_failed", "drop", "early_drop")
            self.metrics = {n: float(obj[n]) for n in names if isinstance(obj.get(n), (int, float))}
            warnings = obj.get("warnings") or []
            self.verdict, self.bad = ("warning", True) if warnings else ("ok", False)
            fill = f"{obj.get('entries')}/{obj.get('max_entries')} entries"
            self.detail = "; ".join([fill, *map(str, warnings)])
            helps = {"entries": ("gauge", "Entries in the conntrack table."),
                     "max_entries": ("gauge", "nf_conntrack_max."),
                     "insert_failed": ("counter", "Inserts that failed (all CPUs)."),
                     "drop": ("counter", "Packets dropped because an entry could not be made."),
                     "early_drop": ("counter", "Entries dropped to make room.")}
            self.samples = [
                Sample(f"gnt_conntrack_{n}" + ("_total" if kind == "counter" else ""), text, kind, self.metrics[n])
                for n, (kind, text) in helps.items() if n in self.metrics
            ]
        elif kind == "summary":
            if "shown" in obj:
                self.metrics = {"shown": float(obj["shown"]), "scanned": float(obj.get("scanned") or 0)}
                self.verdict, self.bad = ("ok", False) if obj["shown"] else ("none matched", True)
                self.detail = f"{obj['shown']} of {obj.get('scanned')} entries matched"
            else:
                self.metrics = {"events": float(obj.get("events") or 0), "lost": float(obj.get("lost") or 0)}
                self.verdict, self.bad = "ok", False
                self.detail = f"{obj.get('events')} events, {obj.get('lost')} lost"


class DropsJudge(Judge):
    """`gnt drops`: the summary's reasons; any drop matched is a negative result (its exit 1)."""
    reads = frozenset({"summary"})


    def feed(self, obj: Obj) -> None:
        if obj.get("type") != "summary" or "reasons" not in obj:
            return
        reasons = [(str(r.get("reason")), int(r.get("count") or 0)) for r in obj.get("reasons") or []]
        total, lost = int(obj.get("total") or 0), int(obj.get("lost") or 0)
        self.metrics = {"total": float(total), "lost": float(lost), "seconds": float(obj.get("seconds") or 0)}
        self.verdict, self.bad = ("drops", True) if total else ("ok", False)
        self.detail = ", ".join(f"{name} {count}" for name, count in reasons) or f"no drops in {obj.get('seconds')} s"
        self.samples = [
            Sample("gnt_drops_total", "Packets the kernel dropped, by reason (skb:kfree_skb).", "counter", count,
                   {"reason": name}) for name, count in reasons
        ] + [
            Sample("gnt_drops_lost_events_total", "Drop events the trace buffers lost.", "counter", float(lost)),
            Sample("gnt_drops_seconds", "Seconds traced.", "gauge", float(obj.get("seconds") or 0)),
        ]


class MtuJudge(Judge):
    """`gnt mtu`: the `mtu` object's verdict; anything but ok is negative (its exit 1)."""
    reads = frozenset({"mtu"})


    def feed(self, obj: Obj) -> None:
        if obj.get("type") != "mtu":
            return
        verdict = str(obj.get("verdict"))
        path_mtu, local = obj.get("path_mtu"), obj.get("local_mtu")
        self.verdict, self.bad = verdict, verdict != "ok"
        hop = obj.get("hop") or {}
        where = f" at {hop.get('address')}" if hop.get("address") else ""
        self.detail = {
            "ok": f"path MTU {path_mtu} (the local {local} reaches)",
            "pmtu": f"path MTU {path_mtu}{where}, local {local}",
            "black-hole": f"{obj.get('largest_ok')} passes, {obj.get('smallest_lost')} vanishes{where}",
            "local-mismatch": f"{(obj.get('mismatch') or {}).get('device')} MTU {local} over a path of {path_mtu}",
        }.get(verdict, verdict)
        target = {"target": str(obj.get("host") or self.target[0]), "protocol": str(obj.get("protocol"))}
        self.samples = [
            Sample("gnt_mtu_ok", "1 when the local MTU reaches the target.", "gauge", 0.0 if self.bad else 1.0, target),
            Sample("gnt_mtu_local_bytes", "MTU of the device the route leaves through.", "gauge",
                   float(local or 0), target),
        ]
        if path_mtu is not None:
            self.samples.append(Sample("gnt_mtu_path_bytes", "The largest packet that reaches the target.", "gauge",
                                       float(path_mtu), target))
        self.metrics = {s.name: s.value for s in self.samples}


class WhyJudge(Judge):
    """`gnt why`: the verdict's cause (None: the destination answers and nothing is wrong)."""
    reads = frozenset({"verdict"})


    def feed(self, obj: Obj) -> None:
        if obj.get("type") != "verdict":
            return
        cause = obj.get("cause")
        self.verdict, self.bad = ("ok", False) if cause is None else ("cause found", True)
        self.detail = str(cause or "the destination answers") + (f" (fix: {obj['fix']})" if obj.get("fix") else "")
        target = {"target": self.target[0]}
        self.samples = [
            Sample("gnt_why_reachable", "1 when the destination answered the probe.", "gauge",
                   1.0 if obj.get("reachable") else 0.0, target),
            Sample("gnt_why_cause_found", "1 when gnt named a cause.", "gauge", 0.0 if cause is None else 1.0,
                   {**target, "confidence": str(obj.get("confidence"))}),
        ]
        self.metrics = {"reachable": 1.0 if obj.get("reachable") else 0.0}


class UnjudgedJudge(Judge):
    """A command merge has no rule for: listed by its last object's type, never called bad."""

    def feed(self, obj: Obj) -> None:
        self.verdict, self.bad, self.detail = "unjudged", False, f"last object: {obj.get('type')}"


JUDGES: dict[str, type[Judge]] = {
    "ping": PingJudge,
    "traceroute": TracerouteJudge,
    "vxlan-csum": VxlanJudge,
    "conntrack": ConntrackJudge,
    "drops": DropsJudge,
    "mtu": MtuJudge,
    "why": WhyJudge,
}


def judge_for(meta: Obj) -> Judge:
    return JUDGES.get(str(meta.get("command")), UnjudgedJudge)(meta)

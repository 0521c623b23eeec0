"""Reading traces someone already captured: legacy kernel TRACE log lines, `xtables-monitor
--trace` output and `nft monitor trace` output, in any mix, into packets.

nft and xtables-monitor lines carry a trace id; legacy kernel log lines do not, so they are
grouped by packet identity (addresses, protocol, IP ID or flow label, ports, ICMP id/seq)
and interfaces, in order: a step that goes back to an earlier hook, or restarts a chain
already finished, starts a new packet. An inner packet and the outer tunnel packet that
wraps it differ in addresses or protocol and stay apart. Lines that look like trace lines
but do not parse (malformed, truncated) are skipped and counted; other lines are ignored.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from gnt.errors import GntError
from gnt.iptrace.models import KIND_POLICY, KIND_RETURN, KIND_RULE, Filter, Packet, Step, Summary
from gnt.iptrace.nftevents import verdict_name
from gnt.iptrace.nftrules import COUNTER_RE, TABLE_PREFIX
from gnt.iptrace.paths import mark_deciding

LEGACY_RE = re.compile(
    r"TRACE: (?P<table>[a-z_]+):(?P<chain>[^:\s]+):(?P<kind>rule|return|policy):(?P<num>\d+) (?P<rest>.*)$"
)  # kernel log: TRACE: table:chain:kind:rulenum FIELDS
XT_PACKET_RE = re.compile(r"^\s*PACKET: (?P<fam>\d+) (?P<id>[0-9a-f]+) (?P<rest>.*)$")  # xtables-monitor
XT_TRACE_RE = re.compile(
    r"^\s*TRACE: (?P<fam>\d+) (?P<id>[0-9a-f]+) (?P<table>[^:\s]+):(?P<chain>[^:\s]+):"
    r"(?P<kind>rule|return|policy):(?P<tail>\S*)(?:\s+(?P<rule>\S.*?))?\s*$"
)  # xtables-monitor: TRACE: family id table:chain:kind:handle:verdict  rule
XT_RULE_PREFIX_RE = re.compile(r"^-[46] -t \S+ ")  # "-4 -t filter " before the rule spec
NFT_RE = re.compile(
    r"^\s*trace id (?P<id>[0-9a-f]+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) (?P<what>.*?)\s*$"
)  # nft monitor trace
NFT_RULE_RE = re.compile(r"^rule (?P<text>.*?)(?: # handle (?P<handle>\d+))? \(verdict (?P<verdict>[^)]*)\)$")
NFT_UNKNOWN_RULE_RE = re.compile(r"^unknown rule handle (?P<handle>\d+) \(verdict (?P<verdict>[^)]*)\)$")
NFT_MARK = r"(?: meta mark (?P<mark>0x[0-9a-fA-F]+))?"  # nft appends the packet's mark where a rule changed it
NFT_POLICY_RE = re.compile(r"^policy (?P<verdict>\w+)" + NFT_MARK + "$")
NFT_VERDICT_RE = re.compile(r"^verdict (?P<verdict>.+?)" + NFT_MARK + "$")
MARKERS = ("TRACE:", "PACKET:", "trace id ")  # a line holding one of these is meant to be a trace line

BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")  # iptables base chains
HOOK_RANK = {"PREROUTING": 0, "OUTPUT": 0, "INPUT": 1, "FORWARD": 1, "POSTROUTING": 2}  # order along a path
TABLE_RANK = {"raw": 0, "mangle": 1, "nat": 2, "filter": 3, "security": 4}  # order of tables at one hook
XT_FAMILIES = {"2": "ipv4", "10": "ipv6"}  # NFPROTO_IPV4, NFPROTO_IPV6
XT_TABLE_FAMILIES = {"2": "ip", "10": "ip6"}  # the same, as nft names a table's family
TCP_FLAG_WORDS = ("SYN", "ACK", "FIN", "RST", "PSH", "URG")  # flags xtables-monitor prints for TCP
ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "redirect": 5, "echo-request": 8,
              "time-exceeded": 11, "parameter-problem": 12}  # nft names of ICMP types (RFC 792)
ICMPV6_TYPES = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
                "parameter-problem": 4, "echo-request": 128, "echo-reply": 129, "nd-router-solicit": 133,
                "nd-router-advert": 134, "nd-neighbor-solicit": 135,
                "nd-neighbor-advert": 136}  # nft names of ICMPv6 types (RFC 4443, RFC 4861)
ICMP_CODES = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3,
              "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10,
              "admin-prohibited": 13}  # nft names of ICMP codes (RFC 792, RFC 1812)
ICMPV6_CODES = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4,
                "policy-fail": 5, "reject-route": 6}  # nft names of ICMPv6 unreachable codes (RFC 4443)
LEGACY_PROTOS = {"TCP": "tcp", "UDP": "udp", "ICMP": "icmp", "ICMPv6": "ipv6-icmp", "SCTP": "sctp",
                 "UDPLITE": "udplite", "GRE": "gre", "ESP": "esp"}  # PROTO= words of the kernel log


class Malformed(ValueError):
    """A trace line that does not parse."""


MAX_LINE = 1 << 16  # characters of one log line read at most (trace lines are well under 4 KiB)
MAX_DISCARD = 16 << 20  # characters without a line end after which the input is no log
MAX_NUMBER_DIGITS = 20  # no field of a trace line needs more (a 64-bit value); longer is damage


def _number(text: str, base: int = 10) -> int:
    """A number field of a trace line; Malformed when it is not one (MARK=zz, 0xzz, 4,400 digits)."""
    digits = text[2:] if base == 16 and text[:2].lower() == "0x" else text
    if not digits or len(digits) > MAX_NUMBER_DIGITS:
        raise Malformed(f"not a number: {text[:40]!r}")
    try:
        return int(digits, base)
    except ValueError:
        raise Malformed(f"not a number: {text[:40]!r}") from None


# ---------------------------------------------------------------- legacy kernel log lines


@dataclass(slots=True)
class LegacyLine:
    table: str
    chain: str
    kind: str
    rulenum: int
    iif: str
    oif: str
    fields: dict[str, str]  # IP-level KEY=VALUE before PROTO=
    l4: dict[str, str]  # after PROTO=
    flags: list[str] = field(default_factory=list)
    mark: int | None = None  # MARK=, hex in the log (read once, here)

    @property
    def family(self) -> str:
        return "ipv6" if ":" in self.fields.get("SRC", "") else "ipv4"

    def identity(self) -> tuple[object, ...]:
        f, l4 = self.fields, self.l4
        ident = f.get("ID") if self.family == "ipv4" else f.get("FLOWLBL")
        return (f.get("SRC"), f.get("DST"), f.get("PROTO"), ident, l4.get("SPT"), l4.get("DPT"), l4.get("ID"),
                l4.get("SEQ"))


def parse_legacy(line: str) -> LegacyLine | None:
    """A kernel TRACE line (any syslog/dmesg prefix); None if not one; Malformed if broken."""
    if "TRACE:" not in line:
        return None
    m = LEGACY_RE.search(line.rstrip())
    if m is None:
        if XT_TRACE_RE.match(line):
            return None
        raise Malformed("not a TRACE line")
    fields: dict[str, str] = {}
    l4: dict[str, str] = {}
    flags: list[str] = []
    target = fields
    for token in m.group("rest").split():
        key, sep, value = token.partition("=")
        if not sep:
            flags.append(token)
            continue
        if key == "PROTO":
            fields["PROTO"] = value
            target = l4
            continue
        target.setdefault(key, value)
    if "SRC" not in fields or "DST" not in fields or "PROTO" not in fields or "IN" not in fields \
            or "OUT" not in fields:
        raise Malformed("TRACE line without IN/OUT/SRC/DST/PROTO (truncated?)")
    if fields["PROTO"] in ("TCP", "UDP", "SCTP", "UDPLITE") and ("SPT" not in l4 or "DPT" not in l4):
        raise Malformed("TRACE line without ports (truncated?)")
    mark_text = l4.get("MARK") or fields.get("MARK")
    # read here: a broken mark is a broken line, not an error later
    mark = _number(mark_text, 16) if mark_text is not None else None
    return LegacyLine(table=m.group("table"), chain=m.group("chain"), kind=m.group("kind"),
                      rulenum=_number(m.group("num")), iif=fields.get("IN", ""), oif=fields.get("OUT", ""),
                      fields=fields, l4=l4, flags=flags, mark=mark)


def legacy_summary(line: LegacyLine) -> Summary:
    f, l4 = line.fields, line.l4
    proto_word = f.get("PROTO", "")
    summary = Summary(family=line.family, iif=line.iif or None, oif=line.oif or None,
                      src=_address(f.get("SRC")), dst=_address(f.get("DST")),
                      proto=LEGACY_PROTOS.get(proto_word, proto_word.lower() or None))
    summary.length = _int(f.get("LEN"))
    summary.ip_id = _int(f.get("ID")) if line.family == "ipv4" else None
    summary.sport, summary.dport = _int(l4.get("SPT")), _int(l4.get("DPT"))
    summary.icmp_type, summary.icmp_code = _int(l4.get("TYPE")), _int(l4.get("CODE"))
    summary.mark = line.mark
    return summary


def _address(text: str | None) -> str | None:
    """The kernel logs IPv6 addresses in full (2001:0db8:0001:...); show them compressed."""
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


def _int(text: str | None) -> int | None:
    """An optional number field; None when absent or not a number."""
    if text is None:
        return None
    try:
        return _number(text, 16) if text.startswith("0x") else _number(text)
    except Malformed:
        return None


RuleLookup = Callable[[str, str, str, int], "tuple[str | None, str | None]"]  # (family, table, chain, n)
PolicyLookup = Callable[[str, str, str], "str | None"]  # (family, table, chain) -> policy verdict


@dataclass
class _Group:
    key: tuple[object, ...]
    packet: Packet
    iif: str
    oif: str
    position: tuple[int, int]
    last_chain: tuple[str, str]
    last_kind: str
    last_rulenum: int
    last_seen: float = 0.0


class LegacyGrouper:
    """Groups legacy TRACE lines into packets by identity and order along the hooks."""

    def __init__(self, rules: RuleLookup | None = None, policies: PolicyLookup | None = None) -> None:
        self.rules = rules
        self.policies = policies
        self.open: list[_Group] = []
        self.counter = 0

    def _position(self, line: LegacyLine, current: tuple[int, int] | None) -> tuple[int, int]:
        if line.chain in HOOK_RANK:
            return (HOOK_RANK[line.chain], TABLE_RANK.get(line.table, 3))
        return current if current is not None else (0, 0)

    def _fits(self, group: _Group, line: LegacyLine) -> bool:
        if group.key != line.identity():
            return False
        if line.iif and group.iif and line.iif != group.iif:
            return False
        if line.oif and group.oif and line.oif != group.oif:
            return False
        if self._position(line, group.position) < group.position:
            return False
        same_chain = group.last_chain == (line.table, line.chain)
        return not (same_chain and (group.last_kind == KIND_POLICY
                                    or (line.kind == KIND_RULE and group.last_kind == KIND_RULE
                                        and line.rulenum <= group.last_rulenum)))

    def feed(self, line: LegacyLine, now: float = 0.0) -> None:
        group = next((g for g in reversed(self.open) if self._fits(g, line)), None)
        if group is None:
            self.counter += 1
            packet = Packet(id=str(self.counter), summary=legacy_summary(line))
            group = _Group(key=line.identity(), packet=packet,
                           iif=line.iif, oif=line.oif, position=self._position(line, None),
                           last_chain=("", ""), last_kind="", last_rulenum=0)
            self.open.append(group)
        group.iif = group.iif or line.iif
        group.oif = line.oif or group.oif
        summary = group.packet.summary
        summary.iif = summary.iif or line.iif or None
        summary.oif = line.oif or summary.oif
        if line.mark is not None:
            summary.mark = line.mark
        group.position = self._position(line, group.position)
        group.last_chain = (line.table, line.chain)
        group.last_kind, group.last_rulenum = line.kind, line.rulenum
        group.last_seen = now
        step = Step(table=line.table, chain=line.chain, kind=line.kind, rulenum=line.rulenum,
                    family="ip6" if line.family == "ipv6" else "ip")
        if line.kind == KIND_RETURN:
            step.verdict = "return"
            step.rulenum = None
        elif line.kind == KIND_POLICY:
            step.rulenum = None
            if self.policies is not None:
                step.verdict = self.policies(summary.family or "ipv4", line.table, line.chain)
        elif self.rules is not None:
            family = summary.family or "ipv4"
            step.rule, step.verdict = self.rules(family, line.table, line.chain, line.rulenum)
        group.packet.steps.append(step)

    def expire(self, now: float, idle: float) -> list[Packet]:
        done = [g for g in self.open if now - g.last_seen >= idle]
        self.open = [g for g in self.open if now - g.last_seen < idle]
        return [finish_legacy(g.packet) for g in done]

    def drain(self) -> list[Packet]:
        done, self.open = self.open, []
        return [finish_legacy(g.packet) for g in done]


def finish_legacy(packet: Packet) -> Packet:
    """Infer what the log leaves out (a rule followed by a step in a user chain jumped there)."""
    callers: list[str] = []
    for here, after in itertools.pairwise(packet.steps):
        if here.kind != KIND_RULE or here.verdict is not None or after.table != here.table \
                or after.chain == here.chain:
            continue
        if after.chain not in BUILTIN_CHAINS and after.chain not in callers:
            here.verdict = f"jump {after.chain}"
            callers.append(here.chain)
        elif here.chain not in BUILTIN_CHAINS and callers and after.chain == callers[-1]:
            here.verdict = "return"  # no "return" line in between: the rule itself returned
            callers.pop()
    return mark_deciding(packet)


# ---------------------------------------------------------------- xtables-monitor --trace


def _xt_verdict(tail: str) -> str | None:
    parts = tail.split(":", 1)
    word = parts[0]
    if word.startswith("0x"):
        value = _number(word, 16)
        if value >= 1 << 32:
            raise Malformed("verdict code wider than 32 bits")
        return verdict_name(value - (1 << 32) if value >= 1 << 31 else value)
    name = word.lower()
    if name in ("jump", "goto") and len(parts) > 1:
        return f"{name} {parts[1]}"
    return name or None


def xt_step(m: re.Match[str]) -> Step:
    kind, tail = m.group("kind"), m.group("tail")
    step = Step(table=m.group("table"), chain=m.group("chain"), kind=kind,
                family=XT_TABLE_FAMILIES.get(m.group("fam")))
    if kind == KIND_RULE:
        handle, _, verdict = tail.partition(":")
        if not handle.startswith("0x") or not verdict:
            raise Malformed("xtables-monitor rule without handle:verdict")
        step.handle = _number(handle, 16)
        step.verdict = _xt_verdict(verdict)
        rule = m.group("rule")
        step.rule = XT_RULE_PREFIX_RE.sub("", rule) if rule else None
    elif kind == KIND_POLICY:
        step.verdict = _xt_verdict(tail)
    else:
        step.verdict = "return"
    return step


def xt_summary(fam: str, rest: str, summary: Summary) -> None:
    fields: dict[str, str] = {}
    flags: list[str] = []
    for token in rest.split():
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key, value)
        else:
            flags.append(token)
    summary.family = XT_FAMILIES.get(fam, summary.family)
    summary.iif = summary.iif or fields.get("IN") or None
    summary.oif = fields.get("OUT") or summary.oif
    summary.src = summary.src or fields.get("SRC")
    summary.dst = summary.dst or fields.get("DST")
    summary.length = summary.length or _int(fields.get("LEN"))
    if summary.family == "ipv4":
        summary.ip_id = summary.ip_id if summary.ip_id is not None else _int(fields.get("ID"))
    summary.sport = summary.sport or _int(fields.get("SPORT"))
    summary.dport = summary.dport or _int(fields.get("DPORT"))
    if any(f in TCP_FLAG_WORDS for f in flags):
        summary.proto = "tcp"
    if "MARK" in fields:
        summary.mark = _int(fields["MARK"])


# ---------------------------------------------------------------- nft monitor trace


def nft_summary(family: str, text: str, summary: Summary) -> None:
    def grab(pattern: str) -> str | None:
        m = re.search(pattern, text)
        return m.group(1) if m else None

    iif, oif = grab(r'\biif "([^"]+)"'), grab(r'\boif "([^"]+)"')
    summary.iif = summary.iif or iif
    summary.oif = oif or summary.oif
    src6, dst6 = grab(r"\bip6 saddr (\S+)"), grab(r"\bip6 daddr (\S+)")
    if src6 or dst6:
        summary.family = "ipv6"
        summary.src, summary.dst = summary.src or src6, summary.dst or dst6
        length = grab(r"\bip6 length (\d+)")
        if length and summary.length is None:
            summary.length = int(length) + 40
        summary.proto = summary.proto or grab(r"\bip6 nexthdr (\S+)")
    else:
        src, dst = grab(r"\bip saddr (\S+)"), grab(r"\bip daddr (\S+)")
        if src or dst:
            summary.family = "ipv4"
            summary.src, summary.dst = summary.src or src, summary.dst or dst
        ip_id = grab(r"\bip id (\d+)")
        summary.ip_id = summary.ip_id if summary.ip_id is not None else _int(ip_id)
        summary.length = summary.length or _int(grab(r"\bip length (\d+)"))
        summary.proto = summary.proto or grab(r"\bip protocol (\S+)")
    l4 = re.search(r"\b(tcp|udp|sctp|dccp|udplite) sport (\d+)", text)
    if l4:
        summary.proto = summary.proto or l4.group(1)
        summary.sport = int(l4.group(2))
        summary.dport = _int(grab(rf"\b{l4.group(1)} dport (\d+)"))
    icmp = re.search(r"\b(icmp|icmpv6) type (\S+)", text)
    if icmp:
        summary.proto = summary.proto or ("icmp" if icmp.group(1) == "icmp" else "ipv6-icmp")
        if summary.proto == "icmpv6":
            summary.proto = "ipv6-icmp"
        names = ICMP_TYPES if icmp.group(1) == "icmp" else ICMPV6_TYPES
        summary.icmp_type = names.get(icmp.group(2), _int(icmp.group(2)))
        code = grab(rf"\b{icmp.group(1)} code (\S+)")
        if code is not None:
            codes = ICMP_CODES if icmp.group(1) == "icmp" else ICMPV6_CODES
            summary.icmp_code = codes.get(code, _int(code))
    mark = grab(r"\bmeta mark (0x[0-9a-f]+)")
    if mark:
        summary.mark = int(mark, 16)


def nft_step(m: re.Match[str]) -> Step | None:
    """The step of an nft monitor line, None for packet/conntrack lines; Malformed if unreadable."""
    what = m.group("what")
    step = Step(table=m.group("table"), chain=m.group("chain"), kind=KIND_RULE, family=m.group("family"))
    if what.startswith(("packet:", "conntrack:")):
        return None
    if (r := NFT_RULE_RE.match(what)) is not None:
        step.rule = COUNTER_RE.sub("counter", r.group("text")).strip() or None
        step.handle = _number(r.group("handle")) if r.group("handle") else None
        step.verdict = r.group("verdict")
    elif (r := NFT_UNKNOWN_RULE_RE.match(what)) is not None:
        step.handle = _number(r.group("handle"))
        step.verdict = r.group("verdict")
    elif (r := NFT_POLICY_RE.match(what)) is not None:
        step.kind = KIND_POLICY
        step.verdict = r.group("verdict")
    elif (r := NFT_VERDICT_RE.match(what)) is not None:
        step.verdict = r.group("verdict")
        if step.verdict == "return":
            step.kind = KIND_RETURN
    else:
        raise Malformed("unreadable nft trace line")
    return step


def nft_step_mark(m: re.Match[str]) -> int | None:
    """The packet mark a policy or verdict line reports (`... meta mark 0x00000042`), if any."""
    r = NFT_POLICY_RE.match(m.group("what")) or NFT_VERDICT_RE.match(m.group("what"))
    return _number(r.group("mark"), 16) if r is not None and r.group("mark") else None


# ---------------------------------------------------------------- any mix


@dataclass
class LogReader:
    """Feeds lines of any supported format; `packets()` yields every packet, in order of first line.

    The kernel reuses trace ids (they come from the skb's hash, the same for a whole flow), so
    one id may carry several packets in turn. As live tracing does (paths.NftTracker), a new
    packet starts where the IPv4 ID changes, where gnt's own trace chain sees the id again after
    it finished, and (xtables-monitor) where the path goes back to an earlier hook.
    """

    hide_prefix: str = TABLE_PREFIX
    skipped: int = 0  # trace lines that did not parse
    ignored: int = 0  # lines of no trace format (other syslog content, blank lines)
    skipped_lines: list[int] = field(default_factory=list)  # line numbers skipped (first 100)
    _order: list[tuple[str, object]] = field(default_factory=list)
    _keyed: dict[tuple[str, str], Packet] = field(default_factory=dict)  # (source, id) -> its current packet
    _passed_own: set[tuple[str, str]] = field(default_factory=set)  # ids whose packet passed gnt's own chain
    _position: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # xt: last hook/table rank
    _legacy: LegacyGrouper = field(default_factory=LegacyGrouper)
    _lineno: int = 0

    def _new_packet(self, key: tuple[str, str]) -> Packet:
        packet = Packet(id=key[1], summary=Summary())
        self._keyed[key] = packet
        self._passed_own.discard(key)
        self._position.pop(key, None)
        self._order.append(("keyed", packet))
        return packet

    def _keyed_packet(self, source: str, trace_id: str) -> Packet:
        packet = self._keyed.get((source, trace_id))
        return packet if packet is not None else self._new_packet((source, trace_id))

    def _packet_line(self, key: tuple[str, str], fill: Callable[[Summary], None]) -> None:
        """A line describing the packet: a different IPv4 ID under the same id is another packet."""
        seen = Summary()
        fill(seen)
        packet = self._keyed.get(key)
        if packet is None or (seen.ip_id is not None and packet.summary.ip_id is not None
                              and seen.ip_id != packet.summary.ip_id):
            packet = self._new_packet(key)
        fill(packet.summary)

    def _skip(self) -> None:
        self.skipped += 1
        if len(self.skipped_lines) < 100:
            self.skipped_lines.append(self._lineno)

    def feed(self, line: str) -> None:
        self._lineno += 1
        try:
            self._feed(line)
        except ValueError:  # Malformed, and any value a line holds that does not convert
            self._skip()

    def _feed(self, line: str) -> None:
        if (m := NFT_RE.match(line)) is not None:
            key = ("nft", m.group("id"))
            step = nft_step(m)  # before the packet exists: a malformed line makes none
            mark = nft_step_mark(m) if step is not None else None
            if m.group("what").startswith("packet:"):
                family, what = m.group("family"), m.group("what")
                if m.group("table").startswith(self.hide_prefix) and key in self._passed_own:
                    self._new_packet(key)  # gnt's own chain again: the next packet of this id
                self._packet_line(key, lambda summary: nft_summary(family, what, summary))
                return
            if step is None:
                self._keyed_packet(*key)
                return
            if step.table.startswith(self.hide_prefix):
                if step.kind == KIND_POLICY:
                    self._passed_own.add(key)
                elif step.kind == KIND_RULE and key in self._passed_own:
                    self._new_packet(key)  # gnt's own chain again: the next packet of this id
                else:
                    self._keyed_packet(*key)
                return
            packet = self._keyed_packet(*key)
            if mark is not None:
                packet.summary.mark = mark
            packet.steps.append(step)
            return
        if (m := XT_PACKET_RE.match(line)) is not None:
            fam, rest = m.group("fam"), m.group("rest")
            self._packet_line(("xt", m.group("id")), lambda summary: xt_summary(fam, rest, summary))
            return
        if (m := XT_TRACE_RE.match(line)) is not None:
            step = xt_step(m)
            key = ("xt", m.group("id"))
            packet = self._keyed_packet(*key)
            if step.chain in HOOK_RANK:
                position = (HOOK_RANK[step.chain], TABLE_RANK.get(step.table, 3))
                if position < self._position.get(key, position):
                    packet = self._new_packet(key)  # back to an earlier hook: the next packet of this id
                self._position[key] = position
            packet.summary.family = packet.summary.family or XT_FAMILIES.get(m.group("fam"))
            packet.steps.append(step)
            return
        legacy = parse_legacy(line)
        if legacy is not None:
            before = len(self._legacy.open) + len(self._order)
            self._legacy.feed(legacy)
            if len(self._legacy.open) + len(self._order) > before:
                self._order.append(("legacy", self._legacy.open[-1]))
            return
        if any(marker in line for marker in MARKERS):
            raise Malformed("trace marker in an unreadable line")
        self.ignored += 1

    def read(self, stream: TextIO, name: str) -> None:
        """Every line of `stream`, each read up to MAX_LINE characters: a longer line is skipped
        and counted; a run of more than MAX_DISCARD characters without a line end is no log at
        all (a device, a binary file) and stops the reading with an error."""
        while True:
            line = stream.readline(MAX_LINE)
            if not line:
                return
            if len(line) < MAX_LINE or line.endswith("\n"):
                self.feed(line)
                continue
            discarded = len(line)
            while not line.endswith("\n"):
                line = stream.readline(MAX_LINE)
                if not line:
                    break
                discarded += len(line)
                if discarded > MAX_DISCARD:
                    raise GntError(f"{name} is not a trace log: more than {MAX_DISCARD // (1 << 20)} MiB "
                                   "without a line end", "give a text log (kernel log, nft monitor trace, "
                                   "xtables-monitor --trace output)")
            self._lineno += 1
            self._skip()

    def packets(self) -> Iterator[Packet]:
        for kind, item in self._order:
            if kind == "keyed":
                assert isinstance(item, Packet)
                yield mark_deciding(item)
            else:
                yield finish_legacy(item.packet)  # type: ignore[attr-defined]


def read_lines(lines: Iterable[str]) -> LogReader:
    reader = LogReader()
    for line in lines:
        reader.feed(line)
    return reader


def summary_matches(flt: Filter, summary: Summary) -> bool:
    """Whether a packet read from a log is one the (validated) filter asks for; unknown fields match."""
    if flt.family is not None and summary.family is not None and summary.family != f"ipv{flt.family}":
        return False
    for want, have in ((flt.src, summary.src), (flt.dst, summary.dst)):
        if want is None:
            continue
        try:
            if have is None or ipaddress.ip_address(have) not in ipaddress.ip_network(want, strict=False):
                return False
        except ValueError:
            return False
    if flt.proto is not None and summary.proto is not None and summary.proto != flt.proto \
            and not (flt.proto == "icmp" and summary.proto == "ipv6-icmp"):
        return False
    if flt.sport is not None and summary.sport != flt.sport:
        return False
    if flt.dport is not None and summary.dport != flt.dport:
        return False
    return not (flt.iif is not None and summary.iif != flt.iif)

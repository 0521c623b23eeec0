"""`gnt vxlan-csum audit`: the node conditions behind bad VXLAN checksums, each a finding with a fix.

The bug (kernel commit "netfilter: nat: never update the UDP checksum when it's 0", Linux 5.7 and
stable 5.6.13 / 5.4.41 / 4.19.123 / 4.14.181): kube-proxy marks Service traffic 0x4000 for
masquerading; the mark survives VXLAN encapsulation, so the *outer* UDP packet is masqueraded too;
`--random-fully` rewrites its source port; NAT then "incrementally updates" a UDP checksum that
was 0 (VXLAN sends none by default), and with tx checksum offload (CHECKSUM_PARTIAL) a wrong
non-zero checksum goes on the wire. Receivers drop the packets: a SYN gets through after 63 s.
Workarounds: `ethtool -K flannel.1 tx-checksum-ip-generic off`, or clearing the mark before
MASQUERADE (kubernetes PR 92035: RETURN when unmarked, then MARK --xor-mark 0x4000).

Checks (ids are stable, scripts can rely on them):
  vxlan-tx-csum-offload                   a VXLAN device sends no UDP checksum, tx offload on
  masquerade-random-fully-without-unmark  marked traffic MASQUERADEd --random-fully, mark kept
  kernel-nat-udp-csum-bug                 the kernel predates the fix
  lro-on-forwarding-nic                   IP forwarding on and a NIC has LRO on
  udp-in-csum-errors                      Udp InCsumErrors non-zero or growing
The node is at risk (exit 1) when the first two hold together, or either of the last two holds.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import dataclass

from gnt.vxlan.models import SEVERITY_HIGH, SEVERITY_ORDER, SEVERITY_WARNING, AuditSummary, Finding
from gnt.vxlan.node import NodeFacts, RuleDump, gather, udp_csum_errors

CHECK_OFFLOAD = "vxlan-tx-csum-offload"  # finding ids: stable, scripts match on them
CHECK_MASQ = "masquerade-random-fully-without-unmark"  # finding id
CHECK_KERNEL = "kernel-nat-udp-csum-bug"  # finding id
CHECK_LRO = "lro-on-forwarding-nic"  # finding id
CHECK_CSUM_ERRORS = "udp-in-csum-errors"  # finding id
CHECKS = (CHECK_OFFLOAD, CHECK_MASQ, CHECK_KERNEL, CHECK_LRO, CHECK_CSUM_ERRORS)  # in report order

FIRST_FIXED = (5, 7)  # mainline release with the fix
FIXED_STABLE = {(5, 6): 13, (5, 4): 41, (4, 19): 123, (4, 14): 181}  # stable series -> first fixed patch level
VENDOR_HINTS = ("el7", "el8", "el9", "amzn", "azure", "aws", "gke", "ubuntu", "generic", "oracle", "uek",
                "suse", "cos")  # release-string markers of vendor kernels (which backport fixes)
TX_CSUM_PREFIX = "tx-checksum-"  # ethtool names of the tx checksum offload features
LRO = "large-receive-offload"  # ethtool name of LRO
SNMP_FILES = {"Udp": "/proc/net/snmp", "Udp6": "/proc/net/snmp6"}  # where each counter is read


# --- the kernel -------------------------------------------------------------------------------------

def kernel_version(release: str) -> tuple[int, int, int] | None:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def kernel_has_fix(release: str) -> bool | None:
    """True if the release's upstream version carries the fix, False if not, None if unparseable."""
    v = kernel_version(release)
    if v is None:
        return None
    if v[:2] >= FIRST_FIXED:
        return True
    fixed_patch = FIXED_STABLE.get(v[:2])
    return fixed_patch is not None and v[2] >= fixed_patch


# --- NAT rules ---------------------------------------------------------------------------------------

@dataclass
class MasqRule:
    family: str
    tool: str  # command that edits the rules ("iptables", "nft", ...)
    table: str
    chain: str
    position: int  # 1-based rule number in the chain (iptables) or the rule handle (nft)
    text: str  # the rule as dumped
    mark: int
    replacement: str | None  # iptables: the rule spec without its mark match, for `-R`


def _mark_spec(value: str) -> tuple[int, int]:
    v, _, m = value.partition("/")
    return int(v, 0), int(m, 0) if m else 0xFFFFFFFF


def _clears(rule: list[str], bits: int) -> bool:
    """Does an iptables rule (tokens) clear any of `bits` of the packet mark?"""
    if "MARK" not in rule or "-j" not in rule:
        return False
    for opt, arg in itertools.pairwise(rule):
        if opt == "--set-xmark":
            value, mask = _mark_spec(arg)  # new = (old & ~mask) ^ value
            if mask == 0 and value & bits:
                return True  # --xor-mark: the bits are known set here (unmarked traffic returned)
            if mask & bits and not value & bits:
                return True  # --and-mark / --set-mark clearing them
        elif opt == "--xor-mark":
            if int(arg, 0) & bits:
                return True
        elif opt == "--and-mark":
            if not int(arg, 0) & bits:
                return True
        elif opt == "--set-mark" and not _mark_spec(arg)[0] & bits:
            return True
    return False


def _mark_match(rule: list[str]) -> tuple[int, bool] | None:
    """(bits, negated) of a `-m mark [!] --mark V/M` match in a rule, if any."""
    for i, tok in enumerate(rule):
        if tok == "--mark" and i + 1 < len(rule):
            value, mask = _mark_spec(rule[i + 1])
            return value & mask or mask, i > 0 and rule[i - 1] == "!"
    return None


def _without_mark_match(rule: list[str]) -> list[str]:
    """The rule's tokens with its `-m mark [!] --mark X` match removed."""
    out: list[str] = []
    i = 0
    while i < len(rule):
        if rule[i] == "-m" and i + 1 < len(rule) and rule[i + 1] == "mark":
            j = i + 2
            if j < len(rule) and rule[j] == "!":
                j += 1
            if j + 1 < len(rule) and rule[j] == "--mark":
                i = j + 2
                continue
        out.append(rule[i])
        i += 1
    return out


def iptables_masq_rules(dump: RuleDump) -> list[MasqRule]:
    """MASQUERADE --random-fully rules of marked traffic with no earlier rule clearing the mark."""
    found: list[MasqRule] = []
    table = ""
    chains: dict[str, list[list[str]]] = {}
    for line in dump.text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
            chains = {}
            continue
        if table != "nat" or not line.startswith("-A "):
            continue
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        chain = tokens[1]
        earlier = chains.setdefault(chain, [])
        earlier.append(tokens)
        if "MASQUERADE" not in tokens or "--random-fully" not in tokens:
            continue
        match = _mark_match(tokens)
        bits: int | None = None
        if match is not None and not match[1]:
            bits = match[0]  # the rule itself selects marked traffic
        else:
            for prev in earlier[:-1]:
                m = _mark_match(prev)
                if m is not None and m[1] and "RETURN" in prev:
                    bits = m[0]  # unmarked traffic returned earlier: only marked traffic gets here
        if bits is None:
            continue
        if any(_clears(prev, bits) for prev in earlier[:-1]):
            continue
        replacement = shlex.join(_without_mark_match(tokens)[2:]) if match is not None else None
        found.append(MasqRule(dump.family, dump.tool, "nat", chain, len(earlier), line[3:], bits, replacement))
    return found


def _nft_mark_match(expr: list[dict[str, object]]) -> tuple[int, str] | None:
    for e in expr:
        match = e.get("match") if isinstance(e, dict) else None
        if not isinstance(match, dict):
            continue
        left, right, op = match.get("left"), match.get("right"), match.get("op")
        if isinstance(left, dict) and "&" in left and isinstance(right, int):
            parts = left["&"]
            if (isinstance(parts, list) and len(parts) == 2 and parts[0] == {"meta": {"key": "mark"}}
                    and isinstance(parts[1], int)):
                return parts[1], str(op)
        if left == {"meta": {"key": "mark"}} and isinstance(right, int):
            return right, str(op)
    return None


def _nft_clears_mark(expr: list[dict[str, object]]) -> bool:
    for e in expr:
        mangle = e.get("mangle") if isinstance(e, dict) else None
        if isinstance(mangle, dict) and mangle.get("key") == {"meta": {"key": "mark"}}:
            return True
    return False


def _nft_random_fully(expr: list[dict[str, object]]) -> bool:
    for e in expr:
        masq = e.get("masquerade", -1) if isinstance(e, dict) else -1
        if masq == -1:
            continue
        flags = masq.get("flags") if isinstance(masq, dict) else None
        if flags == "fully-random" or (isinstance(flags, list) and "fully-random" in flags):
            return True
    return False


def nft_masq_rules(text: str) -> list[MasqRule]:
    """The same check on native nftables rules (`nft -j list ruleset`)."""
    try:
        items = json.loads(text).get("nftables", [])
    except (ValueError, AttributeError):
        return []
    found: list[MasqRule] = []
    earlier: dict[tuple[str, str, str], list[list[dict[str, object]]]] = {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
        expr = rule.get("expr") or []
        prev = earlier.setdefault(key, [])
        prev.append(expr)
        if not _nft_random_fully(expr):
            continue
        match = _nft_mark_match(expr)
        bits = match[0] if match is not None and match[1] == "==" else None
        if bits is None:
            for p in prev[:-1]:
                m = _nft_mark_match(p)
                if m is not None and m[1] == "!=" and any("return" in e for e in p if isinstance(e, dict)):
                    bits = m[0]
        if bits is None or _nft_clears_mark(expr) or any(_nft_clears_mark(p) for p in prev[:-1]):
            continue
        family, table, chain = key
        found.append(MasqRule(family, "nft", table, chain, int(rule.get("handle", 0)),
                              f"handle {rule.get('handle')}: meta mark {bits:#x} -> masquerade fully-random",
                              bits, None))
    return found


def masq_fix(rule: MasqRule) -> str:
    """The exact commands that clear the mark before the MASQUERADE (kubernetes PR 92035's rules)."""
    m = f"{rule.mark:#x}"
    if rule.tool == "nft":
        where = f"{rule.family} {rule.table} {rule.chain}"
        return (f"nft insert rule {where} handle {rule.position} meta mark and {m} == {m} "
                f"meta mark set meta mark xor {m} masquerade fully-random && "
                f"nft delete rule {where} handle {rule.position}")
    tool = f"{rule.tool} -t {rule.table}"
    n = rule.position
    cmds = [
        f"{tool} -I {rule.chain} {n} -m mark ! --mark {m}/{m} -j RETURN",
        f"{tool} -I {rule.chain} {n + 1} -j MARK --xor-mark {m}",
    ]
    if rule.replacement is not None:
        cmds.append(f"{tool} -R {rule.chain} {n + 2} {rule.replacement}")
    return " && ".join(cmds)


# --- the audit ---------------------------------------------------------------------------------------

def evaluate(facts: NodeFacts, errors_after: dict[str, int] | None = None) -> tuple[list[Finding], AuditSummary]:
    """Judge gathered facts. Pure: unit tests feed it facts of their own."""
    findings: list[Finding] = []
    offload: list[Finding] = []
    for dev in facts.vxlan:
        if dev.sends_checksum:
            continue
        on = sorted(n for n, active in dev.features.items() if n.startswith(TX_CSUM_PREFIX) and active)
        if not on:
            continue
        mode = "noudpcsum" if dev.family == 4 else "udp6zerocsumtx"
        offload.append(Finding(
            id=CHECK_OFFLOAD, severity=SEVERITY_WARNING, subject=dev.name,
            evidence=(f"{dev.name} is a VXLAN device (dstport {dev.port}, IPv{dev.family} underlay) sending "
                      f"UDP checksum 0 ({mode}) with tx checksum offload on ({', '.join(n + ': on' for n in on)})"),
            fix=f"ethtool -K {dev.name} {' '.join(n + ' off' for n in on)}",
        ))
    masq: list[Finding] = []
    seen: set[tuple[str, str, str, str]] = set()
    rules: list[MasqRule] = []
    for dump in facts.rules:
        rules.extend(iptables_masq_rules(dump))
    if facts.nft_json:
        rules.extend(nft_masq_rules(facts.nft_json))
    for r in rules:
        key = (r.family, r.table, r.chain, r.text)
        if key in seen:
            continue
        seen.add(key)
        masq.append(Finding(
            id=CHECK_MASQ, severity=SEVERITY_WARNING, subject=f"{r.tool} {r.table}/{r.chain} rule {r.position}",
            evidence=(f"{r.family} rule `{r.text}` MASQUERADEs --random-fully traffic marked {r.mark:#x} and no "
                      "earlier rule clears the mark, so VXLAN packets that inherit it are masqueraded again"),
            fix=masq_fix(r),
        ))
    both = bool(offload and masq)
    for f in offload + masq:
        if both:
            f.severity = SEVERITY_HIGH
    findings.extend(offload)
    findings.extend(masq)

    fixed = kernel_has_fix(facts.kernel)
    if fixed is False:
        vendor = any(h in facts.kernel.lower() for h in VENDOR_HINTS)
        note = (" This looks like a vendor kernel: check its changelog for \"netfilter: nat: never update the "
                "UDP checksum when it's 0\" (vendors backport it)." if vendor else "")
        findings.append(Finding(
            id=CHECK_KERNEL, severity=SEVERITY_HIGH if both else SEVERITY_WARNING, subject=f"kernel {facts.kernel}",
            evidence=(f"kernel {facts.kernel} predates the NAT UDP checksum fix (Linux 5.7; stable 5.6.13, "
                      f"5.4.41, 4.19.123, 4.14.181).{note}"),
            fix=("upgrade to a fixed kernel (>= 5.7, or 5.4.41 / 4.19.123 / 4.14.181 in those series) and reboot; "
                 "until then apply the fixes of vxlan-tx-csum-offload and masquerade-random-fully-without-unmark"),
        ))

    lro_findings: list[Finding] = []
    forwarding = [f for f, on in (("net.ipv4.ip_forward", facts.ip_forward),
                                  ("net.ipv6.conf.all.forwarding", facts.ipv6_forwarding)) if on]
    if forwarding:
        for name, feats in sorted(facts.features.items()):
            if feats.get(LRO):
                lro_findings.append(Finding(
                    id=CHECK_LRO, severity=SEVERITY_HIGH, subject=name,
                    evidence=(f"{' and '.join(f + ' = 1' for f in forwarding)} and {name} has {LRO} on: "
                              "merged packets are too large to forward and are dropped"),
                    fix=f"ethtool -K {name} lro off",
                ))
    findings.extend(lro_findings)

    after = errors_after if errors_after is not None else facts.udp_csum_errors
    csum_findings: list[Finding] = []
    for proto in sorted(set(facts.udp_csum_errors) | set(after)):
        before_n = facts.udp_csum_errors.get(proto, 0)
        after_n = after.get(proto, before_n)
        if after_n or before_n:
            grew = after_n - before_n
            growth = f", {grew} more during the audit" if grew > 0 else ", not growing during the audit"
            csum_findings.append(Finding(
                id=CHECK_CSUM_ERRORS, severity=SEVERITY_HIGH, subject=f"{proto} InCsumErrors",
                evidence=f"{proto} InCsumErrors = {after_n} in {SNMP_FILES.get(proto, '/proc/net/snmp')}"
                         f"{growth}: this node received UDP datagrams with bad checksums and dropped them",
                fix=("find the senders: gnt vxlan-csum scan -i <underlay interface> --duration 60 "
                     "(then audit the sending node)"),
            ))
    findings.extend(csum_findings)

    at_risk = both or bool(lro_findings) or bool(csum_findings)
    failed = {f.id for f in findings}
    unchecked = set() if facts.rules or facts.nft_json is not None else {CHECK_MASQ}
    passed = [c for c in CHECKS if c not in failed and c not in unchecked]
    if at_risk:
        reasons = []
        if both:
            reasons.append("VXLAN tx checksum offload with masquerade --random-fully of marked traffic")
        if lro_findings:
            reasons.append("LRO on a forwarding host")
        if csum_findings:
            reasons.append("UDP checksum errors counted")
        verdict = f"AT RISK: {'; '.join(reasons)} ({len(findings)} finding{'s' if len(findings) != 1 else ''})."
    elif unchecked:  # a check that could not run is not a pass, nor a "not at risk"
        verdict = (f"NOT CHECKED: {', '.join(sorted(unchecked))} could not be checked (the NAT rules are "
                   f"unreadable); {len(findings) or 'no'} other finding{'s' if len(findings) != 1 else ''}.")
    elif findings:
        verdict = (f"not at risk, but {len(findings)} finding{'s' if len(findings) != 1 else ''} "
                   "worth fixing (one ingredient of the bug without the other).")
    else:
        verdict = "OK: no condition for the VXLAN checksum bug found."
    notes = list(facts.notes)
    if fixed is None:
        notes.append(f"kernel release {facts.kernel!r} not understood: kernel check skipped")
    if fixed is True:
        notes.append(f"kernel {facts.kernel} carries the NAT UDP checksum fix")
    if not facts.vxlan:
        notes.append("no VXLAN devices in this network namespace")
    return findings, AuditSummary(
        kernel=facts.kernel, checks=list(CHECKS), passed=passed, findings=len(findings), at_risk=at_risk,
        verdict=verdict, notes=notes, unchecked=sorted(unchecked),
    )


def run_audit() -> tuple[list[Finding], AuditSummary]:
    """Gather this node's facts, read the UDP checksum error counters again, and judge.

    Findings come most severe first (a stable sort: checks keep their order within a severity)."""
    facts = gather()
    findings, summary = evaluate(facts, udp_csum_errors())
    findings.sort(key=lambda f: SEVERITY_ORDER.get(f.severity, len(SEVERITY_ORDER)))
    return findings, summary


"""What `gnt vxlan-csum` reports: flows and a summary for `scan`, findings for `audit`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class VxlanFlow:
    """One VXLAN flow: outer UDP 4-tuple, VNI and inner 5-tuple, with its checksum tallies."""

    json_type = "flow"

    outer_src: str
    outer_sport: int
    outer_dst: str
    outer_dport: int
    vni: int | None
    inner_proto: str | None  # "tcp", "udp", "icmp", ... or None when the inner frame is not IP
    inner_src: str | None
    inner_sport: int | None
    inner_dst: str | None
    inner_dport: int | None
    packets: int
    checksum_zero: int
    checksum_ok: int
    checksum_bad: int
    bug_signature: int  # bad checksums that are 0xffff, the kernel NAT bug's signature
    checksum_partial: int
    inner_bad: int  # packets whose inner IPv4 header or inner TCP/UDP checksum is wrong
    truncated: int  # packets cut by the capture's snap length: outer checksum not verifiable
    fragments: int  # first IP fragments: the outer checksum covers the whole datagram, not verified
    first_seen: float
    last_seen: float


@dataclass(slots=True)
class ScanSummary:
    """Totals over the whole capture; `verdict` is the one sentence a person reads first."""

    json_type = "summary"

    source: str
    vxlan_packets: int
    checksum_zero: int
    checksum_ok: int
    checksum_bad: int
    bug_signature: int
    checksum_partial: int
    inner_bad: int
    inner_ipv4_header_bad: int
    inner_l4_bad: int
    inner_l4_partial: int  # inner TCP/UDP checksums left partial (offload pending): not errors
    truncated_packets: int
    fragments: int  # first fragments of fragmented outer datagrams (later fragments count as other)
    other_packets: int
    flows: int
    ports: list[int]
    kernel_drops: int | None  # live capture only: frames the kernel dropped (buffer full)
    problems: list[str]  # damage in the capture file (truncated records, corrupt blocks)
    verdict: str

    @property
    def any_bad(self) -> bool:
        return bool(self.checksum_bad or self.inner_bad)


@dataclass(slots=True)
class ScanReport:
    """Text-only: the summary and flows together, so the verdict is printed before the flows."""

    json_type = None

    summary: ScanSummary
    flows: list[VxlanFlow] = field(default_factory=list)


# Audit severities.
SEVERITY_HIGH = "high"  # part of the conditions that put the node at risk
SEVERITY_WARNING = "warning"  # one ingredient of the bug, harmless alone
SEVERITY_INFO = "info"  # worth knowing, nothing to fix
SEVERITY_ORDER = {SEVERITY_HIGH: 0, SEVERITY_WARNING: 1, SEVERITY_INFO: 2}  # order findings are reported in


@dataclass(slots=True)
class Finding:
    json_type = "finding"

    id: str
    severity: str
    subject: str  # the device, chain or counter the finding is about
    evidence: str
    fix: str  # the exact command(s) that remove the finding


@dataclass(slots=True)
class AuditSummary:
    json_type = "audit"

    kernel: str
    checks: list[str]
    passed: list[str]
    findings: int
    at_risk: bool
    verdict: str
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why
    unchecked: list[str] = field(default_factory=list)  # checks that could not run (rules unreadable)

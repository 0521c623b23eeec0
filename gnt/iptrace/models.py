"""What `gnt iptrace` yields: packets with their path through the rule set."""

from __future__ import annotations

from dataclasses import dataclass, field

KIND_RULE = "rule"  # a rule matched (iptables TRACE "rule", nft NFT_TRACETYPE_RULE)
KIND_RETURN = "return"  # fell off the end of a user chain back to its caller
KIND_POLICY = "policy"  # fell off the end of a base chain: its policy decided

TERMINAL_VERDICTS = ("drop", "reject", "queue", "stolen")  # verdicts that end the packet's path
FINAL_VERDICTS = (*TERMINAL_VERDICTS, "accept")  # verdicts that decide a hook


@dataclass(slots=True)
class Step:
    """One step of a packet's path: a rule, a return from a user chain, or a chain policy."""

    table: str
    chain: str
    kind: str  # KIND_RULE, KIND_RETURN or KIND_POLICY
    rulenum: int | None = None  # position of the rule in its chain (1-based), when known
    handle: int | None = None  # nftables rule handle, when known
    verdict: str | None = None  # continue, accept, drop, jump X, goto X, return, queue, ... (None: unknown)
    rule: str | None = None  # the rule in readable form, when known
    family: str | None = None  # the table's family (ip, ip6, inet, ...): `ip filter` and `ip6 filter` differ
    deciding: bool = field(default=False, metadata={"json": None})  # the step that decided the packet's fate


@dataclass(slots=True)
class Summary:
    """The packet a trace followed, as far as the trace shows it."""

    family: str | None = None  # "ipv4" or "ipv6"
    iif: str | None = None  # input interface
    oif: str | None = None  # output interface
    src: str | None = None
    dst: str | None = None
    proto: str | None = None  # tcp, udp, icmp, ipv6-icmp, or the protocol number
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    ip_id: int | None = None  # IPv4 identification
    length: int | None = None  # IP total length
    mark: int | None = None  # skb mark (nfmark)
    verdict: str | None = None  # the deciding verdict (accept, drop, ...), when the trace shows one


@dataclass(slots=True)
class Packet:
    """One traced packet: its identity and every step through the rules, in order."""

    json_type = "packet"

    id: str  # nft trace id / xtables-monitor id (hex), or a sequence number for legacy log lines
    summary: Summary
    steps: list[Step] = field(default_factory=list)


@dataclass(slots=True)
class TraceEnd:
    """The end of a run: how many packets were shown and how many input lines were skipped."""

    json_type = "iptrace_end"

    packets: int
    skipped: int = 0  # malformed or truncated lines (offline) or undecodable events (live)
    backend: str | None = None  # "nft", "legacy" or "log"
    source: str | None = None  # file name for --from-log


@dataclass(slots=True)
class Filter:
    """Which packets to trace (every field optional; all given fields must match)."""

    family: int | None = None  # 4 or 6
    proto: str | None = None  # tcp, udp, icmp, icmpv6, sctp, or a number
    src: str | None = None  # address or prefix
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    iif: str | None = None  # input interface (prerouting only)

"""The tagged nftables trace table, its cleanup, and rule text by table/chain/handle.

The table is `inet gnt_iptrace_<pid>_<start>`: chains on the prerouting and output hooks at a
priority before raw (-300) set `meta nftrace set 1` on the packets of the filter. The pid
and the process start time in the name are the tag: a run removes its own table on exit and,
before installing, every table whose run is gone (a run killed with SIGKILL; a pid since reused
by another process has another start time); `gnt iptrace --cleanup` does the same.
The nft binary does the talking to the kernel: it already knows the rule language both
ways (the trace rule in, readable rules out).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import replace

from gnt.errors import PermissionDenied, UnavailableError, UsageError
from gnt.iptrace.commands import failure_text, find_binary, run_alive, run_command, run_tag
from gnt.iptrace.models import Filter

TABLE_PREFIX = "gnt_iptrace_"  # our tables are named gnt_iptrace_<pid>_<start> (older runs: gnt_iptrace_<pid>)
TABLE_FAMILY = "inet"  # one table sees IPv4 and IPv6
TRACE_PRIORITY = -350  # before raw (-300) and conntrack (-200), after defrag (-400)
NFT_TIMEOUT = 20.0  # seconds for one nft invocation
L4_PORT_PROTOS = ("tcp", "udp", "sctp", "dccp", "udplite")  # protocols with ports, as nft names them
PROTO_ALIASES = {"icmpv6": "ipv6-icmp", "icmp6": "ipv6-icmp", "ipv6-icmp": "ipv6-icmp"}  # accepted spellings
KNOWN_PROTOS = ("icmp", "ipv6-icmp", *L4_PORT_PROTOS, "gre", "esp", "ah")  # names -p accepts
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,15}$")  # a Linux interface name (IFNAMSIZ - 1)
TABLE_RE = re.compile(r"^table (\S+) (" + TABLE_PREFIX + r"(\d+)(?:_(\d+))?)$")  # a line of `nft list tables`
HANDLE_RE = re.compile(r"\s*# handle (\d+)\s*$")  # the handle comment `nft -a` appends
COUNTER_RE = re.compile(r"\bcounter packets \d+ bytes \d+")  # live counters: noise in a rule's text
OPEN_BLOCK_RE = re.compile(r"\{\s*(?:# handle \d+)?$")  # a `table ... {` or `chain ... {` line
POLICY_RE = re.compile(r"\bpolicy (\w+);")  # the policy of a base chain


def table_name(pid: int) -> str:
    return f"{TABLE_PREFIX}{run_tag(pid)}"


def nft_binary() -> str:
    path = find_binary("nft")
    if path is None:
        raise UnavailableError("the nft command is not installed", "install nftables (apt install nftables)")
    return path


def run_nft(*args: str, script: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run nft; failures become one-line GntErrors naming the cause."""
    argv = [nft_binary(), *args] if script is None else [nft_binary(), *args, "-f", "-"]
    done = run_command(argv, "nft", NFT_TIMEOUT, script=script)
    if check and done.returncode != 0:
        err = failure_text(done)
        if "Operation not permitted" in err:
            raise PermissionDenied("nft was refused: Operation not permitted",
                                   "run as root or grant CAP_NET_ADMIN")
        if "Protocol not supported" in err or "Could not process rule: No such file" in err:
            raise UnavailableError(f"nftables is not available here: {err}",
                                   "load the nf_tables module, or use --backend legacy")
        raise UnavailableError(f"nft failed: {err}")
    return done


def normalize_proto(proto: str | None, family: int | None) -> str | None:
    if proto is None:
        return None
    name = proto.lower()
    name = PROTO_ALIASES.get(name, name)
    if name == "icmp" and family == 6:
        return "ipv6-icmp"
    if name not in KNOWN_PROTOS and not (name.isascii() and name.isdigit()):
        raise UsageError(f"unknown protocol {proto!r} (use {', '.join(KNOWN_PROTOS)} or a number)")
    if name.isascii() and name.isdigit() and not 0 <= int(name) <= 255:
        raise UsageError(f"protocol number {proto} is out of range 0-255")
    return name


def validate(flt: Filter) -> Filter:
    """Check the filter's values and agree the address family; returns the normalized filter."""
    family = flt.family
    for label, value in (("source", flt.src), ("destination", flt.dst)):
        if value is None:
            continue
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise UsageError(f"bad {label} address {value!r}: {exc}") from exc
        if family is not None and net.version != family:
            raise UsageError(f"{label} {value} is not an IPv{family} address")
        family = net.version
    proto = normalize_proto(flt.proto, family)
    if proto == "ipv6-icmp" and family == 4:
        raise UsageError("ICMPv6 cannot be traced with -4")
    if proto == "ipv6-icmp":
        family = 6
    for label, port in (("--sport", flt.sport), ("--dport", flt.dport)):
        if port is not None and not 0 <= port <= 65535:
            raise UsageError(f"{label} {port} is out of range 0-65535")
    if (flt.sport is not None or flt.dport is not None) and proto is not None and proto not in L4_PORT_PROTOS:
        raise UsageError(f"--sport/--dport need a protocol with ports, not {proto}")
    if flt.iif is not None and not IFNAME_RE.match(flt.iif):
        raise UsageError(f"bad interface name {flt.iif!r}")
    return replace(flt, family=family, proto=proto)


def match_expression(flt: Filter) -> str:
    """The nft match of the filter (empty: every packet)."""
    parts: list[str] = []
    if flt.iif is not None:
        parts.append(f'iifname "{flt.iif}"')
    if flt.family is not None:
        parts.append(f"meta nfproto ipv{flt.family}")
    for keyword, value in (("saddr", flt.src), ("daddr", flt.dst)):
        if value is not None:
            net = ipaddress.ip_network(value, strict=False)
            text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
            parts.append(f"{'ip' if net.version == 4 else 'ip6'} {keyword} {text}")
    proto = flt.proto
    if proto == "icmp" and flt.family is None:
        parts.append("meta l4proto { icmp, ipv6-icmp }")
    elif proto is not None:
        parts.append(f"meta l4proto {proto}")
    elif flt.sport is not None or flt.dport is not None:
        parts.append("meta l4proto { tcp, udp, sctp, dccp, udplite }")
    if flt.sport is not None:
        parts.append(f"th sport {flt.sport}")
    if flt.dport is not None:
        parts.append(f"th dport {flt.dport}")
    return " ".join(parts)


def trace_table_script(flt: Filter, pid: int) -> str:
    """The nft script that creates the tagged trace table for `flt`."""
    match = match_expression(flt)
    rule = f"{match} meta nftrace set 1".strip()
    name = table_name(pid)
    hooks = ["prerouting"] if flt.iif is not None else ["prerouting", "output"]  # output: no input interface
    chains = [
        f"  chain {hook[:3]} {{ type filter hook {hook} priority {TRACE_PRIORITY}; policy accept; {rule}; }}"
        for hook in hooks
    ]
    body = "\n".join(chains)
    return f'table {TABLE_FAMILY} {name} {{\n  comment "gnt iptrace pid {pid}"\n{body}\n}}\n'


def install(flt: Filter, pid: int) -> str:
    """Create the trace table; returns its name. Removes a same-named leftover first."""
    remove(pid)
    run_nft(script=trace_table_script(flt, pid))
    return table_name(pid)


def remove(pid: int) -> bool:
    """Delete our table for `pid` if it exists; True when one was deleted."""
    done = run_nft("delete", "table", TABLE_FAMILY, table_name(pid), check=False)
    return done.returncode == 0


def tagged_tables() -> list[tuple[str, str, int, int | None]]:
    """(family, name, pid, start time or None) of every gnt iptrace table in this namespace."""
    done = run_nft("list", "tables", check=False)
    if done.returncode != 0:
        return []
    found = []
    for line in done.stdout.splitlines():
        m = TABLE_RE.match(line.strip())
        if m:
            start = m.group(4)
            found.append((m.group(1), m.group(2), int(m.group(3)), int(start) if start else None))
    return found


def cleanup_stale(own_pid: int | None = None) -> list[str]:
    """Delete the tables of runs that are gone (and `own_pid`'s); returns what was removed."""
    if find_binary("nft") is None:
        return []
    removed = []
    for family, name, pid, start in tagged_tables():
        dead = pid == own_pid or not run_alive(pid, start)
        if dead and run_nft("delete", "table", family, name, check=False).returncode == 0:
            removed.append(f"nft table {family} {name}")
    return removed


def parse_chain_listing(text: str) -> tuple[dict[int, tuple[int, str]], str | None]:
    """{handle: (rulenum, rule text)} and the policy from `nft -a list chain ...` output."""
    rules: dict[int, tuple[int, str]] = {}
    policy = None
    depth = 0
    number = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if OPEN_BLOCK_RE.search(line):
            depth += 1
            continue
        if line == "}":
            depth -= 1
            continue
        if line.startswith("type ") and " hook " in line:
            m = POLICY_RE.search(line)
            policy = m.group(1) if m else policy
            continue
        m = HANDLE_RE.search(line)
        if depth >= 2 and m:
            number += 1
            text_only = COUNTER_RE.sub("counter", HANDLE_RE.sub("", line)).strip()
            rules[int(m.group(1))] = (number, text_only)
    return rules, policy


class RuleBook:
    """Rule text by (family, table, chain, handle), fetched with nft once per new handle and cached."""

    def __init__(self) -> None:
        self.chains: dict[tuple[str, str, str], dict[int, tuple[int, str]]] = {}
        self.tried: set[tuple[str, str, str, int]] = set()
        self.fetches = 0

    def _fetch(self, family: str, table: str, chain: str) -> None:
        self.fetches += 1
        done = run_nft("-a", "list", "chain", family, table, chain, check=False)
        rules, _policy = parse_chain_listing(done.stdout) if done.returncode == 0 else ({}, None)
        self.chains[(family, table, chain)] = rules

    def lookup(self, family: str, table: str, chain: str, handle: int) -> tuple[int | None, str | None]:
        """(rulenum, rule text) of a rule, or (None, None) when it is gone."""
        key = (family, table, chain)
        rules = self.chains.get(key)
        if rules is None or (handle not in rules and (*key, handle) not in self.tried):
            self.tried.add((*key, handle))
            self._fetch(family, table, chain)
            rules = self.chains[key]
        found = rules.get(handle)
        return (found[0], found[1]) if found else (None, None)

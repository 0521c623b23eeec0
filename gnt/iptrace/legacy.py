"""The iptables-legacy fallback: a tagged raw-table TRACE rule and the kernel log.

On a node whose firewall lives in the legacy x_tables (no nftables trace events for it),
gnt inserts `-j TRACE` rules at the top of raw PREROUTING and OUTPUT, tagged with the
comment `gnt-iptrace:<pid>`, and reads the kernel's TRACE lines from /dev/kmsg. Rules are
removed on exit; rules whose pid is gone are removed by every run and by `--cleanup`.
Rule text comes from `iptables-legacy -S`, fetched once per chain and cached.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import replace

from gnt.errors import PermissionDenied, UnavailableError
from gnt.iptrace.commands import failure_text, find_binary, run_alive, run_command, run_tag
from gnt.iptrace.models import Filter

COMMENT_PREFIX = "gnt-iptrace:"  # rule comment tag: gnt-iptrace:<pid>_<start> (older runs: <pid>)
COMMENT_RE = re.compile(r"--comment \"?" + COMMENT_PREFIX + r"(\d+)(?:_(\d+))?\"?")  # the tag in iptables -S
TRACE_CHAINS = ("PREROUTING", "OUTPUT")  # raw-table chains the TRACE rule goes into
TOOLS = {4: "iptables-legacy", 6: "ip6tables-legacy"}  # legacy front ends by IP version
CMD_TIMEOUT = 20.0  # seconds for one iptables invocation
KMSG = "/dev/kmsg"  # the kernel log, one record per read
TABLE_NAMES = {4: "/proc/net/ip_tables_names", 6: "/proc/net/ip6_tables_names"}  # registered legacy tables
NF_LOG_ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"  # only visible in the initial namespace
TARGET_VERDICTS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return",
                   "QUEUE": "queue", "NFQUEUE": "queue"}  # -j targets that decide; others continue
NAT_TARGETS = ("DNAT", "SNAT", "MASQUERADE", "REDIRECT")  # NAT targets accept the packet in the nat table
NON_TERMINAL_TARGETS = ("LOG", "NFLOG", "TRACE", "MARK", "CONNMARK", "CT", "NOTRACK", "TOS", "DSCP",
                        "TCPMSS", "CLASSIFY", "SET", "AUDIT", "CHECKSUM", "TTL", "HL")  # these continue


def tool(version: int) -> str:
    name = TOOLS[version]
    path = find_binary(name)
    if path is None:
        raise UnavailableError(f"{name} is not installed", "install iptables (apt install iptables)")
    return path


def available() -> bool:
    try:
        tool(4)
    except UnavailableError:
        return False
    return True


def registered_tables(version: int) -> list[str]:
    """Legacy x_tables tables registered in this namespace (listing them with iptables-legacy would
    register them, so this reads /proc instead)."""
    try:
        with open(TABLE_NAMES[version]) as f:
            return f.read().split()
    except OSError:
        return []


def legacy_in_use() -> bool:
    """True when the legacy x_tables hold rules here (other than ours): the firewall is iptables-legacy.

    Registered but empty tables (someone once ran iptables-legacy -L) do not count."""
    for version in (4, 6):
        if not registered_tables(version):
            continue
        try:
            save = run_command([f"{tool(version)}-save"], f"{TOOLS[version]}-save", CMD_TIMEOUT)
        except (UnavailableError, OSError):
            continue
        if any(line.startswith("-A ") and COMMENT_PREFIX not in line for line in save.stdout.splitlines()):
            return True
    return False


def run(version: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = run_command([tool(version), "-w", "5", *args], TOOLS[version], CMD_TIMEOUT)
    if check and done.returncode != 0:
        err = failure_text(done)
        if "Permission denied" in err or "Operation not permitted" in err:
            raise PermissionDenied(f"{TOOLS[version]} was refused: {err}",
                                   "run as root or grant CAP_NET_ADMIN")
        raise UnavailableError(f"{TOOLS[version]} failed: {err}")
    return done


def match_args(flt: Filter, chain: str) -> list[str] | None:
    """iptables match arguments of the filter for `chain`; None when the chain cannot see such packets."""
    args: list[str] = []
    if flt.iif is not None:
        if chain == "OUTPUT":
            return None
        args += ["-i", flt.iif]
    if flt.src is not None:
        args += ["-s", flt.src]
    if flt.dst is not None:
        args += ["-d", flt.dst]
    if flt.proto is not None:
        args += ["-p", flt.proto]
    if flt.sport is not None or flt.dport is not None:
        protos = [flt.proto] if flt.proto is not None else ["tcp", "udp"]
        if len(protos) > 1:
            return None  # expanded by the caller into one rule per protocol
        args += ["-m", protos[0]]
        if flt.sport is not None:
            args += ["--sport", str(flt.sport)]
        if flt.dport is not None:
            args += ["--dport", str(flt.dport)]
    return args


def rule_specs(flt: Filter, chain: str, pid: int) -> list[list[str]]:
    """The TRACE rules (argument lists after `-t raw -I CHAIN 1`) for the filter."""
    variants = [flt]
    if flt.proto is None and (flt.sport is not None or flt.dport is not None):
        variants = [replace(flt, proto=p) for p in ("tcp", "udp")]
    specs = []
    for variant in variants:
        args = match_args(variant, chain)
        if args is not None:
            specs.append([*args, "-m", "comment", "--comment", f"{COMMENT_PREFIX}{run_tag(pid)}", "-j", "TRACE"])
    return specs


def versions(flt: Filter) -> list[int]:
    return [flt.family] if flt.family in (4, 6) else [4, 6]


def install(flt: Filter, pid: int) -> list[str]:
    """Insert the tagged TRACE rules; returns a description of each."""
    added = []
    for version in versions(flt):
        if version == 4 and flt.proto == "ipv6-icmp":
            continue
        vflt = replace(flt, proto="ipv6-icmp") if version == 6 and flt.proto == "icmp" else flt
        for chain in TRACE_CHAINS:
            for spec in rule_specs(vflt, chain, pid):
                run(version, "-t", "raw", "-I", chain, "1", *spec)
                added.append(f"{TOOLS[version]} -t raw -I {chain} 1 {shlex.join(spec)}")
    return added


def tagged_rules(version: int) -> list[tuple[list[str], int, int | None]]:
    """(delete arguments, pid, start time or None) of every gnt iptrace rule in the raw table."""
    done = run(version, "-t", "raw", "-S", check=False)
    if done.returncode != 0:
        return []
    found = []
    for line in done.stdout.splitlines():
        m = COMMENT_RE.search(line)
        if m and line.startswith("-A "):
            start = m.group(2)
            found.append((["-D", *shlex.split(line)[1:]], int(m.group(1)), int(start) if start else None))
    return found


def remove(pid: int | None, *, stale: bool = False) -> list[str]:
    """Delete our rules for `pid` (and, with `stale`, those of every run that is gone)."""
    removed = []
    for version in (4, 6):
        if "raw" not in registered_tables(version):
            continue  # no legacy raw table: nothing of ours, and listing it would create it
        try:
            rules = tagged_rules(version)
        except UnavailableError:
            continue
        for args, owner, start in rules:
            mine = owner == pid or (stale and not run_alive(owner, start))
            if mine and run(version, "-t", "raw", *args, check=False).returncode == 0:
                removed.append(f"{TOOLS[version]} -t raw {shlex.join(args)}")
    return removed


def in_initial_netns() -> bool:
    return os.path.exists(NF_LOG_ALL_NETNS)


def _target_verdict(spec: list[str]) -> str:
    for flag in ("-j", "-g"):
        if flag in spec:
            target = spec[spec.index(flag) + 1]
            if flag == "-g":
                return f"goto {target}"
            if target in TARGET_VERDICTS:
                return TARGET_VERDICTS[target]
            if target in NAT_TARGETS:
                return "accept"
            if target in NON_TERMINAL_TARGETS:
                return "continue"
            return f"jump {target}"
    return "continue"


class LegacyRules:
    """Rule text and verdicts by (family, table, chain, rule number), from `iptables-legacy -S`, cached."""

    def __init__(self) -> None:
        self.chains: dict[tuple[str, str], tuple[dict[str, list[str]], dict[str, str]]] = {}
        self.fetches = 0

    def _table(self, family: str, table: str) -> tuple[dict[str, list[str]], dict[str, str]]:
        key = (family, table)
        if key not in self.chains:
            self.fetches += 1
            done = run(6 if family == "ipv6" else 4, "-t", table, "-S", check=False)
            rules: dict[str, list[str]] = {}
            policies: dict[str, str] = {}
            for line in done.stdout.splitlines() if done.returncode == 0 else []:
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "-P":
                    policies[parts[1]] = parts[2].lower()
                elif len(parts) >= 2 and parts[0] == "-A":
                    rules.setdefault(parts[1], []).append(line)
            self.chains[key] = (rules, policies)
        return self.chains[key]

    def rule(self, family: str, table: str, chain: str, number: int) -> tuple[str | None, str | None]:
        rules, _ = self._table(family, table)
        lines = rules.get(chain, [])
        if not 1 <= number <= len(lines):
            self.chains.pop((family, table), None)  # changed since: fetch again, once
            rules, _ = self._table(family, table)
            lines = rules.get(chain, [])
            if not 1 <= number <= len(lines):
                return None, None
        line = lines[number - 1]
        return line, _target_verdict(shlex.split(line))

    def policy(self, family: str, table: str, chain: str) -> str | None:
        return self._table(family, table)[1].get(chain)

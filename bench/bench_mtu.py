#!/usr/bin/env python3
"""Benchmark gnt mtu against tracepath (unprivileged) and scamper trace -M (root) on the netns chain.

    sudo /opt/gnt/venv-mtu/bin/python bench/bench_mtu.py [--runs 3] [--family 4 --family 6]

Scenarios (h1 ── r1 ── r2 ── r3 ── h2, the r2-r3 link at MTU 1400, default ICMP rate limits):
  pmtu        r2 reports "fragmentation needed" / "packet too big" (path MTU 1400, hop 2)
  black-hole  r2's OUTPUT chain drops those reports (sizes above 1400 vanish silently)
Each tool gets a fresh chain per scenario and family and runs `--runs` times back to back.
Reported per tool: runs whose answer is right (path MTU 1400; for gnt also the verdict), the
probes sent to a verdict (IP packets h1 put on its link, counted by an nftables counter on the
egress of h1's device, neighbour discovery excluded; median per run) and the wall time (median); then the ratios
gnt / peer. gnt and tracepath run as the user nobody, scamper as root (it needs raw sockets).
The machine load (`uptime`) is printed first: figures from a busy machine are ratios only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.netns import Chain, Namespace, sh

PATH_MTU = 1400
SCENARIOS = ("pmtu", "black-hole")
TRACEPATH_PMTU = re.compile(r"Resume: pmtu (\d+)")
SCAMPER_MTU = re.compile(r"\[\*?mtu: (\d+)\]")
COUNTER = re.compile(r"counter packets (\d+)")
RUN_TIMEOUT = 240  # seconds: tracepath walks 30 silent TTLs in a black hole


@dataclass
class Result:
    times: list[float] = field(default_factory=list)
    probes: list[int] = field(default_factory=list)
    right: int = 0
    answers: list[str] = field(default_factory=list)


def build(scenario: str) -> Chain:
    chain = Chain()
    chain.build()
    chain["r2"].ip("link", "set", "eth1", "mtu", str(PATH_MTU))
    chain["r3"].ip("link", "set", "eth0", "mtu", str(PATH_MTU))
    if scenario == "black-hole":
        chain["r2"].run("iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP")
        chain["r2"].run("ip6tables", "-A", "OUTPUT", "-p", "icmpv6", "--icmpv6-type", "packet-too-big", "-j", "DROP")
    h1 = chain["h1"]
    # Egress of h1's link (netdev hook): it sees what raw and packet sockets send too (scamper
    # sends some probes through a datalink socket that the inet output hook never sees).
    script = (
        "table netdev gntbench {\n"
        " chain out {\n"
        "  type filter hook egress device \"eth0\" priority 0;\n"
        "  icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } return\n"
        "  meta protocol { ip, ip6 } counter\n"
        " }\n"
        "}\n"
    )
    h1.run("nft", "-f", "-", input=script)
    # Resolve the neighbours first, so the first tool does not pay for them.
    h1.run("ping", "-c", "1", "-W", "1", chain.addresses4["h2"], check=False)
    h1.run("ping", "-c", "1", "-W", "1", chain.addresses6["h2"], check=False)
    return chain


def sent(h1: Namespace) -> int:
    out = h1.run("nft", "list", "chain", "netdev", "gntbench", "out").stdout
    m = COUNTER.search(out)
    return int(m.group(1)) if m else 0


def gnt_answer(stdout: str, scenario: str) -> tuple[str, bool]:
    objs = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    mtu = next((o for o in objs if o.get("type") == "mtu"), None)
    if mtu is None:
        return "error", False
    answer = f"{mtu['verdict']} {mtu['path_mtu']}"
    return answer, mtu["verdict"] == scenario and mtu["path_mtu"] == PATH_MTU


def tracepath_answer(stdout: str, _scenario: str) -> tuple[str, bool]:
    m = TRACEPATH_PMTU.search(stdout)
    return (f"pmtu {m.group(1)}", int(m.group(1)) == PATH_MTU) if m else ("none", False)


def scamper_answer(stdout: str, _scenario: str) -> tuple[str, bool]:
    found = SCAMPER_MTU.findall(stdout)
    return (f"mtu {found[-1]}", int(found[-1]) == PATH_MTU) if found else ("none", False)


TOOLS: dict[str, tuple[Callable[[str], list[str]], str | None, Callable[[str, str], tuple[str, bool]]]] = {
    "gnt": (lambda dst: [sys.executable, "-m", "gnt", "mtu", "--json", dst], "nobody", gnt_answer),
    "tracepath": (lambda dst: ["tracepath", "-n", dst], "nobody", tracepath_answer),
    "scamper": (lambda dst: ["scamper", "-c", "trace -M", "-i", dst], None, scamper_answer),
}


def run_tool(tool: str, scenario: str, family: int, runs: int) -> Result:
    argv, user, parse = TOOLS[tool]
    result = Result()
    chain = build(scenario)
    try:
        h1 = chain["h1"]
        destination = (chain.addresses6 if family == 6 else chain.addresses4)["h2"]
        for _ in range(runs):
            before = sent(h1)
            start = time.monotonic()
            proc = h1.run(*argv(destination), user=user, check=False, timeout=RUN_TIMEOUT)
            result.times.append(time.monotonic() - start)
            result.probes.append(sent(h1) - before)
            answer, right = parse(proc.stdout, scenario)
            result.answers.append(answer)
            result.right += int(right)
    finally:
        chain.close()
    return result


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per tool, scenario and family (default 3)")
    parser.add_argument("--family", type=int, action="append", choices=[4, 6], help="IP versions (default both)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these scenarios")
    parser.add_argument("--tool", action="append", choices=list(TOOLS), help="only these tools (gnt always)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_mtu: needs root (network namespaces)", file=sys.stderr)
        return 2
    print("load:", sh("uptime").stdout.strip(), flush=True)
    tools = ["gnt"] + [t for t in (args.tool or list(TOOLS)) if t != "gnt" and shutil.which(t)]
    print(f"{'scenario':<11}{'ip':<4}{'tool':<10}{'right':>7}{'probes':>8}{'median s':>10}  answers")
    for scenario in args.scenario or SCENARIOS:
        for family in args.family or [4, 6]:
            results = {tool: run_tool(tool, scenario, family, args.runs) for tool in tools}
            for tool, res in results.items():
                print(f"{scenario:<11}v{family:<3}{tool:<10}{res.right:>3}/{args.runs:<3}"
                      f"{statistics.median(res.probes):>8.0f}{statistics.median(res.times):>10.2f}  "
                      f"{', '.join(sorted(set(res.answers)))}", flush=True)
            gnt = results["gnt"]
            for peer in tools[1:]:
                other = results[peer]
                print(f"{scenario:<11}v{family:<3}gnt/{peer}: probes "
                      f"{ratio(statistics.median(gnt.probes), statistics.median(other.probes))}, wall time "
                      f"{ratio(statistics.median(gnt.times), statistics.median(other.times))}; right "
                      f"{gnt.right}/{args.runs} vs {other.right}/{args.runs}", flush=True)
    print("load:", sh("uptime").stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

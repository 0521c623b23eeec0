#!/usr/bin/env python3
"""Benchmark gnt traceroute against the Linux traceroute (and mtr) on the netns chain.

    sudo /opt/gnt/dev/bin/python bench/bench_traceroute.py [--runs 20] [--no-mtr]

Scenarios (h1 ── r1 ── r2 ── r3 ── h2, 4 hops, default ICMP rate limits on every box):
  silent-r2   r2 drops the time-exceeded messages it sends (a silent hop mid-path)
  silent-r3   r3 does, the hop just before the destination
  clean       every hop answers
Each tool gets its own fresh chain per scenario and runs `--runs` times back to back, as a
monitoring loop would, so the boxes' ICMP token buckets are as drained as they get in use.
  rested      (--rested N) every hop answers and every box's bucket is full: the tools alternate,
              with RESTED_PAUSE seconds before each run; `python3 -c pass` (gnt's interpreter, as
              nobody) is timed beside them: the floor of any Python tool's wall time.
The load average is printed with the figures: the machine is shared.
Reported per tool: runs whose output has exactly the real hop count (4, the last being the
destination), and the wall time (median, mean); then the ratios gnt / traceroute.
gnt runs as the user nobody (its normal mode); traceroute and mtr with their defaults.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.netns import Chain

REAL_HOPS = 4  # h1 -> r1 -> r2 -> r3 -> h2
RESTED_PAUSE = 6.0  # seconds: a Linux box's ICMP bucket (6 tokens, one a second) is full again
SCENARIOS = {"silent-r2": "r2", "silent-r3": "r3", "clean": None}
TRACEROUTE_HOP = re.compile(r"^ ?(\d+)  ")
MTR_HOP = re.compile(r"^\s*(\d+)\.\|--\s+(\S+)")


@dataclass
class Result:
    times: list[float] = field(default_factory=list)
    exact: int = 0
    counts: list[int] = field(default_factory=list)


def silence(chain: Chain, role: str | None) -> None:
    if role is None:
        return
    chain[role].run("iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "time-exceeded", "-j", "DROP")


def traceroute_hops(stdout: str, destination: str) -> tuple[int, bool]:
    """(last TTL printed, whether that line names the destination) for traceroute-format output."""
    last, line_of_last = 0, ""
    for line in stdout.splitlines():
        m = TRACEROUTE_HOP.match(line)
        if m:
            last, line_of_last = int(m.group(1)), line
    return last, destination in line_of_last


def mtr_hops(stdout: str, destination: str) -> tuple[int, bool]:
    last, address = 0, ""
    for line in stdout.splitlines():
        m = MTR_HOP.match(line)
        if m:
            last, address = int(m.group(1)), m.group(2)
    return last, address == destination


def run_tool(tool: str, scenario: str, runs: int) -> Result:
    chain = Chain()
    result = Result()
    try:
        chain.build()
        silence(chain, SCENARIOS[scenario])
        h1, destination = chain["h1"], chain.addresses4["h2"]
        for _ in range(runs):
            start = time.monotonic()
            if tool == "gnt":
                proc = h1.gnt("traceroute", "-n", destination, user="nobody", timeout=120)
                count, named = traceroute_hops(proc.stdout, destination)
            elif tool == "traceroute":
                proc = h1.run("traceroute", "-n", destination, check=False, timeout=120)
                count, named = traceroute_hops(proc.stdout, destination)
            else:
                proc = h1.run("timeout", "-s", "KILL", "60", "mtr", "-n", "--report", "-c", "3", "-i", "0.2",
                              destination, check=False, timeout=120)
                count, named = mtr_hops(proc.stdout, destination)
            result.times.append(time.monotonic() - start)
            result.counts.append(count)
            result.exact += int(count == REAL_HOPS and named)
    finally:
        chain.close()
    return result


def load() -> str:
    with open("/proc/loadavg") as fh:
        return "load average " + " ".join(fh.read().split()[:3])


def rested(runs: int) -> None:
    chain = Chain()
    times: dict[str, list[float]] = {"gnt": [], "traceroute": [], "python3 -c pass": []}
    exact = {"gnt": 0, "traceroute": 0}
    try:
        chain.build()
        h1, destination = chain["h1"], chain.addresses4["h2"]
        for _ in range(runs):
            for tool in ("traceroute", "gnt"):
                time.sleep(RESTED_PAUSE)
                start = time.monotonic()
                if tool == "gnt":
                    proc = h1.gnt("traceroute", "-n", destination, user="nobody", timeout=120)
                else:
                    proc = h1.run("traceroute", "-n", destination, check=False, timeout=120)
                times[tool].append(time.monotonic() - start)
                count, named = traceroute_hops(proc.stdout, destination)
                exact[tool] += int(count == REAL_HOPS and named)
            start = time.monotonic()
            h1.run(sys.executable, "-c", "pass", user="nobody")
            times["python3 -c pass"].append(time.monotonic() - start)
    finally:
        chain.close()
    print(f"## rested path, {runs} runs each ({load()})")
    for tool, values in times.items():
        print(f"rested     {tool:<16} median {statistics.median(values):6.3f} s  mean {statistics.mean(values):6.3f} s"
              + (f"  exact {exact[tool]}/{runs}" if tool in exact else ""))
    gnt, peer, floor = (statistics.median(times[t]) for t in ("gnt", "traceroute", "python3 -c pass"))
    print(f"rested     ratio gnt/traceroute {gnt / peer:.2f}x; interpreter start alone {floor / peer:.2f}x "
          f"the peer's whole run (target: <= 1.5x)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per tool and scenario (default 20)")
    parser.add_argument("--no-mtr", action="store_true", help="leave mtr out")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="only these scenarios")
    parser.add_argument("--rested", type=int, default=5, metavar="N", help="rested-path runs per tool (0: none)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_traceroute: needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.rested:
        rested(args.rested)
    tools = ["gnt", "traceroute"] + ([] if args.no_mtr or not shutil.which("mtr") else ["mtr"])
    print(load())
    print(f"{'scenario':<10} {'tool':<11} {'exact':>7} {'median s':>9} {'mean s':>8}  hop counts seen")
    for scenario in args.scenario or list(SCENARIOS):
        results = {tool: run_tool(tool, scenario, args.runs) for tool in tools}
        for tool, res in results.items():
            seen = ",".join(f"{n}x{c}" for c, n in sorted(
                {c: res.counts.count(c) for c in set(res.counts)}.items()))
            print(f"{scenario:<10} {tool:<11} {res.exact:>3}/{args.runs:<3} {statistics.median(res.times):>9.2f} "
                  f"{statistics.mean(res.times):>8.2f}  {seen}", flush=True)
        gnt, peer = results["gnt"], results["traceroute"]
        ratio = statistics.median(gnt.times) / statistics.median(peer.times)
        mean_ratio = statistics.mean(gnt.times) / statistics.mean(peer.times)
        print(f"{scenario:<10} ratio gnt/traceroute: wall time median {ratio:.2f}x, mean {mean_ratio:.2f}x; "
              f"exact {gnt.exact}/{args.runs} vs {peer.exact}/{args.runs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

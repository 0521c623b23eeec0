#!/usr/bin/env python3
"""gnt ping against iputils ping, in one run, reported as ratios and differences.

1. RTT fidelity: on the 4-hop veth chain (h1 ── r1 ── r2 ── r3 ── h2), interleaved runs of
   `gnt ping` and iputils `ping`; the median per-reply RTT of each, and gnt minus iputils.
   Target: within 3 us (iputils against itself varies by about +-2 us here, also measured).
2. Start-up: `gnt ping -c 1 127.0.0.1` against `python3 -c pass` (same interpreter), with
   hyperfine. Target: <= 7x.
3. Flood: `ping -f -c 20000 127.0.0.1`, gnt and iputils interleaved in a fresh namespace, as root;
   wall time and CPU time (user + system) of each, and the ratios. Target: wall <= 2x.
4. Memory: `gnt ping -i 0 -q` as root for --packets (default 1,000,000) packets to 127.0.0.1; the
   process's RSS sampled from /proc as it runs: growth from the first sample after 10,000
   packets to the end. Target: <= 2 MB.
Machines are busy: the load average is printed with every section.

Run as root (it builds network namespaces): `python bench/bench_ping.py [--rounds N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from helpers.netns import Chain, Topology, gnt_command

IPUTILS_TIME = re.compile(r"icmp_seq=\d+ ttl=\d+ time=([\d.]+) ms")


def gnt_rtts(chain: Chain, count: int, tx_clock: str = "kernel") -> list[float]:
    argv = ["env", f"GNT_PING_TX_CLOCK={tx_clock}", *gnt_command("ping", "--json", "-c", str(count), "-i", "0.01",
                                                                  Chain.addresses4["h2"])]
    out = chain["h1"].run(*argv).stdout
    return [o["time_ms"] * 1000 for o in map(json.loads, out.splitlines()) if o["type"] == "reply"]


def iputils_rtts(chain: Chain, count: int) -> list[float]:
    out = chain["h1"].run("ping", "-c", str(count), "-i", "0.01", Chain.addresses4["h2"]).stdout
    return [float(t) * 1000 for t in IPUTILS_TIME.findall(out)]


def rtt_fidelity(rounds: int, count: int) -> None:
    chain = Chain().build()
    # Both tools as root with raw sockets (ping sockets refused in h1), so that they take
    # the same kernel send path; iputils, being privileged, would use raw anyway.
    chain["h1"].sysctl("net.ipv4.ping_group_range", "1 0")
    try:
        ours, ours_user, theirs, theirs_again = [], [], [], []
        for _ in range(rounds):
            ours.append(statistics.median(gnt_rtts(chain, count)))
            ours_user.append(statistics.median(gnt_rtts(chain, count, "user")))
            theirs.append(statistics.median(iputils_rtts(chain, count)))
            theirs_again.append(statistics.median(iputils_rtts(chain, count)))
    finally:
        chain.close()
    g, i, i2 = statistics.median(ours), statistics.median(theirs), statistics.median(theirs_again)
    gu = statistics.median(ours_user)
    print("## RTT fidelity (4-hop veth path, median per-reply RTT, interleaved; raw sockets, as root)")
    print(f"rounds={rounds} x {count} replies each")
    print(f"gnt ping         median {g:8.1f} us")
    print(f"iputils ping     median {i:8.1f} us")
    print(f"iputils (again)  median {i2:8.1f} us")
    print(f"gnt, TX clock = user (as iputils) {gu:8.1f} us")
    print(f"gnt - iputils          {g - i:+8.1f} us   (kernel TX timestamp: the send path is not counted)")
    print(f"gnt(user TX) - iputils {gu - i:+8.1f} us   (target: within +-3 us)")
    print(f"iputils - iputils      {i2 - i:+8.1f} us   (run-to-run noise)")


def startup(runs: int) -> None:
    if not shutil.which("hyperfine"):
        print("hyperfine not installed (apt-get install hyperfine)")
        return
    gnt = " ".join(gnt_command("ping", "-c", "1", "127.0.0.1"))
    bare = f"{sys.executable} -c pass"
    out = "/tmp/gnt-bench-startup.json"
    # From / so that `python -m gnt` runs the installed package, not a checkout in the cwd.
    subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", out, bare, gnt],
                   check=True, capture_output=True, cwd="/")
    with open(out) as fh:
        results = json.load(fh)["results"]
    base, ours = results[0]["median"], results[1]["median"]
    print("## Start-up (hyperfine, median)")
    print(f"python3 -c pass            {base * 1000:7.1f} ms")
    print(f"gnt ping -c 1 127.0.0.1    {ours * 1000:7.1f} ms")
    print(f"ratio                      {ours / base:7.2f}x   (target: <= 7x)")


def load() -> str:
    with open("/proc/loadavg") as fh:
        return "load average " + " ".join(fh.read().split()[:3])


def timed(argv: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall s, user+system CPU s of the child) of one run."""
    before = os.times()
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/")
    wall = time.monotonic() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, proc


def flood(rounds: int, count: int) -> None:
    topo = Topology()
    try:
        ns = topo.add("flood")  # loopback only
        base = ["ip", "netns", "exec", ns.name]
        walls: dict[str, list[float]] = {"gnt": [], "iputils": []}
        cpus: dict[str, list[float]] = {"gnt": [], "iputils": []}
        for _ in range(rounds):
            for tool, argv in (("iputils", ["ping", "-f", "-c", str(count), "127.0.0.1"]),
                               ("gnt", gnt_command("ping", "-f", "-c", str(count), "127.0.0.1"))):
                wall, cpu, proc = timed(base + argv)
                assert f"{count} received" in proc.stdout, proc.stdout + proc.stderr
                walls[tool].append(wall)
                cpus[tool].append(cpu)
    finally:
        topo.close()
    print(f"## Flood: ping -f -c {count} 127.0.0.1, as root, {rounds} interleaved rounds ({load()})")
    for tool in ("iputils", "gnt"):
        print(f"{tool:<8} wall median {statistics.median(walls[tool]):6.3f} s   "
              f"CPU median {statistics.median(cpus[tool]):6.3f} s")
    print(f"ratio gnt/iputils: wall {statistics.median(walls['gnt']) / statistics.median(walls['iputils']):.2f}x, "
          f"CPU {statistics.median(cpus['gnt']) / max(statistics.median(cpus['iputils']), 1e-3):.2f}x "
          "(target: wall <= 2x)")


def memory(packets: int) -> None:
    topo = Topology()
    try:
        ns = topo.add("memory")
        proc = ns.popen(*gnt_command("ping", "-i", "0", "-q", "-c", str(packets), "127.0.0.1"))
        samples: list[int] = []
        while proc.poll() is None:
            time.sleep(0.5)
            try:  # `ip netns exec` execs the command: the child's pid is gnt's
                with open(f"/proc/{proc.pid}/status") as fh:
                    rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
            samples.append(rss)
        out, _err = proc.communicate()
    finally:
        topo.close()
    sent = re.search(r"(\d+) packets transmitted", out)
    print(f"## Memory: gnt ping -i 0 -q -c {packets} 127.0.0.1, as root ({load()})")
    print(f"packets sent {sent.group(1) if sent else '?'}; RSS samples {len(samples)}")
    if len(samples) >= 3:
        growth = samples[-1] - samples[1]  # from the second sample: start-up allocations are done
        print(f"RSS first {samples[1]} kB, last {samples[-1]} kB, max {max(samples)} kB: "
              f"growth {growth} kB (target: <= 2048 kB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--flood-rounds", type=int, default=5)
    parser.add_argument("--flood-count", type=int, default=20000)
    parser.add_argument("--packets", type=int, default=1_000_000, help="packets for the memory run")
    parser.add_argument("--only", choices=["rtt", "startup", "flood", "memory"], action="append")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the RTT benchmark builds network namespaces")
    sections = args.only or ["rtt", "startup", "flood", "memory"]
    if "rtt" in sections:
        rtt_fidelity(args.rounds, args.count)
        print()
    if "startup" in sections:
        startup(args.runs)
        print()
    if "flood" in sections:
        flood(args.flood_rounds, args.flood_count)
        print()
    if "memory" in sections:
        memory(args.packets)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gnt ping against iputils ping, in one run, reported as ratios and differences.

1. RTT fidelity: on the 4-hop veth chain (h1 ── r1 ── r2 ── r3 ── h2), interleaved runs of
   `gnt ping` and iputils `ping`; the median per-reply RTT of each, and gnt minus iputils.
   Target: within 3 us (iputils against itself varies by about +-2 us here, also measured).
2. Start-up: `gnt ping -c 1 127.0.0.1` against `python3 -c pass` (same interpreter), with
   hyperfine. Target: <= 7x.

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

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from helpers.netns import Chain, gnt_command

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the RTT benchmark builds network namespaces")
    rtt_fidelity(args.rounds, args.count)
    print()
    startup(args.runs)


if __name__ == "__main__":
    main()

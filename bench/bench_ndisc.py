#!/usr/bin/env python3
"""gnt ndisc / rdisc / neigh / ip6 against their peers, in one run, as ratios (hyperfine).

Builds two throw-away namespaces joined by a veth pair (`gnt-bench-<pid>-host` and
`-router`, 2001:db8:1::/64, radvd in the router) and times, each inside the host namespace:

- `gnt ndisc ADDR eth0`  vs `ndisc6 ADDR eth0`     (one solicitation, one answer)
- `gnt rdisc -1`-like: `gnt rdisc eth0` vs `rdisc6 eth0`   (both wait out the 1 s window)
- `gnt neigh -6`         vs `ip -6 neigh`
- `gnt ip6 ADDR`         vs `python3 -c pass` (no peer: the interpreter's own start-up)

The namespaces are removed on every exit path. Run as root:
    python bench/bench_ndisc.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREFIX = f"gnt-bench-{os.getpid()}"
HOST, ROUTER = f"{PREFIX}-host", f"{PREFIX}-router"
ROUTER_ADDR = "2001:db8:1::2"
RADVD_CONF = """interface eth0 {
    AdvSendAdvert on; MinRtrAdvInterval 30; MaxRtrAdvInterval 100;
    prefix 2001:db8:1::/64 { };
    RDNSS 2001:db8:1::53 { };
};
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def setup(tmp: Path) -> subprocess.Popen[bytes]:
    for ns in (HOST, ROUTER):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    sh("ip", "netns", "exec", ROUTER, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    sh("ip", "link", "add", "eth0", "netns", HOST, "type", "veth", "peer", "name", "eth0", "netns", ROUTER)
    for ns, addr in ((HOST, "2001:db8:1::1"), (ROUTER, ROUTER_ADDR)):
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "-6", "addr", "add", f"{addr}/64", "dev", "eth0", "nodad")
    conf = tmp / "radvd.conf"
    conf.write_text(RADVD_CONF)
    radvd = subprocess.Popen(["ip", "netns", "exec", ROUTER, "radvd", "-n", "-m", "stderr", "-C", str(conf),
                              "-p", str(tmp / "radvd.pid")], stderr=subprocess.DEVNULL)
    time.sleep(2)  # link-local addresses and radvd up
    return radvd


def teardown(radvd: subprocess.Popen[bytes] | None) -> None:
    if radvd is not None:
        radvd.terminate()
        radvd.wait(timeout=5)
    for ns in (HOST, ROUTER):
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def hyperfine(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Mean wall time in ms of each command, run inside the host namespace."""
    with tempfile.TemporaryDirectory() as tmp:
        export = os.path.join(tmp, "result.json")
        argv = ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--export-json", export,
                "--style", "none"]
        names = list(commands)
        for name in names:
            argv += ["-n", name, " ".join(["ip", "netns", "exec", HOST, *commands[name]])]
        subprocess.run(argv, check=True, capture_output=True)
        results = json.loads(Path(export).read_text())["results"]
    return {name: r["mean"] * 1000 for name, r in zip(names, results, strict=True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    gnt = [sys.executable, "-m", "gnt"]
    pairs = {
        "ndisc": ([*gnt, "ndisc", ROUTER_ADDR, "eth0"], ["ndisc6", ROUTER_ADDR, "eth0"]),
        "rdisc": ([*gnt, "rdisc", "eth0"], ["rdisc6", "eth0"]),
        "neigh -6": ([*gnt, "neigh", "-6"], ["ip", "-6", "neigh"]),
        "ip6": ([*gnt, "ip6", "fe80::2c3c:f2ff:fea7:a186"], [sys.executable, "-c", "pass"]),
    }
    radvd = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            radvd = setup(Path(tmp))
            subprocess.run(["ip", "netns", "exec", HOST, "ping", "-c", "1", ROUTER_ADDR], capture_output=True)
            print(f"{'command':<10} {'gnt ms':>9} {'peer ms':>9} {'ratio':>7}  peer")
            for name, (ours, theirs) in pairs.items():
                times = hyperfine({"gnt": ours, "peer": theirs}, args.runs)
                ratio = times["gnt"] / times["peer"]
                print(f"{name:<10} {times['gnt']:9.1f} {times['peer']:9.1f} {ratio:7.2f}  {' '.join(theirs[:1])}")
        finally:
            teardown(radvd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

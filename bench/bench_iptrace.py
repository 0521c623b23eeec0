#!/usr/bin/env python3
"""Benchmark: `gnt iptrace` against `nft monitor trace`, live and offline.

Run as root:  python3 bench/bench_iptrace.py [--packets 2000] [--gnt "python -m gnt"]

Live: in a throw-away namespace with an iptables-nft user chain on INPUT, each tracer follows
the same burst of UDP datagrams to 127.0.0.1 (each datagram is three trace events through the
rules, plus those of the trace table). For each tracer it reports the packets it showed (of those
sent), its CPU time (user+sys from wait4) and the ratio to the peer. The peer `nft monitor trace`
gets the same trace table gnt installs, added by hand. Offline: the peer's own output, read back
with `gnt iptrace --from-log`, timed (best of 3) against `nft monitor trace` having produced it.
The namespace is removed on every exit path.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

PORT = 9999  # UDP destination of the burst (no listener: the INPUT path is what is traced)


def sh(*argv: str, input: str | None = None) -> str:
    return subprocess.run(list(argv), check=True, text=True, capture_output=True, input=input).stdout


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def burst(ns: str, packets: int) -> None:
    code = ("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for i in range({packets}):\n    s.sendto(b'x', ('127.0.0.1', {PORT}))\n"
            "    if i % 50 == 49: time.sleep(0.002)\n")
    subprocess.run(in_ns(ns, [sys.executable, "-c", code]), check=True)


def run_tracer(ns: str, argv: list[str], packets: int, out_path: str) -> tuple[float, float]:
    """Start a tracer, send the burst, stop it with SIGINT; returns (cpu seconds, wall seconds)."""
    with open(out_path, "w") as out:
        proc = subprocess.Popen(in_ns(ns, argv), stdout=out, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        start = time.monotonic()
        burst(ns, packets)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime, wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--gnt", default=f"{sys.executable} -m gnt")
    args = parser.parse_args()
    gnt = shlex.split(args.gnt)
    ns = f"gnt-bench-iptrace-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    tmp = tempfile.mkdtemp(prefix="gnt-bench-iptrace-")
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for rule in (["-N", "BENCH"], ["-A", "INPUT", "-p", "udp", "-j", "BENCH"],
                     ["-A", "BENCH", "-p", "udp", "--dport", str(PORT), "-j", "RETURN"],
                     ["-A", "INPUT", "-p", "udp", "-j", "ACCEPT"]):
            sh(*in_ns(ns, ["iptables-nft", *rule]))
        match = f"meta l4proto udp th dport {PORT} meta nftrace set 1"
        table = ("table inet bench_trace {\n"
                 f"  chain pre {{ type filter hook prerouting priority -350; {match}; }}\n"
                 f"  chain out {{ type filter hook output priority -350; {match}; }}\n}}\n")
        sh(*in_ns(ns, ["nft", "-f", "-"]), input=table)
        peer_out = os.path.join(tmp, "nft.txt")
        peer_cpu, _ = run_tracer(ns, ["nft", "monitor", "trace"], args.packets, peer_out)
        sh(*in_ns(ns, ["nft", "delete", "table", "inet", "bench_trace"]))
        with open(peer_out) as f:  # one "packet:" line per packet entering the INPUT chain
            peer_paths = sum(1 for line in f if " ip filter INPUT packet: " in line)
        gnt_out = os.path.join(tmp, "gnt.json")
        gnt_cpu, _ = run_tracer(ns, [*gnt, "iptrace", "-p", "udp", "--dport", str(PORT), "--json"],
                                       args.packets, gnt_out)
        with open(gnt_out) as f:
            gnt_packets = sum(1 for line in f if '"type": "packet"' in line and '"INPUT"' in line)
        print(f"live, {args.packets} UDP datagrams sent (each traced on output and on input):")
        print(f"  nft monitor trace : {peer_paths:6d} input paths shown cpu {peer_cpu:6.3f} s")
        print(f"  gnt iptrace       : {gnt_packets:6d} input paths shown cpu {gnt_cpu:6.3f} s"
              f"  (cpu ratio gnt/nft {gnt_cpu / max(peer_cpu, 1e-6):.2f})")
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([*gnt, "iptrace", "--from-log", peer_out, "--json"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best = min(best, time.perf_counter() - start)
        with open(peer_out) as f:
            lines = sum(1 for _ in f)
        print(f"offline: gnt iptrace --from-log on the peer's {lines} lines: best {best:.3f} s "
              f"({lines / best:,.0f} lines/s)")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

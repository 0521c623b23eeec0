#!/usr/bin/env python3
"""Benchmark: `gnt vxlan-csum scan -i` against `tcpdump -w /dev/null` on the same veth, in the same run.

Two network namespaces joined by a veth; in the receiving one gnt and tcpdump capture at the same
time (both with a kernel filter, tcpdump with `udp dst port 8472`), while `tcpreplay` in the sending
one replays a capture of small VXLAN frames (explicit MACs, 198.18.0.0/15): once at --topspeed, then
paced at --pps. For each run it prints what each capturer counted and what the kernel said it
dropped, and the loss of each. Targets (issue 17): at topspeed no more drops than tcpdump; at
150 kpps < 1 % loss. Needs root, tcpreplay and tcpdump.

    sudo python bench/bench_vxlan_live.py [--packets 300000] [--pps 150000] [--buffer MiB]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from helpers.netns import Topology
from helpers.vxlan_frames import inner_frame, vxlan_frame, write_pcap


def build(path: str, packets: int) -> None:
    """Small VXLAN frames (bare TCP ACKs inside, ~110 bytes), 100 flows, zero and correct outer checksums."""
    templates = [vxlan_frame("zero" if k % 2 else "ok", sport=50000 + k, inner=inner_frame("tcp", sport=40000 + k))
                 for k in range(100)]
    write_pcap(path, [templates[i % 100] for i in range(packets)])


def wait_for_sockets(ns_name: str, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "netns", "exec", ns_name, "cat", "/proc/net/packet"],
                             capture_output=True, text=True).stdout
        if len(out.splitlines()) - 1 >= count:
            return
        time.sleep(0.1)
    raise RuntimeError("the capturers never opened their sockets")


def one_run(capture: str, packets: int, pps: int | None, buffer: int | None) -> dict[str, object]:
    with Topology() as topo:
        tx, rx = topo.add("bvtx"), topo.add("bvrx")
        topo.veth(tx, "eth0", rx, "eth0")
        gnt_argv = [sys.executable, "-m", "gnt", "vxlan-csum", "scan", "-i", "eth0", "--port", "8472", "--json"]
        if buffer:
            gnt_argv += ["--buffer", str(buffer)]
        gnt = rx.popen(*gnt_argv)
        tcpdump = rx.popen("tcpdump", "-i", "eth0", "-n", "-w", "/dev/null", "udp dst port 8472")
        wait_for_sockets(rx.name, 2)
        time.sleep(1.0)
        replay = ["tcpreplay", "-i", "eth0", "--topspeed" if pps is None else f"--pps={pps}", capture]
        t0 = time.perf_counter()
        sent = tx.run(*replay, timeout=600)
        elapsed = time.perf_counter() - t0
        time.sleep(2.0)  # let both drain their buffers
        arrived = int(rx.run("cat", "/sys/class/net/eth0/statistics/rx_packets").stdout)
        for proc in (gnt, tcpdump):
            proc.send_signal(signal.SIGINT)
        gnt_out, gnt_err = gnt.communicate(timeout=60)
        _td_out, td_err = tcpdump.communicate(timeout=60)
    summary = next(o for o in map(json.loads, gnt_out.splitlines()) if o.get("type") == "summary")
    td_captured = int(re.search(r"(\d+) packets? captured", td_err).group(1))  # type: ignore[union-attr]
    td_dropped = int(re.search(r"(\d+) packets? dropped by kernel", td_err).group(1))  # type: ignore[union-attr]
    rate = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", sent.stdout)
    return {
        "mode": "topspeed" if pps is None else f"{pps} pps", "sent": packets, "arrived": arrived,
        "replay_pps": float(rate.group(1)) if rate else packets / elapsed,
        "gnt_counted": summary["vxlan_packets"], "gnt_kernel_drops": summary["kernel_drops"],
        "tcpdump_captured": td_captured, "tcpdump_kernel_drops": td_dropped,
        "gnt_stderr": gnt_err.strip()[-200:],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--pps", type=int, default=150_000)
    ap.add_argument("--buffer", type=int, help="gnt --buffer (MiB)")
    args = ap.parse_args()
    for tool in ("tcpreplay", "tcpdump"):
        if shutil.which(tool) is None:
            print(f"{tool} not found", file=sys.stderr)
            return 2
    tmpdir = tempfile.mkdtemp(prefix="gnt-bench-vxlan-live-")
    try:
        capture = os.path.join(tmpdir, "small.pcap")
        build(capture, args.packets)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        for pps in (None, args.pps):
            r = one_run(capture, args.packets, pps, args.buffer)
            arrived = int(r["arrived"])  # type: ignore[call-overload]
            gnt_loss = 1 - int(r["gnt_counted"]) / arrived if arrived else 0.0  # type: ignore[call-overload]
            td_loss = 1 - int(r["tcpdump_captured"]) / arrived if arrived else 0.0  # type: ignore[call-overload]
            print(f"[{r['mode']}] sent {r['sent']}, replayed at {r['replay_pps']:.0f} pps, {arrived} reached eth0")
            print(f"[{r['mode']}] gnt:     counted {r['gnt_counted']}, kernel drops {r['gnt_kernel_drops']}, "
                  f"loss {gnt_loss:.2%}")
            print(f"[{r['mode']}] tcpdump: captured {r['tcpdump_captured']}, kernel drops "
                  f"{r['tcpdump_kernel_drops']}, loss {td_loss:.2%}")
            if r["gnt_stderr"]:
                print(f"[{r['mode']}] gnt stderr: {r['gnt_stderr']}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

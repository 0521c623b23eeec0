#!/usr/bin/env python3
"""Benchmark: `gnt vxlan-csum scan --pcap` against `tcpdump -nn -vv -r` on the same VXLAN capture.

Builds a 200,000-packet pcap (scapy for a handful of templates, then byte patching with RFC 1624
checksum updates so every packet stays self-consistent): 2,000 flows, half full-size TCP
segments and half bare ACKs, outer checksums 60 % zero, 35 % correct, 3 % 0xffff, 2 % partial.
Runs each command a few times and prints the best wall time of each and the ratio (target <= 1.0).

    python bench/bench_vxlan.py [--packets 200000] [--runs 3] [--keep FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from helpers.vxlan_frames import inner_frame, vxlan_frame, write_pcap

from gnt.core.checksum import update16

OUTER_UDP = 14 + 20  # outer UDP header offset in the templates (Ethernet + IPv4)
INNER_TCP = OUTER_UDP + 8 + 8 + 14 + 20  # inner TCP header offset
FLOWS = 2000  # distinct inner source ports (and so outer source ports)


def templates() -> dict[tuple[str, int], bytes]:
    out = {}
    for csum in ("zero", "ok", "ffff", "partial"):
        for payload in (0, 1400):
            out[(csum, payload)] = vxlan_frame(csum, inner=inner_frame("tcp", payload=payload, sport=40000))
    return out


def status_for(i: int) -> str:
    r = i % 100
    return "zero" if r < 60 else "ok" if r < 95 else "ffff" if r < 98 else "partial"


def build(path: str, packets: int) -> None:
    tpl = templates()
    frames: list[bytes] = []
    pack_into = struct.pack_into
    unpack_from = struct.unpack_from
    for i in range(packets):
        status = status_for(i)
        frame = bytearray(tpl[(status, 1400 if i & 1 else 0)])
        flow = i % FLOWS
        new_isport = 40000 + flow
        new_osport = 50000 + flow
        old_isport, = unpack_from("!H", frame, INNER_TCP)
        old_tcsum, = unpack_from("!H", frame, INNER_TCP + 16)
        new_tcsum = update16(old_tcsum, old_isport, new_isport)
        pack_into("!H", frame, INNER_TCP, new_isport)
        pack_into("!H", frame, INNER_TCP + 16, new_tcsum)
        old_osport, = unpack_from("!H", frame, OUTER_UDP)
        pack_into("!H", frame, OUTER_UDP, new_osport)
        if status == "ok":
            c, = unpack_from("!H", frame, OUTER_UDP + 6)
            c = update16(c, old_osport, new_osport)
            c = update16(c, old_isport, new_isport)
            c = update16(c, old_tcsum, new_tcsum)
            pack_into("!H", frame, OUTER_UDP + 6, c or 0xFFFF)
        frames.append(bytes(frame))
    write_pcap(path, frames)


def best_of(argv: list[str], runs: int) -> tuple[float, int]:
    best = float("inf")
    code = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
        code = proc.returncode
    return best, code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="write the capture here and keep it")
    args = ap.parse_args()
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        print("tcpdump not found", file=sys.stderr)
        return 2
    tmpdir = tempfile.mkdtemp(prefix="gnt-bench-vxlan-")
    path = args.keep or os.path.join(tmpdir, "vxlan.pcap")
    try:
        t0 = time.perf_counter()
        build(path, args.packets)
        size = os.path.getsize(path)
        print(f"capture: {args.packets} packets, {size / 1e6:.1f} MB, built in {time.perf_counter() - t0:.1f} s")
        captures = [("pcap", path)]
        editcap = shutil.which("editcap")
        if editcap:  # the same packets as pcapng (Wireshark's writer), for information
            ng = os.path.join(tmpdir, "vxlan.pcapng")
            subprocess.run([editcap, "-F", "pcapng", path, ng], check=True)
            captures.append(("pcapng", ng))
        for kind, capture in captures:
            gnt_argv = [sys.executable, "-m", "gnt", "vxlan-csum", "scan", "--pcap", capture]
            tcpdump_argv = [tcpdump, "-nn", "-vv", "-r", capture]
            t_gnt, code = best_of(gnt_argv, args.runs)
            t_tcpdump, _ = best_of(tcpdump_argv, args.runs)
            print(f"[{kind}] gnt vxlan-csum scan --pcap: {t_gnt:.3f} s (exit {code})  "
                  f"{args.packets / t_gnt / 1000:.0f} kpps, {t_gnt / args.packets * 1e6:.2f} us/packet")
            print(f"[{kind}] tcpdump -nn -vv -r:         {t_tcpdump:.3f} s")
            target = " (target <= 1.00)" if kind == "pcap" else ""
            print(f"[{kind}] ratio gnt/tcpdump: {t_gnt / t_tcpdump:.2f}{target}")
    finally:
        if not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

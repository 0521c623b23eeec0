#!/usr/bin/env python3
"""Benchmark: `gnt vxlan-csum scan --pcap` against `tcpdump -nn -vv -r` on the same VXLAN captures.

One capture per class, each run by both commands in the same run (best wall time of --runs each,
and the ratio gnt/tcpdump; target <= 1.0 for every class):
  ipv4    200,000 packets over an IPv4 underlay (scapy for a handful of templates, then byte patching
          with RFC 1624 checksum updates so every packet stays self-consistent): 2,000 flows, half
          full-size TCP segments and half bare ACKs, outer checksums 60 % zero, 35 % correct,
          3 % 0xffff, 2 % partial;
  ipv6    the same packets over an IPv6 underlay;
  gso     GSO/BIG-TCP-heavy, as captured on a sender or after GRO: --gso-packets packets, one in five
          a 16-80 KB super-frame (outer lengths 0, partial checksums), the rest bare ACKs, IPv4 and
          IPv6 underlays alternating;
  pcapng  the ipv4 capture as pcapng (when editcap is there);
  pcapng6 the ipv6 capture as pcapng;
  pipe    the ipv6 capture through a pipe (`cat FILE | ... -`, as `ssh node tcpdump -w - | gnt ...` reads);
  pipe-ng the ipv6 pcapng through a pipe.

First each command on an empty capture: its fixed start-up, which is part of every ratio (a larger share
of the gso class's, the shortest run). gnt runs with bytecode writing allowed (PYTHONDONTWRITEBYTECODE
dropped), so a changed module is compiled once, not in every run.

    python bench/bench_vxlan.py [--packets 200000] [--gso-packets 20000] [--runs 3] [--only CLASS ...]
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

from helpers.vxlan_frames import inner_frame, super_frame, vxlan_frame, write_pcap

from gnt.core.checksum import update16

CLASSES = ["ipv4", "ipv6", "gso", "pcapng", "pcapng6", "pipe", "pipe-ng"]
FLOWS = 2000  # distinct inner source ports (and so outer source ports)
GSO_PAYLOADS = (16_000, 40_000, 64_000, 80_000)  # inner TCP payload of the super-frames


def templates(v6: bool) -> dict[tuple[str, int], bytes]:
    out = {}
    for csum in ("zero", "ok", "ffff", "partial"):
        if v6 and csum == "zero":
            continue  # IPv6 VXLAN sends checksums unless told otherwise (udp6zerocsumtx)
        for payload in (0, 1400):
            out[(csum, payload)] = vxlan_frame(csum, v6=v6, inner=inner_frame("tcp", payload=payload, sport=40000))
    return out


def status_for(i: int, v6: bool) -> str:
    r = i % 100
    if v6:
        return "ok" if r < 95 else "ffff" if r < 98 else "partial"
    return "zero" if r < 60 else "ok" if r < 95 else "ffff" if r < 98 else "partial"


def build(path: str, packets: int, v6: bool = False) -> None:
    tpl = templates(v6)
    outer_udp = 14 + (40 if v6 else 20)  # outer UDP header offset in the templates
    inner_tcp = outer_udp + 8 + 8 + 14 + 20  # inner TCP header offset
    frames: list[bytes] = []
    pack_into = struct.pack_into
    unpack_from = struct.unpack_from
    for i in range(packets):
        status = status_for(i, v6)
        frame = bytearray(tpl[(status, 1400 if i & 1 else 0)])
        flow = i % FLOWS
        new_isport = 40000 + flow
        new_osport = 50000 + flow
        old_isport, = unpack_from("!H", frame, inner_tcp)
        old_tcsum, = unpack_from("!H", frame, inner_tcp + 16)
        new_tcsum = update16(old_tcsum, old_isport, new_isport)
        pack_into("!H", frame, inner_tcp, new_isport)
        pack_into("!H", frame, inner_tcp + 16, new_tcsum)
        old_osport, = unpack_from("!H", frame, outer_udp)
        pack_into("!H", frame, outer_udp, new_osport)
        if status == "ok":
            c, = unpack_from("!H", frame, outer_udp + 6)
            c = update16(c, old_osport, new_osport)
            c = update16(c, old_isport, new_isport)
            c = update16(c, old_tcsum, new_tcsum)
            pack_into("!H", frame, outer_udp + 6, c or 0xFFFF)
        frames.append(bytes(frame))
    write_pcap(path, frames)


def build_gso(path: str, packets: int) -> None:
    """GSO/BIG TCP super-frames among ACKs, as a sender's or a GRO receiver's capture has them."""
    frames: list[bytes] = []
    supers = [super_frame("partial", outer_v6=bool(k & 1), payload=p, partial_inner=True, sport=52000 + k)
              for k, p in enumerate(GSO_PAYLOADS * 2)]
    acks = [vxlan_frame("partial", v6=bool(k & 1), sport=53000 + k, inner=inner_frame("tcp", sport=41000 + k))
            for k in range(8)]
    for i in range(packets):
        frames.append(supers[(i // 5) % len(supers)] if i % 5 == 0 else acks[i % len(acks)])
    write_pcap(path, frames, snaplen=262144)


def best_of(argv: list[str], runs: int) -> tuple[float, float, int]:
    """Best wall time, best CPU time (user + system, from the process's own rusage: less disturbed by
    other load on a shared machine than the wall clock) and the exit code."""
    best = best_cpu = float("inf")
    code = 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, usage.ru_utime + usage.ru_stime)
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
    return best, best_cpu, code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--gso-packets", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=CLASSES, action="append")
    ap.add_argument("--keep", help="write the captures into this directory and keep them")
    args = ap.parse_args()
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        print("tcpdump not found", file=sys.stderr)
        return 2
    tmpdir = args.keep or tempfile.mkdtemp(prefix="gnt-bench-vxlan-")
    os.makedirs(tmpdir, exist_ok=True)
    wanted = args.only or CLASSES
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} CPUs")
    editcap = shutil.which("editcap")
    built: dict[str, str] = {}

    def capture_of(name: str) -> str:
        """The capture file `name` (ipv4, ipv6, gso, ipv4.pcapng, ipv6.pcapng), built on first use."""
        if name not in built:
            t0 = time.perf_counter()
            path = os.path.join(tmpdir, f"vxlan-{name}" + ("" if name.endswith(".pcapng") else ".pcap"))
            if name == "gso":
                build_gso(path, args.gso_packets)
            elif name.endswith(".pcapng"):
                assert editcap is not None
                subprocess.run([editcap, "-F", "pcapng", capture_of(name.split(".")[0]), path], check=True)
            else:
                build(path, args.packets, v6=name == "ipv6")
            n = args.gso_packets if name == "gso" else args.packets
            print(f"[{name}] capture: {n} packets, {os.path.getsize(path) / 1e6:.1f} MB, "
                  f"built in {time.perf_counter() - t0:.1f} s")
            built[name] = path
        return built[name]

    try:
        plan: list[tuple[str, str, bool, int]] = []  # class, capture, through a pipe, packets
        for kind in wanted:
            if kind in ("pcapng", "pcapng6", "pipe-ng") and not editcap:
                print(f"[{kind}] skipped: editcap not found")
                continue
            source = {"pcapng": "ipv4.pcapng", "pcapng6": "ipv6.pcapng", "pipe": "ipv6", "pipe-ng": "ipv6.pcapng"}
            plan.append((kind, capture_of(source.get(kind, kind)), kind.startswith("pipe"),
                         args.gso_packets if kind == "gso" else args.packets))
        empty = os.path.join(tmpdir, "empty.pcap")
        write_pcap(empty, [])
        up_gnt = best_of([sys.executable, "-m", "gnt", "vxlan-csum", "scan", "--pcap", empty], args.runs + 2)[0]
        up_tcpdump = best_of([tcpdump, "-nn", "-vv", "-r", empty], args.runs + 2)[0]
        print(f"[start-up] an empty capture: gnt {up_gnt * 1000:.1f} ms, tcpdump {up_tcpdump * 1000:.1f} ms")
        for kind, capture, piped, n in plan:
            gnt_argv = [sys.executable, "-m", "gnt", "vxlan-csum", "scan", "--pcap", "-" if piped else capture]
            tcpdump_argv = [tcpdump, "-nn", "-vv", "-r", "-" if piped else capture]
            if piped:  # sh -c 'cat FILE | COMMAND...': the shell's rusage takes in both, as the wall clock does
                gnt_argv, tcpdump_argv = (["sh", "-c", 'cat "$0" | "$@"', capture, *argv]
                                          for argv in (gnt_argv, tcpdump_argv))
            t_gnt, cpu_gnt, code = best_of(gnt_argv, args.runs)
            t_tcpdump, cpu_tcpdump, _ = best_of(tcpdump_argv, args.runs)
            via = "cat | " if piped else ""
            print(f"[{kind}] {via}gnt vxlan-csum scan --pcap: {t_gnt:.3f} s wall, {cpu_gnt:.3f} s CPU (exit {code})  "
                  f"{n / t_gnt / 1000:.0f} kpps, {t_gnt / n * 1e6:.2f} us/packet")
            print(f"[{kind}] {via}tcpdump -nn -vv -r:         {t_tcpdump:.3f} s wall, {cpu_tcpdump:.3f} s CPU")
            print(f"[{kind}] ratio gnt/tcpdump: {t_gnt / t_tcpdump:.2f} wall, {cpu_gnt / cpu_tcpdump:.2f} CPU "
                  "(target <= 1.00)")
    finally:
        if not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: `gnt drops` under a flood of drops, against `perf record -e skb:kfree_skb` and `cat trace_pipe`.

Run as root:  python3 bench/bench_drops.py [--seconds 5] [--senders 2] [--gnt "python -m gnt"]

Each of N sender namespaces floods one receiver namespace over a veth with UDP datagrams to a closed
port (Ethernet frames with explicit MACs, sendmmsg of 512 per call on a packet socket, so the CPU goes
to the receiving stack that drops them) for SECONDS while one tracer runs; the flood is repeated for
each tracer in turn, in the same run. Every tracer is given the same kernel filter (reason == NO_SOCKET):
- gnt drops --reason NO_SOCKET --json (its summary: drops counted and events lost);
- perf record -e skb:kfree_skb --filter 'reason == N' -a (its samples and LOST events);
- cat of a tracefs instance's trace_pipe with the same filter (its lines; lost from the instance's
  per-CPU stats).
The drops made are counted independently from the receiver namespaces' own Udp NoPorts counters. Reported per
tracer: drops made per second, events it reported, events it says it lost, its CPU time (user+sys from
wait4) as a share of the flood's seconds, and gnt's CPU as a ratio to each peer. The script runs
itself in a private mount namespace (tracefs is mounted there if needed; nothing is left mounted) and
removes the namespaces and the instance on every exit path. The machine load (uptime) is printed:
figures from a busy machine are only comparable within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TRACEFS = "/sys/kernel/tracing"
PORT = 9  # UDP discard: nothing listens in the namespaces

# Runs in a sender namespace: argv = seconds, interface, frame (hex). sendmmsg of 512 frames per call on
# a packet socket: the drops then cost the receiver's stack only, not a UDP send path as well.
FLOOD = r"""
import ctypes, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
N = 512
frame = bytes.fromhex(sys.argv[3])
payload = ctypes.create_string_buffer(frame, len(frame))
iov = iovec(ctypes.cast(payload, ctypes.c_void_p), len(frame))
msgs = (mmsghdr * N)()
for m in msgs:
    m.hdr.iov = ctypes.pointer(iov)
    m.hdr.iovlen = 1
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[2], 0))
fd = s.fileno()
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    if libc.sendmmsg(fd, msgs, N, 0) < 0:
        raise OSError(ctypes.get_errno(), "sendmmsg")
"""
TX_MAC, RX_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"  # explicit MACs of the veth ends
TX_IP, RX_IP = "198.18.100.1", "198.18.100.2"


def udp_frame() -> bytes:
    """Ethernet/IPv4/UDP from TX to RX port PORT, one byte of payload, right checksums (UDP 0: none)."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 29, 0, 0x4000, 64, 17, 0, socket.inet_aton(TX_IP),
                         socket.inet_aton(RX_IP))
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    macs = bytes.fromhex(RX_MAC.replace(":", "") + TX_MAC.replace(":", ""))
    return macs + b"\x08\x00" + header + struct.pack("!HHHH", 40000, PORT, 9, 0) + b"x"


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(list(argv), check=check, text=True, capture_output=True).stdout


def noports(namespaces: list[str]) -> int:
    total = 0
    for ns in namespaces:
        lines = [line.split() for line in sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").splitlines()
                 if line.startswith("Udp:")]
        total += int(lines[1][lines[0].index("NoPorts")])
    return total


def flood(namespaces: list[str], seconds: float) -> None:
    """Every sender namespace floods its receiver at once; `namespaces` are the receivers."""
    frame = udp_frame().hex()
    procs = [subprocess.Popen(["ip", "netns", "exec", ns.replace("-rx", "-tx"), sys.executable, "-c", FLOOD,
                               str(seconds), "eth0", frame]) for ns in namespaces]
    for p in procs:
        p.wait()


def run_tracer(argv: list[str], namespaces: list[str], seconds: float, out_path: str,
               stop: int = signal.SIGINT, idle: bool = False) -> tuple[float, int, str]:
    """Start a tracer, flood (or with `idle`, wait as long), stop it; returns (its CPU seconds, drops
    made, its stderr)."""
    with open(out_path, "w") as out, open(out_path + ".err", "w") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        time.sleep(1.5)  # started and tracing
        before = noports(namespaces)
        if idle:
            time.sleep(seconds)
        else:
            flood(namespaces, seconds)
        made = noports(namespaces) - before
        time.sleep(1.0)  # let it read what is buffered
        proc.send_signal(stop)
        _, _, usage = os.wait4(proc.pid, 0)
    with open(out_path + ".err") as f:
        return usage.ru_utime + usage.ru_stime, made, f.read()


def reason_value(name: str) -> int:
    with open(f"{TRACEFS}/events/skb/kfree_skb/format") as f:
        m = re.search(r'\{ (\d+), "' + name + r'" \}', f.read())
    assert m, name
    return int(m.group(1))


def instance_lost(path: str) -> int:
    lost = 0
    for cpu in os.listdir(f"{path}/per_cpu"):
        with open(f"{path}/per_cpu/{cpu}/stats") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("overrun", "dropped events"):
                    lost += int(value)
    return lost


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--gnt", default=f"{sys.executable} -m gnt")
    parser.add_argument("--in-private-mounts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.in_private_mounts:
        return subprocess.call(["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv,
                                "--in-private-mounts"])
    if not os.path.isfile(f"{TRACEFS}/trace"):
        sh("mount", "-t", "tracefs", "nodev", TRACEFS)
    namespaces = [f"gnt-bench-drops-{os.getpid()}-{i}-rx" for i in range(args.senders)]
    tmp = tempfile.mkdtemp(prefix="gnt-bench-drops-")
    instance = f"{TRACEFS}/instances/gnt_bench_cat_{os.getpid()}"
    results: list[dict[str, object]] = []
    try:
        for ns in namespaces:
            tx = ns.replace("-rx", "-tx")
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "add", tx)
            sh("ip", "link", "add", "eth0", "netns", tx, "address", TX_MAC, "type", "veth", "peer", "name", "eth0",
               "netns", ns, "address", RX_MAC)
            for name in (ns, tx):
                sh("ip", "-n", name, "link", "set", "lo", "up")
                sh("ip", "-n", name, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{RX_IP}/24", "dev", "eth0")
        no_socket = reason_value("NO_SOCKET")
        print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
              f"{os.cpu_count()} CPUs, {args.senders} senders x {args.seconds} s")

        # gnt
        gnt_out = os.path.join(tmp, "gnt.json")
        gnt_argv = [*shlex.split(args.gnt), "drops", "--reason", "NO_SOCKET", "--json"]
        idle_cpu, _, _ = run_tracer(gnt_argv, namespaces, args.seconds, gnt_out, idle=True)
        cpu, made, _ = run_tracer(gnt_argv, namespaces, args.seconds, gnt_out)
        with open(gnt_out) as f:
            summary = [o for o in map(json.loads, f) if o.get("type") == "summary"][-1]
        results.append({"tracer": "gnt drops", "cpu": cpu, "idle": idle_cpu, "made": made,
                        "reported": summary["total"], "lost": summary["lost"]})

        # perf record
        perf_data = os.path.join(tmp, "perf.data")
        perf_argv = ["perf", "record", "-q", "-e", "skb:kfree_skb", "--filter", f"reason == {no_socket}", "-a",
                     "-o", perf_data]
        idle_cpu, _, _ = run_tracer(perf_argv, namespaces, args.seconds, os.path.join(tmp, "perf.out"), idle=True)
        cpu, made, _ = run_tracer(perf_argv, namespaces, args.seconds, os.path.join(tmp, "perf.out"))
        stats = subprocess.run(["perf", "report", "-i", perf_data, "--stats"], capture_output=True, text=True)
        text = stats.stdout + stats.stderr
        samples = re.search(r"SAMPLE events:\s+(\d+)", text)
        lost = sum(int(n) for n in re.findall(r"LOST(?:_SAMPLES)? events:\s+(\d+)", text))
        results.append({"tracer": "perf record", "cpu": cpu, "idle": idle_cpu, "made": made,
                        "reported": int(samples.group(1)) if samples else 0, "lost": lost})

        # cat trace_pipe of an instance with the same filter
        os.mkdir(instance)
        with open(f"{instance}/buffer_size_kb", "w") as f:
            f.write("2048")
        with open(f"{instance}/events/skb/kfree_skb/filter", "w") as f:
            f.write(f"reason == {no_socket}")
        with open(f"{instance}/events/skb/kfree_skb/enable", "w") as f:
            f.write("1")
        cat_out = os.path.join(tmp, "cat.txt")
        idle_cpu, _, _ = run_tracer(["cat", f"{instance}/trace_pipe"], namespaces, args.seconds, cat_out,
                                    stop=signal.SIGTERM, idle=True)
        cpu, made, _ = run_tracer(["cat", f"{instance}/trace_pipe"], namespaces, args.seconds, cat_out,
                                    stop=signal.SIGTERM)
        with open(cat_out, "rb") as f:
            lines = sum(1 for _ in f)
        results.append({"tracer": "cat trace_pipe", "cpu": cpu, "idle": idle_cpu, "made": made, "reported": lines,
                        "lost": instance_lost(instance)})

        print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        print(f"{'tracer':<16} {'drops/s made':>12} {'reported':>10} {'lost':>9} {'cpu s':>7} {'idle s':>7} "
              f"{'flood s':>7} {'us/event':>8}")
        for r in results:
            made_rate = int(r["made"]) / args.seconds  # type: ignore[call-overload]
            flood_cpu = float(r["cpu"]) - float(r["idle"])  # type: ignore[arg-type]
            per_event = 1e6 * flood_cpu / max(int(r["reported"]), 1)  # type: ignore[call-overload]
            print(f"{r['tracer']:<16} {made_rate:>12.0f} {r['reported']:>10} {r['lost']:>9} "
                  f"{float(r['cpu']):>7.2f} {float(r['idle']):>7.2f} {flood_cpu:>7.2f} {per_event:>8.2f}")  # type: ignore[arg-type]
        gnt = results[0]
        for r in results[1:]:
            total = float(gnt["cpu"]) / max(float(r["cpu"]), 1e-6)  # type: ignore[arg-type]
            extra = (float(gnt["cpu"]) - float(gnt["idle"])) / max(float(r["cpu"]) - float(r["idle"]), 1e-6)  # type: ignore[arg-type]
            print(f"gnt / {r['tracer']}: CPU {total:.2f}, CPU the flood added {extra:.2f}")
        print("(cpu s: the whole run, flood plus 2.5 s of start and drain; idle s: the same run without a flood;"
              " flood s: the difference)")
    finally:
        with contextlib.suppress(OSError), open(f"{instance}/events/skb/kfree_skb/enable", "w") as f:
            f.write("0")
        with contextlib.suppress(OSError):
            os.rmdir(instance)
        for ns in namespaces:
            sh("ip", "netns", "del", ns, check=False)
            sh("ip", "netns", "del", ns.replace("-rx", "-tx"), check=False)
        sh("rm", "-rf", tmp, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

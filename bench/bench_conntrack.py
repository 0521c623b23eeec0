#!/usr/bin/env python3
"""Benchmark: `gnt conntrack list` against `conntrack -L`, unfiltered and filtered, up to 1,000,000 entries.

Run as root:  python3 bench/bench_conntrack.py [--entries 1000000] [--runs 3] [--gnt "python -m gnt"]

It makes a throw-away network namespace, fills its conntrack table through ctnetlink
(IPCTNL_MSG_CT_NEW in batches of 200 per sendmsg: TCP ESTABLISHED entries with DNAT+SNAT
tuples, unreplied UDP, IPv6 TCP; the load time is reported), then times each lister `--runs`
times with output to /dev/null and reports the best and median wall time, the ratio to
`conntrack -L` with the same filter and the peak RSS (getrusage of the child). Peak RSS is
also measured on a table a tenth the size, to show that memory does not grow with the table.
net.netfilter.nf_conntrack_max (global: only the initial namespace may set it) is raised for
the run when the table would not fit, and put back; the namespace is removed on every exit path.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import statistics
import struct
import subprocess
import sys
import time

NETLINK_NETFILTER = 12  # nfnetlink protocol
NLM_F_REQUEST = 0x1  # request
NLM_F_ACK = 0x4  # ask for an ack (errors come back either way)
NLM_F_EXCL = 0x200  # fail if it exists
NLM_F_CREATE = 0x400  # create
NLMSG_ERROR = 2  # error/ack message
CT_NEW = (1 << 8) | 0  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
NESTED = 0x8000  # NLA_F_NESTED
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT, CTA_MARK = 1, 2, 3, 4, 7, 8  # ctattr_type
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2  # ctattr_tuple
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4  # ctattr_ip
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3  # ctattr_l4proto
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1  # protoinfo
IPS_SEEN_REPLY_ASSURED = 0xE  # SEEN_REPLY | ASSURED | CONFIRMED (a new entry is confirmed at once)
TCP_ESTABLISHED = 3  # enum tcp_conntrack
BATCH = 200  # messages per sendmsg


def nla(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def tuple_attr(kind: int, src: bytes, dst: bytes, proto: int, sport: int, dport: int) -> bytes:
    v6 = len(src) == 16
    ip = nla(CTA_IP_V6_SRC if v6 else CTA_IP_V4_SRC, src) + nla(CTA_IP_V6_DST if v6 else CTA_IP_V4_DST, dst)
    l4 = (nla(CTA_PROTO_NUM, bytes([proto])) + nla(CTA_PROTO_SRC_PORT, struct.pack(">H", sport))
          + nla(CTA_PROTO_DST_PORT, struct.pack(">H", dport)))
    return nla(kind | NESTED, nla(CTA_TUPLE_IP | NESTED, ip) + nla(CTA_TUPLE_PROTO | NESTED, l4))


def new_message(seq: int, family: int, orig: bytes, reply: bytes, tcp: bool, mark: int) -> bytes:
    attrs = orig + reply + nla(CTA_TIMEOUT, struct.pack(">I", 3600)) + nla(CTA_MARK, struct.pack(">I", mark))
    if tcp:
        attrs += nla(CTA_STATUS, struct.pack(">I", IPS_SEEN_REPLY_ASSURED))
        attrs += nla(CTA_PROTOINFO | NESTED,
                     nla(CTA_PROTOINFO_TCP | NESTED, nla(CTA_PROTOINFO_TCP_STATE, bytes([TCP_ESTABLISHED]))))
    body = struct.pack("=BBH", family, 0, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), CT_NEW, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                       seq, 0) + body


def entry_message(i: int, seq: int) -> bytes:
    """Entry i of the synthetic table: 70% TCP with DNAT+SNAT, 20% unreplied UDP, 10% IPv6 TCP."""
    kind = i % 10
    sport = 1024 + (i % 60000)
    client = bytes([198, 18, 1 + (i // 60000) % 200, 1 + (i // 240) % 250])
    if kind < 7:
        vip, backend = bytes([198, 18, 100, 1]), bytes([198, 18, 2, 2 + i % 50])
        snat = bytes([198, 18, 3, 1 + (i // 60000) % 250])  # one SNAT address per 60,000 ports
        orig = tuple_attr(CTA_TUPLE_ORIG, client, vip, 6, sport, 8080)
        reply = tuple_attr(CTA_TUPLE_REPLY, backend, snat, 6, 80, sport)
        return new_message(seq, socket.AF_INET, orig, reply, True, i % 3)
    if kind < 9:
        server = bytes([198, 18, 4, 2])
        orig = tuple_attr(CTA_TUPLE_ORIG, client, server, 17, sport, 53)
        reply = tuple_attr(CTA_TUPLE_REPLY, server, client, 17, 53, sport)
        return new_message(seq, socket.AF_INET, orig, reply, False, 0)
    c6 = socket.inet_pton(socket.AF_INET6, f"2001:db8:1::{i >> 16:x}:{i & 0xFFFF:x}")
    s6 = socket.inet_pton(socket.AF_INET6, "2001:db8:4::2")
    orig = tuple_attr(CTA_TUPLE_ORIG, c6, s6, 6, sport, 443)
    reply = tuple_attr(CTA_TUPLE_REPLY, s6, c6, 6, 443, sport)
    return new_message(seq, socket.AF_INET6, orig, reply, True, 0)


FILL_SCRIPT = r"""
import socket, sys
sys.path.insert(0, {bench_dir!r})
from bench_conntrack import BATCH, NETLINK_NETFILTER, NLMSG_ERROR, entry_message
import struct
first, last = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: room for the acks
s.bind((0, 0))
errors = 0
for start in range(first, last, BATCH):
    stop = min(start + BATCH, last)
    s.send(b"".join(entry_message(i, i + 1) for i in range(start, stop)))
    acks = 0
    while acks < stop - start:
        buf = s.recv(1 << 16)
        off = 0
        while off + 16 <= len(buf):
            length, kind = struct.unpack_from("=IH", buf, off)
            if kind == NLMSG_ERROR:
                acks += 1
                if struct.unpack_from("=i", buf, off + 16)[0] != 0:
                    errors += 1
            off += (length + 3) & ~3
print(errors)
"""


def run_in(ns: str, argv: list[str], *, stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS KiB, exit code) of argv run inside ns.

    CPU is user + system of the process and the children it waited for (gnt's prefetching
    child included): on a busy machine it is the steadier measure of the work done.
    """
    full = ["ip", "netns", "exec", ns, *argv]
    started = time.perf_counter()
    proc = subprocess.Popen(full, stdout=stdout, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def fill(ns: str, first: int, last: int) -> None:
    script = FILL_SCRIPT.format(bench_dir=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script, str(first), str(last)],
                         check=True, capture_output=True, text=True)
    if out.stdout.strip() != "0":
        raise SystemExit(f"inserting entries failed: {out.stdout.strip()} errors {out.stderr.strip()}")


def count_entries(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-C"], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def measure(ns: str, listers: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, float, int]]:
    """name -> (best wall, median wall, median CPU, peak RSS KiB); runs interleaved so drift hits all alike."""
    walls: dict[str, list[float]] = {name: [] for name in listers}
    cpus: dict[str, list[float]] = {name: [] for name in listers}
    rss: dict[str, int] = dict.fromkeys(listers, 0)
    for _ in range(runs):
        for name, argv in listers.items():
            wall, cpu, peak, code = run_in(ns, argv)
            if code not in (0, 1):
                raise SystemExit(f"{name} failed with exit code {code}: {shlex.join(argv)}")
            walls[name].append(wall)
            cpus[name].append(cpu)
            rss[name] = max(rss[name], peak)
    return {name: (min(w), statistics.median(w), statistics.median(cpus[name]), rss[name])
            for name, w in walls.items()}


CONNTRACK_MAX = "/proc/sys/net/netfilter/nf_conntrack_max"  # global limit of entries (per netns: read-only)
# (gnt conntrack list filter, conntrack -L filter): the same question to both; see entry_message for the mix
FILTERS = {
    "--dst": (["-d", "198.18.4.2"], ["-d", "198.18.4.2"]),  # the UDP server: 20% of the table
    "--dport": (["-p", "tcp", "--dport", "443"], ["-p", "tcp", "--dport", "443"]),  # the IPv6 TCP: 10%
    "--zone": (["--zone", "7"], ["--zone", "7"]),  # no entry: the kernel walks, nothing is sent
    "--mark": (["--mark", "2"], ["--mark", "2"]),  # a third of the DNAT'd TCP: 23%
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-filters", action="store_true", help="only the unfiltered listings")
    parser.add_argument("--gnt", default=f"{sys.executable} -m gnt", help="how to run gnt")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark makes a network namespace")
    gnt = shlex.split(args.gnt)
    ns = f"gnt-{os.getpid()}-0-bench"  # the test helpers' naming: a later run removes it if we die
    with open(CONNTRACK_MAX) as f:
        old_max = int(f.read())
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        if old_max < args.entries + 1000:
            with open(CONNTRACK_MAX, "w") as f:
                f.write(str(args.entries + 1000))
        listers = {
            "conntrack -L": ["conntrack", "-L"],
            "gnt conntrack list -o conntrack": [*gnt, "conntrack", "list", "-o", "conntrack"],
            "gnt conntrack list": [*gnt, "conntrack", "list"],
            "gnt conntrack list --json": [*gnt, "conntrack", "list", "--json"],
        }
        if not args.no_filters:
            for name, (ours, theirs) in FILTERS.items():
                listers[f"conntrack -L {name}"] = ["conntrack", "-L", *theirs]
                listers[f"gnt conntrack list {name}"] = [*gnt, "conntrack", "list", *ours]
        small = max(1, args.entries // 10)
        started = time.perf_counter()
        fill(ns, 0, small)
        small_results = measure(ns, listers, 1)
        loading = time.perf_counter()
        fill(ns, small, args.entries)
        loaded = time.perf_counter() - loading
        total = count_entries(ns)
        print(f"table: {total} entries (70% IPv4 TCP with DNAT+SNAT, 20% UDP unreplied, 10% IPv6 TCP), "
              f"{args.entries - small} loaded in {loaded:.1f}s by netlink batches "
              f"({(args.entries - small) / loaded:,.0f} entries/s; first {small} before the small-table "
              f"run, {time.perf_counter() - started:.0f}s in all); {args.runs} runs each, output to /dev/null")
        load_before = os.getloadavg()
        results = measure(ns, listers, args.runs)
        print(f"{'lister':<34} {'best s':>7} {'median s':>9} {'ratio':>6} {'CPU s':>6} {'CPU ratio':>9} "
              f"{'peak RSS':>9} {'RSS @' + str(small):>10}")
        for name, (best, median, cpu, peak) in results.items():
            peer = "conntrack -L" + name.split("gnt conntrack list", 1)[1].split(" -o")[0].split(" --json")[0] \
                if name.startswith("gnt ") else name
            _best, base_median, base_cpu, _rss = results[peer]
            print(f"{name:<34} {best:7.3f} {median:9.3f} {median / base_median:5.2f}x {cpu:6.3f} "
                  f"{cpu / base_cpu:8.2f}x {peak / 1024:7.1f}MB {small_results[name][3] / 1024:8.1f}MB")
        print(f"ratios: median wall against conntrack -L with the same filter (targets: text and -o conntrack "
              f"<= 1.2x, --json <= 2x, filtered <= 1.0x, RSS <= 40 MB); load average "
              f"{load_before[0]:.2f} before / {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        if old_max < args.entries + 1000:
            with open(CONNTRACK_MAX, "w") as f:
                f.write(str(old_max))
    return 0


if __name__ == "__main__":
    sys.exit(main())

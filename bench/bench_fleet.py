#!/usr/bin/env python3
"""The fleet targets: `gnt merge` of 5,000 node streams (<= 2 s, flat memory) and the Ansible
playbook over three sshd "nodes" in network namespaces (<= 15 s end to end).

1. merge: streams made by a real `gnt vxlan-csum scan --json` of a small capture (and a bad
   one for 1 node in 250), given 500 / 5,000 / 20,000 node names; each size merged 3 times by
   the installed gnt in a subprocess; wall time (median) and peak RSS (ru_maxrss). Memory is
   flat when the peak does not grow with the node count (only one line per node is kept).
   The same streams through `jq -s` (slurps, as people merge JSON by hand) for comparison.
2. ansible: `ansible-playbook deploy/ansible/gnt.yml` running `vxlan-csum audit` on three
   namespaces with their own sshd (tests/helpers/fleet_hosts.py), timed end to end, 3 runs.

Run as root from the repo with the test venv's interpreter:
    /opt/gnt/venv/bin/python bench/bench_fleet.py
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def make_streams(directory: Path, count: int) -> Path:
    from helpers.vxlan_frames import vxlan_frame, write_pcap

    good, bad = directory / "good.pcap", directory / "bad.pcap"
    write_pcap(str(good), [vxlan_frame("zero", sport=1), vxlan_frame("ok", sport=2)])
    write_pcap(str(bad), [vxlan_frame("ffff", sport=1)])
    streams = {}
    for kind, path in (("good", good), ("bad", bad)):
        out = subprocess.run([sys.executable, "-m", "gnt", "vxlan-csum", "scan", "--json", "--pcap", str(path)],
                             capture_output=True, text=True, check=False).stdout
        streams[kind] = out.splitlines()
    target = directory / f"fleet-{count}.json"
    with open(target, "w") as handle:
        for n in range(count):
            meta, *rest = streams["bad" if n % 250 == 0 else "good"]
            obj = json.loads(meta)
            obj["node"] = f"node-{n:05d}"
            handle.write("\n".join([json.dumps(obj), *rest]) + "\n")
    return target


def timed(argv: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS KiB of the child, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before), proc.returncode


def bench_merge(directory: Path) -> None:
    print("merge      nodes   median s   peak RSS MiB   exit")
    for count in (500, 5000, 20000):
        path = make_streams(directory, count)
        runs = []
        for _ in range(3):
            # a fresh interpreter per measurement so ru_maxrss is this run's own peak
            probe = subprocess.run(
                [sys.executable, "-c",
                 "import resource,subprocess,sys,time;t=time.perf_counter();"
                 "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
                 "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)",
                 sys.executable, "-m", "gnt", "merge", str(path)], capture_output=True, text=True, check=True)
            wall, rss, code = probe.stdout.split()
            runs.append((float(wall), int(rss), int(code)))
        wall = statistics.median(r[0] for r in runs)
        print(f"gnt      {count:7d}   {wall:8.2f}   {max(r[1] for r in runs) / 1024:12.1f}   {runs[0][2]}")
        if shutil.which("jq"):
            start = time.perf_counter()
            subprocess.run(["jq", "-s", "length", str(path)], stdout=subprocess.DEVNULL, check=False)
            print(f"jq -s    {count:7d}   {time.perf_counter() - start:8.2f}   (slurp, for comparison)")


def bench_ansible(directory: Path) -> None:
    from helpers.fleet_hosts import ansible_env, fleet_nodes, gnt_wrapper, inventory, keypair, start_sshd
    from helpers.netns import Topology

    with Topology() as topology:
        nodes = fleet_nodes(topology, ["node-a", "node-b", "node-c"], {"node-b"})
        key = keypair(directory)
        daemons = [start_sshd(ns, node, directory / node, key) for node, ns in nodes.items()]
        (directory / "cp").mkdir()
        try:
            inv = inventory(directory / "inventory.ini", nodes, key, directory / "cp")
            wrapper = gnt_wrapper(directory / "gnt")
            extra = {"gnt_binary": str(wrapper), "gnt_remote_path": str(directory / "remote-{{ inventory_hostname }}"),
                     "gnt_args": ["vxlan-csum", "audit"], "gnt_results_dir": str(directory / "results")}
            (directory / "vars.json").write_text(json.dumps(extra))
            times = []
            for _ in range(3):
                start = time.perf_counter()
                argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv),
                        str(ROOT / "deploy" / "ansible" / "gnt.yml"), "-e", f"@{directory / 'vars.json'}"]
                run = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(directory), cwd=directory,
                                     check=False)
                times.append(time.perf_counter() - start)
                named = "1 of 3 nodes need a look" in run.stdout
            print(f"ansible 3 nodes: median {statistics.median(times):.2f} s (runs: "
                  f"{', '.join(f'{t:.2f}' for t in times)}); node-b named: {named}")
        finally:
            for proc in daemons:
                proc.kill()


def main() -> None:
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_merge(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        bench_ansible(Path(tmp))


if __name__ == "__main__":
    main()

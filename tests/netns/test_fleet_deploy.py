"""deploy/ run for real: the Ansible playbook against three sshd "nodes" in namespaces, and the
kubectl-gnt plugin's flow (templated Jobs, concurrency, collection, merge) against a stand-in
for the API server that runs each Job's gnt in the namespace of its node (no cluster here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.fleet_hosts import ansible_env, fleet_nodes, gnt_wrapper, inventory, keypair, start_sshd
from helpers.jsonl import check_stream
from helpers.netns import Namespace, Topology

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NODES = ["node-a", "node-b", "node-c"]
AT_RISK = {"node-b"}


@pytest.fixture
def nodes(topology: Topology) -> dict[str, Namespace]:
    return fleet_nodes(topology, NODES, AT_RISK)


@pytest.fixture
def ssh_fleet(nodes: dict[str, Namespace], tmp_path: Path) -> Iterator[Path]:
    key = keypair(tmp_path)
    daemons = [start_sshd(ns, node, tmp_path / node, key) for node, ns in nodes.items()]
    (tmp_path / "cp").mkdir()
    try:
        yield inventory(tmp_path / "inventory.ini", nodes, key, tmp_path / "cp")
    finally:
        for proc in daemons:
            proc.kill()
            proc.wait()


def test_ansible_playbook_names_exactly_the_node_at_risk(ssh_fleet: Path, tmp_path: Path) -> None:
    wrapper = gnt_wrapper(tmp_path / "gnt")
    results = tmp_path / "results"
    extra = {"gnt_binary": str(wrapper), "gnt_remote_path": str(tmp_path / "remote-gnt-{{ inventory_hostname }}"),
             "gnt_args": ["vxlan-csum", "audit"], "gnt_results_dir": str(results)}
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(ssh_fleet),
         str(ROOT / "deploy" / "ansible" / "gnt.yml"), "-e", f"@{tmp_path / 'vars.json'}"],
        capture_output=True, text=True, timeout=240, env=ansible_env(tmp_path), cwd=tmp_path, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out  # the play fails on purpose: a node needs a look
    assert "gnt merge: vxlan-csum audit: 1 of 3 nodes need a look" in out, out
    streams = {p.stem: check_stream(p.read_text()) for p in results.glob("*.json")}
    assert set(streams) == set(NODES)
    for node, objs in streams.items():
        assert objs[0]["node"] == node  # each stream came from its own host
        assert objs[-1]["at_risk"] is (node in AT_RISK)
    for node in NODES:  # each host got its own copy of the binary
        assert (tmp_path / f"remote-gnt-{node}").stat().st_mode & 0o111
    merged = subprocess.run([str(wrapper), "merge", str(results)], capture_output=True, text=True, check=False)
    assert merged.returncode == 1
    assert "  1 AT RISK: node-b" in merged.stdout and "  2 ok" in merged.stdout


def test_kubectl_gnt_plugin_flow(nodes: dict[str, Namespace], tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    fake = tmp_path / "kubectl"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'helpers' / 'fake_kubectl.py'} \"$@\"\n")
    fake.chmod(0o755)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBECTL": str(fake), "GNT": str(gnt_wrapper(tmp_path / "gnt")),
        "FAKE_STATE": str(state), "FAKE_NODES": ",".join(f"{n}={ns.name}" for n, ns in nodes.items()),
        "FAKE_GNT": f"{sys.executable} -m gnt", "PYTHONPATH": str(ROOT / "tests"),
    }
    out_dir = tmp_path / "streams"
    run = subprocess.run([str(ROOT / "deploy" / "kubernetes" / "kubectl-gnt"), "-j", "2", "-o", str(out_dir),
                          "--", "vxlan-csum", "audit"], capture_output=True, text=True, timeout=120, env=env,
                         check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == "vxlan-csum audit: 1 of 3 nodes need a look"
    assert "  1 AT RISK: node-b" in run.stdout
    for node in NODES:
        assert check_stream((out_dir / f"{node}.json").read_text())[0]["node"] == node
    calls = (state / "calls.log").read_text().splitlines()
    assert sum(c.startswith("apply") for c in calls) == 3 and sum(c.startswith("delete") for c in calls) == 3
    assert not list(state.glob("*.rc"))  # every Job deleted


def test_kubectl_gnt_bad_usage(tmp_path: Path) -> None:
    plugin = str(ROOT / "deploy" / "kubernetes" / "kubectl-gnt")
    for argv in ([plugin], [plugin, "-j", "x", "--", "ping", "h"], [plugin, "-t", "0", "--", "ping", "h"]):
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr

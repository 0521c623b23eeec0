"""A two-node "cluster" in two namespaces, wired as flannel does it, with kube-proxy's NAT rules.

    node1 (198.18.100.1) ── eth0 ══ eth0 ── node2 (198.18.100.2)        underlay
    flannel.1 10.244.0.0/32  ── VXLAN id 1, dstport 8472, noudpcsum ──  flannel.1 10.244.1.0/32
    cni0 10.244.0.1/24 ("pod")                                           cni0 10.244.1.1/24 ("pod", HTTP :8080)

node1 carries kube-proxy's pre-PR-92035 rules: NodePort 30080 DNATs to the pod on node2 and
marks the connection 0x4000 (KUBE-MARK-MASQ); KUBE-POSTROUTING MASQUERADEs marked traffic
`--random-fully`. The mark survives encapsulation, so the outer VXLAN packets are masqueraded
too. On this kernel (fixed) the checksums come out right: `scan` reports them good while `audit`
flags the configuration; each fix the audit names is then applied and its finding goes away.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator

import pytest
from helpers.jsonl import records
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns

UNDERLAY = {"node1": "198.18.100.1", "node2": "198.18.100.2"}
POD_NET = {"node1": 0, "node2": 1}  # 10.244.N.0/24 per node
NODEPORT = 30080
SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"pod on node2 " + self.client_address[0].encode() + b"\\n" + b"x" * 3000
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], 8080), H).serve_forever()
"""
KUBE_RULES = [
    "-t nat -N KUBE-MARK-MASQ",
    "-t nat -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
    "-t nat -N KUBE-POSTROUTING",
    "-t nat -A POSTROUTING -m comment --comment kubernetes-postrouting-rules -j KUBE-POSTROUTING",
    "-t nat -A KUBE-POSTROUTING -m comment --comment kubernetes-service-traffic-requiring-SNAT "
    "-m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully",
    f"-t nat -A OUTPUT -p tcp -d {UNDERLAY['node1']} --dport {NODEPORT} -j KUBE-MARK-MASQ",
    f"-t nat -A OUTPUT -p tcp -d {UNDERLAY['node1']} --dport {NODEPORT} -j DNAT --to-destination 10.244.1.1:8080",
]


def _mac(ns: Namespace, dev: str) -> str:
    return ns.run("cat", f"/sys/class/net/{dev}/address").stdout.strip()


def build_cluster(topo: Topology) -> dict[str, Namespace]:
    nodes = {name: topo.add(name) for name in ("node1", "node2")}
    topo.veth(nodes["node1"], "eth0", nodes["node2"], "eth0")
    for name, ns in nodes.items():
        n = POD_NET[name]
        ns.ip("addr", "add", f"{UNDERLAY[name]}/24", "dev", "eth0")
        ns.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", UNDERLAY[name], "dev", "eth0",
              "dstport", "8472", "noudpcsum", "nolearning")
        ns.ip("addr", "add", f"10.244.{n}.0/32", "dev", "flannel.1")
        ns.ip("link", "set", "flannel.1", "up")
        ns.ip("link", "add", "cni0", "type", "bridge")
        ns.ip("addr", "add", f"10.244.{n}.1/24", "dev", "cni0")
        ns.ip("link", "set", "cni0", "up")
        ns.sysctl("net.ipv4.ip_forward", "1")
    for name, peer in (("node1", "node2"), ("node2", "node1")):
        ns, pn = nodes[name], POD_NET[peer]
        peer_mac = _mac(nodes[peer], "flannel.1")
        ns.ip("route", "add", f"10.244.{pn}.0/24", "via", f"10.244.{pn}.0", "dev", "flannel.1", "onlink")
        ns.ip("neigh", "add", f"10.244.{pn}.0", "lladdr", peer_mac, "dev", "flannel.1", "nud", "permanent")
        ns.run("bridge", "fdb", "append", peer_mac, "dev", "flannel.1", "dst", UNDERLAY[peer])
    for rule in KUBE_RULES:
        nodes["node1"].run("iptables", *rule.split())
    return nodes


@pytest.fixture
def cluster(topology: Topology) -> Iterator[dict[str, Namespace]]:
    nodes = build_cluster(topology)
    server = nodes["node2"].popen(sys.executable, "-c", SERVER, "10.244.1.1")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "10.244.1.1:8080" in nodes["node2"].run("ss", "-ltn").stdout:
                break
            time.sleep(0.05)
        yield nodes
    finally:
        server.kill()
        server.wait()


def curl(ns: Namespace, url: str, *extra: str) -> str:
    result = ns.run("curl", "-sS", "--max-time", "5", *extra, url, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def traffic(node1: Namespace) -> None:
    """Pod-to-pod, and NodePort-to-remote-pod (the marked, doubly masqueraded path)."""
    assert curl(node1, "http://10.244.1.1:8080/", "--interface", "10.244.0.1").startswith("pod on node2 10.244.0.1")
    # Through the NodePort the pod sees node1's flannel.1 address: kube-proxy's masquerade happened.
    assert curl(node1, f"http://{UNDERLAY['node1']}:{NODEPORT}/").startswith("pod on node2 10.244.0.0")


def audit(ns: Namespace) -> tuple[int, list[dict[str, object]], dict[str, object]]:
    result = ns.gnt("vxlan-csum", "audit", "--json")
    assert result.returncode in (0, 1), result.stderr
    objs = records(result.stdout)
    assert objs[-1]["type"] == "audit"
    return result.returncode, objs[:-1], objs[-1]


def test_scan_good_on_the_wire_while_audit_flags_the_config(cluster: dict[str, Namespace], tmp_path) -> None:
    node1, node2 = cluster["node1"], cluster["node2"]
    pcap = tmp_path / "node2-eth0.pcap"
    tmp_path.chmod(0o755)
    dump = node2.popen("tcpdump", "-Z", "root", "-i", "eth0", "-nn", "-U", "-w", str(pcap), "udp", "port", "8472")
    scan = node2.gnt_popen("vxlan-csum", "scan", "-i", "eth0", "--duration", "6", "--json")
    try:
        deadline = time.monotonic() + 10
        while len(node2.run("cat", "/proc/net/packet").stdout.splitlines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # both packet sockets (tcpdump's and gnt's) are open
        time.sleep(0.3)
        for _ in range(3):
            traffic(node1)
        out, err = scan.communicate(timeout=30)
    finally:
        if scan.poll() is None:
            scan.kill()
        time.sleep(0.3)
        dump.terminate()
        dump.wait(timeout=10)
    assert scan.returncode == 0, err
    objs = records(out)
    summary = objs[-1]
    assert summary["vxlan_packets"] >= 20
    assert summary["checksum_bad"] == 0 and summary["inner_bad"] == 0
    # flannel's VXLAN sends no outer checksum (noudpcsum); the inner TCP checksums verify.
    assert summary["checksum_zero"] == summary["vxlan_packets"] - summary["truncated_packets"]
    flows = objs[:-1]
    assert any(f["inner_dst"] == "10.244.1.1" and f["inner_dport"] == 8080 and f["vni"] == 1 for f in flows)
    # The packet socket sees both directions: the pod's replies leave node2 through the tunnel too.
    assert any(f["inner_src"] == "10.244.1.1" and f["inner_sport"] == 8080 for f in flows)
    # The condition is real: node1's conntrack shows the outer VXLAN packets of the NodePort flow
    # masqueraded a second time, their source port rewritten by --random-fully.
    entries = node1.run("conntrack", "-L", "-p", "udp", "--dport", "8472", check=False).stdout.splitlines()
    rewritten = []
    for line in entries:
        ports = [kv.split("=")[1] for kv in line.split() if kv.startswith(("sport=", "dport="))]
        if len(ports) == 4 and ports[0] != ports[3]:  # original sport != reply dport
            rewritten.append(line)
    assert rewritten, entries
    # The same traffic captured by tcpdump to a file, scanned offline.
    offline = node2.gnt("vxlan-csum", "scan", "--pcap", str(pcap), "--json")
    assert offline.returncode == 0, offline.stderr
    off_summary = json.loads(offline.stdout.splitlines()[-1])
    assert off_summary["vxlan_packets"] >= 20 and off_summary["checksum_bad"] == 0

    code, findings, summary_a = audit(node1)
    assert code == 1
    ids = sorted(str(f["id"]) for f in findings)
    assert ids == ["masquerade-random-fully-without-unmark", "vxlan-tx-csum-offload"]
    assert summary_a["at_risk"] is True
    assert all(f["severity"] == "high" for f in findings)
    offload = next(f for f in findings if f["id"] == "vxlan-tx-csum-offload")
    assert offload["subject"] == "flannel.1"
    assert offload["fix"] == "ethtool -K flannel.1 tx-checksum-ip-generic off"
    assert "dstport 8472" in str(offload["evidence"]) and "noudpcsum" in str(offload["evidence"])
    masq = next(f for f in findings if f["id"] == "masquerade-random-fully-without-unmark")
    assert "KUBE-POSTROUTING" in str(masq["subject"])
    assert "kernel-nat-udp-csum-bug" in summary_a["passed"]  # this kernel carries the fix
    assert "lro-on-forwarding-nic" in summary_a["passed"]  # veth has no LRO
    # node2 has the VXLAN device but not the rules: one ingredient, not at risk.
    code2, findings2, _ = audit(node2)
    assert code2 == 0
    assert [f["id"] for f in findings2] == ["vxlan-tx-csum-offload"]
    assert findings2[0]["severity"] == "warning"


def test_each_fix_removes_its_finding(cluster: dict[str, Namespace]) -> None:
    node1 = cluster["node1"]
    traffic(node1)
    code, findings, _ = audit(node1)
    assert code == 1 and len(findings) == 2
    by_id = {f["id"]: f for f in findings}

    # The un-mark rules first (kube-proxy's fix): the offload finding stays, no longer at risk.
    node1.run("sh", "-c", str(by_id["masquerade-random-fully-without-unmark"]["fix"]))
    code, findings, summary = audit(node1)
    assert [f["id"] for f in findings] == ["vxlan-tx-csum-offload"]
    assert code == 0 and summary["at_risk"] is False
    rules = node1.run("iptables-save", "-t", "nat").stdout
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" in rules
    assert "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0" in rules
    traffic(node1)  # kube-proxy's masquerade still happens: the pod sees 10.244.0.0 through the NodePort

    # Then the offload workaround: nothing left.
    node1.run("sh", "-c", str(by_id["vxlan-tx-csum-offload"]["fix"]))
    code, findings, summary = audit(node1)
    assert code == 0 and findings == []
    assert summary["verdict"].startswith("OK")
    features = node1.run("ethtool", "-k", "flannel.1").stdout
    assert "tx-checksum-ip-generic: off" in features
    traffic(node1)


def test_offload_fix_alone_ends_the_risk(cluster: dict[str, Namespace]) -> None:
    node1 = cluster["node1"]
    _code, findings, _ = audit(node1)
    fix = next(f["fix"] for f in findings if f["id"] == "vxlan-tx-csum-offload")
    node1.run("sh", "-c", str(fix))
    code, findings, summary = audit(node1)
    assert code == 0 and summary["at_risk"] is False
    assert [(f["id"], f["severity"]) for f in findings] == [("masquerade-random-fully-without-unmark", "warning")]
    traffic(node1)


def test_nft_native_masquerade_rule_and_its_fix(cluster: dict[str, Namespace]) -> None:
    """kube-proxy's nftables mode: the same condition written as native nft rules."""
    node1 = cluster["node1"]
    node1.run("iptables", "-t", "nat", "-F", "KUBE-POSTROUTING")
    node1.run("nft", "add table ip kubeproxy")
    node1.run("nft", "add chain ip kubeproxy post { type nat hook postrouting priority srcnat + 1 ; }")
    node1.run("nft", "add rule ip kubeproxy post meta mark and 0x4000 == 0x4000 masquerade fully-random")
    code, findings, _ = audit(node1)
    masq = [f for f in findings if f["id"] == "masquerade-random-fully-without-unmark"]
    assert len(masq) == 1 and str(masq[0]["subject"]).startswith("nft kubeproxy/post")
    assert code == 1
    node1.run("sh", "-c", str(masq[0]["fix"]))
    code, findings, _ = audit(node1)
    assert [f["id"] for f in findings] == ["vxlan-tx-csum-offload"]
    assert code == 0
    traffic(node1)  # the rewritten nft rule still masquerades NodePort traffic

"""The seeds' incidents, rebuilt in namespaces for `gnt why`: shared by tests/netns/test_why.py and
bench/bench_why.py so both run exactly the same topologies.

Each builder takes a fresh `Topology`, builds the incident and returns an `Incident`: the node
an operator would run `gnt why` on, the arguments, the start of the verdict's first line, and
the helper processes to stop afterwards. Addresses are 198.18.0.0/15 only.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from helpers.netns import Namespace, Topology


@dataclass
class Incident:
    name: str
    node: Namespace
    args: tuple[str, ...]
    expect: str  # how the verdict's first line starts
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    exit_code: int = 1

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def link(topo: Topology, a: Namespace, a_if: str, a_addr: str, b: Namespace, b_if: str, b_addr: str) -> None:
    topo.veth(a, a_if, b, b_if)
    a.ip("addr", "add", a_addr, "dev", a_if)
    b.ip("addr", "add", b_addr, "dev", b_if)


def three(topo: Topology) -> tuple[Namespace, Namespace, Namespace]:
    """h1 (198.18.1.1) ── r1 ── h2 (198.18.2.2), forwarding on in r1, default routes on the hosts."""
    h1, r1, h2 = topo.add("h1"), topo.add("r1"), topo.add("h2")
    link(topo, h1, "eth0", "198.18.1.1/24", r1, "eth0", "198.18.1.2/24")
    link(topo, r1, "eth1", "198.18.2.1/24", h2, "eth0", "198.18.2.2/24")
    h1.ip("route", "add", "default", "via", "198.18.1.2")
    h2.ip("route", "add", "default", "via", "198.18.2.1")
    r1.sysctl("net.ipv4.ip_forward", "1")
    return h1, r1, h2


def listen(ns: Namespace, port: int, *, seconds: float = 120) -> subprocess.Popen[str]:
    """A TCP listener that accepts and holds connections."""
    code = ("import socket,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port})); s.listen(64); print('ready', flush=True)\n"
            "held=[]\n"
            f"end=time.time()+{seconds}\n"
            "s.settimeout(0.2)\n"
            "while time.time() < end:\n"
            "    try: held.append(s.accept()[0])\n"
            "    except OSError: pass\n")
    proc = ns.popen("python3", "-c", code)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def healthy(topo: Topology) -> Incident:
    h1, _r1, h2 = three(topo)
    return Incident("healthy", h1, ("198.18.2.2:80",), "198.18.2.2:80 answers: connected", [listen(h2, 80)],
                    exit_code=0)


def route_missing(topo: Topology) -> Incident:
    h1, _r1, _h2 = three(topo)
    h1.ip("route", "del", "default")
    return Incident("route-missing", h1, ("198.18.2.2:80",),
                    "no route to 198.18.2.2 in table main (default route missing)")


def gateway_absent(topo: Topology) -> Incident:
    h1, _r1, _h2 = three(topo)
    h1.ip("route", "replace", "default", "via", "198.18.1.99")
    return Incident("gateway-absent", h1, ("198.18.2.2:80",), "gateway 198.18.1.99 does not answer ARP on eth0")


def forwarding_off(topo: Topology) -> Incident:
    _h1, r1, _h2 = three(topo)
    r1.sysctl("net.ipv4.ip_forward", "0")
    return Incident("forwarding-off", r1, ("198.18.2.2:80", "--from", "198.18.1.1"),
                    "forwarding is off on this node: 198.18.1.1 → 198.18.2.2:80 arriving on eth0")


def forward_policy_drop(topo: Topology) -> Incident:
    """Docker style: FORWARD policy DROP, only port 22 and established flows accepted. Passive on r1."""
    h1, r1, h2 = three(topo)
    r1.run("iptables", "-P", "FORWARD", "DROP")
    r1.run("iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
    r1.run("iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    del h1  # the sender: send_forward_traffic(topo["h1"]) while the watch runs
    return Incident("forward-policy-drop", r1, ("198.18.2.2:80", "--watch", "--duration", "4"),
                    "dropped: filter FORWARD policy DROP (no rule accepted 198.18.1.1 → 198.18.2.2:80)",
                    [listen(h2, 80)])


def send_forward_traffic(h1: Namespace) -> None:
    """Three connection attempts from h1 to h2:80 (for the passive incident)."""
    h1.run("python3", "-c", "import socket\nfor _ in range(3):\n    s=socket.socket(); s.settimeout(0.3)\n"
           "    try: s.connect(('198.18.2.2', 80))\n    except OSError: pass\n", check=False)


def rp_filter_asymmetric(topo: Topology, *, strict: bool = True) -> Incident:
    n, r, h = topo.add("n"), topo.add("r"), topo.add("h")
    link(topo, n, "eth0", "198.18.1.1/24", r, "eth0", "198.18.1.2/24")
    link(topo, n, "eth1", "198.18.2.1/24", r, "eth1", "198.18.2.2/24")
    link(topo, r, "eth2", "198.18.3.1/24", h, "eth0", "198.18.3.2/24")
    h.ip("route", "add", "default", "via", "198.18.3.1")
    n.ip("route", "add", "198.18.3.0/24", "via", "198.18.1.2")
    r.sysctl("net.ipv4.ip_forward", "1")
    # r sends the replies to n by the other link: n's route back to h is eth0, the replies arrive on eth1
    r.ip("rule", "add", "from", "198.18.3.2", "to", "198.18.1.1", "table", "10")
    r.ip("route", "add", "198.18.1.1", "via", "198.18.2.1", "dev", "eth1", "table", "10")
    n.sysctl("net.ipv4.conf.all.rp_filter", "1" if strict else "2")
    return Incident("rp-filter", n, ("198.18.3.2",),
                    "dropped by rp_filter on eth1: replies arrive on another interface than the route back (eth0)")


def dnat_backend_gone(topo: Topology) -> Incident:
    """kube-proxy NodePort: DNAT 198.18.1.2:30080 -> 198.18.2.2:80 in PREROUTING and OUTPUT; a client holds
    a connection through it, then the backend's address goes away (its conntrack entry stays)."""
    client, node, backend = three(topo)  # the client, the node, the backend pod
    for chain in ("PREROUTING", "OUTPUT"):
        node.run("iptables", "-t", "nat", "-A", chain, "-d", "198.18.1.2", "-p", "tcp", "--dport", "30080",
                 "-j", "DNAT", "--to-destination", "198.18.2.2:80")
    server = listen(backend, 80)
    holder = client.popen("python3", "-c", "import socket,time\ns=socket.create_connection(('198.18.1.2', 30080))\n"
                          "print('up', flush=True)\ntime.sleep(120)")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
    backend.ip("addr", "flush", "dev", "eth0")  # the pod is gone; its conntrack entry is not
    return Incident("dnat-backend-gone", node, ("198.18.1.2:30080",),
                    "DNAT sends 198.18.1.2:30080 to 198.18.2.2:80, which does not answer", [server, holder])


def vxlan_pair(topo: Topology) -> tuple[Namespace, Namespace]:
    """Two nodes, underlay 198.18.1.1/.2, vxlan0 (VNI 42) overlay 198.19.0.1/.2."""
    a, b = topo.add("a"), topo.add("b")
    link(topo, a, "eth0", "198.18.1.1/24", b, "eth0", "198.18.1.2/24")
    for ns, local, remote, overlay in ((a, "198.18.1.1", "198.18.1.2", "198.19.0.1/24"),
                                       (b, "198.18.1.2", "198.18.1.1", "198.19.0.2/24")):
        ns.ip("link", "add", "vxlan0", "type", "vxlan", "id", "42", "remote", remote, "local", local,
              "dstport", "4789", "dev", "eth0")
        ns.ip("link", "set", "vxlan0", "up")
        ns.ip("addr", "add", overlay, "dev", "vxlan0")
    return a, b


def break_vxlan_checksums(a: Namespace) -> None:
    """The sender's bug, made real: a postrouting rewrite of the outer UDP checksum field (as NAT's
    "incremental update" of a checksum does), finished in software (tx offload off) so it goes out wrong."""
    a.run("nft", "add", "table", "ip", "csumbug")
    a.run("nft", "add", "chain", "ip", "csumbug", "post", "{ type filter hook postrouting priority 0; }")
    a.run("nft", "add", "rule", "ip", "csumbug", "post", "udp", "dport", "4789", "@th,48,16", "set", "0x1234")
    a.run("ethtool", "-K", "eth0", "tx", "off")


def vxlan_bad_checksum(topo: Topology) -> Incident:
    a, b = vxlan_pair(topo)
    b.run("ping", "-c1", "-W1", "198.19.0.1")  # the overlay neighbour resolves while the path is good
    break_vxlan_checksums(a)
    return Incident("vxlan-udp-csum", b, ("198.19.0.1",),
                    "VXLAN packets from 198.18.1.1 arrive with bad outer UDP checksums (UDP_CSUM drops")


def mtu_chain(topo: Topology) -> tuple[Namespace, Namespace, Namespace]:
    h1, r1, h2 = three(topo)
    r1.ip("link", "set", "eth1", "mtu", "1400")
    h2.ip("link", "set", "eth0", "mtu", "1400")
    return h1, r1, h2


def drop_frag_needed(r1: Namespace) -> None:
    r1.run("nft", "add", "table", "ip", "blackhole")
    r1.run("nft", "add", "chain", "ip", "blackhole", "out", "{ type filter hook output priority 0; }")
    r1.run("nft", "add", "rule", "ip", "blackhole", "out", "icmp", "type", "destination-unreachable", "icmp", "code",
           "frag-needed", "drop")


def mtu_black_hole(topo: Topology) -> Incident:
    h1, r1, _h2 = mtu_chain(topo)
    drop_frag_needed(r1)
    return Incident("mtu-black-hole", h1, ("198.18.2.2",), "path MTU 1400 but eth0 sends 1500 and large packets vanish")


ACTIVE: tuple[Callable[[Topology], Incident], ...] = (  # the incidents `gnt why` diagnoses actively
    healthy, route_missing, gateway_absent, forwarding_off, rp_filter_asymmetric, dnat_backend_gone,
    vxlan_bad_checksum, mtu_black_hole,
)

"""Building test packets sends nothing.

scapy fills a missing destination MAC by asking the network (an ARP who-has for the gateway). The
test session turns that off (tests/helpers/scapy_quiet.py, from conftest.py). Here the builders
run in a namespace whose default route points at a silent neighbour over a veth, and the veth's
transmit counter must not move; the same build with resolution left on is the control: it must
move the counter, or this test could not fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns

TESTS = Path(__file__).resolve().parent.parent

BUILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
quiet = sys.argv[2] == "quiet"
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
import helpers.vxlan_frames as frames
if quiet:
    from helpers.scapy_quiet import silence_neighbour_resolution
    assert silence_neighbour_resolution()
def tx():
    return int(open("/sys/class/net/eth0/statistics/tx_packets").read())
before = tx()
# What a careless test writes: no MACs, a destination behind the default route.
bytes(Ether() / IP(dst="198.19.0.7") / UDP(dport=8472))
# The shared builders of the vxlan tests.
frames.inner_frame("tcp")
frames.inner_frame("udp", v6=True)
frames.vxlan_frame("ffff")
print(json.dumps({"sent": tx() - before}))
"""


@pytest.fixture
def builder(topology: Topology) -> Namespace:
    ns = topology.add("build")
    silent = topology.add("silent")
    topology.veth(ns, "eth0", silent, "eth0")
    for end in (ns, silent):
        end.sysctl("net.ipv6.conf.eth0.disable_ipv6", "1")  # no autoconfiguration traffic of its own
    ns.ip("addr", "add", "198.18.9.1/24", "dev", "eth0")
    ns.ip("route", "add", "default", "via", "198.18.9.2")  # nobody there: an ARP would go unanswered
    return ns


def _sent(ns: Namespace, mode: str) -> int:
    done = ns.run(sys.executable, "-c", BUILD, str(TESTS), mode, timeout=60)
    return int(json.loads(done.stdout.splitlines()[-1])["sent"])


def test_building_packets_sends_nothing_with_resolution_off(builder: Namespace) -> None:
    assert _sent(builder, "quiet") == 0


def test_the_control_build_does_send(builder: Namespace) -> None:
    """Without the session setting scapy sends its ARP who-has: the counter above can move."""
    assert _sent(builder, "loud") >= 1

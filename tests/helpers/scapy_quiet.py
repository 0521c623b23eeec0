"""Turn off scapy's neighbour resolution for the test session.

Built with no destination MAC, scapy's `Ether()` asks `conf.neighbor` for one, which sends an ARP
who-has (or a neighbour solicitation) for the route's gateway on the real interface: traffic to an
address outside the test namespaces, from a test that only meant to build bytes. With resolution
off such a frame gets the broadcast address and a warning instead; tests give every frame explicit
MACs anyway (tests/netns/test_no_stray_packets.py checks both).
"""

from __future__ import annotations

import sys


def _no_resolution(_l2: object, _l3: object) -> None:
    return None


def silence_neighbour_resolution() -> bool:
    """Once scapy's Ethernet layer is loaded, make its neighbour lookup answer "unknown" without
    sending anything. Returns whether scapy was loaded (cheap to call before every test)."""
    l2 = sys.modules.get("scapy.layers.l2")
    if l2 is None:
        return False
    neighbor = l2.conf.neighbor
    if getattr(neighbor, "resolve", None) is not _no_resolution:
        neighbor.resolve = _no_resolution
    return True

"""Drop reasons: the running kernel's names (from the tracepoint's format), and what each usually means.

The numbers behind the names are renumbered between kernels, so gnt never keeps them: the table
comes from `skb:kfree_skb`'s format file each run. What gnt keeps is advice per *name*.
"""

from __future__ import annotations

# Hidden unless --all or --reason asks for them. NOT_SPECIFIED is every kfree_skb() caller that
# gives no reason: on a quiet node it is the bulk of the events and is normal housekeeping (on the
# 6.18 test node: ~13/s from skb_release_data freeing fragment lists), not a lost packet.
DEFAULT_HIDDEN = ("NOT_SPECIFIED",)

# name -> what usually causes it and where to look next (one line each).
HINTS: dict[str, str] = {
    "NO_SOCKET": "nothing listens on the destination port (UDP to a closed port, TCP to a closed one): "
                 "check the service and `ss -lntu` in its namespace",
    "UDP_CSUM": "bad UDP checksum on receive (VXLAN/tunnel outer checksum broken by offload): see `gnt vxlan-csum`",
    "TCP_CSUM": "bad TCP checksum on receive: checksum offload on the sender or a middlebox (see `gnt vxlan-csum` "
                "for tunnels, `ethtool -k`)",
    "IP_CSUM": "bad IPv4 header checksum: a broken sender or NIC offload",
    "NETFILTER_DROP": "a firewall rule or chain policy dropped it: `gnt iptrace` shows the rule",
    "IP_RPFILTER": "reverse-path filter: the source is not routed back via the input interface; check "
                   "net.ipv4.conf.<iface>.rp_filter (and .all) and the routes to the source",
    "IP_INNOROUTES": "no route for the destination on input (forwarding): check `ip route get <dst> from <src> "
                     "iif <iface>`",
    "IP_OUTNOROUTES": "no route for the destination on output: check `ip route get <dst>` and the routing rules",
    "IP_INADDRERRORS": "the destination is not valid here (e.g. unreachable or prohibit route): `ip route get <dst>`",
    "NEIGH_FAILED": "the next hop did not answer ARP/NDP: check `gnt neigh` and that the next hop is up",
    "NEIGH_QUEUEFULL": "too many packets waited for an ARP/NDP answer: the next hop is not answering "
                       "(`gnt neigh`) or net.ipv4.neigh.default.unres_qlen is small",
    "NEIGH_CREATEFAIL": "no neighbour entry could be made: the neighbour table is full (gc_thresh3)",
    "PKT_TOO_BIG": "larger than the path MTU with DF set (or GSO that cannot be segmented): check the MTU of "
                   "the tunnel/overlay interface and that ICMP frag-needed gets back to the sender",
    "OTHERHOST": "the frame was addressed to another host's MAC (promiscuous interface or a bridge flood)",
    "IP_NOPROTO": "no handler for the IP protocol number (a module not loaded, e.g. sctp, gre)",
    "SOCKET_RCVBUFF": "the receiving socket's buffer was full: the application reads too slowly "
                      "(raise SO_RCVBUF / net.core.rmem_max)",
    "SOCKET_FILTER": "a socket filter (BPF on the socket) refused it",
    "PROTO_MEM": "the protocol's memory limit was reached (net.ipv4.udp_mem / tcp_mem)",
    "CPU_BACKLOG": "the per-CPU input backlog was full: raise net.core.netdev_max_backlog, spread RX (RPS)",
    "QDISC_DROP": "the queueing discipline dropped it on transmit (queue full): `tc -s qdisc`",
    "FULL_RING": "the device's ring was full",
    "NOMEM": "an allocation failed",
    "TC_INGRESS": "a tc ingress action (filter/BPF) dropped it: `tc -s filter show dev <iface> ingress`",
    "TC_EGRESS": "a tc egress action dropped it: `tc -s filter show dev <iface> egress`",
    "XDP": "an XDP program dropped it: `ip link` shows which interface has one",
    "VXLAN_INVALID_HDR": "a VXLAN packet with a bad header (flags/VNI) arrived: check the sender's VXLAN settings",
    "VXLAN_VNI_NOT_FOUND": "a VXLAN packet for a VNI no vxlan device here has: compare the VNI on both ends",
    "IP_LOCAL_SOURCE": "a packet arrived with one of this host's own addresses as source (a loop or spoofing)",
    "IP_INVALID_SOURCE": "a martian source address (0/8, multicast, ...): log_martians shows more",
    "IPV6DISABLED": "IPv6 is disabled on the interface (net.ipv6.conf.<iface>.disable_ipv6)",
    "UNHANDLED_PROTO": "no handler for the protocol (EtherType) on this interface",
    "FRAG_REASM_TIMEOUT": "IP fragments never completed in time: a fragment lost on the way (MTU issue)",
    "TCP_LISTEN_OVERFLOW": "the listen backlog overflowed: the application accepts too slowly (somaxconn)",
}


def hint_for(reason: str) -> str | None:
    return HINTS.get(reason)

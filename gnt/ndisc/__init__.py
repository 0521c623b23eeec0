"""IPv6 neighbour and router discovery (RFC 4861), address facts, and the kernel neighbour table.

- `ndisc`: resolve a link-layer address with a Neighbor Solicitation, or run duplicate address
  detection (RFC 4862 §5.4) for a tentative address.
- `rdisc`: solicit and decode Router Advertisements, or listen for unsolicited ones.
- `ip6`: facts about an IPv6 address (kind, scope, solicited-node group, EUI-64, ip6.arpa).
- `neigh`: the kernel neighbour table through netlink, and its state transitions live.

Each module yields the dataclasses of `models`; nothing here prints.
"""

"""Facts about an IPv6 address, and the EUI-64 addresses a MAC makes; no privileges, no network.

netaddr does the arithmetic (EUI-64, the ip6.arpa name); the classification follows the IANA
IPv6 special-purpose address registry (RFC 6890) and the multicast format of RFC 4291 §2.7.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnt.core.packets.ethernet import mac_text
from gnt.core.packets.ipv6 import multicast_mac, solicited_node
from gnt.errors import UsageError
from gnt.ndisc.models import AddressFacts

if TYPE_CHECKING:
    import netaddr

# Kinds, most specific first: (network, kind). Multicast and the one-address kinds come before.
KINDS = (
    ("::ffff:0:0/96", "ipv4-mapped"),  # RFC 4291 §2.5.5.2
    ("64:ff9b::/96", "nat64"),  # RFC 6052 well-known prefix
    ("2001::/32", "teredo"),  # RFC 4380
    ("2001:db8::/32", "documentation"),  # RFC 3849
    ("2002::/16", "6to4"),  # RFC 3056
    ("fe80::/10", "link-local"),  # RFC 4291 §2.5.6
    ("fc00::/7", "unique-local"),  # RFC 4193
    ("fec0::/10", "site-local (deprecated)"),  # RFC 3879
    ("2000::/3", "global unicast"),  # RFC 4291 §2.4
)
MULTICAST_SCOPES = {
    0x1: "interface-local",  # RFC 4291 §2.7
    0x2: "link-local",
    0x3: "realm-local",  # RFC 7346
    0x4: "admin-local",
    0x5: "site-local",
    0x8: "organization-local",
    0xE: "global",
}
FLAG_R = 0x4  # rendezvous point embedded, RFC 3956
FLAG_P = 0x2  # prefix-based, RFC 3306
FLAG_T = 0x1  # transient (not IANA-assigned)
TEREDO_XOR = 0xFFFFFFFF  # the client IPv4 in a Teredo address is stored inverted, RFC 4380 §4


def _ipv4(value: int) -> str:
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


def parse_address(text: str) -> netaddr.IPAddress:
    """A netaddr.IPAddress for an IPv6 address in any textual form; anything else is a UsageError."""
    import netaddr

    candidate = text.strip().split("%", 1)[0]
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        address = netaddr.IPAddress(candidate, version=6)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise UsageError(f"{text!r} is not an IPv6 address") from exc
    return address


def _kind_and_scope(address: netaddr.IPAddress) -> tuple[str, str]:
    import netaddr
    value = int(address)
    if value == 0:
        return "unspecified", "none"
    if value == 1:
        return "loopback", "host"
    if address.is_multicast():
        scope = MULTICAST_SCOPES.get((value >> 112) & 0xF, f"reserved ({(value >> 112) & 0xF:x})")
        return "multicast", scope
    for network, kind in KINDS:
        if address in netaddr.IPNetwork(network):
            if kind == "link-local":
                return kind, "link"
            if kind in ("unique-local", "site-local (deprecated)"):
                return kind, "site"
            return kind, "global"
    return "reserved", "global"


def facts(text: str) -> AddressFacts:
    """Everything `gnt ip6` shows about one address."""
    import netaddr

    address = parse_address(text)
    value = int(address)
    packed = address.packed
    kind, scope = _kind_and_scope(address)
    result = AddressFacts(
        input=text, compressed=str(address), full=address.format(netaddr.ipv6_verbose), kind=kind,
        scope=scope, reverse_dns=address.reverse_dns,
    )
    if kind == "multicast":
        flags_nibble = (value >> 116) & 0xF
        result.multicast_scope = scope
        result.multicast_flags = [name for bit, name in ((FLAG_R, "R"), (FLAG_P, "P"), (FLAG_T, "T"))
                                  if flags_nibble & bit]
        result.multicast_mac = mac_text(multicast_mac(packed))
    elif kind not in ("unspecified", "loopback"):
        group = solicited_node(packed)
        result.solicited_node = str(netaddr.IPAddress(int.from_bytes(group, "big"), 6))
        result.solicited_node_mac = mac_text(multicast_mac(group))
        interface_id = packed[8:]
        if interface_id[3:5] == b"\xff\xfe":  # modified EUI-64 (RFC 4291 Appendix A)
            mac = bytes([interface_id[0] ^ 0x02]) + interface_id[1:3] + interface_id[5:]  # flip the U/L bit
            result.eui64_mac = mac_text(mac)
    if kind == "ipv4-mapped" or kind == "nat64":
        result.embedded_ipv4 = _ipv4(value & 0xFFFFFFFF)
    elif kind == "6to4":
        result.embedded_ipv4 = _ipv4((value >> 80) & 0xFFFFFFFF)
    elif kind == "teredo":
        result.teredo_server = _ipv4((value >> 64) & 0xFFFFFFFF)
        result.embedded_ipv4 = _ipv4((value & 0xFFFFFFFF) ^ TEREDO_XOR)
    return result


def parse_mac(text: str) -> netaddr.EUI:
    import netaddr

    try:
        eui = netaddr.EUI(text.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise UsageError(f"{text!r} is not a MAC address") from exc
    if eui.version != 48:
        raise UsageError(f"{text!r} is not a 48-bit MAC address")
    return eui


def from_mac(mac_text_in: str, prefix: str | None = None) -> AddressFacts:
    """The EUI-64 link-local address of a MAC, or its SLAAC address on a /64 `prefix` (RFC 4862 §5.3)."""
    import netaddr

    eui = parse_mac(mac_text_in)
    mac = mac_text(eui.packed)
    if prefix is None:
        result = facts(str(eui.ipv6_link_local()))
        result.mac = mac
        return result
    try:
        network = netaddr.IPNetwork(prefix, version=6)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise UsageError(f"{prefix!r} is not an IPv6 prefix") from exc
    if network.prefixlen != 64:
        raise UsageError(f"SLAAC needs a /64 prefix (RFC 4862 §5.5.3), not /{network.prefixlen}")
    result = facts(str(eui.ipv6(int(network.network))))
    result.mac = mac
    result.prefix = str(network.cidr)
    return result

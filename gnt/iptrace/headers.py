"""The packet a trace event carries: IP header (RFC 791 / RFC 8200) and the first transport bytes.

nftables trace events hold the raw network header (up to 40 bytes) and the first 20
bytes of the transport header; only the fields a summary shows are read, lean, with the core
codecs' header layouts (not their full decoders: a truncated or odd header still gives a summary).
"""

from __future__ import annotations

import socket
import struct

from gnt.core.packets.ipv4 import HEADER as IPV4_FIXED
from gnt.core.packets.ipv6 import HEADER as IPV6_FIXED
from gnt.core.packets.ipv6 import HEADER_LEN as IPV6_HEADER_LEN
from gnt.iptrace.models import Summary

PORTS = struct.Struct("!HH")  # TCP/UDP/SCTP/DCCP source and destination port

PROTO_NAMES = {
    1: "icmp",  # RFC 792
    6: "tcp",  # RFC 9293
    17: "udp",  # RFC 768
    33: "dccp",  # RFC 4340
    41: "ipv6",  # 6in4
    47: "gre",  # RFC 2784
    50: "esp",  # RFC 4303
    58: "ipv6-icmp",  # RFC 4443
    132: "sctp",  # RFC 9260
    136: "udplite",  # RFC 3828
}
PORT_PROTOS = (6, 17, 33, 132, 136)  # protocols whose first 4 bytes are the two ports
ICMP_PROTOS = (1, 58)  # ICMP and ICMPv6: type, code


def proto_name(number: int) -> str:
    return PROTO_NAMES.get(number, str(number))


def summarize(network: bytes | None, transport: bytes | None, summary: Summary) -> None:
    """Fill `summary` from the raw headers of a trace event (fields it cannot read stay None)."""
    if not network:
        return
    version = network[0] >> 4
    proto: int | None = None
    if version == 4 and len(network) >= IPV4_FIXED.size:
        _vi, _tos, total, ident, _frag, _ttl, proto, _csum, src, dst = IPV4_FIXED.unpack_from(network)
        summary.family = "ipv4"
        summary.src = socket.inet_ntop(socket.AF_INET, src)
        summary.dst = socket.inet_ntop(socket.AF_INET, dst)
        summary.ip_id = ident
        summary.length = total
    elif version == 6 and len(network) >= IPV6_FIXED.size:
        _vtf, payload, proto, _hop, src, dst = IPV6_FIXED.unpack_from(network)
        summary.family = "ipv6"
        summary.src = socket.inet_ntop(socket.AF_INET6, src)
        summary.dst = socket.inet_ntop(socket.AF_INET6, dst)
        summary.length = payload + IPV6_HEADER_LEN
    else:
        return
    summary.proto = proto_name(proto)
    if not transport:
        return
    if proto in PORT_PROTOS and len(transport) >= PORTS.size:
        summary.sport, summary.dport = PORTS.unpack_from(transport)
    elif proto in ICMP_PROTOS and len(transport) >= 2:
        summary.icmp_type, summary.icmp_code = transport[0], transport[1]

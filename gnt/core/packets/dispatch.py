"""Walk a frame through the codecs, dpkt-style: EtherType, IP protocol and UDP port pick the next one.

    >>> chain = dissect(frame)                  # Ethernet / IPv4 / UDP / VXLAN / Ethernet / IPv6 / TCP
    >>> chain.find(VXLAN).vni
    >>> frame[chain.payload_offset : chain.end]  # what the last codec did not decode

The tables are plain dicts so another codec (ICMPv6, say) registers itself with one line:
`IP_PROTO_CODECS[58] = ICMPv6.decode`. Decoding stops at the first layer no table knows, at a
non-first fragment, and at ICMP (whose quoted datagram is for the caller to decode).

Lengths: a codec decodes its own header only. `dissect` also bounds each layer by the length
fields above it (IPv4 total length, IPv6 payload length, UDP length), so Ethernet padding never
reaches a payload; with `strict=True` a length field that claims more bytes than are present is a
DecodeError (a truncated capture), and so is one too small for its own header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from gnt.core.checksum import PROTO_TCP, PROTO_UDP
from gnt.core.packets import Buffer, DecodeError
from gnt.core.packets.ethernet import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, Ethernet
from gnt.core.packets.icmp import ICMP
from gnt.core.packets.ipv4 import IPv4
from gnt.core.packets.ipv6 import HEADER_LEN as IPV6_HEADER_LEN
from gnt.core.packets.ipv6 import IPv6
from gnt.core.packets.tcp import TCP
from gnt.core.packets.udp import HEADER_LEN as UDP_HEADER_LEN
from gnt.core.packets.udp import UDP
from gnt.core.packets.vxlan import PORTS as VXLAN_PORTS
from gnt.core.packets.vxlan import VXLAN

PROTO_ICMP = 1  # IANA protocol number, RFC 792
PROTO_IPIP = 4  # IPv4 in IP, RFC 2003
PROTO_IPV6 = 41  # IPv6 in IP, RFC 2473 / RFC 4213


class Layer(Protocol):
    """What every codec's decoded header has: where the next layer starts."""

    @property
    def payload_offset(self) -> int: ...


Decoder = Callable[[Buffer, int], Layer]  # a codec's `decode(buf, offset)`
L = TypeVar("L")  # a layer class, for Dissection.find

ETHERTYPE_CODECS: dict[int, Decoder] = {
    ETH_P_IP: IPv4.decode,  # IPv4
    ETH_P_IPV6: IPv6.decode,  # IPv6
    ETH_P_TEB: Ethernet.decode,  # Ethernet in Ethernet (GRE/NVGRE payloads)
}
IP_PROTO_CODECS: dict[int, Decoder] = {
    PROTO_ICMP: ICMP.decode,  # ICMP for IPv4
    PROTO_IPIP: IPv4.decode,  # IPv4 in IPv4/IPv6
    PROTO_TCP: TCP.decode,  # TCP
    PROTO_UDP: UDP.decode,  # UDP
    PROTO_IPV6: IPv6.decode,  # IPv6 in IPv4/IPv6
}
UDP_PORT_CODECS: dict[int, Decoder] = dict.fromkeys(VXLAN_PORTS, VXLAN.decode)  # by destination port
LINK_CODECS: dict[str, Decoder] = {
    "ethernet": Ethernet.decode,  # DLT_EN10MB
    "ipv4": IPv4.decode,  # a raw socket's IPv4 datagram
    "ipv6": IPv6.decode,  # a raw socket's IPv6 datagram
}


@dataclass(slots=True)
class Dissection:
    """The decoded layers, outermost first, and the undecoded rest `buf[payload_offset:end]`."""

    layers: list[Layer] = field(default_factory=list)
    payload_offset: int = 0
    end: int = 0  # end of the innermost length-bounded region (excludes Ethernet padding)

    def find(self, kind: type[L], nth: int = 0) -> L | None:
        """The `nth` layer of type `kind` (0: outermost), or None."""
        for layer in self.layers:
            if isinstance(layer, kind):
                if nth == 0:
                    return layer
                nth -= 1
        return None


def _bounded_end(layer: Layer, start: int, end: int, strict: bool) -> int:
    """The end of `layer`'s datagram from its length field, checked against `end` when strict."""
    if isinstance(layer, IPv4):
        declared, name, minimum = layer.total_length, "ipv4", layer.header_length
    elif isinstance(layer, IPv6):
        if layer.payload_length == 0:  # a jumbogram (RFC 2675) or a TSO/GRO-built packet
            return end
        declared, name, minimum = IPV6_HEADER_LEN + layer.payload_length, "ipv6", layer.header_length
    elif isinstance(layer, UDP):
        declared, name, minimum = layer.length, "udp", UDP_HEADER_LEN
    else:
        return end
    if declared < minimum:
        if strict:
            raise DecodeError(name, start, f"length field {declared} shorter than the {minimum}-byte header")
        return end  # TSO/GSO super-packets are captured with a zero length: trust the bytes present
    if strict and start + declared > end:
        raise DecodeError(name, start, f"length field {declared} exceeds the {end - start} bytes present")
    return min(start + declared, end)


def _next_decoder(layer: Layer) -> Decoder | None:
    if isinstance(layer, Ethernet):
        return ETHERTYPE_CODECS.get(layer.type)
    if isinstance(layer, IPv4):
        if layer.fragment_offset:
            return None
        return IP_PROTO_CODECS.get(layer.proto)
    if isinstance(layer, IPv6):
        if not layer.upper_layer_present:
            return None
        return IP_PROTO_CODECS.get(layer.proto)
    if isinstance(layer, UDP):
        return UDP_PORT_CODECS.get(layer.dport)
    if isinstance(layer, VXLAN):
        return Ethernet.decode
    return None


def dissect(buf: Buffer, offset: int = 0, *, link: str = "ethernet", strict: bool = False) -> Dissection:
    """Decode `buf` from `offset` layer by layer, starting with the `link` codec."""
    view = memoryview(buf)
    end = len(view)
    result = Dissection(payload_offset=offset, end=end)
    decoder: Decoder | None = LINK_CODECS[link]
    pos = offset
    while decoder is not None:
        layer = decoder(view[:end], pos)
        end = _bounded_end(layer, pos, end, strict)
        result.layers.append(layer)
        pos = layer.payload_offset
        decoder = _next_decoder(layer)
    result.payload_offset = pos
    result.end = end
    return result

"""Ethernet II frames (IEEE 802.3 clause 3.2.6, RFC 894) with stacked 802.1Q / 802.1ad VLAN tags.

A tag sits between the source address and the EtherType: a 2-byte TPID (0x8100 customer tag,
0x88a8 service tag, 0x9100 pre-standard QinQ) and a 2-byte TCI (priority, drop eligible,
VLAN id). Tags stack (QinQ: service tag outside, customer tag inside); `Ethernet.vlans`
keeps them outermost first and `Ethernet.type` is the EtherType after the last tag.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gnt.core.packets import Buffer, DecodeError, need

LAYER = "ethernet"  # the layer name DecodeError reports
HEADER = struct.Struct("!6s6sH")  # destination, source, EtherType (or the first tag's TPID)
TAG = struct.Struct("!HH")  # TCI, then the next TPID or EtherType
HEADER_LEN = 14  # an untagged Ethernet II header
TAG_LEN = 4  # one 802.1Q tag

ETH_P_IP = 0x0800  # IPv4, RFC 894
ETH_P_TEB = 0x6558  # transparent Ethernet bridging (an Ethernet frame inside GRE/NVGRE)
ETH_P_8021Q = 0x8100  # IEEE 802.1Q customer VLAN tag (C-tag)
ETH_P_IPV6 = 0x86DD  # IPv6, RFC 2464
ETH_P_8021AD = 0x88A8  # IEEE 802.1ad service VLAN tag (S-tag, QinQ outer)
ETH_P_QINQ1 = 0x9100  # pre-standard QinQ outer tag, still sent by some switches
ETH_P_802_3_MAX = 1500  # a type field at or below this is an IEEE 802.3 length, not an EtherType

# EtherType -> the short name tools print (as the kernel's skb->protocol, host order). 0 is an skb
# that never had one (a unix, netlink or locally built socket buffer).
ETHERTYPE_NAMES: dict[int, str] = {
    0x0000: "none",  # no EtherType set on the socket buffer
    0x0004: "802.2",  # ETH_P_802_2: LLC frames
    0x000C: "can",  # ETH_P_CAN
    0x000D: "canfd",  # ETH_P_CANFD
    ETH_P_IP: "ipv4",
    0x0806: "arp",  # ETH_P_ARP, RFC 826
    0x8035: "rarp",  # ETH_P_RARP, RFC 903
    ETH_P_TEB: "teb",
    ETH_P_8021Q: "vlan",
    0x8809: "slow",  # ETH_P_SLOW: LACP, marker
    0x8847: "mpls",  # ETH_P_MPLS_UC
    0x8848: "mpls-mc",  # ETH_P_MPLS_MC
    0x8863: "pppoe-disc",  # ETH_P_PPP_DISC
    0x8864: "pppoe",  # ETH_P_PPP_SES
    ETH_P_IPV6: "ipv6",
    0x888E: "eapol",  # ETH_P_PAE, 802.1X
    ETH_P_8021AD: "qinq",
    0x88CC: "lldp",  # ETH_P_LLDP
    0x88F7: "ptp",  # ETH_P_1588
    0x8906: "fcoe",  # ETH_P_FCOE
    0x894F: "nsh",  # ETH_P_NSH
}


def ethertype_name(value: int) -> str:
    """`ipv4`, `arp`, ... or `0x88b5` for an EtherType without a name here."""
    return ETHERTYPE_NAMES.get(value) or f"{value:#06x}"


def ethertype_by_name(text: str) -> int | None:
    """The EtherType a name of `ethertype_name` stands for (any case); None for another word."""
    wanted = text.strip().lower()
    for value, name in ETHERTYPE_NAMES.items():
        if name == wanted:
            return value
    return None


VLAN_TPIDS = frozenset({ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ1})  # TPIDs that introduce a tag

VID_MASK = 0x0FFF  # VLAN identifier, low 12 bits of the TCI
DEI_BIT = 0x1000  # drop eligible indicator (was CFI), bit 12 of the TCI
PCP_SHIFT = 13  # priority code point, top 3 bits of the TCI


def mac_text(mac: bytes) -> str:
    """`02:00:5e:00:00:01` form of a 6-byte MAC address."""
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(text: str) -> bytes:
    """The 6 bytes of a MAC address written `02:00:5e:00:00:01` or `02-00-5e-00-00-01`."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


@dataclass(slots=True)
class VlanTag:
    """One IEEE 802.1Q tag: TPID and the TCI split into PCP, DEI and VID."""

    vid: int
    pcp: int = 0
    dei: bool = False
    tpid: int = ETH_P_8021Q

    @property
    def tci(self) -> int:
        return (self.pcp & 0x7) << PCP_SHIFT | (DEI_BIT if self.dei else 0) | self.vid & VID_MASK

    @classmethod
    def from_tci(cls, tpid: int, tci: int) -> VlanTag:
        return cls(vid=tci & VID_MASK, pcp=tci >> PCP_SHIFT, dei=bool(tci & DEI_BIT), tpid=tpid)


@dataclass(slots=True)
class Ethernet:
    """An Ethernet II header. MACs are kept packed (6 bytes); `dst_text`/`src_text` format them."""

    dst: bytes
    src: bytes
    type: int  # the EtherType after the last VLAN tag
    vlans: tuple[VlanTag, ...] = ()  # outermost first
    payload_offset: int = field(default=0, compare=False)

    @property
    def header_length(self) -> int:
        return HEADER_LEN + TAG_LEN * len(self.vlans)

    @property
    def dst_text(self) -> str:
        return mac_text(self.dst)

    @property
    def src_text(self) -> str:
        return mac_text(self.src)

    @property
    def vid(self) -> int | None:
        """The innermost VLAN id (the customer VLAN under QinQ), or None for an untagged frame."""
        return self.vlans[-1].vid if self.vlans else None

    @property
    def is_8023_length(self) -> bool:
        """True when the type field is an IEEE 802.3 length (an LLC frame), not an EtherType."""
        return self.type <= ETH_P_802_3_MAX

    @classmethod
    def decode(cls, buf: Buffer, offset: int = 0) -> Ethernet:
        need(buf, offset, HEADER_LEN, LAYER)
        dst, src, ethertype = HEADER.unpack_from(buf, offset)
        pos = offset + HEADER_LEN
        tags: list[VlanTag] = []
        while ethertype in VLAN_TPIDS:
            if len(buf) - pos < TAG_LEN:
                raise DecodeError(LAYER, pos - 2, f"VLAN tag {ethertype:#06x} truncated")
            tci, next_type = TAG.unpack_from(buf, pos)
            tags.append(VlanTag.from_tci(ethertype, tci))
            ethertype = next_type
            pos += TAG_LEN
        return cls(dst=dst, src=src, type=ethertype, vlans=tuple(tags), payload_offset=pos)

    def encode(self, payload: bytes = b"") -> bytes:
        if len(self.dst) != 6 or len(self.src) != 6:
            raise ValueError("Ethernet addresses must be 6 bytes")
        parts = [self.dst, self.src]
        for tag in self.vlans:
            parts.append(struct.pack("!HH", tag.tpid, tag.tci))
        parts.append(struct.pack("!H", self.type))
        parts.append(payload)
        return b"".join(parts)

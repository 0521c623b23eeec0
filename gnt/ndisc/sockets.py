"""The sockets neighbour and router discovery need (standard library only).

- A raw ICMPv6 socket (needs CAP_NET_RAW) bound to one interface, hop limit 255 on what it
  sends (RFC 4861 §6.1/§7.1: a receiver drops NDP with any other hop limit), the received hop
  limit and destination delivered as ancillary data (RFC 3542 §6) so gnt can apply the same
  check to what it receives, and an ICMP6_FILTER so only the NDP types asked for are queued.
  The kernel computes and verifies the ICMPv6 checksum on such sockets (RFC 3542 §3.1).
- An AF_PACKET datagram socket for duplicate address detection: its Neighbor Solicitation
  must leave from the unspecified address (RFC 4862 §5.4.2), which the IPv6 stack never
  picks as a source, so gnt writes the IPv6 header itself (gnt.core.packets.ipv6) and the
  kernel adds Ethernet.

This module belongs with the shared socket layer (gnt/core/sockets.py); it lives in the
ndisc package until that file can take it.
"""

from __future__ import annotations

import errno
import fcntl
import select
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from gnt.errors import GntError, InterfaceError, PermissionDenied

SOL_IPV6 = 41  # IPPROTO_IPV6 as a socket level
ICMP6_FILTER = 1  # <netinet/icmp6.h>: per-type receive filter on raw ICMPv6 sockets
IPV6_RECVPKTINFO = 49  # <linux/in6.h>: deliver destination address and ifindex
IPV6_PKTINFO = 50  # cmsg type of struct in6_pktinfo
IPV6_RECVHOPLIMIT = 51  # deliver the hop limit of received packets
IPV6_HOPLIMIT = 52  # cmsg type of the received hop limit
IPV6_UNICAST_HOPS = 16  # hop limit of outgoing unicast packets
IPV6_MULTICAST_IF = 17  # interface for outgoing multicast
IPV6_MULTICAST_HOPS = 18  # hop limit of outgoing multicast packets
IPV6_MULTICAST_LOOP = 19  # loop our own multicast back to us
IPV6_ADD_MEMBERSHIP = 20  # join a multicast group (IPV6_JOIN_GROUP)
SIOCGIFHWADDR = 0x8927  # <linux/sockios.h>: read an interface's hardware address
ARPHRD_ETHER = 1  # <linux/if_arp.h>: Ethernet (and veth, bridges, VXLAN)
ETH_P_IPV6 = 0x86DD  # EtherType of IPv6, RFC 2464
NDP_HOP_LIMIT = 255  # RFC 4861: NDP is sent with, and only accepted with, hop limit 255
IFNAMSIZ = 16  # <linux/if.h>: interface names are at most 15 bytes plus NUL
IN6_PKTINFO = struct.Struct("=16sI")  # struct in6_pktinfo: address, ifindex
IPV6_MREQ = struct.Struct("=16sI")  # struct ipv6_mreq: group, ifindex
ANCILLARY_SPACE = 256  # room for the hop limit and pktinfo cmsgs
RECV_SIZE = 65536  # largest ICMPv6 message we read

RAW_HINT = "run as root, or grant the capability: setcap cap_net_raw+ep on the gnt binary"


@dataclass
class Received:
    """One ICMPv6 message as the raw socket delivered it."""

    data: bytes
    source: str  # without the %zone
    hop_limit: int | None
    destination: str | None


def interface_index(ifname: str) -> int:
    """The ifindex of `ifname`; an unknown name is an InterfaceError."""
    if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname:
        raise InterfaceError(f"{ifname!r} is not a valid interface name")
    try:
        return socket.if_nametoindex(ifname)
    except OSError as exc:
        raise InterfaceError(f"unknown interface {ifname!r}", "list interfaces with: ip link",
                             errno=exc.errno) from exc


def interface_mac(ifname: str) -> bytes | None:
    """The Ethernet address of `ifname`, or None for a link without one (tun, loopback is all zero)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            ifreq = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))
        except OSError as exc:
            raise InterfaceError(f"unknown interface {ifname!r}", errno=exc.errno) from exc
    family = struct.unpack_from("=H", ifreq, 16)[0]
    mac = ifreq[18:24]
    if family != ARPHRD_ETHER or mac == b"\0" * 6:
        return None
    return mac


def solicited_node(address: bytes) -> bytes:
    """The solicited-node multicast group of an address, ff02::1:ffXX:XXXX (RFC 4291 §2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet address an IPv6 multicast group maps to: 33:33 and its last 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + group[12:]


def _permission_error(exc: OSError, what: str) -> GntError:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(f"cannot open {what}: no CAP_NET_RAW", RAW_HINT, errno=exc.errno)
    return GntError(f"cannot open {what}: {exc.strerror}", errno=exc.errno)


def _bind_device(sock: socket.socket, ifname: str) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode() + b"\0")
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise InterfaceError(f"unknown interface {ifname!r}", errno=exc.errno) from exc
        raise _permission_error(exc, f"a socket on {ifname}") from exc


class NDPSocket:
    """A raw ICMPv6 socket on one interface that sends with hop limit 255 and reports received hop limits."""

    def __init__(self, ifname: str, accept: Iterable[int]) -> None:
        self.ifname = ifname
        self.ifindex = interface_index(ifname)
        try:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as exc:
            raise _permission_error(exc, "a raw ICMPv6 socket") from exc
        try:
            _bind_device(self.sock, ifname)
            blocked = [0xFFFFFFFF] * 8  # ICMP6_FILTER: a set bit blocks that type (RFC 3542 §3.2)
            for icmp_type in accept:
                blocked[icmp_type >> 5] &= ~(1 << (icmp_type & 31))
            self.sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *blocked))
            self.sock.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, NDP_HOP_LIMIT)
            self.sock.setsockopt(SOL_IPV6, IPV6_MULTICAST_HOPS, NDP_HOP_LIMIT)
            self.sock.setsockopt(SOL_IPV6, IPV6_MULTICAST_IF, self.ifindex)
            self.sock.setsockopt(SOL_IPV6, IPV6_MULTICAST_LOOP, 0)
            self.sock.setsockopt(SOL_IPV6, IPV6_RECVHOPLIMIT, 1)
            self.sock.setsockopt(SOL_IPV6, IPV6_RECVPKTINFO, 1)
        except BaseException:
            self.sock.close()
            raise

    def join(self, group: bytes) -> None:
        """Join a multicast group on the interface (to hear another node's DAD probes)."""
        self.sock.setsockopt(SOL_IPV6, IPV6_ADD_MEMBERSHIP, IPV6_MREQ.pack(group, self.ifindex))

    def send(self, message: bytes, destination: bytes) -> None:
        """Send an ICMPv6 message (checksum left to the kernel) to a packed address on the interface."""
        dst = socket.inet_ntop(socket.AF_INET6, destination)
        try:
            self.sock.sendto(message, (dst, 0, 0, self.ifindex))
        except OSError as exc:
            raise GntError(f"cannot send on {self.ifname}: {exc.strerror}", errno=exc.errno) from exc

    def receive(self, timeout: float) -> Received | None:
        """The next message within `timeout` seconds, or None."""
        if timeout <= 0:
            return None
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        data, ancdata, _flags, addr = self.sock.recvmsg(RECV_SIZE, ANCILLARY_SPACE)
        hop_limit: int | None = None
        destination: str | None = None
        for level, kind, value in ancdata:
            if level != SOL_IPV6:
                continue
            if kind == IPV6_HOPLIMIT and len(value) >= 4:
                hop_limit = struct.unpack("=i", value[:4])[0]
            elif kind == IPV6_PKTINFO and len(value) >= IN6_PKTINFO.size:
                packed, _ifindex = IN6_PKTINFO.unpack(value[: IN6_PKTINFO.size])
                destination = socket.inet_ntop(socket.AF_INET6, packed)
        source = str(addr[0]).split("%", 1)[0]
        return Received(data=data, source=source, hop_limit=hop_limit, destination=destination)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NDPSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LinkSender:
    """An AF_PACKET datagram socket on one interface: gnt writes the IPv6 header, the kernel Ethernet's."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
        except OSError as exc:
            raise _permission_error(exc, "a packet socket") from exc

    def send(self, packet: bytes, dst_mac: bytes) -> None:
        try:
            self.sock.sendto(packet, (self.ifname, ETH_P_IPV6, 0, 0, dst_mac))
        except OSError as exc:
            raise GntError(f"cannot send on {self.ifname}: {exc.strerror}", errno=exc.errno) from exc

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LinkSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

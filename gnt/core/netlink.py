"""Netlink wire layout shared by gnt's lean netlink readers (conntrack, nftables trace).

pyroute2's generic attribute decoding is too slow for a 60,000-entry conntrack dump, so the
hot paths read `nlmsghdr`/`nfgenmsg`/`nlattr` themselves with these tables. Names follow
include/uapi/linux/netlink.h and netfilter/nfnetlink.h so they can be grepped there.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

from gnt.errors import DecodeError

NETLINK_NETFILTER = 12  # the nfnetlink protocol number
SOL_NETLINK = 270  # socket level of netlink options
NETLINK_ADD_MEMBERSHIP = 1  # setsockopt: join a multicast group
NETLINK_NO_ENOBUFS = 5  # setsockopt: hide overruns (conntrack watch leaves it off and counts them)
SO_RCVBUFFORCE = 33  # SO_RCVBUF beyond net.core.rmem_max, needs CAP_NET_ADMIN

NLM_F_REQUEST = 0x1  # a request message
NLM_F_MULTI = 0x2  # part of a multipart reply
NLM_F_ACK = 0x4  # ask for an acknowledgement
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH: dump the whole table

NLMSG_NOOP = 1  # nothing
NLMSG_ERROR = 2  # error (or ack) with an errno
NLMSG_DONE = 3  # end of a multipart dump
NLMSG_OVERRUN = 4  # data lost

NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from nla_type

NLMSGHDR = struct.Struct("=IHHII")  # struct nlmsghdr: len, type, flags, seq, pid (host order)
NLMSGERR = struct.Struct("=i")  # struct nlmsgerr starts with the (negative) errno
NFGENMSG = struct.Struct("!BBH")  # struct nfgenmsg: family, version, res_id (big-endian res_id)
NLA = struct.Struct("=HH")  # struct nlattr: nla_len, nla_type


def nla(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    raw = NLA.pack(NLA.size + len(payload), kind) + payload
    return raw + bytes(-len(raw) % 4)


def error_errno(buf: bytes, off: int, length: int) -> int:
    """The errno carried by the NLMSG_ERROR message at `off` (0: an ack); DecodeError when the
    message is too short to carry one."""
    if length < NLMSGHDR.size + NLMSGERR.size or off + NLMSGHDR.size + NLMSGERR.size > len(buf):
        raise DecodeError("netlink", off, f"an error message of {length} bytes carries no errno")
    code: int = NLMSGERR.unpack_from(buf, off + NLMSGHDR.size)[0]
    return -code if code < 0 else 0


def errno_text(number: int) -> str:
    """os.strerror, for any number a message may carry (INT_MIN negated does not fit a C int)."""
    try:
        return os.strerror(number)
    except (OverflowError, ValueError):
        return f"unknown error {number}"


def iter_attrs(buf: bytes, off: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute in `buf[off:end]`; stops at a bad length."""
    unpack = NLA.unpack_from
    while off + 4 <= end:
        nla_len, nla_type = unpack(buf, off)
        if nla_len < 4 or off + nla_len > end:
            return
        yield nla_type & NLA_TYPE_MASK, off + 4, off + nla_len
        off += (nla_len + 3) & ~3


def set_receive_buffer(sock: socket.socket, size: int) -> None:
    """A receive buffer of `size` bytes for bursts of events: SO_RCVBUFFORCE when allowed, else SO_RCVBUF
    (which the kernel caps at net.core.rmem_max)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

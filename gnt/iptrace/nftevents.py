"""nftables trace events (NFT_MSG_TRACE) from the kernel, decoded lean with struct.

The kernel multicasts one NFT_MSG_TRACE message per traced step to the NFNLGRP_NFTRACE
group of NETLINK_NETFILTER sockets in the same network namespace. Layout (see
include/uapi/linux/netfilter/nf_tables.h, enum nft_trace_attributes): nlmsghdr, nfgenmsg
(family, version, res_id), then NFTA_TRACE_* attributes. Names below are the kernel's so
they can be grepped against the header.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from gnt.core.netlink import (
    NETLINK_ADD_MEMBERSHIP,
    NETLINK_NETFILTER,
    NETLINK_NO_ENOBUFS,
    NFGENMSG,
    NLMSGHDR,
    SOL_NETLINK,
    iter_attrs,
    set_receive_buffer,
)
from gnt.errors import PermissionDenied, UnavailableError

NFNLGRP_NFTRACE = 9  # multicast group of nftables trace events (nfnetlink.h)
NFNL_SUBSYS_NFTABLES = 10  # nfnetlink subsystem id of nf_tables
NFT_MSG_TRACE = 17  # enum nf_tables_msg_types

NFTA_TRACE_TABLE = 1  # string
NFTA_TRACE_CHAIN = 2  # string
NFTA_TRACE_RULE_HANDLE = 3  # be64
NFTA_TRACE_TYPE = 4  # be32, enum nft_trace_types
NFTA_TRACE_VERDICT = 5  # nested: NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN
NFTA_TRACE_ID = 6  # be32, same for every event of one skb
NFTA_TRACE_LL_HEADER = 7  # binary
NFTA_TRACE_NETWORK_HEADER = 8  # binary: IP header (up to 40 bytes)
NFTA_TRACE_TRANSPORT_HEADER = 9  # binary: transport header (up to 20 bytes)
NFTA_TRACE_IIF = 10  # be32 ifindex
NFTA_TRACE_IIFTYPE = 11  # be16
NFTA_TRACE_OIF = 12  # be32 ifindex
NFTA_TRACE_OIFTYPE = 13  # be16
NFTA_TRACE_MARK = 14  # be32
NFTA_TRACE_NFPROTO = 15  # be32, the netfilter protocol processed (NFPROTO_IPV4 ...)
NFTA_TRACE_POLICY = 16  # be32, policy verdict of the base chain

NFTA_VERDICT_CODE = 1  # be32 verdict
NFTA_VERDICT_CHAIN = 2  # string, jump/goto target

NFT_TRACETYPE_POLICY = 1  # base chain policy decided
NFT_TRACETYPE_RETURN = 2  # implicit return from a user chain
NFT_TRACETYPE_RULE = 3  # a rule matched

NF_VERDICT_MASK = 0x000000FF  # low byte of a netfilter verdict; the rest is queue number / errno
VERDICT_NAMES = {
    0: "drop",  # NF_DROP
    1: "accept",  # NF_ACCEPT
    2: "stolen",  # NF_STOLEN
    3: "queue",  # NF_QUEUE
    4: "repeat",  # NF_REPEAT
    -1: "continue",  # NFT_CONTINUE
    -2: "break",  # NFT_BREAK
    -3: "jump",  # NFT_JUMP
    -4: "goto",  # NFT_GOTO
    -5: "return",  # NFT_RETURN
}
FAMILY_NAMES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}  # NFPROTO_* of nfgenmsg
KIND_NAMES = {NFT_TRACETYPE_POLICY: "policy", NFT_TRACETYPE_RETURN: "return", NFT_TRACETYPE_RULE: "rule"}
RECV_BUFFER = 32 * 1024 * 1024  # room for bursts of trace events


@dataclass(slots=True)
class TraceEvent:
    """One decoded NFT_MSG_TRACE message."""

    trace_id: int
    family: str  # table family: ip, ip6, inet, ...
    table: str
    chain: str
    kind: str  # rule, return, policy
    handle: int | None = None
    verdict: str | None = None
    iif: int | None = None
    oif: int | None = None
    mark: int | None = None
    nfproto: int | None = None
    network_header: bytes | None = None
    transport_header: bytes | None = None


def verdict_name(code: int, target: str | None = None) -> str:
    """`accept`, `drop`, `jump CHAIN`, ... for a (signed) verdict code."""
    if code >= 0:
        name = VERDICT_NAMES.get(code & NF_VERDICT_MASK, f"verdict {code}")
        if name == "queue":
            return f"queue {code >> 16}" if code >> 16 else "queue"
        return name
    name = VERDICT_NAMES.get(code, f"verdict {code}")
    return f"{name} {target}" if target and name in ("jump", "goto") else name


def _attributes(buf: bytes, offset: int, end: int) -> dict[int, bytes]:
    return {kind: buf[start:stop] for kind, start, stop in iter_attrs(buf, offset, end)}


def _string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def decode_trace(message: bytes) -> TraceEvent | None:
    """Decode one netlink message (header included); None when it is not a trace event."""
    if len(message) < NLMSGHDR.size + NFGENMSG.size:
        return None
    length, msg_type, _flags, _seq, _pid = NLMSGHDR.unpack_from(message, 0)
    if msg_type != (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_TRACE) or length > len(message):
        return None
    family, _version, _res = NFGENMSG.unpack_from(message, NLMSGHDR.size)
    attrs = _attributes(message, NLMSGHDR.size + NFGENMSG.size, length)
    if NFTA_TRACE_ID not in attrs or NFTA_TRACE_TYPE not in attrs:
        return None

    def u32(key: int) -> int | None:
        raw = attrs.get(key)
        return struct.unpack("!I", raw[:4])[0] if raw is not None and len(raw) >= 4 else None

    kind_code = u32(NFTA_TRACE_TYPE) or 0
    event = TraceEvent(
        trace_id=u32(NFTA_TRACE_ID) or 0,
        family=FAMILY_NAMES.get(family, str(family)),
        table=_string(attrs.get(NFTA_TRACE_TABLE, b"")),
        chain=_string(attrs.get(NFTA_TRACE_CHAIN, b"")),
        kind=KIND_NAMES.get(kind_code, f"type {kind_code}"),
        iif=u32(NFTA_TRACE_IIF),
        oif=u32(NFTA_TRACE_OIF),
        mark=u32(NFTA_TRACE_MARK),
        nfproto=u32(NFTA_TRACE_NFPROTO),
        network_header=attrs.get(NFTA_TRACE_NETWORK_HEADER),
        transport_header=attrs.get(NFTA_TRACE_TRANSPORT_HEADER),
    )
    handle = attrs.get(NFTA_TRACE_RULE_HANDLE)
    if handle is not None and len(handle) >= 8:
        event.handle = struct.unpack("!Q", handle[:8])[0]
    verdict = attrs.get(NFTA_TRACE_VERDICT)
    if verdict is not None:
        nested = _attributes(verdict, 0, len(verdict))
        code_raw = nested.get(NFTA_VERDICT_CODE)
        if code_raw is not None and len(code_raw) >= 4:
            code = struct.unpack("!i", code_raw[:4])[0]
            target = nested.get(NFTA_VERDICT_CHAIN)
            event.verdict = verdict_name(code, _string(target) if target is not None else None)
    if event.kind == "policy":
        policy = u32(NFTA_TRACE_POLICY)
        if policy is not None:
            event.verdict = verdict_name(policy)
    return event


def split_messages(datagram: bytes) -> list[bytes]:
    """The netlink messages packed in one datagram."""
    out: list[bytes] = []
    offset = 0
    while offset + NLMSGHDR.size <= len(datagram):
        length = NLMSGHDR.unpack_from(datagram, offset)[0]
        if length < NLMSGHDR.size or offset + length > len(datagram):
            break
        out.append(datagram[offset : offset + length])
        offset += (length + 3) & ~3
    return out


def open_trace_socket() -> socket.socket:
    """A NETLINK_NETFILTER socket joined to the nftables trace group of this namespace."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except PermissionError as exc:
        raise PermissionDenied("cannot open a netfilter netlink socket", "run as root or grant CAP_NET_ADMIN",
                               errno=exc.errno) from exc
    except OSError as exc:
        raise UnavailableError(f"nfnetlink is not available: {exc.strerror}",
                               "load the nfnetlink and nf_tables modules", errno=exc.errno) from exc
    try:
        set_receive_buffer(sock, RECV_BUFFER)  # past net.core.rmem_max: bursts must not overflow it
        sock.bind((0, 0))
        sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
    except PermissionError as exc:
        sock.close()
        raise PermissionDenied("cannot subscribe to nftables trace events",
                               "run as root or grant CAP_NET_ADMIN", errno=exc.errno) from exc
    except OSError as exc:
        sock.close()
        raise UnavailableError(f"cannot subscribe to nftables trace events: {exc.strerror}",
                               "load the nf_tables module", errno=exc.errno) from exc
    return sock

"""ctnetlink on the wire: the socket, the requests, and splitting the replies into messages.

Kernel layout: include/uapi/linux/netfilter/nfnetlink_conntrack.h (attribute numbers),
include/uapi/linux/netfilter/nfnetlink.h (nfgenmsg, subsystem ids), include/uapi/linux/netlink.h
(nlmsghdr, nlattr; RFC 3549 describes netlink). Names below are the kernel's, so they can be
grepped against those headers.

Why not pyroute2's NFCTSocket: its generic attribute decoder builds a dict tree per entry and
takes seconds on a 60,000-entry table, and importing it costs more start-up time than
`conntrack -L` takes for the whole dump. A ctnetlink dump is a flat stream of small, regular
messages: a plain AF_NETLINK socket (standard library, nothing to import) and a decoder of its
own (gnt.conntrack.decode: `struct` over the attribute tree, compiled per message layout) keep
up with conntrack-tools.

Attribute payloads in ctnetlink are big-endian (nla_put_be32/be16/be64); attribute headers
(nlattr) and message headers (nlmsghdr) are host-endian.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Generator, Iterator

from gnt.core.netlink import (
    NETLINK_NETFILTER,
    NFGENMSG,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    NLMSGERR,
    NLMSGHDR,
    errno_text,
    error_errno,
    iter_attrs,
    nla,
    set_receive_buffer,
)
from gnt.errors import GntError, PermissionDenied, UnavailableError

# --- netlink (include/uapi/linux/netlink.h): the shared layout is in gnt.core.netlink ---
NLM_F_CREATE = 0x400  # in ctnetlink events: the entry is new
NLM_F_EXCL = 0x200  # in ctnetlink events: set together with NLM_F_CREATE on NEW
HEADER_LEN = NLMSGHDR.size + NFGENMSG.size  # 20: where a ctnetlink message's attributes start

# --- nfnetlink (include/uapi/linux/netfilter/nfnetlink.h) ---
NFNETLINK_V0 = 0  # nfgenmsg.version
NFNL_SUBSYS_CTNETLINK = 1  # conntrack subsystem id (high byte of nlmsg_type)
NF_NETLINK_CONNTRACK_NEW = 0x1  # multicast group bit: new entries
NF_NETLINK_CONNTRACK_UPDATE = 0x2  # multicast group bit: updated entries
NF_NETLINK_CONNTRACK_DESTROY = 0x4  # multicast group bit: destroyed entries

# --- ctnetlink messages (enum cntl_msg_types) ---
IPCTNL_MSG_CT_NEW = 0  # create; in events: new or update
IPCTNL_MSG_CT_GET = 1  # get one / dump all
IPCTNL_MSG_CT_DELETE = 2  # delete; in events: destroy
IPCTNL_MSG_CT_GET_STATS_CPU = 4  # per-CPU statistics dump
IPCTNL_MSG_CT_GET_STATS = 5  # global statistics (entry count, max)

# --- enum ctattr_type ---
CTA_TUPLE_ORIG = 1  # nested: original-direction tuple
CTA_TUPLE_REPLY = 2  # nested: reply-direction tuple
CTA_STATUS = 3  # be32: IPS_* bits
CTA_PROTOINFO = 4  # nested: per-protocol state (TCP, DCCP, SCTP)
CTA_HELP = 5  # nested: helper name
CTA_NAT_SRC = 6  # nested: SNAT setup (requests only)
CTA_TIMEOUT = 7  # be32: seconds left
CTA_MARK = 8  # be32: connmark
CTA_COUNTERS_ORIG = 9  # nested: packets/bytes, original direction (nf_conntrack_acct)
CTA_COUNTERS_REPLY = 10  # nested: packets/bytes, reply direction
CTA_USE = 11  # be32: reference count
CTA_ID = 12  # be32: entry id
CTA_NAT_DST = 13  # nested: DNAT setup (requests only)
CTA_TUPLE_MASTER = 14  # nested: tuple of the master (expected connections)
CTA_ZONE = 18  # be16: conntrack zone, sent only when not the default zone 0
CTA_SECCTX = 19  # nested: security context name
CTA_TIMESTAMP = 20  # nested: start/stop in ns (nf_conntrack_timestamp)
CTA_MARK_MASK = 21  # be32: mask for mark filters in dump requests
CTA_LABELS = 22  # binary: connlabel bitmap
CTA_FILTER = 25  # nested: which tuple fields a dump request filters on (kernel 5.8+)
CTA_STATUS_MASK = 26  # be32: mask for status filters in dump requests (kernel 5.19+)

# --- enum ctattr_filter, and the flag bits of CTA_FILTER_ORIG_FLAGS (net/netfilter/nf_conntrack_netlink.c) ---
CTA_FILTER_ORIG_FLAGS = 1  # u32 (host order): CTA_FILTER_F_* of the original tuple
CTA_FILTER_F_CTA_IP_SRC = 1 << 0  # match the source address (exactly)
CTA_FILTER_F_CTA_IP_DST = 1 << 1  # match the destination address (exactly)
CTA_FILTER_F_CTA_PROTO_NUM = 1 << 3  # match the protocol number
CTA_FILTER_F_CTA_PROTO_SRC_PORT = 1 << 4  # match the source port (needs the protocol)
CTA_FILTER_F_CTA_PROTO_DST_PORT = 1 << 5  # match the destination port (needs the protocol)
NLA_F_NESTED = 0x8000  # nlattr.nla_type flag of a nested attribute

# --- enum ctattr_tuple / ctattr_ip / ctattr_l4proto ---
CTA_TUPLE_IP = 1  # nested: addresses
CTA_TUPLE_PROTO = 2  # nested: protocol and ports/ids
CTA_TUPLE_ZONE = 3  # be16: per-direction zone
CTA_IP_V4_SRC = 1  # 4 bytes
CTA_IP_V4_DST = 2  # 4 bytes
CTA_IP_V6_SRC = 3  # 16 bytes
CTA_IP_V6_DST = 4  # 16 bytes
CTA_PROTO_NUM = 1  # u8: IP protocol number
CTA_PROTO_SRC_PORT = 2  # be16 (GRE: key)
CTA_PROTO_DST_PORT = 3  # be16 (GRE: key)
CTA_PROTO_ICMP_ID = 4  # be16
CTA_PROTO_ICMP_TYPE = 5  # u8
CTA_PROTO_ICMP_CODE = 6  # u8
CTA_PROTO_ICMPV6_ID = 7  # be16
CTA_PROTO_ICMPV6_TYPE = 8  # u8
CTA_PROTO_ICMPV6_CODE = 9  # u8

# --- protoinfo, counters, timestamps, helper, secctx ---
CTA_PROTOINFO_TCP = 1  # nested
CTA_PROTOINFO_DCCP = 2  # nested
CTA_PROTOINFO_SCTP = 3  # nested
CTA_PROTOINFO_TCP_STATE = 1  # u8: enum tcp_conntrack (the first attribute of each of the three)
CTA_COUNTERS_PACKETS = 1  # be64
CTA_COUNTERS_BYTES = 2  # be64
CTA_TIMESTAMP_START = 1  # be64 ns, CLOCK_REALTIME
CTA_TIMESTAMP_STOP = 2  # be64 ns, CLOCK_REALTIME
CTA_HELP_NAME = 1  # string
CTA_SECCTX_NAME = 1  # string

# --- enum ctattr_stats_cpu / ctattr_stats_global (all be32) ---
CTA_STATS_FOUND = 2  # lookups that found an entry
CTA_STATS_INVALID = 4  # packets conntrack could not track
CTA_STATS_INSERT = 8  # entries inserted
CTA_STATS_INSERT_FAILED = 9  # insert races lost (the 5-second DNS timeout)
CTA_STATS_DROP = 10  # packets dropped because an entry could not be made
CTA_STATS_EARLY_DROP = 11  # entries evicted because the table was full
CTA_STATS_ERROR = 12  # ICMP errors that could not be matched
CTA_STATS_SEARCH_RESTART = 13  # lookups restarted by a concurrent resize
CTA_STATS_CLASH_RESOLVE = 14  # insert clashes resolved (kernel 5.9+)
CTA_STATS_CHAIN_TOOLONG = 15  # hash chains over the limit (kernel 6.2+)
CTA_STATS_GLOBAL_ENTRIES = 1  # entries in the table
CTA_STATS_GLOBAL_MAX_ENTRIES = 2  # nf_conntrack_max (kernel 5.x+)

STATS_CPU_NAMES = {  # attribute -> counter name, in the order `gnt conntrack stats` prints them
    CTA_STATS_FOUND: "found",
    CTA_STATS_INVALID: "invalid",
    CTA_STATS_INSERT: "insert",
    CTA_STATS_INSERT_FAILED: "insert_failed",
    CTA_STATS_DROP: "drop",
    CTA_STATS_EARLY_DROP: "early_drop",
    CTA_STATS_ERROR: "error",
    CTA_STATS_SEARCH_RESTART: "search_restart",
    CTA_STATS_CLASH_RESOLVE: "clash_resolve",
    CTA_STATS_CHAIN_TOOLONG: "chain_toolong",
}

CT_TYPE_BASE = NFNL_SUBSYS_CTNETLINK << 8  # nlmsg_type = subsystem << 8 | message
PIPE_SIZE = 1 << 20  # prefetch pipe: about 30 dump datagrams read ahead at most
FRAME = struct.Struct("=I")  # prefetch pipe: each datagram goes over prefixed with its length
RECV_SIZE = 1 << 16  # a dump datagram is at most ~32 KiB; twice that never truncates
EVENT_RCVBUF = 8 << 20  # default event socket buffer: 8 MiB, room for a burst on a busy node

_BE32 = struct.Struct(">I")  # be32 attribute payload


def dump_filter(*, src: bytes | None = None, dst: bytes | None = None, proto: int | None = None,
                sport: int | None = None, dport: int | None = None, mark: tuple[int, int] | None = None,
                zone: int | None = None, status: tuple[int, int] | None = None) -> bytes:
    """The attributes of a dump request that make the kernel send only matching entries.

    What the kernel filters: the mark under a mask (CTA_MARK/CTA_MARK_MASK, 2.6.x+), the zone
    (CTA_ZONE; not zone 0, which the kernel reads as "no zone filter"), status bits
    (CTA_STATUS/CTA_STATUS_MASK, 5.19+), and in the original tuple exact addresses, the
    protocol and its ports (CTA_FILTER, 5.8+). Kernels that do not know an attribute ignore
    it and send more; the caller checks every entry again, so the result is the same.
    `src`/`dst` are packed addresses (4 or 16 bytes) of the family given in the request.
    """
    attrs = b""
    if mark is not None:
        attrs += nla(CTA_MARK, _BE32.pack(mark[0])) + nla(CTA_MARK_MASK, _BE32.pack(mark[1]))
    if zone:
        attrs += nla(CTA_ZONE, struct.pack(">H", zone))
    if status is not None and status[1]:
        attrs += nla(CTA_STATUS, _BE32.pack(status[0])) + nla(CTA_STATUS_MASK, _BE32.pack(status[1]))
    flags = 0
    ip = b""
    if src is not None:
        flags |= CTA_FILTER_F_CTA_IP_SRC
        ip += nla(CTA_IP_V4_SRC if len(src) == 4 else CTA_IP_V6_SRC, src)
    if dst is not None:
        flags |= CTA_FILTER_F_CTA_IP_DST
        ip += nla(CTA_IP_V4_DST if len(dst) == 4 else CTA_IP_V6_DST, dst)
    l4 = b""
    if proto is not None:
        flags |= CTA_FILTER_F_CTA_PROTO_NUM
        l4 += nla(CTA_PROTO_NUM, bytes([proto]))
        if sport is not None:
            flags |= CTA_FILTER_F_CTA_PROTO_SRC_PORT
            l4 += nla(CTA_PROTO_SRC_PORT, struct.pack(">H", sport))
        if dport is not None:
            flags |= CTA_FILTER_F_CTA_PROTO_DST_PORT
            l4 += nla(CTA_PROTO_DST_PORT, struct.pack(">H", dport))
    if flags:
        tuple_ = b""
        if ip:
            tuple_ += nla(CTA_TUPLE_IP | NLA_F_NESTED, ip)
        if l4:
            tuple_ += nla(CTA_TUPLE_PROTO | NLA_F_NESTED, l4)
        attrs += nla(CTA_TUPLE_ORIG | NLA_F_NESTED, tuple_)
        attrs += nla(CTA_FILTER | NLA_F_NESTED, nla(CTA_FILTER_ORIG_FLAGS, struct.pack("=I", flags)))
    return attrs


def decode_u32_attrs(buf: bytes, off: int, end: int) -> dict[int, int]:
    """Every be32 attribute of a statistics message (attribute type -> value)."""
    out: dict[int, int] = {}
    for kind, a, b in iter_attrs(buf, off, end):
        if b - a >= 4:
            out[kind] = _BE32.unpack_from(buf, a)[0]
    return out


def _open_error(exc: OSError, what: str) -> GntError:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(
            f"{what} needs CAP_NET_ADMIN in this network namespace",
            "run as root, or give the process cap_net_admin (setcap on the one-file binary does not reach gnt)",
            errno=exc.errno,
        )
    # EINVAL is what nfnetlink answers when no ctnetlink subsystem is registered (module missing).
    if exc.errno in (errno.EPROTONOSUPPORT, errno.EOPNOTSUPP, errno.ENOENT, errno.EAFNOSUPPORT, errno.EINVAL):
        return UnavailableError(
            "connection tracking is not available in this kernel or network namespace",
            "load the modules: modprobe nf_conntrack_netlink (kernel CONFIG_NF_CT_NETLINK)",
            errno=exc.errno,
        )
    return GntError(f"{what} failed: {errno_text(exc.errno or 0)}", errno=exc.errno)


class CtnetlinkSocket:
    """An AF_NETLINK/NETLINK_NETFILTER socket speaking ctnetlink. Use as a context manager."""

    def __init__(self, groups: int = 0, rcvbuf: int | None = None) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except OSError as exc:
            raise _open_error(exc, "opening a ctnetlink socket") from exc
        try:
            if rcvbuf:
                self.set_rcvbuf(rcvbuf)
            self.sock.bind((0, groups))
        except OSError as exc:
            self.sock.close()
            raise _open_error(exc, "subscribing to conntrack events") from exc
        self.seq = 0
        self.lost = 0  # ENOBUFS seen on this socket: the kernel dropped messages for us

    def set_rcvbuf(self, size: int) -> None:
        """SO_RCVBUFFORCE when allowed (root), else SO_RCVBUF (capped by net.core.rmem_max)."""
        set_receive_buffer(self.sock, size)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> CtnetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def drops(self) -> int | None:
        """Messages the kernel dropped for this socket because its buffer was full (sk_drops, the
        Drops column of /proc/net/netlink: one per event lost), or None when it cannot be read."""
        try:
            inode = str(os.fstat(self.sock.fileno()).st_ino)
            with open("/proc/net/netlink") as table:
                header = next(table).split()
                column = header.index("Drops")
                for line in table:
                    fields = line.split()
                    if fields and fields[-1] == inode and len(fields) > column:
                        return int(fields[column])
        except (OSError, ValueError, StopIteration):
            pass
        return None

    def request(self, msg_type: int, flags: int, family: int = 0, attrs: bytes = b"") -> int:
        """Send one ctnetlink request; returns its sequence number."""
        self.seq += 1
        length = HEADER_LEN + len(attrs)
        header = NLMSGHDR.pack(length, CT_TYPE_BASE | msg_type, NLM_F_REQUEST | flags, self.seq, 0)
        message = header + NFGENMSG.pack(family, NFNETLINK_V0, 0) + attrs
        try:
            self.sock.send(message)
        except OSError as exc:
            raise _open_error(exc, "the ctnetlink request") from exc
        return self.seq

    def messages(self, *, prefetch: bool = False) -> Iterator[tuple[bytes, int, int, int, int]]:
        """The ctnetlink messages of the reply to the last request, up to NLMSG_DONE or the ack.

        With `prefetch` (and more than one CPU), a child process keeps reading the dump while
        this one decodes: the kernel builds each next dump datagram inside recv(), so the two
        run side by side instead of taking turns. The child hands the datagrams over a pipe,
        which bounds what waits in between (memory stays flat).
        """
        chunks = self._forked() if prefetch and _can_fork() else self._datagrams()
        unpack = NLMSGHDR.unpack_from
        try:
            for buf, size in chunks:
                # split_datagram's walk, inlined for the common message (a dump's hot path)
                off = 0
                while off + NLMSGHDR.size <= size:
                    length, kind, flags = unpack(buf, off)[:3]
                    if kind >> 8 != NFNL_SUBSYS_CTNETLINK or length < NLMSGHDR.size or off + length > size:
                        for message in split_datagram(buf[off:size]):  # DONE, an error, or damage
                            if message[3] < 0:
                                return
                            yield message
                        break
                    yield buf, off + NLMSGHDR.size, off + length, kind & 0xFF, flags
                    off += (length + 3) & ~3
        finally:
            chunks.close()  # ends the child process at once, on every path

    def _datagrams(self) -> Generator[tuple[bytes, int], None, None]:
        recv = self.sock.recv
        while True:
            try:
                buf = recv(RECV_SIZE)
            except OSError as exc:
                raise _open_error(exc, "reading from ctnetlink") from exc
            yield buf, len(buf)

    def _forked(self) -> Generator[tuple[bytes, int], None, None]:
        """Whole netlink messages as a child process reads them from the socket (see `messages`)."""
        import signal

        read_end, write_end = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default 64 KiB pipe works, with more hand-overs
        pid = os.fork()
        if pid == 0:  # the child: socket -> pipe until the reply is complete; never returns
            code = 0
            try:
                os.close(read_end)
                recv = self.sock.recv
                while True:
                    buf = recv(RECV_SIZE)
                    view = memoryview(FRAME.pack(len(buf)) + buf)  # framed: the parent reads whole datagrams
                    while view:
                        view = view[os.write(write_end, view):]
                    if ends_reply(buf):
                        break
            except OSError as exc:
                code = exc.errno or 1 if exc.errno != errno.EPIPE else 0
            except BaseException:
                code = 1
            finally:
                os._exit(code)  # no atexit, no flushing of the parent's buffers
        os.close(write_end)
        finished = False
        pipe = os.fdopen(read_end, "rb", buffering=PIPE_SIZE)
        try:
            read = pipe.read
            while True:
                header = read(FRAME.size)
                if len(header) < FRAME.size:
                    break
                (size,) = FRAME.unpack(header)
                buf = read(size)
                if len(buf) < size:
                    break
                yield buf, size
            finished = True
        finally:
            pipe.close()
            if not finished:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            _pid, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise _open_error(OSError(code, os.strerror(code)), "reading from ctnetlink")
        raise GntError("the conntrack dump ended before the kernel said it was complete")

    def receive_events(self, timeout: float | None) -> list[tuple[bytes, int, int, int, int]] | None:
        """The event messages of one datagram; [] after an ENOBUFS (counted in `lost`), None on timeout."""
        self.sock.settimeout(timeout)
        try:
            buf = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            return None
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                self.lost += 1
                return []
            raise _open_error(exc, "reading conntrack events") from exc
        out = []
        for message in split_datagram(buf):
            if message[3] == _OVERRUN:
                self.lost += 1
            elif message[3] >= 0:
                out.append(message)
        return out


def _can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1


def ends_reply(buf: bytes) -> bool:
    """True if the datagram holds NLMSG_DONE or an error/ack: the reply to a request is complete."""
    unpack = NLMSGHDR.unpack_from
    off = 0
    size = len(buf)
    while off + NLMSGHDR.size <= size:
        length, kind = unpack(buf, off)[:2]
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            return True
        if length < NLMSGHDR.size:
            return True  # malformed: let split_datagram stop there
        off += (length + 3) & ~3
    return False


_END = -1  # split_datagram: NLMSG_DONE or an ack: the reply is complete
_OVERRUN = -2  # split_datagram: NLMSG_OVERRUN


def split_datagram(buf: bytes) -> Iterator[tuple[bytes, int, int, int, int]]:
    """(buffer, nfgenmsg offset, message end, ctnetlink message type, nlmsg flags) per message.

    The end of a reply (NLMSG_DONE, an ack) comes as type _END; a netlink error raises.
    """
    unpack = NLMSGHDR.unpack_from
    off = 0
    size = len(buf)
    while off + NLMSGHDR.size <= size:
        length, kind, flags, _seq, _pid = unpack(buf, off)
        if length < NLMSGHDR.size or off + length > size:
            return
        if kind == NLMSG_DONE:
            number = error_errno(buf, off, length) if length >= NLMSGHDR.size + NLMSGERR.size else 0
            if number:  # a dump the kernel broke off carries its errno in DONE
                raise _open_error(OSError(number, errno_text(number)), "the conntrack dump")
            yield buf, 0, 0, _END, 0
            return
        if kind == NLMSG_ERROR:
            number = error_errno(buf, off, length)
            if number:
                raise _open_error(OSError(number, errno_text(number)), "reading the conntrack table")
            yield buf, 0, 0, _END, 0  # an ack
            return
        if kind == NLMSG_OVERRUN:
            yield buf, 0, 0, _OVERRUN, 0
        elif (kind >> 8) == NFNL_SUBSYS_CTNETLINK:
            yield buf, off + NLMSGHDR.size, off + length, kind & 0xFF, flags
        off += (length + 3) & ~3


def event_kind(msg_type: int, nl_flags: int) -> str:
    """"new", "update" or "destroy" for a ctnetlink event message (as libnetfilter_conntrack tells them)."""
    if msg_type == IPCTNL_MSG_CT_DELETE:
        return "destroy"
    if nl_flags & NLM_F_CREATE:
        return "new"
    return "update"


def sender_portid(buf: bytes, off: int) -> int:
    """nlmsg_pid of the message whose nfgenmsg is at `off`: in an event, the netlink port of the
    program that caused it (conntrack -D, kube-proxy, ...), 0 when the kernel did."""
    return int(NLMSGHDR.unpack_from(buf, off - NLMSGHDR.size)[4])


def program_of_portid(portid: int) -> str | None:
    """The name of the process that holds netlink port `portid` (as conntrack -E finds it).

    /proc/net/netlink (of this network namespace) maps the port to a socket inode; the process
    with that socket among its file descriptors is tried first at pid == portid, where most
    programs' first port lies, then among all processes.
    """
    inode = None
    try:
        with open("/proc/net/netlink") as table:
            next(table, None)
            for line in table:
                fields = line.split()
                if len(fields) >= 10 and fields[1] == str(NETLINK_NETFILTER) and fields[2] == str(portid):
                    inode = fields[9]
                    break
    except OSError:
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    candidates = [portid]
    try:
        candidates += [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (portid, 1)]
    except OSError:
        pass
    for pid in candidates:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    with open(f"/proc/{pid}/stat") as stat:
                        text = stat.read()
                    return text[text.index("(") + 1:].split(")", 1)[0]
            except (OSError, ValueError):
                continue
    return None

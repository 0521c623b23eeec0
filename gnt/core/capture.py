"""Packet capture: pcap and pcapng files, and live AF_PACKET sockets with a kernel (BPF) filter.

Both sources yield the same record tuple, built for hot loops that decode fields in place:

    (buf, offset, caplen, wirelen, linktype, timestamp)

`buf` is a bytes-like object holding the frame at `buf[offset:offset + caplen]` (for a file the
whole file, read once; for a socket one frame), `wirelen` is the length on the wire (larger
than `caplen` when the capture's snap length cut the frame), `linktype` a LINKTYPE_* value
(tcpdump.org/linktypes.html) and `timestamp` seconds since the epoch as a float.

Formats: pcap (tcpdump.org/manpages/pcap-savefile.5.html, micro- and nanosecond magic, either
byte order) and pcapng (RFC draft-ietf-opsawg-pcapng: section header, interface description,
enhanced/simple/obsolete packet blocks; sections of either byte order). A file that ends inside
a record is not an error for the records before it: they are all yielded and the damage is
recorded in `CaptureFile.problems` for the caller to report.

Live capture (packet(7)): the socket is opened with protocol 0 so it receives nothing, the
classic BPF program of `udp_dst_port_filter` is attached (SO_ATTACH_FILTER, see
Documentation/networking/filter.rst), and only then is it bound to the interface with
ETH_P_ALL: no frame that fails the filter ever reaches user space, not even in the window
before the filter is attached. It needs CAP_NET_RAW.

Standard library only.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import mmap
import os
import select
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from gnt.core.checksum import PROTO_UDP as IPPROTO_UDP
from gnt.core.packets.ethernet import ETH_P_8021AD as ETHERTYPE_QINQ
from gnt.core.packets.ethernet import ETH_P_8021Q as ETHERTYPE_VLAN
from gnt.core.packets.ethernet import ETH_P_IP as ETHERTYPE_IPV4
from gnt.core.packets.ethernet import ETH_P_IPV6 as ETHERTYPE_IPV6
from gnt.core.packets.ipv4 import OFFSET_MASK as IPV4_FRAG_MASK  # a non-first fragment carries no UDP header
from gnt.errors import GntError, InterfaceError, PermissionDenied

Buffer = bytes | bytearray | memoryview | mmap.mmap  # what a record's frame lives in
Record = tuple[Buffer, int, int, int, int, float]  # buf, offset, caplen, wirelen, linktype, timestamp
PcapRecordUnpack = Callable[[Buffer, int], tuple[int, int, int, int]]  # pcap record header reader

# Link-layer header types (tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in host byte order
LINKTYPE_ETHERNET = 1  # IEEE 802.3 Ethernet
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, version in the first nibble
LINKTYPE_LINUX_SLL = 113  # Linux "cooked" capture v1 (tcpdump -i any), 16-byte header
LINKTYPE_IPV4 = 228  # raw IPv4
LINKTYPE_IPV6 = 229  # raw IPv6
LINKTYPE_LINUX_SLL2 = 276  # Linux "cooked" capture v2, 20-byte header

# pcap (pcap-savefile(5)).
PCAP_MAGIC_US = 0xA1B2C3D4  # microsecond timestamps
PCAP_MAGIC_NS = 0xA1B23C4D  # nanosecond timestamps
PCAP_HEADER_LEN = 24  # magic, version 2+2, thiszone, sigfigs, snaplen, linktype
PCAP_RECORD_LEN = 16  # ts_sec, ts_frac, incl_len, orig_len
LINKTYPE_MASK = 0xFFFF  # the upper bits of the pcap linktype field carry FCS information

# pcapng block types and options.
PCAPNG_SHB = 0x0A0D0D0A  # section header block (a palindrome: same in both byte orders)
PCAPNG_IDB = 0x00000001  # interface description block
PCAPNG_PB = 0x00000002  # obsolete packet block
PCAPNG_SPB = 0x00000003  # simple packet block
PCAPNG_EPB = 0x00000006  # enhanced packet block
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D  # in the SHB, tells the section's byte order
PCAPNG_OPT_END = 0  # opt_endofopt
PCAPNG_IF_TSRESOL = 9  # if_tsresol: timestamp resolution, 10^-n or 2^-n (high bit set)
PCAPNG_IF_TSOFFSET = 14  # if_tsoffset: seconds added to every timestamp
PCAPNG_MIN_BLOCK = 12  # type, total length, trailing total length

MAX_SANE_RECORD = 0x4000000  # 64 MiB: a larger capture length means a corrupt record header

# packet(7), if_ether.h, filter.h.
ETH_P_ALL = 0x0003  # every protocol
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
SOL_PACKET = 263  # packet socket option level
PACKET_STATISTICS = 6  # struct tpacket_stats {tp_packets, tp_drops}
ARPHRD_ETHER = 1  # Ethernet-framed device
ARPHRD_LOOPBACK = 772  # loopback: Ethernet framing with zero addresses
ARPHRD_NONE = 0xFFFE  # no link-layer header (tun, wireguard): captured cooked
ANY_INTERFACE = "any"  # capture on every interface, as tcpdump -i any
RCVBUF_BYTES = 8 << 20  # socket receive buffer: rides out bursts while Python catches up
SNAPLEN = 262144  # bytes read per frame, as tcpdump's default

# Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
BPF_LD_W_ABS = 0x20  # A = u32 at k
BPF_LD_H_ABS = 0x28  # A = u16 at k
BPF_LD_B_ABS = 0x30  # A = u8 at k
BPF_LD_H_IND = 0x48  # A = u16 at X + k
BPF_LDX_B_MSH = 0xB1  # X = 4 * (u8 at k & 0xf): the IPv4 header length
BPF_JEQ_K = 0x15  # jump jt if A == k else jf
BPF_JSET_K = 0x45  # jump jt if A & k else jf
BPF_RET_K = 0x06  # return k (bytes to keep; 0 drops)
SKF_AD_PROTOCOL = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: skb->protocol (cooked sockets)

_u32le = struct.Struct("<I")  # magic numbers, little-endian
_u32be = struct.Struct(">I")  # magic numbers, big-endian


class CaptureFormatError(GntError):
    """A file that is not a pcap/pcapng capture, or one gnt cannot read."""


class CaptureFile:
    """A pcap or pcapng file, read with one read; `records()` yields every frame in it.

    `problems` collects what was wrong with the file (a record cut short at the end, a corrupt
    block); everything before the damage is still yielded.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.format = ""
        self.data = self._read(path)
        if len(self.data) < 4:
            raise CaptureFormatError(f"{path} is not a pcap or pcapng capture (only {len(self.data)} bytes)")
        magic_le = _u32le.unpack_from(self.data, 0)[0]
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
        elif magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or _u32be.unpack_from(self.data, 0)[0] in (
            PCAP_MAGIC_US, PCAP_MAGIC_NS,
        ):
            self.format = "pcap"
            if len(self.data) < PCAP_HEADER_LEN:
                raise CaptureFormatError(f"{path}: the pcap file header is cut short ({len(self.data)} bytes)")
        else:
            raise CaptureFormatError(
                f"{path} is not a pcap or pcapng capture (starts with {bytes(self.data[:4]).hex()})",
                "write captures with `tcpdump -w FILE` or `tshark -w FILE`",
            )

    @staticmethod
    def _read(path: str) -> bytes | mmap.mmap:
        """The whole file: mapped when it is a regular file (no copy), else read (stdin, a pipe)."""
        try:
            if path == "-":
                stream: BinaryIO = sys.stdin.buffer
                return stream.read()
            with open(path, "rb") as f:
                info = os.fstat(f.fileno())
                if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                    try:
                        # The mapping outlives the descriptor; it goes when the last view of it does.
                        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    except (OSError, ValueError):
                        pass
                return f.read()
        except FileNotFoundError as exc:
            raise GntError(f"no such file: {path}", errno=exc.errno) from exc
        except IsADirectoryError as exc:
            raise GntError(f"{path} is a directory, not a capture file", errno=exc.errno) from exc
        except PermissionError as exc:
            raise PermissionDenied(f"cannot read {path}: permission denied", errno=exc.errno) from exc
        except OSError as exc:
            raise GntError(f"cannot read {path}: {exc.strerror}", errno=exc.errno) from exc

    def records(self) -> Iterator[Record]:
        if self.format == "pcap":
            return self._pcap_records()
        return self._pcapng_records()

    def pcap_layout(self) -> tuple[bytes | mmap.mmap, int, PcapRecordUnpack, float, int]:
        """For loops that walk a pcap file in place: (data, first record offset, record header
        unpack (ts_sec, ts_frac, incl_len, orig_len), seconds per ts_frac unit, linktype).
        Such a loop reports damage through `pcap_damage`, as `records()` does."""
        data = self.data
        order = "<" if _u32le.unpack_from(data, 0)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
        magic, _vmaj, _vmin, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from(
            order + "IHHiIII", data, 0
        )
        scale = 1e-9 if magic == PCAP_MAGIC_NS else 1e-6
        return data, PCAP_HEADER_LEN, struct.Struct(order + "IIII").unpack_from, scale, linktype & LINKTYPE_MASK

    def pcap_damage(self, index: int, offset: int, announced: int, have: int) -> None:
        """Record that pcap record `index` at byte `offset` is cut short or corrupt.

        `announced` is the record's incl_len (-1: the file ends inside the record header) and
        `have` the bytes the file still holds after the record header (or after `offset`).
        """
        if announced < 0:
            self.problems.append(f"the file ends inside the header of record {index} at byte {offset} "
                          f"({have} stray bytes)")
        elif announced > MAX_SANE_RECORD:
            self.problems.append(f"record {index} at byte {offset} claims {announced} bytes: corrupt, "
                          "the rest is skipped")
        else:
            self.problems.append(f"record {index} at byte {offset} is truncated: {announced} bytes announced, "
                          f"{have} in the file")

    def _pcap_records(self) -> Iterator[Record]:
        data, off, unpack, scale, linktype = self.pcap_layout()
        n = len(data)
        index = 0
        while off + PCAP_RECORD_LEN <= n:
            sec, frac, incl, orig = unpack(data, off)
            start = off + PCAP_RECORD_LEN
            index += 1
            end = start + incl
            if incl > MAX_SANE_RECORD:
                self.pcap_damage(index, off, incl, n - start)
                return
            if end > n:
                self.pcap_damage(index, off, incl, n - start)
                yield data, start, n - start, max(orig, incl), linktype, sec + frac * scale
                return
            yield data, start, incl, orig, linktype, sec + frac * scale
            off = end
        if off < n:
            self.pcap_damage(index + 1, off, -1, n - off)

    def _pcapng_records(self) -> Iterator[Record]:
        data = self.data
        n = len(data)
        off = 0
        order = "<"
        hdr = struct.Struct("<II")
        epb = struct.Struct("<IIIII")
        # Per interface of the current section: linktype, snaplen, ticks per second, offset.
        ifaces: list[tuple[int, int, float, float]] = []
        epb_whole = struct.Struct("<IIIIIII").unpack_from  # type, length, and the EPB fields, at once
        while off + PCAPNG_MIN_BLOCK <= n:
            # The common case first, with one unpack: a whole enhanced packet block.
            if off + 28 <= n:
                btype, blen, iface, ts_hi, ts_lo, caplen, wirelen = epb_whole(data, off)
                if (btype == PCAPNG_EPB and iface < len(ifaces) and not blen & 3 and off + blen <= n
                        and 32 + caplen <= blen):
                    linktype, _snap, tick, base = ifaces[iface]
                    yield data, off + 28, caplen, wirelen, linktype, ((ts_hi << 32) | ts_lo) / tick + base
                    off += blen
                    continue
            btype = _u32le.unpack_from(data, off)[0]
            if btype == PCAPNG_SHB:
                if off + 16 > n:
                    break
                bom = _u32le.unpack_from(data, off + 8)[0]
                if bom == PCAPNG_BYTE_ORDER_MAGIC:
                    order = "<"
                elif bom == 0x4D3C2B1A:  # the magic read in the other byte order
                    order = ">"
                else:
                    self.problems.append(f"section header at byte {off} has a bad byte-order magic; "
                                         "the rest is skipped")
                    return
                hdr = struct.Struct(order + "II")
                epb = struct.Struct(order + "IIIII")
                epb_whole = struct.Struct(order + "IIIIIII").unpack_from
                ifaces = []
            btype, blen = hdr.unpack_from(data, off)
            if blen < PCAPNG_MIN_BLOCK or blen % 4:
                self.problems.append(f"block at byte {off} has an impossible length {blen}; the rest is skipped")
                return
            end = off + blen
            if end > n:
                if btype in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB):
                    self.problems.append(f"packet block at byte {off} is truncated: {blen} bytes announced, "
                                  f"{n - off} in the file")
                    partial = self._partial_packet(data, off, btype, order, ifaces)
                    if partial is not None:
                        yield partial
                else:
                    self.problems.append(f"block at byte {off} is truncated: {blen} bytes announced, "
                                         f"{n - off} in the file")
                return
            if btype == PCAPNG_EPB:
                iface, ts_hi, ts_lo, caplen, wirelen = epb.unpack_from(data, off + 8)
                if iface >= len(ifaces):
                    self.problems.append(f"packet block at byte {off} names undeclared interface {iface}; skipped")
                elif off + 28 + caplen > end - 4:
                    self.problems.append(f"packet block at byte {off} has a capture length beyond its block; skipped")
                else:
                    linktype, _snap, tick, base = ifaces[iface]
                    yield data, off + 28, caplen, wirelen, linktype, ((ts_hi << 32) | ts_lo) / tick + base
            elif btype == PCAPNG_SPB:
                if not ifaces:
                    self.problems.append(f"simple packet block at byte {off} before any interface; skipped")
                else:
                    linktype, snap, _tick, _base = ifaces[0]
                    wirelen = struct.unpack_from(order + "I", data, off + 8)[0]
                    caplen = min(wirelen, blen - 16, snap or wirelen)
                    yield data, off + 12, caplen, wirelen, linktype, 0.0
            elif btype == PCAPNG_PB:
                iface, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", data, off + 8)
                if iface < len(ifaces) and off + 28 + caplen <= end - 4:
                    linktype, _snap, tick, base = ifaces[iface]
                    yield data, off + 28, caplen, wirelen, linktype, ((ts_hi << 32) | ts_lo) / tick + base
                else:
                    self.problems.append(f"packet block at byte {off} is malformed; skipped")
            elif btype == PCAPNG_IDB:
                linktype, _reserved, snap = struct.unpack_from(order + "HHI", data, off + 8)
                tick, base = self._idb_options(data, off + 16, end - 4, order)
                ifaces.append((linktype, snap, tick, base))
            off = end
        if off < n:
            self.problems.append(f"the file ends inside a block header at byte {off} ({n - off} stray bytes)")

    @staticmethod
    def _partial_packet(
        data: bytes | mmap.mmap, off: int, btype: int, order: str, ifaces: list[tuple[int, int, float, float]]
    ) -> Record | None:
        """What is left of a packet block the file cuts short (at least its fixed header)."""
        n = len(data)
        if btype == PCAPNG_EPB and off + 28 <= n:
            iface, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", data, off + 8)
            if iface < len(ifaces):
                linktype, _snap, tick, base = ifaces[iface]
                have = min(caplen, n - off - 28)
                return data, off + 28, have, max(wirelen, caplen), linktype, ((ts_hi << 32) | ts_lo) / tick + base
        return None

    @staticmethod
    def _idb_options(data: bytes | mmap.mmap, off: int, end: int, order: str) -> tuple[float, float]:
        """(timestamp ticks per second, seconds offset) from an IDB's if_tsresol / if_tsoffset."""
        tick, base = 1e6, 0.0
        opt = struct.Struct(order + "HH")
        while off + 4 <= end:
            code, length = opt.unpack_from(data, off)
            if code == PCAPNG_OPT_END:
                break
            value = off + 4
            if code == PCAPNG_IF_TSRESOL and length >= 1 and value < end:
                r = data[value]
                tick = 2.0 ** (r & 0x7F) if r & 0x80 else 10.0**r
            elif code == PCAPNG_IF_TSOFFSET and length >= 8 and value + 8 <= end:
                base = float(struct.unpack_from(order + "q", data, value)[0])
            off = value + ((length + 3) & ~3)
        return tick, base


# ---------------------------------------------------------------------------------------------
# Classic BPF: "udp dst port in PORTS" over IPv4/IPv6, with or without one VLAN tag.

BpfInsn = tuple[int, int, int, int]  # code, jt, jf, k (struct sock_filter)


def udp_dst_port_filter(ports: Iterable[int], *, cooked: bool = False) -> list[BpfInsn]:
    """A classic BPF program accepting UDP datagrams to any of `ports`, IPv4 or IPv6.

    Ethernet frames (`cooked=False`) may carry one 802.1Q/802.1ad tag in-line (the kernel usually
    strips it into metadata before packet sockets see the frame, so the untagged path is the
    common one). Cooked sockets (SOCK_DGRAM) start at the network header and the protocol comes
    from skb->protocol. Non-first IPv4 fragments and IPv6 extension headers are rejected (as
    tcpdump's `udp dst port` does). Equivalent to `tcpdump -dd 'udp dst port P or (vlan and udp
    dst port P)'` for each port.
    """
    port_list = sorted(set(ports))
    if not port_list or any(not 0 <= p <= 0xFFFF for p in port_list):
        raise ValueError("ports must be a non-empty set of 0..65535")
    # Build with symbolic labels, then resolve to relative forward jumps.
    prog: list[tuple[int, str | int, str | int, int]] = []
    labels: dict[str, int] = {}

    def label(name: str) -> None:
        labels[name] = len(prog)

    def emit(code: int, k: int = 0, jt: str | int = 0, jf: str | int = 0) -> None:
        prog.append((code, jt, jf, k))

    def l3_block(base: int, tag: str) -> None:
        # A holds the ethertype.
        emit(BPF_JEQ_K, ETHERTYPE_IPV4, jt=0, jf=f"v6check{tag}")
        emit(BPF_LD_B_ABS, base + 9)
        emit(BPF_JEQ_K, IPPROTO_UDP, jt=0, jf="reject")
        emit(BPF_LD_H_ABS, base + 6)
        emit(BPF_JSET_K, IPV4_FRAG_MASK, jt="reject", jf=0)
        emit(BPF_LDX_B_MSH, base)
        emit(BPF_LD_H_IND, base + 2)
        for i, port in enumerate(port_list):
            last = i == len(port_list) - 1
            emit(BPF_JEQ_K, port, jt="accept", jf="reject" if last else 0)
        label(f"v6check{tag}")
        emit(BPF_JEQ_K, ETHERTYPE_IPV6, jt=0, jf="reject")
        emit(BPF_LD_B_ABS, base + 6)
        emit(BPF_JEQ_K, IPPROTO_UDP, jt=0, jf="reject")
        emit(BPF_LD_H_ABS, base + 40 + 2)
        for i, port in enumerate(port_list):
            last = i == len(port_list) - 1
            emit(BPF_JEQ_K, port, jt="accept", jf="reject" if last else 0)

    if cooked:
        emit(BPF_LD_W_ABS, SKF_AD_PROTOCOL)
        l3_block(0, "")
    else:
        emit(BPF_LD_H_ABS, 12)
        emit(BPF_JEQ_K, ETHERTYPE_VLAN, jt="vlan", jf=0)
        emit(BPF_JEQ_K, ETHERTYPE_QINQ, jt="vlan", jf="untagged")
        label("untagged")
        l3_block(14, "")
        label("vlan")
        emit(BPF_LD_H_ABS, 16)
        l3_block(18, "-vlan")
    label("accept")
    emit(BPF_RET_K, SNAPLEN)
    label("reject")
    emit(BPF_RET_K, 0)

    resolved: list[BpfInsn] = []
    for pc, (code, jt, jf, k) in enumerate(prog):
        jumps = []
        for target in (jt, jf):
            if isinstance(target, str):
                rel = labels[target] - pc - 1
                if not 0 <= rel <= 255:
                    raise ValueError("BPF program too long for a classic jump")
                jumps.append(rel)
            else:
                jumps.append(target)
        resolved.append((code, jumps[0], jumps[1], k))
    return resolved


def attach_filter(sock: socket.socket, program: list[BpfInsn]) -> None:
    """Attach a classic BPF program to a socket (SO_ATTACH_FILTER with a struct sock_fprog)."""
    insns = b"".join(struct.pack("HBBI", code, jt, jf, k) for code, jt, jf, k in program)
    buf = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))  # struct sock_fprog, native layout
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class LiveCapture:
    """An AF_PACKET socket on one interface (or "any") that only ever sees UDP to `ports`.

    "any", as with tcpdump, captures on every interface of the network namespace through a
    cooked (SOCK_DGRAM) socket, since the interfaces need not share a link type.
    """

    def __init__(self, ifname: str, ports: Iterable[int]) -> None:
        self.ifname = ifname
        every = ifname == ANY_INTERFACE
        if not every:
            try:
                socket.if_nametoindex(ifname)
            except OSError as exc:
                raise InterfaceError(
                    f"no interface named {ifname}", "list this node's interfaces with `ip link`", errno=exc.errno
                ) from exc
        arphrd = ARPHRD_NONE if every else self._arphrd(ifname)
        self.cooked = arphrd not in (ARPHRD_ETHER, ARPHRD_LOOPBACK)
        self.linktype = LINKTYPE_RAW if self.cooked else LINKTYPE_ETHERNET
        kind = socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW
        try:
            # On one interface, protocol 0: the socket receives nothing until bound, so nothing
            # unfiltered slips in. On all of them there is no bind: it receives from creation on,
            # and what arrived before the filter is drained below.
            self.sock = socket.socket(socket.AF_PACKET, kind, socket.htons(ETH_P_ALL) if every else 0)
        except PermissionError as exc:
            raise PermissionDenied(
                f"capturing on {ifname} needs CAP_NET_RAW",
                "run as root, or give the process cap_net_raw (setcap on the one-file binary does not reach gnt)",
                errno=exc.errno,
            ) from exc
        try:
            attach_filter(self.sock, udp_dst_port_filter(ports, cooked=self.cooked))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            if every:
                self._drain()
            else:
                self.sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            self.sock.close()
            if exc.errno == errno_mod.ENODEV:
                raise InterfaceError(f"no interface named {ifname}", errno=exc.errno) from exc
            raise GntError(f"cannot capture on {ifname}: {exc.strerror}", errno=exc.errno) from exc

    def _drain(self) -> None:
        """Discard frames queued before the filter was attached."""
        while True:
            try:
                self.sock.recv(SNAPLEN, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return

    @staticmethod
    def _arphrd(ifname: str) -> int:
        try:
            with open(f"/sys/class/net/{ifname}/type") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return ARPHRD_ETHER

    def records(self, *, count: int | None = None, duration: float | None = None) -> Iterator[Record]:
        """Frames as they arrive, until `count` frames or `duration` seconds (or forever).

        Every record shares one buffer, overwritten by the next frame: decode before moving on.
        """
        sock = self.sock
        linktype = self.linktype
        deadline = None if duration is None else time.monotonic() + duration
        seen = 0
        now = time.time
        # One buffer for every frame: the consumer decodes a frame before asking for the next.
        # MSG_TRUNC makes recv_into return the frame's real length even when it did not fit.
        frame = bytearray(SNAPLEN)
        recv_into = sock.recv_into
        trunc = socket.MSG_TRUNC
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while count is None or seen < count:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if not poller.poll(min(left, 1.0) * 1000):
                    continue
            wirelen = recv_into(frame, SNAPLEN, trunc)
            seen += 1
            yield frame, 0, min(wirelen, SNAPLEN), wirelen, linktype, now()

    def kernel_drops(self) -> int:
        """Frames the kernel dropped for want of buffer space since the last call (PACKET_STATISTICS)."""
        try:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return 0
        _packets, drops = struct.unpack("II", raw)
        return int(drops)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

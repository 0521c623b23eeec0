"""Packet capture: pcap and pcapng files, and live AF_PACKET sockets with a kernel (BPF) filter.

Both sources yield the same record tuple, built for hot loops that decode fields in place:

    (buf, offset, caplen, wirelen, linktype, timestamp)

`buf` is a bytes-like object holding the frame at `buf[offset:offset + caplen]` (for a regular
file the whole file, mapped; for a stream one record or block; for a live socket its ring),
`wirelen` is the length on the wire (larger than `caplen` when the capture's snap length cut the
frame), `linktype` a LINKTYPE_* value (tcpdump.org/linktypes.html) and `timestamp` seconds since the epoch as a float.

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
LINKTYPE_RESERVED = 0x03FF0000  # bits 16-25 of the pcap linktype field: reserved, must be zero
PCAP_VERSION_MAJOR = 2  # the pcap file format version, 2.4 (minor 0-4 are read alike)
PCAP_VERSION_MINOR = 4

# pcapng block types and options.
PCAPNG_SHB = 0x0A0D0D0A  # section header block (a palindrome: same in both byte orders)
PCAPNG_IDB = 0x00000001  # interface description block
PCAPNG_PB = 0x00000002  # obsolete packet block
PCAPNG_SPB = 0x00000003  # simple packet block
PCAPNG_EPB = 0x00000006  # enhanced packet block
EPB_HEADER = 28  # an EPB's bytes before its packet: type, length, interface, timestamp, two lengths
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D  # in the SHB, tells the section's byte order
PCAPNG_OPT_END = 0  # opt_endofopt
PCAPNG_IF_TSRESOL = 9  # if_tsresol: timestamp resolution, 10^-n or 2^-n (high bit set)
PCAPNG_IF_TSOFFSET = 14  # if_tsoffset: seconds added to every timestamp
PCAPNG_MIN_BLOCK = 12  # type, total length, trailing total length
PCAPNG_VERSION_MAJOR = 1  # the section header's major version
PCAPNG_VERSION_MINORS = (0, 2)  # minor versions read (1.2 was written by early tools), as libpcap
PCAPNG_MIN_LEN = {  # smallest total length of each block type: its fixed fields
    PCAPNG_SHB: 28, PCAPNG_IDB: 20, PCAPNG_PB: 32, PCAPNG_SPB: 16, PCAPNG_EPB: 32,
}
PCAPNG_BLOCK_NAMES = {  # for messages
    PCAPNG_SHB: "section header block", PCAPNG_IDB: "interface description block", PCAPNG_PB: "packet block",
    PCAPNG_SPB: "simple packet block", PCAPNG_EPB: "enhanced packet block",
}

MAX_SANE_RECORD = 0x4000000  # 64 MiB: a larger capture length means a corrupt record header
STREAM_CHUNK = 1 << 20  # the most one read of a streamed capture asks for (a pipe holds 64 KiB by default)

# packet(7), if_ether.h, filter.h.
ETH_P_ALL = 0x0003  # every protocol
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
SOL_PACKET = 263  # packet socket option level
PACKET_STATISTICS = 6  # struct tpacket_stats_v3 {tp_packets, tp_drops, tp_freeze_q_cnt} with a V3 ring
PACKET_RX_RING = 5  # set up the memory-mapped receive ring (struct tpacket_req3)
PACKET_VERSION = 10  # ring frame layout version
TPACKET_V3 = 2  # variable-size frames packed in blocks the kernel hands over whole
TP_STATUS_KERNEL = 0  # block status: the kernel's to fill
TP_STATUS_USER = 1  # block status: filled, ours to read and give back
TPACKET_REQ3 = struct.Struct("IIIIIII")  # block size, block count, frame size, frame count, retire ms, priv, features
TPACKET_BLOCK = struct.Struct("III")  # tpacket_hdr_v1 at +8 of a block: block_status, num_pkts, offset_to_first_pkt
TPACKET3_HDR = struct.Struct("IIIIIIH")  # next offset, sec, nsec, snaplen, len, status, mac offset
RING_BYTES = 64 << 20  # default ring size: ~0.4 s of 150 kpps small frames, rides out Python's pauses
RING_BLOCK_MAX = 1 << 20  # block size cap: large enough for a 512 KiB GRO/BIG TCP frame
RING_MIN_BLOCKS = 8  # at least this many blocks, so the kernel fills some while we read others
RING_FRAME = 2048  # nominal frame size the kernel checks the request against (V3 frames are variable)
RING_RETIRE_MS = 50  # a block partly filled is handed over after this long: latency at low rates
ARPHRD_ETHER = 1  # Ethernet-framed device
ARPHRD_LOOPBACK = 772  # loopback: Ethernet framing with zero addresses
ARPHRD_NONE = 0xFFFE  # no link-layer header (tun, wireguard): captured cooked
ANY_INTERFACE = "any"  # capture on every interface, as tcpdump -i any
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


class _Stop(Exception):
    """Damage after which nothing more of a capture can be read (the problem is already recorded)."""


class CaptureFile:
    """A pcap or pcapng capture; `records()` yields every frame in it.

    A regular file is mapped and walked in place. Anything else (stdin, a pipe, a FIFO, a device) is
    read as a stream: the magic is checked as soon as it arrives, then one record (pcap) or block
    (pcapng) at a time, as the writer produces it, so memory stays flat and
    `tcpdump -w - | gnt vxlan-csum scan --pcap -` reports as it goes.

    `problems` collects what was wrong with the file (a record cut short at the end, a corrupt
    block); everything before the damage is still yielded. A file libpcap would refuse outright
    (not a capture, an unsupported version, reserved link-type bits) raises CaptureFormatError.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.format = ""
        self.stream: BinaryIO | None = None
        self.data: bytes | mmap.mmap = b""
        self._header = b""
        self._open(path)
        head = self.data[:4] if self.stream is None else self._read_exact(4)
        if len(head) < 4:
            raise CaptureFormatError(f"{path} is not a pcap or pcapng capture (only {len(head)} bytes)")
        magic_le = _u32le.unpack_from(head, 0)[0]
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
            self._header = bytes(head)
        elif magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or _u32be.unpack_from(head, 0)[0] in (
            PCAP_MAGIC_US, PCAP_MAGIC_NS,
        ):
            self.format = "pcap"
            header = self.data[:PCAP_HEADER_LEN] if self.mapped else head + self._read_exact(PCAP_HEADER_LEN - 4)
            if len(header) < PCAP_HEADER_LEN:
                raise CaptureFormatError(f"{path}: the pcap file header is cut short ({len(header)} bytes)")
            self._header = bytes(header)
            self._check_pcap_header()
        else:
            raise CaptureFormatError(
                f"{path} is not a pcap or pcapng capture (starts with {bytes(head).hex()})",
                "write captures with `tcpdump -w FILE` or `tshark -w FILE`",
            )

    @property
    def mapped(self) -> bool:
        """True when the whole file is in `data` (a mapped regular file), False for a stream."""
        return self.stream is None

    def _open(self, path: str) -> None:
        """Map a regular file (no copy); keep anything else (stdin, a pipe, a device) as a stream."""
        try:
            if path == "-":
                self.stream = sys.stdin.buffer
                return
            f = open(path, "rb")  # noqa: SIM115 -- kept open as the stream when it is not mapped
        except FileNotFoundError as exc:
            raise GntError(f"no such file: {path}", errno=exc.errno) from exc
        except IsADirectoryError as exc:
            raise GntError(f"{path} is a directory, not a capture file", errno=exc.errno) from exc
        except PermissionError as exc:
            raise PermissionDenied(f"cannot read {path}: permission denied", errno=exc.errno) from exc
        except OSError as exc:
            raise GntError(f"cannot read {path}: {exc.strerror}", errno=exc.errno) from exc
        try:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                # The mapping outlives the descriptor; it goes when the last view of it does.
                self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                f.close()
                return
        except (OSError, ValueError):
            pass
        self.stream = f

    def _read_some(self, n: int) -> bytes:
        """What the stream has now, up to `n` bytes (waiting only while it has nothing); b"" at its end."""
        assert self.stream is not None
        read1 = getattr(self.stream, "read1", None)
        try:
            return (read1(n) if read1 is not None else self.stream.read(n)) or b""
        except OSError as exc:
            raise GntError(f"cannot read {self.path}: {exc.strerror}", errno=exc.errno) from exc

    def _read_exact(self, n: int) -> bytes:
        """`n` bytes from the stream, fewer only at its end."""
        assert self.stream is not None
        try:
            return self.stream.read(n) or b""
        except OSError as exc:
            raise GntError(f"cannot read {self.path}: {exc.strerror}", errno=exc.errno) from exc

    def _more(self, missing: int) -> bytes:
        """The next chunk of a stream (b"" at its end, and always for a mapped file, whose data is whole):
        what it has now, or a record or block longer than a chunk read whole, since piece by piece it
        would be copied once a piece."""
        if self.stream is None:
            return b""
        return self._read_exact(missing) if missing > STREAM_CHUNK else self._read_some(STREAM_CHUNK)

    def _check_pcap_header(self) -> None:
        """Refuse what libpcap refuses: versions other than 2.0-2.4, reserved link-type bits set."""
        order = "<" if _u32le.unpack_from(self._header, 0)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
        _magic, major, minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from(order + "IHHiIII", self._header)
        if major != PCAP_VERSION_MAJOR or minor > PCAP_VERSION_MINOR:
            raise CaptureFormatError(
                f"{self.path}: unsupported pcap file version {major}.{minor} (pcap files are version 2.4): "
                "a corrupt or foreign file", "rewrite it with `editcap -F pcap IN OUT` if another tool reads it")
        if linktype & LINKTYPE_RESERVED:
            raise CaptureFormatError(
                f"{self.path}: the pcap link-type field 0x{linktype:08x} has reserved bits set: a corrupt file")

    def records(self) -> Iterator[Record]:
        if self.format == "pcap":
            return self._pcap_records()
        return self._pcapng_records() if self.mapped else self._pcapng_stream_records()

    def pcap_layout(self) -> tuple[bytes | mmap.mmap, int, PcapRecordUnpack, float, int]:
        """For loops that walk a mapped pcap file in place: (data, first record offset, record header
        unpack (ts_sec, ts_frac, incl_len, orig_len), seconds per ts_frac unit, linktype).
        Such a loop reports damage through `pcap_damage`, as `records()` does."""
        order = "<" if _u32le.unpack_from(self._header, 0)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
        magic, _vmaj, _vmin, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from(
            order + "IHHiIII", self._header, 0
        )
        scale = 1e-9 if magic == PCAP_MAGIC_NS else 1e-6
        return self.data, PCAP_HEADER_LEN, struct.Struct(order + "IIII").unpack_from, scale, linktype & LINKTYPE_MASK

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
        """pcap records, walked in place: a mapped file's whole data, or a stream's as it arrives.
        Each read of a stream takes what it has (`_more`), every whole record in it is yielded in
        place, and a record the chunk cut is completed by the next read: no wait for more than the
        next record, and no read call or copy per record (a consumer decodes a record before asking
        for the next). The end of the data, either way, is where damage is told."""
        buf, off, unpack, scale, linktype = self.pcap_layout()  # off: the file offset, for damage
        pos = off if self.mapped else 0  # the next record header in buf
        index = 0  # records yielded
        while True:
            n = len(buf)
            missing = 0  # bytes the record at pos still lacks, once its header is in
            while pos + PCAP_RECORD_LEN <= n:
                sec, frac, incl, orig = unpack(buf, pos)
                if incl > MAX_SANE_RECORD:
                    self.pcap_damage(index + 1, off, incl, n - pos - PCAP_RECORD_LEN)
                    return
                start = pos + PCAP_RECORD_LEN
                if start + incl > n:
                    missing = start + incl - n
                    break
                index += 1
                yield buf, start, incl, orig, linktype, sec + frac * scale
                pos = start + incl
                off += PCAP_RECORD_LEN + incl
            more = self._more(missing)
            if not more:
                rest = n - pos
                if rest < PCAP_RECORD_LEN:
                    if rest:
                        self.pcap_damage(index + 1, off, -1, rest)
                    return
                sec, frac, incl, orig = unpack(buf, pos)
                self.pcap_damage(index + 1, off, incl, rest - PCAP_RECORD_LEN)
                yield buf, pos + PCAP_RECORD_LEN, rest - PCAP_RECORD_LEN, max(orig, incl), linktype, sec + frac * scale
                return
            buf = buf[pos:] + more if pos < n else more
            pos = 0

    def _pcapng_records(self) -> Iterator[Record]:
        """pcapng blocks walked in place; whole enhanced packet blocks of a known interface, their
        trailing length right, take a two-unpack path, every other block goes through `pcapng_step`
        (which says what is wrong with one that is not, as libpcap refuses it)."""
        data = self.data
        n = len(data)
        off = 0
        section = self.pcapng_section()
        epb_whole, ifaces, trailer = section.epb_whole, section.ifaces, section.trailer  # refreshed below
        while off >= 0:
            # The common case first: a whole enhanced packet block, its fields in one unpack.
            if off + EPB_HEADER <= n:
                btype, blen, iface, ts_hi, ts_lo, caplen, wirelen = epb_whole(data, off)
                if (btype == PCAPNG_EPB and iface < len(ifaces) and not blen & 3 and off + blen <= n
                        and EPB_HEADER + caplen + 4 <= blen  # the packet, then the trailing length
                        and trailer(data, off + blen - 4)[0] == blen):
                    linktype, _snap, tick, base = ifaces[iface]
                    yield data, off + EPB_HEADER, caplen, wirelen, linktype, ((ts_hi << 32) | ts_lo) / tick + base
                    off += blen
                    continue
            record, off = self.pcapng_step(off, section)
            epb_whole, ifaces, trailer = section.epb_whole, section.ifaces, section.trailer  # a new section's
            if record is not None:
                yield record

    def pcapng_section(self) -> _Section:
        """For loops that walk a mapped pcapng file in place (as `_pcapng_records`): the section
        state to pass to `pcapng_step`, whose `epb_whole`, `ifaces` and `trailer` read a whole
        enhanced packet block (re-read them after each step: a section header replaces them)."""
        return _Section()

    def pcapng_step(self, off: int, section: _Section) -> tuple[Record | None, int]:
        """The block at `off` of a mapped pcapng file, whatever it is: (its record or None, the
        next block's offset, or -1 when nothing more can be read; damage is in `problems`)."""
        data = self.data
        n = len(data)
        btype = _u32le.unpack_from(data, off)[0] if off + PCAPNG_MIN_BLOCK <= n else None
        if btype is None or (btype == PCAPNG_SHB and off + 16 > n):
            if off < n:
                self.problems.append(f"the file ends inside a block header at byte {off} ({n - off} stray bytes)")
            return None, -1
        try:
            if btype == PCAPNG_SHB:
                self._section_order(section, data[off + 8 : off + 12], off)
            btype, blen = section.hdr.unpack_from(data, off)
            self._check_block_length(blen, off)
            record = self._pcapng_block(data, off, btype, blen, n - off, off, section)
        except _Stop:
            return None, -1
        return record, (-1 if off + blen > n else off + blen)

    def _pcapng_stream_records(self) -> Iterator[Record]:
        """pcapng blocks as they arrive, read in chunks as `_pcap_records` reads a stream's records: every
        whole block in a chunk is handled in place (a whole enhanced packet block with one unpack, as
        the mapped walk does), and a block the chunk cut is completed by the next read."""
        section = _Section()
        where = 0  # the file offset of buf[pos], for messages
        buf = self._header  # the magic, read already
        pos = 0
        epb_whole, ifaces, trailer = section.epb_whole, section.ifaces, section.trailer  # refreshed below
        try:
            while True:
                n = len(buf)
                missing = 0  # bytes the block at pos still lacks, once its header is in
                btype = blen = 0
                while pos + PCAPNG_MIN_BLOCK <= n:
                    if pos + EPB_HEADER <= n:
                        btype, blen, iface, ts_hi, ts_lo, caplen, wirelen = epb_whole(buf, pos)
                        if (btype == PCAPNG_EPB and not blen & 3 and pos + blen <= n and EPB_HEADER + caplen + 4 <= blen
                                and iface < len(ifaces) and trailer(buf, pos + blen - 4)[0] == blen):
                            linktype, _snap, tick, base = ifaces[iface]
                            ts = ((ts_hi << 32) | ts_lo) / tick + base
                            yield buf, pos + EPB_HEADER, caplen, wirelen, linktype, ts
                            pos += blen
                            where += blen
                            continue
                    if _u32le.unpack_from(buf, pos)[0] == PCAPNG_SHB:
                        self._section_order(section, buf[pos + 8 : pos + 12], where)
                    btype, blen = section.hdr.unpack_from(buf, pos)
                    self._check_block_length(blen, where)
                    if blen > MAX_SANE_RECORD:
                        self.problems.append(f"block at byte {where} claims {blen} bytes: corrupt, the rest is skipped")
                        return
                    if pos + blen > n:
                        missing = pos + blen - n
                        break
                    record = self._pcapng_block(buf, pos, btype, blen, blen, where, section)
                    epb_whole, ifaces, trailer = section.epb_whole, section.ifaces, section.trailer  # a new section's
                    if record is not None:
                        yield record
                    pos += blen
                    where += blen
                more = self._more(missing)
                if not more:
                    rest = n - pos
                    if 0 < rest < PCAPNG_MIN_BLOCK:
                        self.problems.append(f"the file ends inside a block header at byte {where} "
                                             f"({rest} stray bytes)")
                    elif rest:
                        record = self._pcapng_block(buf, pos, btype, blen, rest, where, section)
                        if record is not None:
                            yield record
                    return
                buf = buf[pos:] + more if pos < n else more
                pos = 0
        except _Stop:
            return

    def _section_order(self, section: _Section, bom_bytes: bytes | mmap.mmap, where: int) -> None:
        """A section header starts: its byte-order magic sets how the section's blocks are read."""
        bom = _u32le.unpack_from(bom_bytes, 0)[0]
        if bom == PCAPNG_BYTE_ORDER_MAGIC:
            section.start("<")
        elif bom == 0x4D3C2B1A:  # the magic read in the other byte order
            section.start(">")
        else:
            self.problems.append(f"section header at byte {where} has a bad byte-order magic; the rest is skipped")
            raise _Stop

    def _check_block_length(self, blen: int, where: int) -> None:
        if blen < PCAPNG_MIN_BLOCK or blen % 4:
            self.problems.append(f"block at byte {where} has an impossible length {blen}; the rest is skipped")
            raise _Stop

    def _pcapng_block(
        self, data: bytes | mmap.mmap, off: int, btype: int, blen: int, have: int, where: int, section: _Section,
    ) -> Record | None:
        """One pcapng block at `data[off:]` (`have` bytes of its `blen` there; `where` its position in
        the file, for messages): the record it holds, if any. Damage that makes the rest of the file
        unreadable is recorded and raises _Stop; a block that is only itself malformed is skipped."""
        order = section.order
        ifaces = section.ifaces
        end = off + blen
        minimum = PCAPNG_MIN_LEN.get(btype, PCAPNG_MIN_BLOCK)
        if blen < minimum:
            self.problems.append(f"{PCAPNG_BLOCK_NAMES.get(btype, 'block')} at byte {where} is {blen} bytes, "
                                 f"shorter than its fixed fields ({minimum}); the rest is skipped")
            raise _Stop
        if have >= blen and struct.unpack_from(order + "I", data, end - 4)[0] != blen:
            self._fatal(where, f"{PCAPNG_BLOCK_NAMES.get(btype, 'block')} at byte {where} gives its length as "
                               f"{blen} at its start and {struct.unpack_from(order + 'I', data, end - 4)[0]} "
                               "at its end")
        if have < blen:
            if btype in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB):
                self.problems.append(f"packet block at byte {where} is truncated: {blen} bytes announced, "
                                     f"{have} in the file")
                if btype == PCAPNG_EPB and have >= 28:
                    iface, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", data, off + 8)
                    if iface < len(ifaces):
                        linktype, _snap, tick, base = ifaces[iface]
                        return (data, off + 28, min(caplen, have - 28), max(wirelen, caplen), linktype,
                                ((ts_hi << 32) | ts_lo) / tick + base)
            else:
                self.problems.append(f"block at byte {where} is truncated: {blen} bytes announced, {have} in the file")
            return None
        if btype == PCAPNG_EPB:
            iface, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", data, off + 8)
            if iface >= len(ifaces):
                self.problems.append(f"packet block at byte {where} names undeclared interface {iface}; skipped")
            elif off + 28 + caplen > end - 4:
                self.problems.append(f"packet block at byte {where} has a capture length beyond its block; skipped")
            else:
                linktype, _snap, tick, base = ifaces[iface]
                return data, off + 28, caplen, wirelen, linktype, ((ts_hi << 32) | ts_lo) / tick + base
        elif btype == PCAPNG_SPB:
            if not ifaces:
                self.problems.append(f"simple packet block at byte {where} before any interface; skipped")
            else:
                linktype, snap, _tick, _base = ifaces[0]
                wirelen = struct.unpack_from(order + "I", data, off + 8)[0]
                caplen = min(wirelen, blen - 16, snap or wirelen)
                return data, off + 12, caplen, wirelen, linktype, 0.0
        elif btype == PCAPNG_PB:
            iface, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", data, off + 8)
            if iface < len(ifaces) and off + 28 + caplen <= end - 4:
                linktype, _snap, tick, base = ifaces[iface]
                return data, off + 28, caplen, wirelen, linktype, ((ts_hi << 32) | ts_lo) / tick + base
            self.problems.append(f"packet block at byte {where} is malformed; skipped")
        elif btype == PCAPNG_IDB:
            linktype, _reserved, snap = struct.unpack_from(order + "HHI", data, off + 8)
            tick, base = self._idb_options(data, off + 16, end - 4, order, where)
            ifaces.append((linktype, snap, tick, base))
        elif btype == PCAPNG_SHB:
            major, minor = struct.unpack_from(order + "HH", data, off + 12)
            if major != PCAPNG_VERSION_MAJOR or minor not in PCAPNG_VERSION_MINORS:
                self._fatal(where, f"section header at byte {where} has unsupported pcapng version {major}.{minor} "
                                   "(1.0 is read)")
        return None

    def _fatal(self, where: int, message: str) -> None:
        """Damage after which nothing more can be read: refused outright at the start of the file (as
        libpcap refuses it), else recorded after what was read. Raises either way."""
        if where == 0:
            raise CaptureFormatError(f"{self.path}: {message}: a corrupt or foreign file")
        self.problems.append(f"{message}; the rest is skipped")
        raise _Stop

    def _idb_options(self, data: bytes | mmap.mmap, off: int, end: int, order: str, where: int) -> tuple[float, float]:
        """(timestamp ticks per second, seconds offset) from an IDB's if_tsresol / if_tsoffset."""
        tick, base = 1e6, 0.0
        opt = struct.Struct(order + "HH")
        while off + 4 <= end:
            code, length = opt.unpack_from(data, off)
            if code == PCAPNG_OPT_END:
                break
            value = off + 4
            if value + length > end:
                self.problems.append(f"interface description block at byte {where}: option {code} claims "
                                     f"{length} bytes, more than the block holds; the rest is skipped")
                raise _Stop
            if code == PCAPNG_IF_TSRESOL and length >= 1:
                r = data[value]
                tick = 2.0 ** (r & 0x7F) if r & 0x80 else 10.0 ** (r & 0x7F)
            elif code == PCAPNG_IF_TSOFFSET and length >= 8:
                base = float(struct.unpack_from(order + "q", data, value)[0])
            off = value + ((length + 3) & ~3)
        return tick, base


class _Section:
    """What a pcapng section's blocks are read with: its byte order and its interfaces so far."""

    __slots__ = ("epb_whole", "hdr", "ifaces", "order", "trailer")

    def __init__(self) -> None:
        self.start("<")

    def start(self, order: str) -> None:
        self.order = order
        self.hdr = struct.Struct(order + "II")
        self.epb_whole = struct.Struct(order + "IIIIIII").unpack_from  # type, length and the EPB fields
        self.trailer = struct.Struct(order + "I").unpack_from  # a block's trailing copy of its length
        # Per interface: linktype, snaplen, ticks per second, seconds offset.
        self.ifaces: list[tuple[int, int, float, float]] = []


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
    import ctypes  # here: only live capture needs it, and it costs file scans start-up time

    buf = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))  # struct sock_fprog, native layout
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class LiveCapture:
    """An AF_PACKET socket on one interface (or "any") that only ever sees UDP to `ports`.

    Frames arrive in a TPACKET_V3 memory-mapped ring (packet(7), Documentation/networking/
    packet_mmap.rst): the kernel packs them into blocks and hands over a whole block at a time, so
    a burst costs no system call per frame and the ring (`buffer_bytes`, 64 MiB by default) rides
    out the moments Python falls behind. "any", as with tcpdump, captures on every interface of the
    network namespace through a cooked (SOCK_DGRAM) socket, since the interfaces need not share a
    link type.
    """

    def __init__(self, ifname: str, ports: Iterable[int], *, buffer_bytes: int | None = None) -> None:
        self.ifname = ifname
        self.ring: mmap.mmap | None = None
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
            if every:
                self._drain()  # before the ring: what is queued now never reaches it
            self.block_size, self.block_count = ring_geometry(RING_BYTES if buffer_bytes is None else buffer_bytes)
            self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, TPACKET_REQ3.pack(
                self.block_size, self.block_count, RING_FRAME, self.block_size // RING_FRAME * self.block_count,
                RING_RETIRE_MS, 0, 0))
            self.ring = mmap.mmap(self.sock.fileno(), self.block_size * self.block_count, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
            if not every:
                self.sock.bind((ifname, ETH_P_ALL))
        except OSError as exc:
            self.close()
            if exc.errno == errno_mod.ENODEV:
                raise InterfaceError(f"no interface named {ifname}", errno=exc.errno) from exc
            if exc.errno == errno_mod.ENOMEM:
                raise GntError(f"cannot capture on {ifname}: no memory for a {buffer_bytes or RING_BYTES} byte ring",
                               "give a smaller ring with --buffer", errno=exc.errno) from exc
            raise GntError(f"cannot capture on {ifname}: {exc.strerror}", errno=exc.errno) from exc
        self._block = 0  # the next block to read

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

        Records point into the ring; a block goes back to the kernel once all its frames have been
        yielded, so decode a frame before asking for the next.
        """
        ring = self.ring
        assert ring is not None
        linktype = self.linktype
        deadline = None if duration is None else time.monotonic() + duration
        remaining = sys.maxsize if count is None else count
        block_size, blocks = self.block_size, self.block_count
        block_hdr = TPACKET_BLOCK.unpack_from
        frame_hdr = TPACKET3_HDR.unpack_from
        give_back = struct.Struct("I").pack_into
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLERR)
        i = self._block
        while remaining > 0:
            base = i * block_size
            status, frames, first = block_hdr(ring, base + 8)
            if not status & TP_STATUS_USER:
                wait: float = 1000
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    wait = min(left, 1.0) * 1000
                poller.poll(wait)
                continue
            off = base + first
            for _ in range(frames):
                step, sec, nsec, snaplen, wirelen, _status, mac = frame_hdr(ring, off)
                yield ring, off + mac, snaplen, wirelen, linktype, sec + nsec * 1e-9
                remaining -= 1
                if not remaining:
                    return
                off += step
            give_back(ring, base + 8, TP_STATUS_KERNEL)
            i = self._block = (i + 1) % blocks
            if deadline is not None and time.monotonic() >= deadline:
                return

    def kernel_drops(self) -> int:
        """Frames the kernel dropped for want of ring space since the last call (PACKET_STATISTICS)."""
        try:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        except OSError:
            return 0
        _packets, drops = struct.unpack_from("II", raw)
        return int(drops)

    def close(self) -> None:
        if self.ring is not None:
            try:
                self.ring.close()
            except BufferError:  # a view of a frame is still held (an exception's traceback): the GC unmaps it
                pass
            self.ring = None
        self.sock.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ring_geometry(total: int) -> tuple[int, int]:
    """(block size, block count) for a ring of about `total` bytes: power-of-two blocks of at most
    RING_BLOCK_MAX, at least RING_MIN_BLOCKS of them."""
    page = mmap.PAGESIZE
    block = page
    while block * 2 <= RING_BLOCK_MAX and block * 2 * RING_MIN_BLOCKS <= total:
        block *= 2
    return block, max(RING_MIN_BLOCKS, total // block)

"""gnt.core.capture: pcap/pcapng reading (against independent writers) and the BPF port filter."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers.vxlan_frames import inner_frame, to_sll, to_sll2, vxlan_frame, write_pcap, write_pcapng

from gnt.core import capture
from gnt.core.capture import CaptureFile, CaptureFormatError, udp_dst_port_filter
from gnt.errors import GntError

FRAMES = [
    vxlan_frame("ok"),
    vxlan_frame("zero", v6=True),
    vxlan_frame("ffff", vlan=42, inner=inner_frame("udp", payload=301)),
    b"\x02" * 60,  # some non-IP frame
]


def _records(path: Path) -> list[tuple[bytes, int, int, float]]:
    cap = CaptureFile(str(path))
    out = [(bytes(buf[off:off + caplen]), wirelen, lt, ts) for buf, off, caplen, wirelen, lt, ts in cap.records()]
    assert cap.problems == []
    return out


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap_both_byte_orders_and_resolutions(tmp_path: Path, big_endian: bool, nanoseconds: bool) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(str(path), FRAMES, big_endian=big_endian, nanoseconds=nanoseconds, start=1_700_000_000.5)
    recs = _records(path)
    assert [r[0] for r in recs] == FRAMES
    assert [r[1] for r in recs] == [len(f) for f in FRAMES]
    assert {r[2] for r in recs} == {capture.LINKTYPE_ETHERNET}
    for i, r in enumerate(recs):
        assert r[3] == pytest.approx(1_700_000_000.5 + i * 0.001, abs=1e-6)
    assert CaptureFile(str(path)).format == "pcap"


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("tsresol", [None, 9, 3])
def test_pcapng_epb_both_byte_orders(tmp_path: Path, big_endian: bool, tsresol: int | None) -> None:
    path = tmp_path / "x.pcapng"
    write_pcapng(str(path), FRAMES, big_endian=big_endian, tsresol=tsresol)
    recs = _records(path)
    assert [r[0] for r in recs] == FRAMES
    step = 10.0 ** -(tsresol if tsresol is not None else 6)
    for i, r in enumerate(recs):
        assert r[3] == pytest.approx(1_700_000_000.0 + i * 0.001, abs=max(step * 2, 1e-6))
    assert CaptureFile(str(path)).format == "pcapng"


def test_pcapng_simple_packet_blocks(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    write_pcapng(str(path), FRAMES, simple=True)
    assert [r[0] for r in _records(path)] == FRAMES


def test_scapy_written_pcap_and_pcapng(tmp_path: Path) -> None:
    """An independent writer: scapy's pcap and pcapng writers (with its own block layout and options)."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter, wrpcap

    pkts = [Ether(f) for f in FRAMES]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_100 + i
    wrpcap(str(tmp_path / "s.pcap"), pkts)
    writer = PcapNgWriter(str(tmp_path / "s.pcapng"))
    for p in pkts:
        writer.write(p)
    writer.close()
    for name in ("s.pcap", "s.pcapng"):
        recs = _records(tmp_path / name)
        assert [r[0] for r in recs] == FRAMES, name
        assert [round(r[3]) for r in recs] == [1_700_000_100 + i for i in range(len(FRAMES))]


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (tshark) not installed")
def test_editcap_pcapng_and_snaplen(tmp_path: Path) -> None:
    """Wireshark's editcap writes real pcapng (SHB/IDB options, EPB options) and cuts to a snap length."""
    src = tmp_path / "a.pcap"
    write_pcap(str(src), FRAMES)
    ng = tmp_path / "a.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(src), str(ng)], check=True, capture_output=True)
    assert [r[0] for r in _records(ng)] == FRAMES
    cut = tmp_path / "cut.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", "-s", "80", str(src), str(cut)], check=True, capture_output=True)
    recs = _records(cut)
    assert [r[0] for r in recs] == [f[:80] for f in FRAMES]
    assert [r[1] for r in recs] == [len(f) for f in FRAMES]  # wire length kept


def test_linktype_is_passed_through(tmp_path: Path) -> None:
    path = tmp_path / "sll.pcap"
    write_pcap(str(path), [to_sll(f) for f in FRAMES], linktype=capture.LINKTYPE_LINUX_SLL)
    assert {r[2] for r in _records(path)} == {113}
    path2 = tmp_path / "sll2.pcapng"
    write_pcapng(str(path2), [to_sll2(f) for f in FRAMES], linktype=capture.LINKTYPE_LINUX_SLL2)
    assert {r[2] for r in _records(path2)} == {276}


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_last_record_reported_rest_read(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"t.{fmt}"
    writer = write_pcap if fmt == "pcap" else write_pcapng
    writer(str(path), FRAMES[:3], truncate_last=40)
    cap = CaptureFile(str(path))
    recs = list(cap.records())
    assert len(cap.problems) == 1
    assert "truncated" in cap.problems[0]
    assert [bytes(b[o:o + c]) for b, o, c, _w, _l, _t in recs[:2]] == FRAMES[:2]
    # What is left of the third record is still handed over, shorter than its wire length.
    _b, _o, caplen, wirelen, _l, _t = recs[2]
    assert caplen < wirelen == len(FRAMES[2])


def test_file_ending_inside_a_record_header(tmp_path: Path) -> None:
    path = tmp_path / "h.pcap"
    write_pcap(str(path), FRAMES[:1])
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    cap = CaptureFile(str(path))
    assert len(list(cap.records())) == 1
    assert cap.problems and "stray bytes" in cap.problems[0]


def test_not_a_capture_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, this is not a capture\n")
    with pytest.raises(CaptureFormatError, match="not a pcap or pcapng capture"):
        CaptureFile(str(bad))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(CaptureFormatError):
        CaptureFile(str(empty))
    with pytest.raises(GntError, match="no such file"):
        CaptureFile(str(tmp_path / "absent.pcap"))
    with pytest.raises(GntError, match="directory"):
        CaptureFile(str(tmp_path))


# --- the kernel filter -------------------------------------------------------------------------

SKF_AD_OFF = 0xFFFFF000  # ancillary data loads (linux/filter.h)


def run_bpf(prog: list[tuple[int, int, int, int]], pkt: bytes, *, protocol: int = 0) -> int:
    """A classic BPF interpreter (the subset these programs use), as the kernel runs them."""
    a = x = 0
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if cls in (0x00, 0x01):  # LD / LDX
            size = code & 0x18
            mode = code & 0xE0
            if cls == 0x01 and mode == 0xA0:  # ldxb msh
                if k >= len(pkt):
                    return 0
                x = 4 * (pkt[k] & 0x0F)
                continue
            if cls == 0x01 and mode == 0x00:  # ldx #k
                x = k
                continue
            if mode == 0x00:  # ld #k
                a = k
                continue
            addr = k + (x if mode == 0x40 else 0)
            if addr >= SKF_AD_OFF:
                a = protocol if addr == SKF_AD_OFF else 0  # protocol, or "no VLAN tag in metadata"
                continue
            width = {0x00: 4, 0x08: 2, 0x10: 1}[size]
            if addr + width > len(pkt):
                return 0
            a = int.from_bytes(pkt[addr:addr + width], "big")
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            src = x if code & 0x08 else k
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x04:  # ALU (tcpdump's programs)
            op = code & 0xF0
            src = x if code & 0x08 else k
            a = {0x00: a + src, 0x10: a - src, 0x50: a & src, 0x40: a | src, 0x60: a << src, 0x70: a >> src}[op]
            a &= 0xFFFFFFFF
        elif cls == 0x07:  # MISC: tax / txa
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        elif cls == 0x02:  # ST
            continue
        else:
            raise AssertionError(f"opcode {code:#x} not in the interpreter")


def _filter_cases() -> list[tuple[str, bytes, bool]]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    frag = IP(bytes(IP(src="10.0.0.1", dst="10.0.0.2", frag=100, proto=17) / UDP(dport=8472)))
    return [
        ("vxlan v4 8472", vxlan_frame("zero"), True),
        ("vxlan v4 4789", vxlan_frame("ok", dport=4789), True),
        ("vxlan v6", vxlan_frame("ok", v6=True), True),
        ("vxlan v4 vlan", vxlan_frame("ok", vlan=7), True),
        ("vxlan v6 vlan", vxlan_frame("ok", v6=True, vlan=7), True),
        ("udp other port", bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53)), False),
        ("udp source 8472 only", bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=8472, dport=9)),
         False),
        ("tcp 8472", bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=8472)), False),
        ("v6 tcp", bytes(eth / IPv6(src="fd00::1", dst="fd00::2") / TCP(dport=8472)), False),
        ("ip options", bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01\x01\x01\x00")
                             / UDP(dport=8472)), True),
        ("non-first fragment", bytes(eth / frag), False),
        ("vlan other port", bytes(eth / Dot1Q(vlan=3) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=80)),
         False),
        ("arp-ish", b"\xff" * 12 + b"\x08\x06" + b"\0" * 28, False),
        ("runt", b"\xff" * 12 + b"\x08\x00" + b"\x45", False),
    ]


@pytest.mark.parametrize("name,frame,accept", _filter_cases(), ids=[c[0] for c in _filter_cases()])
def test_bpf_filter_accepts_vxlan_ports_only(name: str, frame: bytes, accept: bool) -> None:
    prog = udp_dst_port_filter([8472, 4789])
    assert bool(run_bpf(prog, frame)) is accept


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_bpf_filter_agrees_with_tcpdump_program() -> None:
    """Same verdict as the program libpcap compiles for the equivalent expression."""
    expr = ("udp dst port 8472 or udp dst port 4789 or "
            "(vlan and (udp dst port 8472 or udp dst port 4789))")
    out = subprocess.run(["tcpdump", "-dd", "-y", "EN10MB", expr], capture_output=True, text=True, check=True)
    theirs = [tuple(int(v, 0) for v in re.findall(r"0x[0-9a-f]+|\d+", line))
              for line in out.stdout.splitlines() if line.startswith("{")]
    ours = udp_dst_port_filter([8472, 4789])
    for name, frame, _accept in _filter_cases():
        if name == "ip options":
            continue  # both accept; tcpdump's IPv6 path differs only for extension headers
        assert bool(run_bpf(ours, frame)) == bool(run_bpf(theirs, frame)), name  # type: ignore[arg-type]


def test_bpf_cooked_variant_uses_skb_protocol() -> None:
    prog = udp_dst_port_filter([8472], cooked=True)
    frame = vxlan_frame("zero")
    assert run_bpf(prog, frame[14:], protocol=0x0800)
    assert not run_bpf(prog, frame[14:], protocol=0x86DD)
    v6 = vxlan_frame("zero", v6=True)
    assert run_bpf(prog, v6[14:], protocol=0x86DD)


def test_bpf_program_shape() -> None:
    prog = udp_dst_port_filter([4789])
    assert prog[-1] == (capture.BPF_RET_K, 0, 0, 0)
    assert all(0 <= jt < 256 and 0 <= jf < 256 for _c, jt, jf, _k in prog)
    packed = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    assert len(packed) == 8 * len(prog)
    with pytest.raises(ValueError):
        udp_dst_port_filter([])


def _streamed(data: bytes, pieces: list[int]) -> tuple[list[tuple[bytes, int, int, float]], list[str]]:
    """The records and problems of `data` read as a stream: written into a FIFO in pieces of the given
    sizes (the last one takes the rest), each flushed on its own, so reads see them as they come."""
    fifo = tempfile.mkdtemp(prefix="gnt-test-") + "/f"
    os.mkfifo(fifo)

    def write() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb", buffering=0) as w:
            at = 0
            for size in pieces:
                w.write(data[at : at + size])
                at += size
                time.sleep(0.001)
            w.write(data[at:])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    cap = None
    try:
        cap = CaptureFile(fifo)
        assert not cap.mapped
        out = [(bytes(b[o:o + c]), w, lt, ts) for b, o, c, w, lt, ts in cap.records()]
    finally:
        if cap is not None and cap.stream is not None:
            cap.stream.close()  # a reader that stopped early must not leave the writer blocked
        writer.join(timeout=30)
        shutil.rmtree(os.path.dirname(fifo))
    assert not writer.is_alive()
    return out, cap.problems


@pytest.mark.parametrize("damage", [None, "header", "frame"])
def test_a_streamed_pcap_gives_the_records_and_problems_of_the_file(tmp_path: Path, damage: str | None) -> None:
    """Records cut anywhere by the reads (in a header, in a frame, one longer than a read's chunk): the
    stream reader hands over the same records as the mapped file, and the same damage at the end."""
    frames = [bytes([k]) * size for k, size in enumerate([60, 1514, 7, 65535, 3, capture.STREAM_CHUNK + 5000, 90])]
    path = tmp_path / "s.pcap"
    write_pcap(str(path), frames, snaplen=capture.STREAM_CHUNK * 2)
    data = path.read_bytes()
    if damage == "header":
        data += b"\x01\x02\x03\x04\x05"
    elif damage == "frame":
        data = data[:-40]
    path.write_bytes(data)
    mapped = CaptureFile(str(path))
    expected = [(bytes(b[o:o + c]), w, lt, ts) for b, o, c, w, lt, ts in mapped.records()]
    assert len(expected) == len(frames) and (mapped.problems != []) == (damage is not None)
    for pieces in ([1, 2, 13, 17, 100, 1500, 30, 70000, 9], [len(data)], [24 + 16 + 3] * 40):
        assert _streamed(data, pieces) == (expected, mapped.problems)


@pytest.mark.parametrize("damage", [None, "header", "block", "undeclared interface"])
def test_a_streamed_pcapng_gives_the_records_and_problems_of_the_file(tmp_path: Path, damage: str | None) -> None:
    """The same for pcapng, both byte orders: blocks cut anywhere by the reads, one longer than a read's
    chunk, a second section with its own interface, and damage at the end or in the middle."""
    frames = [bytes([k]) * size for k, size in enumerate([60, 1514, 7, 65535, 3, capture.STREAM_CHUNK + 5000, 90])]
    for big_endian in (False, True):
        one, two = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
        write_pcapng(str(one), frames, big_endian=big_endian)
        write_pcapng(str(two), frames[:2], big_endian=not big_endian, linktype=capture.LINKTYPE_RAW)
        data = one.read_bytes() + two.read_bytes()
        if damage == "header":
            data += b"\x01\x02\x03\x04\x05"
        elif damage == "block":
            data = data[:-40]
        elif damage == "undeclared interface":  # the first packet block names interface 7
            order = ">" if big_endian else "<"
            at = data.index(struct.pack(order + "I", 6))  # the first EPB's type (the SHB and IDB come before)
            data = data[: at + 8] + struct.pack(order + "I", 7) + data[at + 12 :]
        path = tmp_path / "s.pcapng"
        path.write_bytes(data)
        mapped = CaptureFile(str(path))
        expected = [(bytes(b[o:o + c]), w, lt, ts) for b, o, c, w, lt, ts in mapped.records()]
        assert len(expected) == len(frames) + 2 - (damage == "undeclared interface")
        assert (mapped.problems != []) == (damage is not None)
        for pieces in ([1, 2, 13, 17, 100, 1500, 30, 70000, 9], [len(data)], [28 + 3] * 40):
            assert _streamed(data, pieces) == (expected, mapped.problems)

"""`gnt vxlan-csum scan` on the captures that used to fool it: BIG TCP / GSO super-frames, IPv6 routing
headers and jumbograms, short or fragmented outer datagrams, broken headers, and captures libpcap refuses.

Every frame is built here (scapy with explicit MACs, then patched by hand) and every expected checksum is
computed by the test's own 16-bit word loop (helpers.vxlan_frames.word_sum), not by gnt.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import struct
from pathlib import Path

import pytest
from helpers.cli import run_gnt as run_cli
from helpers.vxlan_frames import _block as ng_block
from helpers.vxlan_frames import (
    big_inner,
    inner_frame,
    l4_checksum,
    super_frame,
    vxlan_frame,
    write_pcap,
    write_pcapng,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gnt.errors import GntError
from gnt.vxlan import scan_file
from gnt.vxlan.models import ScanSummary
from gnt.vxlan.scan import DEFAULT_PORTS, build_report, scan

MAC_A, MAC_B = "02:00:00:00:0c:01", "02:00:00:00:0c:02"
V4_SRC, V4_DST = "198.18.100.1", "198.18.100.2"
V6_SRC, V6_DST, V6_FINAL = "2001:db8:100::1", "2001:db8:100::2", "2001:db8:200::9"


def _pcap(tmp_path: Path, frames: list[bytes], name: str = "c.pcap") -> str:
    path = str(tmp_path / name)
    write_pcap(path, frames, snaplen=262144)
    return path


def _a(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


# --- BIG TCP / GSO super-frames -------------------------------------------------------------------

@pytest.mark.parametrize("outer_v6", [False, True])
@pytest.mark.parametrize("inner_v6", [False, True])
def test_big_tcp_super_frames_are_verified_with_lengths_from_the_frame(tmp_path: Path, outer_v6: bool,
                                                                        inner_v6: bool) -> None:
    frames = [super_frame(c, outer_v6=outer_v6, inner_v6=inner_v6) for c in ("ok", "partial", "other")]
    s = scan_file(_pcap(tmp_path, frames)).summary
    assert s.problems == [] and s.other_packets == 0
    assert (s.vxlan_packets, s.checksum_ok, s.checksum_partial, s.checksum_bad, s.truncated_packets) == (3, 1, 2, 0, 0)
    assert (s.inner_bad, s.inner_l4_bad) == (0, 0)  # the inner TCP checksum holds over 80,000 bytes
    # "other" on a super-frame is what GSO will replace; the same value on a wire-size frame is bad.
    wire = bytearray(vxlan_frame("ok", v6=outer_v6))
    struct.pack_into("!H", wire, 14 + (40 if outer_v6 else 20) + 6, 0x5A5A)
    assert scan_file(_pcap(tmp_path, [bytes(wire)], "wire.pcap")).summary.checksum_bad == 1


def _counts(path: str) -> tuple[int, ...]:
    s = scan_file(path).summary
    return (*_summary_counts(s), s.flows)


@pytest.mark.parametrize("outer_v6", [False, True])
def test_super_frames_fast_and_general_paths_agree(tmp_path: Path, outer_v6: bool) -> None:
    """Super-frames of an IPv4 inner packet take the fast path (Ethernet); as raw IP captures the same
    frames take the general path: the same counts for every outer checksum, a partial or full inner
    checksum, a damaged payload, an inner length that is not 0, and (IPv4) an outer total length 0
    beside a UDP length that is set, whose wrong checksum is still a super-frame's, not bad."""
    frames = [super_frame(c, outer_v6=outer_v6, payload=p, partial_inner=partial, sport=52000 + i)
              for i, (c, p, partial) in enumerate([("ok", 16_000, False), ("partial", 40_001, True),
                                                  ("other", 64_000, True), ("other", 80_001, False),
                                                  ("ok", 30_000, True)])]
    damaged = bytearray(frames[0])
    damaged[-3] ^= 0x5A
    frames.append(bytes(damaged))
    u = 14 + (40 if outer_v6 else 20)
    sized_inner = bytearray(frames[1])
    struct.pack_into("!H", sized_inner, u + 16 + 14 + 2, 1000)  # inner total length not 0 (and wrong)
    frames.append(bytes(sized_inner))
    if not outer_v6:
        udp_len_set = bytearray(frames[2])
        struct.pack_into("!H", udp_len_set, u + 4, len(udp_len_set) - u)  # UDP length set, total length 0
        frames.append(bytes(udp_len_set))
    eth = _counts(_pcap(tmp_path, frames, "eth.pcap"))
    raw_path = str(tmp_path / "raw.pcap")
    write_pcap(raw_path, [f[14:] for f in frames], snaplen=262144, linktype=101)  # LINKTYPE_RAW
    assert eth == _counts(raw_path)
    assert eth[3] == 0 and eth[0] == len(frames)  # never bad: a super-frame's outer checksum is GSO's to write
    assert eth[2] == 2  # the "ok" ones, damaged payload aside


def _one_frame_summary(frame: bytes, linktype: int) -> tuple[object, ...]:
    flows, tally = scan(iter([(frame, 0, len(frame), len(frame), linktype, 0.0)]))
    report = build_report(flows, tally, source="-", ports=DEFAULT_PORTS)
    return _summary_counts(report.summary), [dataclasses.astuple(f) for f in report.flows]


def _summary_counts(s: ScanSummary) -> tuple[int, ...]:
    return (s.vxlan_packets, s.checksum_zero, s.checksum_ok, s.checksum_bad, s.bug_signature, s.checksum_partial,
            s.inner_bad, s.inner_ipv4_header_bad, s.inner_l4_bad, s.inner_l4_partial, s.truncated_packets,
            s.fragments, s.other_packets)


def test_fast_path_agrees_with_general_path_on_damaged_frames() -> None:
    """Differential fuzzing: 3,000 frames of the fast layouts (IPv4 or IPv6 outside, untagged or one
    802.1Q tag, IPv4 TCP/UDP inside, super-frames too), one to three bytes of them overwritten (mostly in
    the headers) or cut short. As Ethernet they take the fast path where it takes them; as raw IP the
    general path. Every frame gets the same counts and flows from both."""
    rnd = random.Random(17)
    bases = [super_frame(c, outer_v6=v6, payload=20_000) for v6 in (False, True) for c in ("ok", "partial", "other")]
    bases += [vxlan_frame(c, v6=v6, vlan=vlan, inner=inner_frame(p, payload=pay))
              for v6 in (False, True) for c in ("zero", "ok", "ffff", "bad", "partial") if not (v6 and c == "zero")
              for p in ("tcp", "udp") for pay in (0, 1, 601) for vlan in (None, 7)]
    compared = 0
    for _ in range(3000):
        frame = bytearray(rnd.choice(bases))
        link = 18 if frame[12:14] == b"\x81\x00" else 14
        for _ in range(rnd.randrange(1, 4)):
            at = rnd.randrange(link - 2, min(len(frame), 140) if rnd.random() < 0.9 else len(frame))
            frame[at] = rnd.randrange(256)
        if rnd.random() < 0.1:
            frame = frame[: rnd.randrange(link + 1, len(frame) + 1)]
        ethertype, version = frame[link - 2] << 8 | frame[link - 1], frame[link] >> 4
        if (ethertype, version) not in ((0x0800, 4), (0x86DD, 6)):
            continue  # as raw IP it would be another packet (raw IP has no type field but the version)
        compared += 1
        eth = _one_frame_summary(bytes(frame), 1)
        assert eth == _one_frame_summary(bytes(frame[link:]), 101), bytes(frame[:140]).hex()  # 101: raw IP
    assert compared > 2000


def test_super_frame_inner_checksum_damage_is_still_seen(tmp_path: Path) -> None:
    frame = bytearray(super_frame("partial"))
    frame[-1] ^= 0x01  # the last payload byte: the inner TCP checksum no longer holds
    s = scan_file(_pcap(tmp_path, [bytes(frame)])).summary
    assert (s.inner_l4_bad, s.inner_bad, s.checksum_bad) == (1, 1, 0)


def test_verdict_never_calls_unverified_packets_good(tmp_path: Path) -> None:
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", _pcap(tmp_path, [super_frame("partial", outer_v6=True)]))
    assert code == 0
    first = out.splitlines()[0]
    assert "good" not in first
    assert first == ("no bad outer UDP checksum in 1 VXLAN packet: "
                     "1 partial (captured before offload or segmentation).")
    cut = str(tmp_path / "cut.pcap")
    write_pcap(cut, [vxlan_frame("ok", v6=True, inner=inner_frame("tcp", payload=900))], snaplen=128)
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", cut)
    assert (code, out.splitlines()[0]) == (0, "no bad outer UDP checksum in 1 VXLAN packet: "
                                              "1 cut short in the capture, not verified.")


def test_ipv6_jumbogram_uses_the_jumbo_payload_length(tmp_path: Path) -> None:
    """RFC 2675: payload length 0, a hop-by-hop jumbo payload option, UDP length 0; a real wire packet
    (not a super-frame), so a wrong checksum on it is bad."""
    inner = big_inner(False)
    hbh = struct.pack("!BBBBI", 17, 0, 0xC2, 4, 0)  # next header UDP, 8 bytes, jumbo option
    udp_and_rest = struct.pack("!HHHH", 51000, 8472, 0, 0) + struct.pack("!II", 0x08000000, 1 << 8) + inner
    jumbo = len(hbh) + len(udp_and_rest)
    hbh = hbh[:4] + struct.pack("!I", jumbo)
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, 0, 0, 64, _a(V6_SRC), _a(V6_DST))
    eth = bytes.fromhex(MAC_B.replace(":", "")) + bytes.fromhex(MAC_A.replace(":", "")) + b"\x86\xdd"
    right = l4_checksum(_a(V6_SRC), _a(V6_DST), 17, udp_and_rest, 6)
    good = eth + ip6 + hbh + udp_and_rest[:6] + struct.pack("!H", right) + udp_and_rest[8:]
    bad = eth + ip6 + hbh + udp_and_rest[:6] + struct.pack("!H", right ^ 0x0101) + udp_and_rest[8:]
    s = scan_file(_pcap(tmp_path, [good, bad])).summary
    assert (s.vxlan_packets, s.checksum_ok, s.checksum_bad, s.checksum_partial) == (2, 1, 1, 0)


# --- IPv6 routing header: the pseudo-header names the final destination ------------------------------

def _srh_frame(*, segments_left: int, sum_with: str, rtype: int = 4) -> bytes:
    """Outer IPv6 to V6_DST with a routing header whose final destination is V6_FINAL; the UDP checksum
    computed with the address `sum_with`."""
    from scapy.layers.l2 import Ether

    payload = bytes(Ether(src=MAC_A, dst=MAC_B))[:0]  # (scapy only for the MAC layout below)
    inner = bytes(inner_frame("tcp", payload=77))
    udp = struct.pack("!HHHH", 51000, 8472, 8 + 8 + len(inner), 0) + struct.pack("!II", 0x08000000, 5 << 8) + inner
    if rtype == 4:  # SRH: last entry 1, Segment List[0] = final, [1] = the current destination
        rh = struct.pack("!BBBBBBH", 17, 4, 4, segments_left, 1, 0, 0) + _a(V6_FINAL) + _a(V6_DST)
    else:  # type 2 (home address): one address, the final destination
        rh = struct.pack("!BBBBI", 17, 2, 2, segments_left, 0) + _a(V6_FINAL)
    csum = l4_checksum(_a(V6_SRC), _a(sum_with), 17, udp, 6)
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(rh) + len(udp), 43, 64, _a(V6_SRC), _a(V6_DST))
    eth = bytes(Ether(src=MAC_A, dst=MAC_B, type=0x86DD))
    return eth + payload + ip6 + rh + udp


@pytest.mark.parametrize("rtype", [4, 2])
def test_routing_header_final_destination_in_the_pseudo_header(tmp_path: Path, rtype: int) -> None:
    frames = [
        _srh_frame(segments_left=1, sum_with=V6_FINAL, rtype=rtype),  # right (RFC 8200 §8.1)
        _srh_frame(segments_left=1, sum_with=V6_DST, rtype=rtype),  # wrong: summed with the next hop
        _srh_frame(segments_left=0, sum_with=V6_DST, rtype=rtype),  # at the last hop the header's dst is final
    ]
    s = scan_file(_pcap(tmp_path, frames)).summary
    assert (s.vxlan_packets, s.checksum_ok, s.checksum_bad) == (3, 2, 1)
    assert s.inner_bad == 0


# --- broken or unusual outer headers ------------------------------------------------------------------

def test_ipv4_header_length_below_five_words_is_not_read(tmp_path: Path) -> None:
    frame = bytearray(vxlan_frame("ok"))
    frame[14] = 0x44  # IHL 4: 16 bytes, the "UDP header" would be the addresses
    frame[30:34] = struct.pack("!HH", 51000, 8472)  # make the bytes where it would be look like VXLAN
    s = scan_file(_pcap(tmp_path, [bytes(frame)])).summary
    assert (s.vxlan_packets, s.other_packets) == (0, 1)


@pytest.mark.parametrize("extra", [0, 3, 7])
def test_udp_shorter_than_a_vxlan_header_is_verified(tmp_path: Path, extra: int) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    good = bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_SRC, dst=V4_DST) / UDP(sport=1, dport=8472) / (b"v" * extra))
    bad = bytearray(good)
    bad[34 + 6] ^= 0x10
    s = scan_file(_pcap(tmp_path, [good, bytes(bad)])).summary
    assert (s.vxlan_packets, s.checksum_ok, s.checksum_bad, s.truncated_packets) == (2, 1, 1, 0)


def _ipv6_fragments(frame: bytes, first_len: int) -> list[bytes]:
    """An outer-IPv6 frame cut into two fragments by hand (RFC 8200 §4.5), the first `first_len` bytes
    (a multiple of 8) of the UDP datagram in the first."""
    eth, ip6, datagram = frame[:14], bytearray(frame[14:54]), frame[54:]
    out = []
    for offset, part, more in ((0, datagram[:first_len], 1), (first_len, datagram[first_len:], 0)):
        fh = struct.pack("!BBHI", 17, 0, (offset // 8) << 3 | more, 0x1234)
        struct.pack_into("!HB", ip6, 4, len(fh) + len(part), 44)
        out.append(eth + bytes(ip6) + fh + part)
    return out


def test_first_fragments_are_counted_apart_later_ones_are_other(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, fragment
    from scapy.layers.l2 import Ether

    pkt = Ether(vxlan_frame("ok", inner=inner_frame("tcp", payload=1200)))
    frags = [bytes(Ether(src=MAC_A, dst=MAC_B) / f) for f in fragment(pkt[IP], fragsize=600)]
    assert len(frags) == 3
    frags6 = _ipv6_fragments(vxlan_frame("ok", v6=True, inner=inner_frame("tcp", payload=1200)), 704)
    path = _pcap(tmp_path, frags + frags6)
    report = scan_file(path)
    s = report.summary
    assert (s.vxlan_packets, s.fragments, s.other_packets) == (2, 2, 3)
    assert s.checksum_ok == s.checksum_bad == s.truncated_packets == 0
    assert report.flows[0].vni == 1 and report.flows[0].inner_sport == 40000  # headers still name the flow
    code, out, _ = run_cli("vxlan-csum", "scan", "--pcap", path)
    assert code == 0
    assert out.splitlines()[0] == "no bad outer UDP checksum in 2 VXLAN packets: 2 IP fragments, not verified."
    assert "2 first IP fragments (not verified: the checksum covers the whole datagram)" in out


# --- captures libpcap refuses, damaged pcapng -------------------------------------------------------

def _patched_pcap(tmp_path: Path, offset: int, fmt: str, value: int) -> str:
    path = _pcap(tmp_path, [vxlan_frame("ok")], "p.pcap")
    data = bytearray(Path(path).read_bytes())
    struct.pack_into(fmt, data, offset, value)
    Path(path).write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("offset,fmt,value,needle", [
    (4, "<H", 1, "unsupported pcap file version 1.4"),
    (4, "<H", 3, "unsupported pcap file version 3.4"),
    (6, "<H", 9, "unsupported pcap file version 2.9"),
    (20, "<I", 0x00010001, "link-type field 0x00010001 has reserved bits set"),
])
def test_pcap_headers_libpcap_refuses_exit_2(tmp_path: Path, offset: int, fmt: str, value: int, needle: str) -> None:
    code, out, err = run_cli("vxlan-csum", "scan", "--pcap", _patched_pcap(tmp_path, offset, fmt, value))
    assert (code, out) == (2, "")
    assert err.startswith("gnt vxlan-csum: ") and needle in err and "Traceback" not in err


def test_pcap_fcs_bits_of_the_link_type_are_not_reserved(tmp_path: Path) -> None:
    path = _patched_pcap(tmp_path, 20, "<I", 0x04000001 | (0 << 28))  # "FCS length present", 0 bytes
    assert scan_file(path).summary.checksum_ok == 1


def _block(btype: int, body: bytes, length: int | None = None) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body) if length is None else length
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB = _block(1, struct.pack("<HHI", 1, 0, 0))


def _epb(frame: bytes) -> bytes:
    return _block(6, struct.pack("<IIIII", 0, 0, 1_700_000_000_000_000 & 0xFFFFFFFF, len(frame), len(frame)) + frame)


@pytest.mark.parametrize("name,tail,needle", [
    ("final 12-byte IDB", struct.pack("<III", 1, 12, 12), "interface description block at byte"),
    ("12-byte EPB", struct.pack("<III", 6, 12, 12), "enhanced packet block at byte"),
    ("16-byte EPB", struct.pack("<IIII", 6, 16, 0, 16), "enhanced packet block at byte"),
    ("12-byte SPB", struct.pack("<III", 3, 12, 12), "simple packet block at byte"),
    ("12-byte obsolete PB", struct.pack("<III", 2, 12, 12), "packet block at byte"),
    ("option too long", _block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 200) + b"\x06\0\0\0"),
     "option 9 claims 200 bytes"),
    ("EPB trailer differs", _epb(vxlan_frame("ok"))[:-4] + struct.pack("<I", len(_epb(vxlan_frame("ok"))) + 4),
     "enhanced packet block at byte 184 gives its length as 136 at its start and 140 at its end"),
    ("IDB trailer differs", _block(1, struct.pack("<HHI", 1, 0, 0))[:-4] + struct.pack("<I", 4),
     "interface description block at byte 184 gives its length as 20 at its start and 4 at its end"),
    ("version 2 section", _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 0, -1)),
     "unsupported pcapng version 2.0"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_damaged_pcapng_is_a_damaged_capture_not_an_internal_error(tmp_path: Path, name: str, tail: bytes,
                                                                    needle: str, stream: bool) -> None:
    path = tmp_path / "d.pcapng"
    path.write_bytes(SHB + IDB + _epb(vxlan_frame("ffff")) + tail + _epb(vxlan_frame("ffff")))
    if stream:
        import subprocess
        import sys

        with open(path, "rb") as f:
            proc = subprocess.run([sys.executable, "-m", "gnt", "vxlan-csum", "scan", "--pcap", "-"], stdin=f,
                                  capture_output=True, text=True, timeout=60)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code, out, err = run_cli("vxlan-csum", "scan", "--pcap", str(path))
    assert code == 2, (name, err)
    assert out.startswith("1 of 1 VXLAN packet carry a bad outer UDP checksum"), (name, out)
    assert err.startswith("gnt vxlan-csum: damaged capture: ") and needle in err, (name, err)
    assert "internal error" not in err and "Traceback" not in err


def test_huge_if_tsoffset_is_reported_not_an_internal_error(tmp_path: Path) -> None:
    idb = _block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHq", 14, 8, 1 << 62) + struct.pack("<HH", 0, 0))
    path = tmp_path / "t.pcapng"
    path.write_bytes(SHB + idb + _epb(vxlan_frame("ok")))
    code, out, err = run_cli("vxlan-csum", "scan", "--pcap", str(path))
    assert (code, err) == (0, "")
    assert out.startswith("the VXLAN packet has a good outer UDP checksum.")
    assert f"first {float((1 << 62) + 1_700_000_000_000_000 % (1 << 32) / 1e6):.6f}" in out
    code, out, err = run_cli("vxlan-csum", "scan", "--json", "--pcap", str(path))
    assert code == 0 and "internal error" not in err


def test_pcapng_written_by_the_helper_still_reads(tmp_path: Path) -> None:
    path = str(tmp_path / "ok.pcapng")
    write_pcapng(path, [vxlan_frame("ok")] * 3)
    assert scan_file(path).summary.checksum_ok == 3


# --- streams: stdin and pipes are read as they come, in flat memory ----------------------------------

def _gnt_argv(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "gnt", "vxlan-csum", "scan", *args]


def _summary(out: str) -> dict[str, object]:
    """The summary object of a --json stream, picked by its type."""
    import json

    (summary,) = [o for o in map(json.loads, out.splitlines()) if o["type"] == "summary"]
    return summary


def _pcap_bytes(frames: list[bytes]) -> tuple[bytes, list[bytes]]:
    """A pcap file header and one record per frame, separately."""
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    records = [struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f for i, f in enumerate(frames)]
    return header, records


@pytest.mark.parametrize("source", ["/dev/zero", "yes"])
def test_endless_non_captures_are_refused_at_once(source: str) -> None:
    import subprocess

    if source == "yes":
        feeder = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
        try:
            proc = subprocess.run(_gnt_argv("--pcap", "-"), stdin=feeder.stdout, capture_output=True, text=True,
                                  timeout=30)
        finally:
            feeder.kill()
            feeder.wait()
        assert "starts with 790a790a" in proc.stderr
    else:
        proc = subprocess.run(_gnt_argv("--pcap", source), capture_output=True, text=True, timeout=30)
        assert "starts with 00000000" in proc.stderr
    assert proc.returncode == 2
    assert proc.stderr.startswith("gnt vxlan-csum: ") and "is not a pcap or pcapng capture" in proc.stderr


def test_pipe_is_read_as_records_arrive() -> None:
    """--count 3 over a pipe the writer keeps open: the scan ends after the third record, so it read
    them as they came, not at the end of the stream."""
    import subprocess

    header, records = _pcap_bytes([vxlan_frame("ffff")] * 3)
    proc = subprocess.Popen(_gnt_argv("--pcap", "-", "--count", "3", "--json"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(header + b"".join(records))
        proc.stdin.flush()
        code = proc.wait(timeout=30)  # the pipe is still open
        out = proc.stdout.read().decode() if proc.stdout else ""
    finally:
        proc.kill()
        proc.wait()
    assert code == 1
    summary = _summary(out)
    assert (summary["vxlan_packets"], summary["bug_signature"]) == (3, 3)
    assert summary["source"] == "pcap stream -"


def test_ctrl_c_on_a_pipe_reports_what_was_read_and_exits_130() -> None:
    import signal
    import subprocess
    import time

    header, records = _pcap_bytes([vxlan_frame("ffff")] * 4)
    proc = subprocess.Popen(_gnt_argv("--pcap", "-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=False)
    assert proc.stdin is not None
    try:
        proc.stdin.write(header + b"".join(records))
        proc.stdin.flush()
        time.sleep(3)  # start-up, then the four records; the pipe stays open
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert out.decode().startswith("4 of 4 VXLAN packets carry a bad outer UDP checksum; 4 are 0xffff")
    assert b"Traceback" not in err


def test_a_long_stream_is_scanned_in_flat_memory() -> None:
    """256 MB through a pipe; the scan's peak resident memory stays far below it."""
    import subprocess
    import threading

    frame = vxlan_frame("ok", inner=inner_frame("tcp", payload=8000))
    header, (record,) = _pcap_bytes([frame])
    total = 256 << 20
    n = total // len(record)
    proc = subprocess.Popen(_gnt_argv("--pcap", "-", "--json"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(header)
            chunk = record * 64
            for _ in range(n // 64):
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    # The peak is read from the process's own VmHWM while it runs: its ru_maxrss would also count
    # the memory of this (large) test process, which the child held until its exec.
    peak_kib = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            try:
                with open(f"/proc/{proc.pid}/status") as status_file:
                    for line in status_file:
                        if line.startswith("VmHWM:"):
                            peak_kib[0] = max(peak_kib[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass

    writer = threading.Thread(target=feed)
    watcher = threading.Thread(target=watch)
    writer.start()
    watcher.start()
    out = proc.stdout.read().decode()
    proc.wait()
    done.set()
    watcher.join()
    writer.join(timeout=60)
    summary = _summary(out)
    assert summary["checksum_ok"] == summary["vxlan_packets"] == n // 64 * 64
    assert 0 < peak_kib[0] * 1024 < total // 3, f"peak RSS {peak_kib[0]} KiB for a {total >> 20} MiB stream"


def test_an_interrupt_keeps_the_report_and_goes_back_to_the_error_boundary(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM/SIGHUP arrive as a KeyboardInterrupt subclass (the error boundary's contract): the scan
    prints its report, then hands that very exception back for the exit code."""
    import gnt.vxlan as tool

    class Terminated(KeyboardInterrupt):
        pass

    real_scan = tool.scan

    def scan_then_signal(source: object, ports: object, **kw: object) -> object:
        kw["limit"] = 2
        real_scan(source, ports, **kw)  # type: ignore[arg-type]
        raise Terminated

    monkeypatch.setattr(tool, "scan", scan_then_signal)
    path = _pcap(tmp_path, [vxlan_frame("ffff")] * 5)
    scanner = tool.FileScan(path)
    report = scanner.run()
    assert isinstance(scanner.interrupt, Terminated)
    assert report.summary.vxlan_packets == 2
    code, out, _err = run_cli("vxlan-csum", "scan", "--json", "--pcap", path)
    assert code == 130  # today's boundary: every KeyboardInterrupt is 130
    summary = _summary(out)
    assert (summary["vxlan_packets"], summary["bug_signature"]) == (2, 2)


@pytest.mark.parametrize("start,needle", [
    (_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 1, -1)), "unsupported pcapng version 1.1"),
    (_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 0, 1, -1)), "unsupported pcapng version 0.1"),
    (SHB[:-4] + struct.pack("<I", 0x30303030), "gives its length as 28 at its start and 808464432 at its end"),
])
def test_pcapng_libpcap_refuses_at_the_start_is_one_line_exit_2(tmp_path: Path, start: bytes, needle: str) -> None:
    path = tmp_path / "r.pcapng"
    path.write_bytes(start + IDB + _epb(vxlan_frame("ffff")))
    code, out, err = run_cli("vxlan-csum", "scan", "--pcap", str(path))
    assert (code, out) == (2, "")
    assert err.startswith("gnt vxlan-csum: ") and needle in err and err.count("\n") == 1


def test_pcapng_version_1_2_is_read(tmp_path: Path) -> None:
    path = tmp_path / "v12.pcapng"
    path.write_bytes(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 2, -1)) + IDB + _epb(vxlan_frame("ok")))
    assert scan_file(str(path)).summary.checksum_ok == 1


def _random_block(draw, e: str) -> bytes:  # type: ignore[no-untyped-def]
    """One pcapng block in byte order `e`: mostly packets, sometimes another kind, a new interface or
    a new section (of either byte order), sometimes damaged."""
    kind = draw(st.sampled_from(["epb", "epb", "epb", "epb-vlan", "spb", "idb", "nrb", "isb", "custom", "unknown-iface",
                                 "shb-le", "shb-be", "cut-epb", "bad-trailer"]))
    frame = vxlan_frame(draw(st.sampled_from(["ok", "zero", "ffff", "bad"])), v6=draw(st.booleans()),
                        vlan=7 if kind == "epb-vlan" else None)
    ticks = draw(st.integers(0, 2**40))
    if kind in ("epb", "epb-vlan", "unknown-iface", "cut-epb", "bad-trailer"):
        iface = 9 if kind == "unknown-iface" else 0
        caplen = len(frame) - (draw(st.integers(1, 40)) if kind == "cut-epb" else 0)
        raw = ng_block(e, 6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, caplen, len(frame))
                    + frame[:caplen])
        if kind == "bad-trailer":
            raw = raw[:-4] + struct.pack(e + "I", len(raw) + 4)
        return raw
    if kind == "spb":
        return ng_block(e, 3, struct.pack(e + "I", len(frame)) + frame)
    if kind == "idb":
        return ng_block(e, 1, struct.pack(e + "HHI", 1, 0, 0))
    if kind in ("nrb", "isb", "custom"):
        return ng_block(e, {"nrb": 4, "isb": 5, "custom": 0x40000BAD}[kind], bytes(draw(st.integers(0, 24))))
    order = "<" if kind == "shb-le" else ">"
    return ng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)) + ng_block(
        order, 1, struct.pack(order + "HHI", 1, 0, 0))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_in_place_pcapng_walk_counts_as_the_record_reader_does(tmp_path_factory: pytest.TempPathFactory,
                                                                    data: st.DataObject) -> None:
    """scan() walks a mapped pcapng in place (the hot loop); the record iterator and the stream reader
    (a pipe) read the same file apart from it. Every block kind, both byte orders, several sections,
    damage, with and without -c: the same flows, counts and problems."""
    from gnt.core.capture import CaptureFile
    from gnt.vxlan.scan import scan

    e = data.draw(st.sampled_from(["<", ">"]))
    raw = (ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
           + ng_block(e, 1, struct.pack(e + "HHI", 1, 0, 0)))
    for _ in range(data.draw(st.integers(1, 25))):
        piece = _random_block(data.draw, e)
        if piece.startswith(b"\x0a\x0d\x0d\x0a"):
            e = "<" if piece[8:12] == struct.pack("<I", 0x1A2B3C4D) else ">"
        raw += piece
    raw = raw[: len(raw) - data.draw(st.integers(0, 3)) * data.draw(st.sampled_from([0, 1, 7]))]
    path = tmp_path_factory.mktemp("ng") / "c.pcapng"
    path.write_bytes(raw)
    limit = data.draw(st.one_of(st.none(), st.integers(1, 20)))  # -c: counts packets, not blocks

    def counted(walk: bool) -> object:
        try:
            capture = CaptureFile(str(path))
        except GntError as exc:  # refused at the start: both ways alike
            return ("refused", str(exc))
        flows, tally = scan(capture if walk else iter(capture.records()), limit=limit)
        counts = {name: getattr(tally, name) for name in type(tally).__slots__}
        return {k: list(v) for k, v in flows.items()}, counts, list(capture.problems)

    walked = counted(walk=True)
    assert walked == counted(walk=False)

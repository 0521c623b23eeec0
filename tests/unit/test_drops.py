"""gnt.core.tracefs and gnt.drops without the kernel: format parsing, ring-buffer pages built byte by byte,
the kernel filter, owner checks, symbols, the session's clock, the renderers and the CLI's usage errors."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from helpers.cli import run_gnt

from gnt.core import tracefs
from gnt.core.packets.ethernet import ethertype_name
from gnt.drops import DropFilter, kernel_filter
from gnt.drops.models import Drop, DropSummary, Interval, ReasonTotal
from gnt.drops.session import DropSession, ethertype_value, event_format
from gnt.drops.symbols import Symbolizer
from gnt.errors import UnavailableError, UsageError
from gnt.output.json import encode
from gnt.output.text.drops import format_interval, format_summary

DATA = Path(__file__).parent.parent / "data" / "drops"
FORMAT = (DATA / "kfree_skb-6.18.format").read_text()


def test_format_fields_and_the_kernels_reason_table() -> None:
    fmt = tracefs.parse_format("skb", "kfree_skb", FORMAT)
    assert fmt.id == 2310
    assert fmt.fields["location"] == tracefs.Field("location", "void *", 16, 8, False)
    assert fmt.fields["reason"].offset == 36 and fmt.fields["reason"].type == "enum skb_drop_reason"
    assert fmt.fields["common_type"].size == 2
    table = fmt.symbols["reason"]
    assert len(table) == 127  # 2..128 on this 6.18 kernel, as its format file lists them
    assert table[3] == "NO_SOCKET" and table[11] == "UDP_CSUM" and table[93] == "PKT_TOO_BIG"


def test_page_layout_from_header_page(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "header_page").write_text((DATA / "header_page-6.18").read_text())
    assert tracefs.read_page_layout(str(tmp_path)) == tracefs.PageLayout(8, 8, 16)


def _event(payload: bytes, delta: int = 1, long: bool = False) -> bytes:
    payload += bytes(-len(payload) % 4)
    if long:  # type_len 0: the length word, then the data
        return struct.pack("<II", delta << 5, len(payload) + 4) + payload
    return struct.pack("<I", (delta << 5) | len(payload) // 4) + payload


def _kfree(location: int, protocol: int, reason: int, event_id: int = 2310) -> bytes:
    data = bytearray(40)
    struct.pack_into("<HBBi", data, 0, event_id, 0, 0, 1234)
    struct.pack_into("<QQQHxxI", data, 8, 0xFFFF0001, location, 0, protocol, reason)
    return bytes(data)


def _page(*events: bytes, size: int = 4096, flags: int = 0) -> bytes:
    body = b"".join(events)
    page = struct.pack("<QQ", 123456, len(body) | flags) + body
    return page + bytes(size - len(page))


def test_iter_events_walks_every_kind_of_entry() -> None:
    a, b = _kfree(0x1000, 0x0800, 3), _kfree(0x2000, 0x86DD, 11)
    extend = struct.pack("<II", (5 << 5) | 30, 77)  # time extend: 8 bytes, no data
    padding = struct.pack("<II", (1 << 5) | 29, 8) + bytes(8)  # a discarded event: skipped by its length
    page = _page(_event(a), extend, _event(b, long=True), padding, _event(a))
    offsets = list(tracefs.iter_events(page, tracefs.PageLayout()))
    assert [page[o:o + 40] for o in offsets] == [a, b, a]


def test_iter_events_stops_at_the_commit_and_at_end_padding() -> None:
    a = _kfree(0x1000, 0x0800, 3)
    rest = struct.pack("<I", 29)  # padding with time_delta 0: the rest of the sub-buffer is empty
    page = _page(_event(a), rest + bytes(60), flags=tracefs.RB_MISSED_EVENTS)
    assert len(list(tracefs.iter_events(page, tracefs.PageLayout()))) == 1
    # Bytes after the committed length are never read as events.
    short = struct.pack("<QQ", 0, 44) + _event(a) + _event(a)
    assert len(list(tracefs.iter_events(short, tracefs.PageLayout()))) == 1


def test_stats_counters() -> None:
    text = ("entries: 5\noverrun: 17\ncommit overrun: 0\nbytes: 220\noldest event ts:  1.000\n"
            "now ts:  2.000\ndropped events: 4\nread events: 9\n")
    loss = tracefs.parse_stats(text)
    assert (loss.overrun, loss.dropped, loss.total) == (17, 4, 21)


TABLE = tracefs.parse_format("skb", "kfree_skb", FORMAT).symbols["reason"]


def test_kernel_filter_defaults_hide_not_specified() -> None:
    assert kernel_filter(DropFilter(), TABLE) == ("reason != 2", ["NOT_SPECIFIED"])
    assert kernel_filter(DropFilter(all=True), TABLE) == ("", [])


def test_kernel_filter_reasons_excludes_protocols() -> None:
    expr, hidden = kernel_filter(DropFilter(reasons=("udp_csum", "NO_SOCKET"), protocols=("ipv4", "0x86dd")), TABLE)
    assert expr == "(reason == 3 || reason == 11) && (protocol == 2048 || protocol == 34525)"
    assert hidden == []  # asked-for reasons are never hidden
    expr, _ = kernel_filter(DropFilter(exclude=("TCP_OLD_DATA",)), TABLE)
    assert expr == "reason != 2 && reason != 33"


@pytest.mark.parametrize(("flt", "message"), [
    (DropFilter(reasons=("NO_SUCH",)), "unknown drop reason 'NO_SUCH'"),
    (DropFilter(protocols=("ipx9",)), "unknown protocol 'ipx9'"),
])
def test_kernel_filter_rejects_unknown_names(flt: DropFilter, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        kernel_filter(flt, TABLE)


def test_ethertype_names() -> None:
    assert [ethertype_name(v) for v in (0x0800, 0x86DD, 0x0806, 0, 0x88B5)] == ["ipv4", "ipv6", "arp", "none",
                                                                                  "0x88b5"]
    assert ethertype_value("IPv6") == 0x86DD and ethertype_value("2048") == 0x0800
    assert ethertype_value("0x10000") is None and ethertype_value("nope") is None


def test_event_format_names_the_kernel_needed(tmp_path: Path) -> None:
    with pytest.raises(UnavailableError) as missing:
        event_format(str(tmp_path))
    assert "no skb:kfree_skb tracepoint" in missing.value.message and "5.17" in str(missing.value.hint)
    event = tmp_path / "events" / "skb" / "kfree_skb"
    event.mkdir(parents=True)
    # A 5.16 kernel: the event without its reason field.
    old = "\n".join(line for line in FORMAT.splitlines() if "reason" not in line)
    (event / "format").write_text(old + '\nprint fmt: "skbaddr=%p protocol=%u location=%p"\n')
    with pytest.raises(UnavailableError) as no_reason:
        event_format(str(tmp_path))
    assert "does not give drop reasons" in no_reason.value.message and "5.17" in str(no_reason.value.hint)


def test_symbolizer(tmp_path: Path) -> None:
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text("ffffffff81000000 T _stext\nffffffff81a00000 t __udp4_lib_rcv\n"
                        "ffffffff81a00800 D some_data\nffffffffc0001000 t vxlan_rcv\t[vxlan]\n")
    resolve = Symbolizer(str(kallsyms))
    assert resolve(0xFFFFFFFF81A004BC) == "__udp4_lib_rcv+0x4bc"
    assert resolve(0xFFFFFFFF81A00900) == "__udp4_lib_rcv+0x900"  # data symbols are not code
    assert resolve(0xFFFFFFFFC0001010) == "vxlan_rcv+0x10 [vxlan]"
    assert resolve(0x1000) == "0x1000"
    hidden = tmp_path / "hidden"  # kptr_restrict: every address reads as zero
    hidden.write_text("0000000000000000 T _stext\n0000000000000000 t __udp4_lib_rcv\n")
    assert Symbolizer(str(hidden))(0xFFFFFFFF81A004BC) == "0xffffffff81a004bc"


def test_owner_checks_by_pid_and_start_time(tmp_path: Path) -> None:
    (tmp_path / "instances").mkdir()
    mine = tmp_path / "instances" / f"gnt_drops_{os.getpid()}"
    mine.mkdir()  # made after this process started: its owner is alive
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "instances" / f"gnt_drops_{gone.pid}").mkdir()  # no such process any more
    (tmp_path / "instances" / "gnt_drops_x").mkdir()  # not ours to judge
    (tmp_path / "instances" / "other_7").mkdir()
    reused = tmp_path / "instances" / "gnt_drops_0"
    time.sleep(0.1)
    later = subprocess.Popen(["sleep", "5"])  # started after the next instance: a reused pid
    try:
        reused = tmp_path / "instances" / f"gnt_drops_{later.pid}"
        reused.mkdir()
        os.utime(reused, (time.time() - 1, time.time() - 1))  # mtime only; ctime is what counts
        assert not tracefs._is_stale(str(tmp_path), reused.name)  # ctime: made after the process
        # What a reused pid looks like: the instance's ctime before the process's start.
        os.rmdir(reused)
        os.mkdir(reused)
        stamp = os.stat(reused).st_ctime
        assert tracefs.process_start(later.pid) is not None
        started = tracefs.process_start(later.pid)
        assert started is not None and started < tracefs._boottime_of(stamp)
        removed = tracefs.remove_stale(str(tmp_path), "gnt_drops_")
        assert removed == [f"gnt_drops_{gone.pid}"]
        assert mine.exists() and reused.exists()
    finally:
        later.kill()
        later.wait()


def test_instance_made_before_its_pids_process_is_stale(tmp_path: Path) -> None:
    (tmp_path / "instances").mkdir()
    child = subprocess.Popen(["sleep", "5"])
    try:
        path = tmp_path / "instances" / f"gnt_drops_{child.pid}"
        path.mkdir()
        start = tracefs.process_start(child.pid)
        assert start is not None
        created = tracefs._boottime_of(os.stat(path).st_ctime)
        assert created >= start - tracefs.OWNER_SLACK  # sanity: the clocks agree
        # Pretend the instance was made a second before the process started (the pid was reused).
        real = tracefs._boottime_of
        try:
            tracefs._boottime_of = lambda realtime: real(realtime) - (created - start) - 1.0  # type: ignore[assignment]
            assert tracefs._is_stale(str(tmp_path), path.name)
        finally:
            tracefs._boottime_of = real  # type: ignore[assignment]
        assert not tracefs._is_stale(str(tmp_path), path.name)
    finally:
        child.kill()
        child.wait()


class FakeReader:
    """What DropSession needs of a RawReader: pages waiting now and a loss counter."""

    def __init__(self) -> None:
        self.layout = tracefs.PageLayout()
        self.waiting: list[bytes] = []
        self.loss = 0

    def pages(self, limit: int = 256) -> list[bytes]:
        out, self.waiting = self.waiting, []
        return out

    def lost(self) -> int:
        return self.loss


def _session(reader: FakeReader) -> DropSession:
    fmt = tracefs.parse_format("skb", "kfree_skb", FORMAT)
    return DropSession(fmt, reader, DropFilter(), "reason != 2", ["NOT_SPECIFIED"],  # type: ignore[arg-type]
                       symbolize=lambda a: f"sym+{a:#x}")


def test_session_counts_groups_and_lost_events() -> None:
    reader = FakeReader()
    reader.loss = 5  # lost before the session: not reported
    session = _session(reader)
    reader.waiting = [_page(*[_event(_kfree(0x10, 0x0800, 3))] * 3, _event(_kfree(0x20, 0x86DD, 11)),
                            _event(_kfree(0x10, 0x0800, 3, event_id=9)))]  # another event id: ignored
    reader.loss = 12
    assert session.poll() == 5
    part = session.collect()
    assert [(d.reason, d.location, d.protocol, d.count) for d in part.drops] == [
        ("NO_SOCKET", "sym+0x10", "ipv4", 3), ("UDP_CSUM", "sym+0x20", "ipv6", 1)]
    assert part.lost == 7 and part.total == 4
    reader.waiting = [_page(_event(_kfree(0x10, 0x0800, 200)))]  # a value this kernel has no name for
    session.poll()
    assert [d.reason for d in session.collect().drops] == ["200"]
    summary = session.summary()
    assert [(r.reason, r.count) for r in summary.reasons] == [("NO_SOCKET", 3), ("200", 1), ("UDP_CSUM", 1)]
    assert summary.total == 5 and summary.lost == 7
    assert summary.reasons[0].locations == {"sym+0x10 ipv4": 3}
    assert "vxlan-csum" in str(summary.reasons[2].hint) and summary.reasons[1].hint is None


def test_session_reads_whatever_layout_the_format_gives() -> None:
    # A kernel that put reason before protocol and location last: the format file says so, gnt follows.
    moved = FORMAT.replace("reason;\toffset:36;\tsize:4;", "reason;\toffset:24;\tsize:4;")
    moved = moved.replace("protocol;\toffset:32;", "protocol;\toffset:28;")
    moved = moved.replace("location;\toffset:16;", "location;\toffset:32;")
    assert moved.count("offset:24;") == 2 and "offset:36;" not in moved  # rx_sk keeps 24 (unread)
    fmt = tracefs.parse_format("skb", "kfree_skb", moved)
    data = bytearray(40)
    struct.pack_into("<HBBi", data, 0, 2310, 0, 0, 1)
    struct.pack_into("<IH", data, 24, 11, 0x86DD)
    struct.pack_into("<Q", data, 32, 0x30)
    reader = FakeReader()
    session = DropSession(fmt, reader, DropFilter(), "", [], symbolize=lambda a: f"sym+{a:#x}")  # type: ignore[arg-type]
    reader.waiting = [_page(_event(bytes(data)))]
    session.poll()
    assert [(d.reason, d.location, d.protocol) for d in session.collect().drops] == [("UDP_CSUM", "sym+0x30", "ipv6")]


def test_session_intervals_stop_on_duration_and_count() -> None:
    reader = FakeReader()
    session = _session(reader)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        reader.waiting = [_page(_event(_kfree(0x10, 0x0800, 3)))]  # one drop per read

    parts = list(session.intervals(1.0, duration=2.5, clock=lambda: now[0], sleep=sleep, read_period=0.125))
    assert [p.total for p in parts] == [8, 8, 4]  # one read per read period, the last interval cut short
    parts = list(session.intervals(1.0, count=4, clock=lambda: now[0], sleep=sleep, read_period=0.125))
    assert len(parts) == 1 and parts[0].total == 4


def test_json_objects() -> None:
    drop = Drop("NO_SOCKET", "__udp4_lib_rcv+0x4bc", "ipv4", 3, 10.0, 11.0, reason_code=3, address=1)
    assert json.loads(encode(drop) or "") == {"type": "drop", "reason": "NO_SOCKET",
                                              "location": "__udp4_lib_rcv+0x4bc", "protocol": "ipv4",
                                              "count": 3, "start": 10.0, "end": 11.0}
    summary = DropSummary([ReasonTotal("NO_SOCKET", 3, "hint", {"x ipv4": 3})], 3, 2, 1.5, "reason != 2",
                          ["NOT_SPECIFIED"])
    obj = json.loads(encode(summary) or "")
    assert obj["type"] == "summary" and obj["lost"] == 2 and obj["reasons"][0]["count"] == 3


def test_text() -> None:
    part = Interval(0.0, 1.0, [Drop("NO_SOCKET", "__udp4_lib_rcv+0x4bc", "ipv4", 12, 0.0, 1.0),
                               Drop("NETFILTER_DROP", "nft_do_chain+0x46f", "ipv6", 1, 0.0, 1.0)], lost=3)
    lines = (format_interval(part) or "").splitlines()
    assert "13 drops" in lines[0] and "3 events lost" in lines[0]
    assert lines[1].split() == ["12", "NO_SOCKET", "ipv4", "__udp4_lib_rcv+0x4bc"]
    assert format_interval(Interval(0.0, 1.0)) is None
    text = format_summary(DropSummary([ReasonTotal("NO_SOCKET", 12, "check it", {"a ipv4": 12})], 12, 0, 2.0,
                                      "", ["NOT_SPECIFIED"]))
    assert text.splitlines()[0] == "--- 2.0 s, 12 drops, 0 events lost; not shown: NOT_SPECIFIED (--all shows them) ---"
    assert "NO_SOCKET" in text and "check it" in text


@pytest.mark.parametrize(("args", "message"), [
    (["-I", "0"], "invalid --interval"),
    (["-I", "x"], "bad interval"),
    (["--duration", "-1"], "bad --duration"),
    (["--count", "0"], "'0' is out of range: from 1 to"),
])
def test_cli_usage_errors(args: list[str], message: str) -> None:
    code, out, err = run_gnt("drops", *args)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("reason", ["٢", "1_0", "0o2", "0b10", " 2 x"])
def test_a_reason_number_is_ascii_digits_or_0x_hex(reason: str) -> None:
    with pytest.raises(UsageError, match="unknown drop reason"):
        kernel_filter(DropFilter(reasons=(reason,)), TABLE)
    assert kernel_filter(DropFilter(reasons=("2",)), TABLE) == kernel_filter(DropFilter(reasons=("0x2",)), TABLE)


@pytest.mark.parametrize("protocol", ["2_048", "٨٠٠", "0o4000", "70000"])
def test_a_protocol_number_is_ascii_digits_or_0x_hex(protocol: str) -> None:
    with pytest.raises(UsageError, match="unknown protocol"):
        kernel_filter(DropFilter(protocols=(protocol,)), TABLE)
    assert "protocol == 2048" in kernel_filter(DropFilter(protocols=("0x800",)), TABLE)[0]

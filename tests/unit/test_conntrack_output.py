"""`gnt conntrack` text, conntrack-tools format, JSON shapes, filters, stats and the CLI's
handling of bad input (in-process, no privileges needed)."""

from __future__ import annotations

import dataclasses
import io
import json
import time

import pytest
from helpers.cli import run_gnt as run
from hypothesis import given, settings
from hypothesis import strategies as st

from gnt.__main__ import main
from gnt.conntrack import filters as f
from gnt.conntrack import summarize
from gnt.conntrack.models import (
    AddrTuple,
    Counters,
    CpuStats,
    Entry,
    EventEntry,
    IcmpTuple,
    ListSummary,
    Lost,
    PortTuple,
    WatchSummary,
)
from gnt.errors import UsageError
from gnt.output import ToStderr
from gnt.output.env import Environment
from gnt.output.json import encode
from gnt.output.text.conntrack import conntrack_line, conntrack_line_general, entry_line, make_formatter

SEEN_REPLY, ASSURED, CONFIRMED, SRC_NAT, DST_NAT = 0x2, 0x4, 0x8, 0x10, 0x20  # IPS_* bits
SRC_NAT_DONE, DST_NAT_DONE = 0x80, 0x100  # IPS_* bits


def tcp_nat(**changes: object) -> Entry:
    entry = Entry(
        family="ipv4", proto="tcp", state="ESTABLISHED",
        status=("SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT"),
        original=PortTuple("10.0.0.1", "10.0.0.2", 47858, 8080),
        reply=PortTuple("10.0.1.2", "10.0.1.1", 80, 47858),
        nat=("snat", "dnat"), mark=0, zone=0, timeout=431999, id=77, protonum=6,
        status_bits=SEEN_REPLY | ASSURED | CONFIRMED | SRC_NAT | DST_NAT | SRC_NAT_DONE | DST_NAT_DONE, use=1,
    )
    return dataclasses.replace(entry, **changes)  # type: ignore[arg-type]


def udp_unreplied() -> Entry:
    return Entry(
        family="ipv4", proto="udp", state=None, status=("CONFIRMED",),
        original=PortTuple("198.18.1.1", "198.18.9.9", 5000, 53),
        reply=PortTuple("198.18.9.9", "198.18.1.1", 53, 5000),
        nat=(), mark=0, zone=0, timeout=29, id=1, protonum=17, status_bits=CONFIRMED, use=1,
    )


# ---- conntrack-tools format (lines as `conntrack -L` / `conntrack -E` print them) -------

def test_conntrack_lines_match_conntrack_tools() -> None:
    assert conntrack_line(tcp_nat()) == (
        "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=47858 dport=8080 "
        "src=10.0.1.2 dst=10.0.1.1 sport=80 dport=47858 [ASSURED] mark=0 use=1")
    assert conntrack_line(udp_unreplied()) == (
        "udp      17 29 src=198.18.1.1 dst=198.18.9.9 sport=5000 dport=53 [UNREPLIED] "
        "src=198.18.9.9 dst=198.18.1.1 sport=53 dport=5000 mark=0 use=1")
    icmp = Entry(
        family="ipv4", proto="icmp", state=None, status=("CONFIRMED",),
        original=IcmpTuple("198.18.1.1", "198.18.9.9", 8, 0, 77), reply=IcmpTuple("198.18.9.9", "198.18.1.1", 0, 0, 77),
        nat=(), mark=0, zone=0, timeout=29, id=1, protonum=1, status_bits=CONFIRMED, use=1,
    )
    assert conntrack_line(icmp) == (
        "icmp     1 29 src=198.18.1.1 dst=198.18.9.9 type=8 code=0 id=77 [UNREPLIED] "
        "src=198.18.9.9 dst=198.18.1.1 type=0 code=0 id=77 mark=0 use=1")
    v6 = dataclasses.replace(udp_unreplied(), family="ipv6", mark=5,
                             original=PortTuple("2001:db8:1::1", "2001:db8:4::2", 5000, 53),
                             reply=PortTuple("2001:db8:4::2", "2001:db8:1::1", 53, 5000))
    assert conntrack_line(v6) == (
        "udp      17 29 src=2001:db8:1::1 dst=2001:db8:4::2 sport=5000 dport=53 [UNREPLIED] "
        "src=2001:db8:4::2 dst=2001:db8:1::1 sport=53 dport=5000 mark=5 use=1")


def test_conntrack_line_every_optional_field_in_conntrack_order() -> None:
    e = tcp_nat(counters=Counters(3, 180, 2, 112), zone=3, mark=16384, start=1000.9, stop=1010.2,
                helper="ftp", secctx="ctx", state="SYN_SENT2")
    assert conntrack_line(e) == (
        "tcp      6 431999 SYN_SENT2 src=10.0.0.1 dst=10.0.0.2 sport=47858 dport=8080 packets=3 bytes=180 "
        "src=10.0.1.2 dst=10.0.1.1 sport=80 dport=47858 packets=2 bytes=112 [ASSURED] mark=16384 secctx=ctx "
        "zone=3 delta-time=10 helper=ftp use=1")
    running = tcp_nat(start=1000.0)
    assert conntrack_line(running, now=1042.5).endswith("mark=0 delta-time=42 use=1")
    offloaded = tcp_nat(status_bits=SEEN_REPLY | ASSURED | 0x4000)
    assert "[OFFLOAD] mark=0" in conntrack_line(offloaded)
    hw = tcp_nat(status_bits=SEEN_REPLY | ASSURED | 0x4000 | 0x8000)
    assert "[HW_OFFLOAD] mark=0" in conntrack_line(hw)
    gre = dataclasses.replace(tcp_nat(), proto="gre", protonum=47, state=None)
    assert "sport=47858 dport=8080" not in conntrack_line(gre)
    assert conntrack_line(gre).startswith("gre      47 431999 src=10.0.0.1 dst=10.0.0.2 srckey=0xbaf2 dstkey=0x1f90 ")
    other = dataclasses.replace(tcp_nat(), proto="50", protonum=50, state=None, original=AddrTuple("a", "b"),
                                reply=AddrTuple("b", "a"))
    assert conntrack_line(other) == "unknown  50 431999 src=a dst=b src=b dst=a [ASSURED] mark=0 use=1"


def test_event_lines_carry_conntrack_e_prefixes() -> None:
    base = dataclasses.asdict(udp_unreplied())
    base["original"] = udp_unreplied().original
    base["reply"] = udp_unreplied().reply
    for kind, prefix in (("new", "    [NEW] "), ("update", " [UPDATE] "), ("destroy", "[DESTROY] ")):
        event = EventEntry(**{**base, "event": kind, "timestamp": 1.0})
        assert conntrack_line(event).startswith(prefix + "udp      17 29 src=198.18.1.1")
    fmt = make_formatter("conntrack")
    by_program = EventEntry(**{**base, "event": "destroy", "timestamp": 1.0, "portid": 99, "program": "conntrack"})
    assert str(fmt(by_program)).endswith(" use=1 [USERSPACE] portid=99 progname=conntrack")


statuses = st.integers(0, 0xFFFF)


@settings(max_examples=200, deadline=None)
@given(statuses, st.sampled_from([6, 17, 132, 33, 136]), st.one_of(st.none(), st.sampled_from(
    ["ESTABLISHED", "SYN_SENT2", "CLOSED"])), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_fast_conntrack_line_equals_the_general_one(bits: int, proto: int, state: str | None, mark: int,
                                                    timeout: int) -> None:
    e = tcp_nat(status_bits=bits, protonum=proto, state=state, mark=mark, timeout=timeout)
    assert conntrack_line(e) == conntrack_line_general(e)


# ---- the readable format ------------------------------------------------------------------

def test_entry_line_spells_out_the_translation() -> None:
    line = entry_line(tcp_nat())
    assert line.startswith("tcp    ESTABLISHED 10.0.0.1:47858 -> 10.0.0.2:8080")
    assert "  DNAT to 10.0.1.2:80  SNAT to 10.0.1.1  [ASSURED]  timeout=431999s" in line
    assert "mark" not in line and "zone" not in line
    only_port = tcp_nat(reply=PortTuple("10.0.0.2", "10.0.0.1", 9090, 47858), nat=("dnat",))
    assert "DNAT to 10.0.0.2:9090" in entry_line(only_port) and "SNAT" not in entry_line(only_port)
    snat_port = tcp_nat(reply=PortTuple("10.0.0.2", "10.0.1.1", 8080, 1024), nat=("snat",))
    assert entry_line(snat_port).endswith("SNAT to 10.0.1.1:1024  [ASSURED]  timeout=431999s")
    plain = udp_unreplied()
    assert entry_line(plain) == ("udp                198.18.1.1:5000 -> 198.18.9.9:53  [UNREPLIED]  timeout=29s")
    v6 = tcp_nat(original=PortTuple("2001:db8::1", "2001:db8::100", 1000, 8080),
                 reply=PortTuple("2001:db8:1::2", "2001:db8:1::1", 80, 1000))
    assert "[2001:db8::1]:1000 -> [2001:db8::100]:8080  DNAT to [2001:db8:1::2]:80  SNAT to 2001:db8:1::1" in \
        entry_line(v6)
    extras = tcp_nat(mark=0x4000, zone=2, counters=Counters(1, 60, 1, 40), start=0.0, stop=30.0)
    text = entry_line(extras)
    assert "mark=0x4000" in text and "zone=2" in text and "packets=1/1 bytes=60/40" in text
    assert "start=" in text and "stop=" in text


def test_formatter_routes_losses_and_summaries_to_stderr() -> None:
    fmt = make_formatter("text")
    lost = fmt(Lost(overflows=1, total=3, timestamp=time.time(), events=133000))
    assert isinstance(lost, ToStderr) and "ENOBUFS" in lost and "3 overflows" in lost
    assert "events lost: 133000 events so far, in 3 overflows" in lost
    unknown = fmt(Lost(overflows=1, total=1, timestamp=time.time()))
    assert isinstance(unknown, ToStderr) and "an unknown number of events" in unknown and "1 overflow " in unknown
    summary = fmt(ListSummary(shown=2, scanned=10, filtered=True))
    assert isinstance(summary, ToStderr) and "2 flow entries" in summary and "10 in the table" in summary
    watch = fmt(WatchSummary(events=4, lost=1, duration=2.0, lost_events=7))
    assert isinstance(watch, ToStderr) and "4 events" in watch and "events lost: 7 events in 1 overflow " in watch
    assert "in 1 overflow " in watch
    event = EventEntry(**{**{k: getattr(tcp_nat(), k) for k in (
        "family", "proto", "state", "status", "original", "reply", "nat", "mark", "zone", "timeout", "id")},
        "protonum": 6, "status_bits": 0x3E, "event": "destroy", "timestamp": 0.5})
    line = fmt(event)
    assert line is not None and " DESTROY " in line and "DNAT to 10.0.1.2:80" in line


# ---- JSON shapes ----------------------------------------------------------------------------

def test_json_entry_shape() -> None:
    obj = json.loads(encode(tcp_nat()) or "")
    assert list(obj) == ["type", "family", "proto", "state", "status", "original", "reply", "nat", "mark", "zone",
                         "timeout", "id", "start", "stop", "counters", "helper", "use", "orig_zone", "reply_zone",
                         "labels"]
    assert obj["type"] == "entry" and obj["nat"] == ["snat", "dnat"]
    assert obj["original"] == {"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 47858, "dport": 8080}
    icmp = dataclasses.replace(tcp_nat(), proto="icmp", original=IcmpTuple("a", "b", 8, 0, 9),
                               reply=IcmpTuple("b", "a", 0, 0, 9))
    assert json.loads(encode(icmp) or "")["original"] == {"src": "a", "dst": "b", "type": 8, "code": 0, "id": 9}
    base = {k: getattr(tcp_nat(), k) for k in ("family", "proto", "state", "status", "original", "reply", "nat",
                                               "mark", "zone", "timeout", "id")}
    event = json.loads(encode(EventEntry(**base, event="new", timestamp=12.5)) or "")
    assert event["type"] == "entry" and event["event"] == "new" and event["timestamp"] == 12.5
    assert event["portid"] is None


# ---- stats --------------------------------------------------------------------------------

def cpu(n: int, **counts: int) -> CpuStats:
    values = dict.fromkeys(("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
                            "search_restart"), 0)
    values.update(counts)
    return CpuStats(cpu=n, **values)


def test_stats_flag_insert_failed_and_a_full_table() -> None:
    quiet = summarize([cpu(0, found=5), cpu(1, found=7)], 10, 1000)
    assert quiet.found == 12 and quiet.warnings == [] and quiet.clash_resolve is None
    racing = summarize([cpu(0, insert_failed=2), cpu(1, insert_failed=1, drop=4)], 950, 1000)
    assert racing.insert_failed == 3
    assert any("insert_failed=3" in w and "DNS" in w for w in racing.warnings)
    assert any("drop=4" in w and "nf_conntrack_max" in w for w in racing.warnings)
    assert any("95% full" in w for w in racing.warnings)
    text = make_formatter()(racing)
    assert text is not None and "insert_failed=3  <-- insert races lost" in text and "warning: " in text
    assert make_formatter()(cpu(1, found=3)) == (
        "cpu=1    found=3 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0")


# ---- filters ------------------------------------------------------------------------------

def test_filter_parsing_rejects_bad_values_in_one_sentence() -> None:
    assert f.parse_proto("TCP") == 6 and f.parse_proto("icmpv6") == 58 and f.parse_proto("47") == 47
    assert f.parse_mark("0x10/0xf0") == (0x10, 0xF0) and f.parse_mark("7") == (7, 0xFFFFFFFF)
    assert f.parse_states("established,listen", 6) == {"ESTABLISHED", "SYN_SENT2"}
    assert f.parse_states("COOKIE_WAIT", 132) == {"COOKIE_WAIT"}
    assert f.parse_proto("igmp") == 2  # any /etc/protocols name
    assert f.parse_status("ASSURED,!SEEN_REPLY") == (4, 2) and f.parse_status("UNREPLIED") == (0, 2)
    assert f.parse_nat("", "--snat") == f.NatFilter()
    assert f.parse_nat("10.0.0.1:80", "--snat") == f.NatFilter("10.0.0.1", 80)
    assert f.parse_nat("[2001:db8::1]:80", "--snat") == f.NatFilter("2001:db8::1", 80)
    assert f.parse_nat("2001:db8::1", "--snat") == f.NatFilter("2001:db8::1", None)
    assert f.parse_events("new,destroy") == {"new", "destroy"} and f.parse_events("all") == set(f.EVENT_NAMES)
    for call in (lambda: f.parse_proto("tcpp"), lambda: f.parse_proto("300"),
                 lambda: f.parse_network("10.0.0.300", "-s"), lambda: f.parse_port("70000", "--sport"),
                 lambda: f.parse_mark("0x1/zz"), lambda: f.parse_mark(str(2**32)), lambda: f.parse_zone("-1"),
                 lambda: f.parse_states("BOGUS", 6), lambda: f.parse_states(",", 6),
                 lambda: f.parse_states("ESTABLISHED", None), lambda: f.parse_states("ESTABLISHED", 17),
                 lambda: f.parse_states("COOKIE_WAIT", 6), lambda: f.parse_events("create"),
                 lambda: f.parse_status("BOGUS"), lambda: f.parse_status("ASSURED,!ASSURED"),
                 lambda: f.parse_nat("10.0.0.1:99999", "--snat"), lambda: f.parse_nat("nope", "--snat"),
                 lambda: f.EntryFilter(src=f.parse_network("10.0.0.1", "-s"), dst=f.parse_network("2001:db8::1", "-d")),
                 lambda: f.EntryFilter(snat=f.NatFilter(), nat=f.NatFilter()),
                 lambda: f.EntryFilter(family=10, src=f.parse_network("10.0.0.1", "-s")),
                 lambda: f.family_of(True, True)):
        with pytest.raises(UsageError) as err:
            call()
        assert "\n" not in err.value.message


def test_filters_match() -> None:
    e, u = tcp_nat(), udp_unreplied()

    def match(entry: Entry, **kw: object) -> bool:
        return f.EntryFilter(**kw).matches(entry)  # type: ignore[arg-type]

    assert not f.EntryFilter().active and f.EntryFilter(snat=f.NatFilter()).active
    for zero in ("proto", "sport", "dport", "zone", "orig_zone", "reply_zone"):  # 0 is a value, not "off"
        assert f.EntryFilter(**{zero: 0}).active
        assert not match(e, **{zero: 0}) or zero in ("zone", "orig_zone", "reply_zone")
    assert match(e, proto=6) and not match(u, proto=6)
    assert match(e, src=f.parse_network("10.0.0.0/24", "-s")) and not match(e, src=f.parse_network("10.0.1.0/24", "-s"))
    assert match(e, dst=f.parse_network("10.0.0.2", "-d")) and match(e, dport=8080) and match(e, sport=47858)
    assert not match(e, dport=80)
    assert match(e, reply_src=f.parse_network("10.0.1.2", "r"))
    assert match(e, reply_dst=f.parse_network("10.0.1.0/24", "r"))
    assert not match(e, reply_src=f.parse_network("2001:db8::/32", "r"))
    assert match(e, states=frozenset({"ESTABLISHED"})) and not match(u, states=frozenset({"ESTABLISHED"}))
    assert match(tcp_nat(mark=0x4100), mark=f.parse_mark("0x4000/0x4000"))
    assert not match(tcp_nat(mark=0x100), mark=f.parse_mark("0x4000/0x4000"))
    assert not match(tcp_nat(mark=None), mark=f.parse_mark("0"))
    assert match(e, zone=0) and not match(e, zone=1)
    nat = f.NatFilter()
    assert match(e, snat=nat, dnat=nat) and match(e, nat=nat) and not match(u, nat=nat) and not match(u, snat=nat)
    assert match(e, snat=f.NatFilter("10.0.1.1")) and not match(e, snat=f.NatFilter("10.0.1.9"))
    assert match(e, dnat=f.NatFilter("10.0.1.2", 80)) and not match(e, dnat=f.NatFilter("10.0.1.2", 81))
    assert not match(e, snat=f.NatFilter(None, 47858))  # the source port was not translated
    not_done = tcp_nat(status_bits=SEEN_REPLY | ASSURED | CONFIRMED)  # tuples differ, but no *_NAT_DONE
    assert not match(not_done, nat=nat)
    assert match(e, status=(ASSURED, 0)) and not match(e, status=(0, SEEN_REPLY)) and match(u, status=(0, SEEN_REPLY))
    per_direction = tcp_nat(orig_zone=9)
    assert match(per_direction, zone=9) and match(per_direction, zone=0) and match(per_direction, orig_zone=9)
    assert not match(per_direction, reply_zone=9) and not match(e, zone=9)
    assert match(e, family=f.family_of(True, False)) and not match(e, family=f.family_of(False, True))


# ---- the CLI, in-process -----------------------------------------------------------------



@pytest.mark.parametrize(("argv", "needle"), [
    (("conntrack", "list", "-s", "bogus"), "-s: 'bogus' is not an IPv4/IPv6 address"),
    (("conntrack", "list", "-p", "tcpp"), "unknown protocol 'tcpp'"),
    (("conntrack", "list", "--json", "-o", "conntrack"), "--json and -o conntrack exclude each other"),
    (("conntrack", "list", "-o", "xml"), "unknown output format 'xml'"),
    (("conntrack", "list", "-4", "-6"), "-4 and -6 exclude each other"),
    (("conntrack", "list", "-p", "tcp", "--state", "nope"), "unknown state 'nope'"),
    (("conntrack", "list", "--state", "ESTABLISHED"), "--state needs -p tcp"),
    (("conntrack", "list", "-s", "198.18.0.1", "-d", "2001:db8::1"), "mix IPv4 and IPv6"),
    (("conntrack", "list", "--snat", "--nat"), "--nat excludes --snat"),
    (("conntrack", "list", "--nat", "--dnat", "198.18.0.1"), "--nat excludes --snat"),
    (("conntrack", "list", "-u", "BOGUS"), "unknown status 'BOGUS'"),
    (("conntrack", "watch", "--snat", "--nat"), "--nat excludes --snat"),
    (("conntrack", "watch", "-e", "create"), "unknown event 'create'"),
    (("conntrack", "watch", "--count", "0"), "--count 0: must be at least 1"),
    (("conntrack", "watch", "--duration", "-1"), "must be positive"),
    (("conntrack", "watch", "-b", "10"), "--buffer-size 10"),
    (("conntrack", "list", "--dport", "x"), "--dport: 'x' is not a port number"),
    (("conntrack", "list", "--sport", "\u00b2"), "--sport: '\u00b2' is not a port number"),  # isdigit, not int()
    (("conntrack", "list", "--zone", "\u00b2"), "--zone: '\u00b2' is not a zone number"),
    (("conntrack", "list", "-p", "\u00b2"), "unknown protocol '\u00b2'"),
    (("conntrack", "list", "--dport", "9" * 5000), "is not a port number"),  # past int()'s digit limit
])
def test_bad_input_is_one_line_and_exit_2(argv: tuple[str, ...], needle: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("gnt conntrack: ") and needle in err, err


def test_help_lists_the_three_commands() -> None:
    code, out, _err = run("conntrack", "--help")
    assert code == 0
    for name in ("list", "watch", "stats"):
        assert name in out


class _ClosedOnFlush(io.StringIO):
    """stdout after `| head` exited: writes land in the buffer, the flush finds the pipe closed."""

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


class _ClosedOnWrite(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("stream", [_ClosedOnFlush, _ClosedOnWrite])
@pytest.mark.parametrize("typer_parses", [False, True])
@pytest.mark.parametrize("argv", [("conntrack", "list"), ("conntrack", "list", "-o", "conntrack"),
                                  ("conntrack", "list", "--json"), ("conntrack", "watch")])
def test_a_closed_stdout_ends_quietly_with_exit_0(monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO],
                                                  typer_parses: bool, argv: tuple[str, ...]) -> None:
    """`gnt conntrack list | head`: exit 0 and nothing on stderr (click would make a broken pipe exit 1)."""
    import gnt.cli.conntrack
    import gnt.conntrack

    def entries(*_args: object, **_kwargs: object) -> object:
        yield tcp_nat()
        yield ListSummary(shown=1, scanned=1, filtered=False)

    def events(*_args: object, **_kwargs: object) -> object:
        yield EventEntry(**{fld.name: getattr(tcp_nat(), fld.name) for fld in dataclasses.fields(Entry)},
                         event="new", timestamp=1.0)
        yield WatchSummary(events=1, lost=0, duration=0.0, filtered=False)

    monkeypatch.setattr(gnt.conntrack, "list_entries", entries)
    monkeypatch.setattr(gnt.conntrack, "watch", events)
    if typer_parses:
        monkeypatch.setattr(gnt.cli.conntrack, "fast_list", lambda _argv: None)
    env = Environment(stdout=stream(), stderr=io.StringIO())
    code = main(list(argv), env)
    err = env.stderr.getvalue()  # type: ignore[attr-defined]
    assert code == 0 and err == "", err

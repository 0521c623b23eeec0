"""Unit tests for gnt traceroute: probe identity codecs, annotations, the output format, the CLI."""

from __future__ import annotations

import errno
import json
import socket
import struct
import subprocess
import sys

import pytest
from helpers.cli import run_gnt as run
from helpers.jsonl import records

from gnt.core import sockets
from gnt.core.checksum import PROTO_UDP, add, address_bytes, checksum, pseudo_header, transport_checksum
from gnt.output.text.traceroute import TracerouteText, format_hop, format_start
from gnt.traceroute.methods import (
    FINAL,
    HOP,
    REACHED,
    classify,
    paris_icmp_payload,
    paris_udp_payload,
    payload_size,
    udp_probe_port,
    udp_probe_seq,
)
from gnt.traceroute.models import Hop, ProbeResult, Summary, TraceStart

V4, V6 = socket.AF_INET, socket.AF_INET6
ICMP4, ICMP6, LOCAL = sockets.SO_EE_ORIGIN_ICMP, sockets.SO_EE_ORIGIN_ICMP6, sockets.SO_EE_ORIGIN_LOCAL



# -- annotations ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("icmp_type", "code", "info", "expected"), [
    (11, 0, 0, (HOP, None)),
    (3, 3, 0, (REACHED, None)),
    (3, 0, 0, (FINAL, "!N")),
    (3, 1, 0, (FINAL, "!H")),
    (3, 2, 0, (FINAL, "!P")),
    (3, 4, 1400, (FINAL, "!F-1400")),
    (3, 5, 0, (FINAL, "!S")),
    (3, 10, 0, (FINAL, "!X")),
    (3, 13, 0, (FINAL, "!X")),
    (3, 14, 0, (FINAL, "!V")),
    (3, 99, 0, (FINAL, "!<99>")),
])
def test_classify_icmpv4(icmp_type: int, code: int, info: int, expected: tuple[str, str | None]) -> None:
    assert classify(V4, ICMP4, icmp_type, code, info, 0) == expected


@pytest.mark.parametrize(("icmp_type", "code", "info", "expected"), [
    (3, 0, 0, (HOP, None)),
    (1, 4, 0, (REACHED, None)),
    (1, 0, 0, (FINAL, "!N")),
    (1, 1, 0, (FINAL, "!X")),
    (1, 3, 0, (FINAL, "!H")),
    (1, 6, 0, (FINAL, "!<6>")),
    (2, 0, 1280, (FINAL, "!F-1280")),
])
def test_classify_icmpv6(icmp_type: int, code: int, info: int, expected: tuple[str, str | None]) -> None:
    assert classify(V6, ICMP6, icmp_type, code, info, 0) == expected


def test_classify_local_errors() -> None:
    assert classify(V4, LOCAL, 0, 0, 0, errno.EHOSTUNREACH) == (FINAL, "!H")
    assert classify(V6, LOCAL, 0, 0, 0, errno.ENETUNREACH) == (FINAL, "!N")
    assert classify(V4, LOCAL, 0, 0, 1300, errno.EMSGSIZE) == (FINAL, "!F-1300")


# -- probe identity ------------------------------------------------------------------------------

def test_udp_port_identity_round_trips_and_wraps() -> None:
    assert udp_probe_port(33434, 0) == 33434
    assert udp_probe_port(33434, 5) == 33439
    for seq in (0, 1, 77, 500):
        assert udp_probe_seq(33434, udp_probe_port(33434, seq)) == seq
    assert udp_probe_port(65535, 0) == 65535
    assert udp_probe_port(65535, 1) == 1  # port 0 is never used
    assert udp_probe_seq(65000, udp_probe_port(65000, 600)) == 600


@pytest.mark.parametrize(("src", "dst"), [("198.18.1.1", "198.18.4.2"), ("2001:db8:1::1", "2001:db8:4::2")])
@pytest.mark.parametrize("size", [4, 32, 33])
def test_paris_udp_payload_puts_the_identity_in_the_checksum(src: str, dst: str, size: int) -> None:
    sport, dport = 40000, 33434
    length = 8 + size
    fixed = add(add(0, pseudo_header(address_bytes(src), address_bytes(dst), PROTO_UDP, length)),
                struct.pack("!HHHH", sport, dport, length, 0))
    seen = set()
    for seq in (0, 1, 2, 100, 65533, 70000):
        payload = paris_udp_payload(fixed, seq, size)
        assert len(payload) == size
        assert struct.unpack_from("!H", payload)[0] == seq & 0xFFFF
        segment = struct.pack("!HHHH", sport, dport, length, 0) + payload
        wire = transport_checksum(address_bytes(src), address_bytes(dst), PROTO_UDP, segment) or 0xFFFF
        assert wire == seq % 0xFFFE + 1
        seen.add(wire)
    assert len(seen) == 6


def test_paris_icmp_payload_keeps_the_checksum_constant() -> None:
    ident = 0x1234
    sums = set()
    for seq in (1, 2, 3, 255, 256, 40000, 65535):
        packet = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + paris_icmp_payload(seq, 32)
        assert len(packet) == 40
        sums.add(checksum(packet))
    assert len(sums) == 1


def test_payload_sizes_follow_the_packet_length() -> None:
    assert payload_size("udp", V4, 60) == 32
    assert payload_size("udp", V6, 80) == 32
    assert payload_size("icmp", V4, 60) == 32
    assert payload_size("udp", V4, 10) == 0


# -- output format -------------------------------------------------------------------------------

def test_header_line() -> None:
    assert format_start(TraceStart("h2", "198.18.4.2", 30, 60)) == (
        "traceroute to h2 (198.18.4.2), 30 hops max, 60 byte packets")


def test_hop_line_numeric() -> None:
    hop = Hop(1, [ProbeResult("10.0.0.1", 0.053), ProbeResult("10.0.0.1", 0.008), ProbeResult("10.0.0.1", 0.005)])
    assert format_hop(hop, numeric=True) == " 1  10.0.0.1  0.053 ms  0.008 ms  0.005 ms"


def test_hop_line_stars_several_addresses_and_annotations() -> None:
    assert format_hop(Hop(2, [ProbeResult(None, None)] * 3), numeric=True) == " 2  * * *"
    hop = Hop(12, [ProbeResult("10.0.0.1", 1.5), ProbeResult(None, None), ProbeResult("10.0.0.1", 2.25),
                   ProbeResult("10.0.0.2", 3.0, "!H")])
    assert format_hop(hop, numeric=True) == "12  10.0.0.1  1.500 ms *  2.250 ms 10.0.0.2  3.000 ms !H"
    assert format_hop(Hop(3, [ProbeResult(None, None), ProbeResult("10.0.0.9", 0.1, "!F-1400")]),
                      numeric=True) == " 3  * 10.0.0.9  0.100 ms !F-1400"


def test_hop_line_with_names() -> None:
    hop = Hop(1, [ProbeResult("10.0.0.1", 0.5, name="gw.example"), ProbeResult("10.0.0.2", 0.25)])
    assert format_hop(hop, numeric=False) == " 1  gw.example (10.0.0.1)  0.500 ms 10.0.0.2 (10.0.0.2)  0.250 ms"


def test_formatter_prints_nothing_for_the_summary() -> None:
    assert TracerouteText(numeric=True)(Summary("h", "1.2.3.4", True, 4, "udp")) is None


def test_json_lines() -> None:
    from gnt.output.json import encode

    line = encode(Hop(3, [ProbeResult("198.18.3.2", 0.02), ProbeResult(None, None)]))
    assert line is not None
    assert json.loads(line) == {"type": "hop", "ttl": 3, "probes": [
        {"address": "198.18.3.2", "rtt_ms": 0.02, "annotation": None, "name": None},
        {"address": None, "rtt_ms": None, "annotation": None, "name": None}]}
    summary = encode(Summary("h2", "198.18.4.2", True, 4, "icmp"))
    assert summary is not None
    assert json.loads(summary) == {"type": "summary", "destination": "h2", "address": "198.18.4.2",
                                   "reached": True, "hops": 4, "method": "icmp", "interrupted": False}
    assert encode(TraceStart("h2", "198.18.4.2", 30, 60)) is None


# -- the command line ----------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    ([], "missing host operand"),
    (["-m", "0", "127.0.0.1"], "max hops must be between 1 and 255"),
    (["-m", "256", "127.0.0.1"], "max hops must be between 1 and 255"),
    (["-q", "0", "127.0.0.1"], "probes per hop must be between 1 and 10"),
    (["-f", "5", "-m", "3", "127.0.0.1"], "first hop out of range"),
    (["-p", "0", "127.0.0.1"], "port out of range"),
    (["-p", "70000", "127.0.0.1"], "port out of range"),
    (["-N", "0", "127.0.0.1"], "simultaneous probes must be at least 1"),
    (["-w", "abc", "127.0.0.1"], "bad wait time"),
    (["-w", "0", "127.0.0.1"], "MAX must be above 0"),
    (["-w", "1,2,3,4", "127.0.0.1"], "bad wait specification"),
    (["-z", "-1", "127.0.0.1"], "bad send wait"),
    (["-I", "-T", "127.0.0.1"], "only one of -I, -U and -T"),
    (["-4", "-6", "127.0.0.1"], "only one of -4 and -6"),
    (["-I", "-p", "80", "127.0.0.1"], "-p has no meaning with -I"),
    (["127.0.0.1", "big"], "invalid packet length value: 'big' is not a whole number"),
    (["127.0.0.1", "70000"], "packet length out of range"),
    (["--paths", "-1", "127.0.0.1"], "--paths must be between"),
    (["-m", "x", "127.0.0.1"], "'x' is not a whole number"),
    (["-4", "::1"], "::1: not an IPv4 address"),
])
def test_bad_options_are_one_line_and_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run("traceroute", *argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines and lines[0].startswith("gnt traceroute: ")
    assert message in lines[0]
    assert "Traceback" not in err


def test_loopback_udp_trace_reaches_in_one_hop() -> None:
    code, out, err = run("traceroute", "-n", "127.0.0.1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "traceroute to 127.0.0.1 (127.0.0.1), 30 hops max, 60 byte packets"
    assert len(lines) == 2
    assert lines[1].startswith(" 1  127.0.0.1  ")
    assert lines[1].count(" ms") == 3


@pytest.mark.parametrize("method", [[], ["-I"], ["-T", "-p", "9"], ["-U"]])
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_loopback_json_every_method(method: list[str], address: str) -> None:
    code, out, err = run("traceroute", "-n", "--json", "-q", "2", *method, address)
    assert code == 0, err
    objects = records(out)
    assert [o["type"] for o in objects] == ["hop", "summary"]
    assert objects[0]["ttl"] == 1
    assert [p["address"] for p in objects[0]["probes"]] == [address, address]
    assert all(p["rtt_ms"] >= 0 for p in objects[0]["probes"])
    expected = {"-I": "icmp", "-T": "tcp", "-U": "udp-port"}.get(method[0] if method else "", "udp")
    assert objects[1] == {"type": "summary", "destination": address, "address": address,
                          "reached": True, "hops": 1, "method": expected, "interrupted": False}


def test_packet_length_argument_shows_in_the_header() -> None:
    code, out, _err = run("traceroute", "-n", "-q", "1", "127.0.0.1", "100")
    assert code == 0
    assert out.splitlines()[0].endswith("30 hops max, 100 byte packets")


def test_traceroute_imports_stay_light() -> None:
    probe = ("import sys, gnt.cli.traceroute, gnt.traceroute, gnt.output.text.traceroute; "
             "heavy = [m for m in ('scapy', 'pyroute2', 'netaddr') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_name_lookups_run_beside_the_caller() -> None:
    import selectors
    import time

    from gnt.core.resolve import NameLookups

    expected = socket.getnameinfo(("127.0.0.1", 0), socket.NI_NAMEREQD)[0]
    selector = selectors.DefaultSelector()
    names = NameLookups(selector, timeout=2.0)
    names.want("127.0.0.1")
    names.want("127.0.0.1")  # asked twice, looked up once
    assert len(names.running) == 1
    deadline = time.monotonic() + 5
    while not names.done("127.0.0.1") and time.monotonic() < deadline:
        for key, mask in selector.select(0.1):
            key.data(mask)
        names.expire(time.monotonic())
    assert names.name("127.0.0.1") == expected
    assert not names.running and not selector.get_map()
    names.close()
    selector.close()


def test_name_lookups_give_up_at_the_timeout() -> None:
    import selectors
    import time

    from gnt.core.resolve import NameLookups

    selector = selectors.DefaultSelector()
    names = NameLookups(selector, timeout=0.0)
    names.want("127.0.0.1")
    names.expire(time.monotonic() + 1)  # past the deadline: the child is killed, no name
    assert names.done("127.0.0.1") and names.name("127.0.0.1") is None
    assert not names.running and not selector.get_map()
    selector.close()


def _raw_icmp(family: int) -> object:
    import selectors

    from gnt.traceroute.methods import IcmpMethod

    method = IcmpMethod(family, "198.18.4.2" if family == V4 else "2001:db8:4::2", 0, 1, 32,
                        selectors.DefaultSelector(), source=None, interface=None, paris=False)
    echo = sockets.EchoSocket(sock=None, family=family, kind="raw", ident=0x4242)  # type: ignore[arg-type]
    return method, echo


def test_raw_icmpv4_error_is_decoded_from_the_quoted_echo_request() -> None:
    method, echo = _raw_icmp(V4)
    quoted_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 1, 0, 1, 1, 0,
                            socket.inet_aton("198.18.1.1"), socket.inet_aton("198.18.4.2"))
    quoted_echo = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1 + 7)  # the 8th probe (seq base 1)
    icmp = struct.pack("!BBHI", 11, 0, 0, 0) + quoted_ip + quoted_echo
    outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 9, 0, 63, 1, 0,
                        socket.inet_aton("198.18.2.2"), socket.inet_aton("198.18.1.1")) + icmp
    got = sockets.Received(outer, "198.18.2.2", 123, 63)
    answer = method._decode(echo, got)  # type: ignore[attr-defined]
    assert answer is not None
    assert (answer.seq, answer.kind, answer.address, answer.annotation, answer.recv_ns) == (
        7, HOP, "198.18.2.2", None, 123)
    # Somebody else's echo request (another id) is not ours.
    other = outer[: len(outer) - 4] + struct.pack("!HH", 0x9999, 8)
    assert method._decode(echo, sockets.Received(other, "198.18.2.2", 1, 63)) is None  # type: ignore[attr-defined]


def test_raw_icmpv6_unreachable_is_decoded_from_the_quoted_echo_request() -> None:
    method, echo = _raw_icmp(V6)
    quoted_ip6 = struct.pack("!IHBB16s16s", 6 << 28, 40, 58, 3, socket.inet_pton(V6, "2001:db8:1::1"),
                             socket.inet_pton(V6, "2001:db8:9::1"))
    quoted_echo = struct.pack("!BBHHH", 128, 0, 0, 0x4242, 1 + 2)
    message = struct.pack("!BBHI", 1, 1, 0, 0) + quoted_ip6 + quoted_echo  # admin prohibited
    answer = method._decode(echo, sockets.Received(message, "2001:db8:3::2", 5, 62))  # type: ignore[attr-defined]
    assert answer is not None
    assert (answer.seq, answer.kind, answer.address, answer.annotation) == (2, FINAL, "2001:db8:3::2", "!X")
    reply = struct.pack("!BBHHH", 129, 0, 0, 0x4242, 1 + 5) + bytes(32)
    answer = method._decode(echo, sockets.Received(reply, "2001:db8:4::2", 6, 61))  # type: ignore[attr-defined]
    assert answer is not None
    assert (answer.seq, answer.kind, answer.address) == (5, REACHED, "2001:db8:4::2")


def test_syn_retransmitted_reads_tcp_info() -> None:
    """A SYN answered at once was never resent (the netns tests cover one that was)."""
    from gnt.core.sockets import syn_retransmitted

    with socket.socket() as listener, socket.socket() as probe:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert not syn_retransmitted(probe)  # not even connecting yet
        probe.connect(listener.getsockname())
        assert not syn_retransmitted(probe)

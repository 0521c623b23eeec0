"""Ping logic without a network: payload layout, pattern parsing, iputils text format."""

from __future__ import annotations

import socket
import struct

import pytest

from gnt.errors import UsageError
from gnt.output.text.ping import PingText, _rtt
from gnt.ping import PingOptions, describe6, exit_code, fill_payload, parse_pattern
from gnt.ping.models import ErrorReply, Interim, PingStart, Reply, Rtt, Summary


def test_payload_is_iputils_layout() -> None:
    # iputils fills byte i of the ICMP data with i (the timestamp then covers the start).
    data = fill_payload(56, None)
    assert data == bytes(range(56))
    assert fill_payload(4, None) == bytes([0, 1, 2, 3])  # -s 4: 4 data bytes, no timestamp
    assert fill_payload(300, None)[256:258] == bytes([0, 1])


def test_payload_pattern_repeats() -> None:
    # iputils repeats the -p pattern from the first data byte.
    assert fill_payload(16, b"\xab\xcd") == b"\xab\xcd" * 8
    assert fill_payload(5, b"\x01\x02\x03") == b"\x01\x02\x03\x01\x02"


@pytest.mark.parametrize(("text", "expected"), [("ff", b"\xff"), ("abc", b"\xab\x0c"), ("00" * 16, b"\0" * 16)])
def test_parse_pattern(text: str, expected: bytes) -> None:
    assert parse_pattern(text) == expected


@pytest.mark.parametrize("text", ["", "xyz", "0" * 33])
def test_parse_pattern_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_pattern(text)


@pytest.mark.parametrize(
    ("kwargs", "privileged", "fragment"),
    [
        ({"count": -1}, True, "out of range: 1 <= value"),
        ({"count": 0}, True, "out of range: 1 <= value"),
        ({"size": 65508}, True, "size"),
        ({"ttl": 256}, True, "out of range: 0 <= value <= 255"),
        ({"interval": 0.001}, False, "2ms"),
        ({"flood": True}, False, "flood"),
    ],
)
def test_validate_limits(kwargs: dict[str, object], privileged: bool, fragment: str) -> None:
    options = PingOptions(host="127.0.0.1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=fragment):
        options.validate(privileged=privileged, family=socket.AF_INET)


def test_validate_accepts_iputils_limits() -> None:
    PingOptions(host="x", size=65507, ttl=255, interval=0.002).validate(privileged=False)
    PingOptions(host="x", flood=True, interval=0.0).validate(privileged=True)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.0314, "0.031"), (1.2345, "1.23"), (12.345, "12.3"), (123.4, "123"), (0.999, "0.999"), (99.96, "100")],
)
def test_reply_time_precision_like_iputils(ms: float, text: str) -> None:
    assert _rtt(ms) == text


def test_header_and_reply_lines() -> None:
    fmt = PingText()
    assert fmt(PingStart("h2", "198.18.4.2", socket.AF_INET, 56)) == "PING h2 (198.18.4.2) 56(84) bytes of data."
    assert fmt(PingStart("::1", "::1", socket.AF_INET6, 56)) == "PING ::1(::1) 56 data bytes"
    line = fmt(Reply(3, "198.18.4.2", 61, 64, 0.0421))
    assert line == "64 bytes from 198.18.4.2: icmp_seq=3 ttl=61 time=0.042 ms"
    dup = fmt(Reply(3, "198.18.4.2", 61, 64, 0.05, dup=True, name="h2"))
    assert dup == "64 bytes from h2 (198.18.4.2): icmp_seq=3 ttl=61 time=0.050 ms (DUP!)"
    wrong = fmt(Reply(1, "10.0.0.1", 64, 64, 0.01, wrong_data=(8, 8, 0xAA)))
    assert wrong is not None and wrong.endswith("wrong data byte #8 should be 0x8 but was 0xaa")
    err = fmt(ErrorReply(1, "198.18.4.1", 3, 1, "Destination Host Unreachable"))
    assert err == "From 198.18.4.1 icmp_seq=1 Destination Host Unreachable"


def test_summary_block() -> None:
    summary = Summary("h", "1.2.3.4", 3, 2, 1, 0, 100 / 3, 2003, Rtt(0.031, 0.041, 0.053, 0.009),
                      rtt_us=(31, 41, 53, 9))
    text = PingText()(summary)
    assert text == (
        "\n--- h ping statistics ---\n"
        "3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 2003ms\n"
        "rtt min/avg/max/mdev = 0.031/0.041/0.053/0.009 ms\n"
    )
    # iputils ends the block with its last line even when there is nothing to put on it.
    none = PingText()(Summary("h", "1.2.3.4", 2, 0, 0, 2, 100.0, 1001, None))
    assert none is not None and none.endswith(
        "2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1001ms\n\n"
    )
    # pipe and ipg/ewma share that line, after the rtt figures.
    busy = PingText()(Summary("h", "1.2.3.4", 9, 9, 0, 0, 0.0, 5, Rtt(0.001, 0.002, 0.003, 0.001), pipe=3,
                              rtt_us=(1, 2, 3, 1), ewma_us=2, ipg_us=625))
    assert busy is not None and busy.splitlines()[-1] == (
        "rtt min/avg/max/mdev = 0.001/0.002/0.003/0.001 ms, pipe 3, ipg/ewma 0.625/0.002 ms"
    )
    lost = PingText()(Summary("h", "1.2.3.4", 3, 0, 0, 3, 100.0, 2000, None, pipe=3))
    assert lost is not None and lost.endswith("time 2000ms\npipe 3\n")


def test_interim_goes_to_stderr() -> None:
    from gnt.output import ToStderr

    line = PingText()(Interim(5, 5, 0, 36, 51, 52, 71))
    assert isinstance(line, ToStderr)
    assert line == "\r5/5 packets, 0% loss, min/avg/ewma/max = 0.036/0.051/0.052/0.071 ms"


def test_icmp6_wording() -> None:
    assert describe6(1, 3) == "Destination unreachable: Address unreachable"
    assert describe6(3, 0) == "Time exceeded: Hop limit"
    assert describe6(2, 0, 1280) == "Packet too big: mtu=1280"


def test_exit_codes() -> None:
    ok = Summary("h", "a", 3, 3, 0, 0, 0.0, 1, None)
    none = Summary("h", "a", 3, 0, 0, 0, 100.0, 1, None)
    short = Summary("h", "a", 3, 2, 0, 0, 33.3, 1, None)
    assert exit_code(ok, PingOptions("h", count=3)) == 0
    assert exit_code(none, PingOptions("h", count=3)) == 1
    assert exit_code(short, PingOptions("h", count=3)) == 0
    assert exit_code(short, PingOptions("h", count=3, deadline=2)) == 1


def test_json_reply_shape() -> None:
    from gnt.output.json import encode

    line = encode(Reply(1, "::1", 64, 64, 0.013))
    assert line == '{"type": "reply", "seq": 1, "from": "::1", "ttl": 64, "bytes": 64, "time_ms": 0.013, "dup": false}'
    assert encode(PingStart("h", "a", socket.AF_INET, 56)) is None


def test_timestamp_layout_is_classic() -> None:
    # 32-bit seconds + 32-bit microseconds, network order, at the start of the ICMP data.
    from gnt.ping import STAMP

    assert STAMP.size == 8
    assert STAMP.pack(1, 2) == struct.pack("!II", 1, 2)


def test_raw_socket_reports_the_parameter_problem_pointer() -> None:
    """A raw socket reads the error's rest-of-header itself: the pointer is its high byte."""
    import socket as socket_module

    from gnt.core import sockets
    from gnt.core.packets.icmp import ICMP
    from gnt.core.packets.ipv4 import IPv4
    from gnt.ping import Pinger, _Probe

    pinger = Pinger(PingOptions(host="127.0.0.1"))
    pinger.sock = sockets.EchoSocket(socket_module.socket(), socket_module.AF_INET, "raw", 0x1234)
    try:
        pinger.probes[1] = _Probe(1, 0)
        loopback = bytes([127, 0, 0, 1])
        sent = IPv4(src=loopback, dst=loopback, proto=1).encode(ICMP.echo(0x1234, 1).encode(b"x" * 8))
        error = ICMP(type=12, code=0, rest=5 << 24).encode(sent[:28])
        packet = IPv4(src=loopback, dst=loopback, proto=1).encode(error)
        event = pinger._parse(sockets.Received(packet, "127.0.0.1", None, 64))
    finally:
        pinger.sock.close()
    assert event is not None and event.message == "Parameter problem: pointer = 5"

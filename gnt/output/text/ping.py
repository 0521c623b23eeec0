"""iputils ping's text format, line for line, so existing parsers read gnt's output unchanged."""

from __future__ import annotations

import socket

from gnt.output import Inline, ToStderr
from gnt.ping.models import (
    ErrorReply,
    Interim,
    NoAnswerYet,
    PingStart,
    PingWarning,
    Reply,
    SendFailed,
    Sent,
    Summary,
    Timeout,
)


def _ms(us: int) -> str:
    """iputils prints RTT statistics as truncated microseconds: %ld.%03ld."""
    return f"{us // 1000}.{us % 1000:03d}"


def _rtt(time_ms: float) -> str:
    """iputils' reply time: 3 decimals under 1 ms, 2 under 10, 1 under 100, none above."""
    us = round(time_ms * 1000)
    if us >= 100000 - 50:
        return f"{(us + 500) // 1000}"
    if us >= 10000 - 5:
        return f"{(us + 50) // 1000}.{((us + 50) % 1000) // 100}"
    if us >= 1000:
        return f"{(us + 5) // 1000}.{((us + 5) % 1000) // 10:02d}"
    return f"{us // 1000}.{us % 1000:03d}"


def _dump(data: bytes) -> str:
    """iputils' dump after a wrong data byte: the data from byte 16, 32 bytes a line, `#INDEX\\t` first."""
    parts = []
    for offset, value in enumerate(data):
        if offset % 32 == 0:
            parts.append(f"\n#{offset + 16}\t")
        parts.append(f"{value:x} ")
    return "".join(parts)


def _stamp(wall_time: float) -> str:
    return f"[{wall_time:.6f}] "


class PingText:
    """Formatter for `gnt ping` events; holds the display options (-q, -D, -f)."""

    DOT = Inline(".")  # flood: a probe went out
    BACKSPACE = Inline("\b \b")  # flood: its reply came

    def __init__(self, *, quiet: bool = False, timestamps: bool = False, flood: bool = False) -> None:
        self.quiet = quiet
        self.timestamps = timestamps
        self.flood = flood
        self.host = ""

    def _who(self, address: str | None, name: str | None) -> str:
        if address is None:
            return "?"
        return f"{name} ({address})" if name else address

    def __call__(self, obj: object) -> str | None:
        # The two per-probe events first: in flood mode this runs twice per probe.
        if isinstance(obj, Reply):
            return self.reply(obj)
        if isinstance(obj, Sent):
            return self.DOT if self.flood and not self.quiet else None
        if isinstance(obj, PingStart):
            return self.start(obj)
        if isinstance(obj, ErrorReply):
            if self.quiet:
                return None
            if self.flood:
                return Inline("E")
            prefix = _stamp(obj.wall_time) if self.timestamps else ""
            return f"{prefix}From {self._who(obj.source, obj.name)} icmp_seq={obj.seq} {obj.message}"
        if isinstance(obj, PingWarning):
            return ToStderr(f"gnt ping: {obj.message}")
        if isinstance(obj, SendFailed):
            if obj.local and self.flood and not self.quiet:
                return Inline("E")  # iputils: a local error in flood mode is an "E", as an ICMP error is
            return ToStderr(f"gnt ping: {obj.message}")
        if isinstance(obj, NoAnswerYet):
            if self.quiet or self.flood:
                return None
            prefix = _stamp(obj.wall_time) if self.timestamps else ""
            return f"{prefix}no answer yet for icmp_seq={obj.seq}"
        if isinstance(obj, Interim):
            line = f"\r{obj.received}/{obj.transmitted} packets, {obj.loss_percent}% loss"
            if obj.rtt_min_us is not None:
                assert obj.rtt_avg_us is not None and obj.rtt_ewma_us is not None and obj.rtt_max_us is not None
                line += (f", min/avg/ewma/max = {_ms(obj.rtt_min_us)}/{_ms(obj.rtt_avg_us)}/"
                         f"{_ms(obj.rtt_ewma_us)}/{_ms(obj.rtt_max_us)} ms")
            return ToStderr(line)
        if isinstance(obj, Timeout):
            return None
        if isinstance(obj, Summary):
            return self.summary(obj)
        return None

    def start(self, obj: PingStart) -> str:
        self.host = obj.host
        lines = []
        if obj.pattern:
            lines.append("PATTERN: 0x" + obj.pattern.hex())
        # iputils: `from ADDR IFACE: ` with -I IFACE, `from ADDR : ` with -I ADDR.
        via = f" from {obj.source} {obj.interface or ''}: " if obj.source else " "
        if obj.family == socket.AF_INET6:
            lines.append(f"PING {obj.host}({obj.shown or obj.address}){via}{obj.size} data bytes")
        else:
            lines.append(f"PING {obj.host} ({obj.address}){via}{obj.size}({obj.size + 28}) bytes of data.")
        return "\n".join(lines)

    def reply(self, obj: Reply) -> str | None:
        if self.quiet:
            return None
        if self.flood:
            return self.BACKSPACE if not obj.dup else None
        prefix = _stamp(obj.wall_time) if self.timestamps else ""
        line = f"{prefix}{obj.bytes} bytes from {self._who(obj.source, obj.name)}: icmp_seq={obj.seq}"
        if obj.ttl is not None:
            line += f" ttl={obj.ttl}"
        if obj.bad_checksum:
            return line + " (BAD CHECKSUM!)"
        if obj.time_ms is not None:
            line += f" time={_rtt(obj.time_ms)} ms"
        if obj.dup:
            line += " (DUP!)"
        if obj.wrong_data is not None:
            index, want, got = obj.wrong_data
            line += f"\nwrong data byte #{index} should be 0x{want:x} but was 0x{got:x}" + _dump(obj.data_dump or b"")
        return line

    def summary(self, obj: Summary) -> str:
        line = f"{obj.transmitted} packets transmitted, {obj.received} received"
        if obj.duplicates:
            line += f", +{obj.duplicates} duplicates"
        if obj.corrupted:
            line += f", +{obj.corrupted} corrupted"
        if obj.errors:
            line += f", +{obj.errors} errors"
        if obj.transmitted:
            line += f", {obj.loss_percent:g}% packet loss, time {obj.time_ms}ms"
        # iputils always ends with this line, empty when there is nothing to put on it.
        tail = []
        if obj.rtt_us is not None:
            tmin, tavg, tmax, tmdev = obj.rtt_us
            tail.append(f"rtt min/avg/max/mdev = {_ms(tmin)}/{_ms(tavg)}/{_ms(tmax)}/{_ms(tmdev)} ms")
        if obj.pipe is not None:
            tail.append(f"pipe {obj.pipe}")
        if obj.ipg_us is not None:
            tail.append(f"ipg/ewma {_ms(obj.ipg_us)}/{_ms(obj.ewma_us)} ms")
        # The first newline ends the flood dots (iputils' putchar), or makes the empty line.
        return "\n".join([f"\n--- {obj.host} ping statistics ---", line, ", ".join(tail)]) + "\n"

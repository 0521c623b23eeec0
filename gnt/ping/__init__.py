"""`gnt ping`: ICMP echo with iputils' semantics, built on gnt.core.

`ping(options, control)` is a generator of model objects (gnt.ping.models); it never
prints. It opens the echo socket (DGRAM first, raw fallback), sends on schedule, matches
replies by id and sequence, verifies their data byte for byte, reads ICMP errors from the
error queue (DGRAM) or the wire (raw), and measures RTT from kernel TX/RX timestamps when
the kernel gives them.
"""

from __future__ import annotations

import collections
import errno
import math
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gnt.core import sockets
from gnt.core.checksum import verify
from gnt.core.packets import icmp
from gnt.core.packets.ipv4 import IPv4
from gnt.core.resolve import Target, is_literal, resolve, reverse_name
from gnt.errors import DecodeError, GntError, PermissionDenied, UsageError
from gnt.ping.models import (
    ErrorReply,
    Interim,
    NoAnswerYet,
    PingStart,
    PingWarning,
    Reply,
    Rtt,
    SendFailed,
    Sent,
    Summary,
    Timeout,
)

ICMP6_ECHO_REQUEST = 128  # RFC 4443 §4.1
ICMP6_ECHO_REPLY = 129  # RFC 4443 §4.2
ICMP6_DEST_UNREACH = 1  # RFC 4443 §3.1
ICMP6_PACKET_TOO_BIG = 2  # RFC 4443 §3.2
ICMP6_TIME_EXCEEDED = 3  # RFC 4443 §3.3
ICMP6_PARAM_PROBLEM = 4  # RFC 4443 §3.4
ICMP_HEADER = icmp.HEADER  # type, code, checksum, id, seq: ICMPv6 echo has the same layout
STAMP = struct.Struct("!II")  # send time at the payload start: 32-bit seconds, 32-bit microseconds
MAX_SIZE = 65507  # largest ICMP payload in one IPv4 datagram: 65535 - 20 - 8
MAX_SIZE6 = 65527  # largest ICMPv6 payload: 65535 (payload length) - 8 (the IPv6 header is not counted)
MAX_COUNT = 2**63 - 1  # -c: iputils reads it as a long
TIMING_MIN = 16  # iputils times a reply only when the data holds its struct timeval (16 bytes)
STALE_SEND_ERRORS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EMSGSIZE,
                               errno.EPROTO, errno.EACCES})  # an earlier probe's error, reported on this send
PROBE_WINDOW = 4096  # answered probes kept for late duplicates; older ones are dropped (memory stays flat)
MIN_USER_INTERVAL = 0.002  # iputils: the shortest interval a non-root user may ask for
DEFAULT_LINGER = 10.0  # iputils' MAXWAIT: how long to wait for replies when none came
FLOOD_INTERVAL = 0.01  # iputils -f: at least 100 requests a second, more when replies come back sooner
PMTUDISC_WORDS = ("do", "want", "dont")  # iputils' -M values


def describe6(icmp_type: int, code: int, info: int = 0) -> str:
    """iputils' wording for an ICMPv6 error (the codec keeps the table; loaded only when needed)."""
    from gnt.core.packets import icmpv6

    return icmpv6.describe(icmp_type, code, info)


@dataclass
class PingOptions:
    host: str
    family: int = socket.AF_UNSPEC
    count: int | None = None
    interval: float = 1.0
    timeout: float | None = None  # -W: how long to wait for a reply
    deadline: float | None = None  # -w: stop after this many seconds
    size: int = 56
    ttl: int | None = None
    interface: str | None = None  # -I: a name or an address
    quiet: bool = False
    timestamps: bool = False  # -D
    report_outstanding: bool = False  # -O
    numeric: bool = False
    flood: bool = False
    pattern: bytes | None = None
    mark: int | None = None
    pmtudisc: str | None = None  # -M: "do", "want" or "dont" (iputils); None: the kernel default

    def validate(self, *, privileged: bool, family: int = socket.AF_UNSPEC) -> None:
        """iputils' limits, with one-line errors (the size limit again once the family is known).

        The CLI checks each value's bounds first, from its option table (gnt.cli.ping.OPTIONS).
        """
        if self.count is not None and self.count <= 0:
            raise UsageError(f"invalid argument: '{self.count}': out of range: 1 <= value <= {MAX_COUNT}")
        if self.ttl is not None and not 0 <= self.ttl <= 255:
            raise UsageError(f"invalid argument: '{self.ttl}': out of range: 0 <= value <= 255")
        largest = MAX_SIZE if family == socket.AF_INET else MAX_SIZE6
        if not 0 <= self.size <= largest:
            raise UsageError(f"invalid packet size: {self.size}: out of range: 0 <= value <= {largest}")
        if self.interval < 0 or math.isnan(self.interval):
            raise UsageError(f"bad timing interval: {self.interval}")
        if self.deadline is not None and self.deadline < 0:
            raise UsageError(f"invalid deadline: {self.deadline}")
        if self.timeout is not None and self.timeout < 0:
            raise UsageError(f"bad linger time: {self.timeout}")
        if self.pmtudisc is not None and self.pmtudisc not in PMTUDISC_WORDS:
            raise UsageError(f"invalid -M argument: {self.pmtudisc}")
        if not privileged:
            if self.flood:
                raise UsageError("cannot flood; minimal interval allowed for user is 2ms")
            if self.interval < MIN_USER_INTERVAL:
                raise UsageError("cannot flood; minimal interval allowed for user is 2ms")


def parse_pattern(text: str) -> bytes:
    """-p: up to 16 bytes given as hex digits, like iputils."""
    digits = text.strip()
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise UsageError(f"patterns must be specified as hex digits: {text}")
    if len(digits) % 2:
        digits = digits[:-1] + "0" + digits[-1]
    return bytes.fromhex(digits)


def fill_payload(size: int, pattern: bytes | None) -> bytes:
    """All `size` data bytes as iputils fills them: byte i = i, or the -p pattern repeated from byte 0.

    When the data has room for iputils' timestamp, gnt's (8 bytes) overwrites the start.
    """
    if pattern:
        return (pattern * (size // len(pattern) + 1))[:size]
    return bytes(i & 0xFF for i in range(size))


@dataclass
class Control:
    """Signals from the CLI: a wake-up fd for poll and the flags the handlers set."""

    wakeup_fd: int | None = None
    stop: bool = False
    status: bool = False


@dataclass(slots=True)
class _Probe:
    seq: int
    user_send_ns: int
    kernel_send_ns: int | None = None
    replies: int = 0
    errored: bool = False  # an ICMP error answered it: reported as such, never as a timeout
    timed_out: bool = False  # reported lost


@dataclass(slots=True)
class _Stats:
    """Counters and running RTT sums (iputils' tsum/tsum2): memory stays flat however long ping runs."""

    transmitted: int = 0
    received: int = 0
    duplicates: int = 0
    corrupted: int = 0
    errors: int = 0
    timed: int = 0  # replies with an RTT (duplicates too, as iputils sums them)
    tsum_us: int = 0
    tsum2_us: int = 0
    tmin_us: int = 0
    tmax_us: int = 0
    ewma8: int = 0  # iputils' rtt*8 moving average, in microseconds
    pipe: int = 0  # most probes outstanding when an answer came (iputils' pipesize)
    acked: int = 0  # the highest sequence number answered (iputils' acked)

    def add_rtt(self, us: int) -> None:
        self.tmin_us = us if not self.timed else min(self.tmin_us, us)
        self.tmax_us = max(self.tmax_us, us)
        self.timed += 1
        self.tsum_us += us
        self.tsum2_us += us * us
        self.ewma8 = us * 8 if not self.ewma8 else self.ewma8 + us - self.ewma8 // 8

    def acknowledge(self, seq: int) -> None:
        """An answer to probe `seq` came: how many probes were in flight (iputils' acknowledge)."""
        self.pipe = max(self.pipe, self.transmitted - seq + 1)
        self.acked = max(self.acked, seq)

    def rtt_us(self) -> tuple[int, int, int, int] | None:
        """min, avg, max, mdev in microseconds, with iputils' integer arithmetic."""
        total = self.timed
        if not total:
            return None
        var = max((self.tsum2_us - self.tsum_us * self.tsum_us // total) // total, 0)
        return self.tmin_us, self.tsum_us // total, self.tmax_us, math.isqrt(var)


def _mark_warning(mark: int, exc: PermissionDenied) -> str:
    return f"WARNING: failed to set mark: {mark}: {os.strerror(exc.errno or errno.EPERM)}"


def _route_source(target: Target, interface: str | None, mark: int | None, warnings: list[str]) -> str:
    """The source address the kernel picks toward the target, found as iputils does: a UDP connect.

    A route that cannot be used (unreachable, prohibit) fails here, before anything is sent,
    as `connect: <reason>` (iputils' wording, exit 2).
    """
    with _route_probe(target, interface, mark, warnings) as probe:
        return str(probe.getsockname()[0])


def _route_probe(target: Target, interface: str | None, mark: int | None, warnings: list[str]) -> socket.socket:
    """A UDP socket connected toward the target on the echo socket's route (device, mark): the kernel's
    view of that route (source address, path MTU). Nothing is sent."""
    probe = socket.socket(target.family, socket.SOCK_DGRAM)
    try:
        if interface:
            try:
                probe.setsockopt(socket.SOL_SOCKET, sockets.SO_BINDTODEVICE, interface.encode() + b"\0")
            except OSError:
                pass
        if mark is not None:  # the mark can choose the route (policy routing), so the probe carries it
            try:
                sockets.set_mark(probe, mark)
            except PermissionDenied as exc:
                warnings.append(_mark_warning(mark, exc))  # iputils warns here, and again for the echo socket
        try:
            probe.connect((target.address, 1025))
        except OSError as exc:
            raise GntError(f"connect: {exc.strerror}", "check the route with `ip route get "
                           f"{target.address}`", errno=exc.errno) from exc
    except BaseException:
        probe.close()
        raise
    return probe


class Pinger:
    """One ping run. Iterate `run()` for events."""

    def __init__(self, options: PingOptions, control: Control | None = None) -> None:
        self.options = options
        self.control = control or Control()
        self.target = resolve(options.host, options.family, canonical=True)
        self.v6 = self.target.family == socket.AF_INET6
        self.probes: dict[int, _Probe] = {}  # by 16-bit sequence number, in send order (trimmed)
        self.tx_keys: dict[int, int] = {}  # n-th successful send -> seq16, until its TX timestamp came
        self.sends = 0  # successful sends: the kernel's SOF_TIMESTAMPING_OPT_ID key of the next one
        self.stats = _Stats()
        self.timing = options.size >= TIMING_MIN
        self.tx_stamps = False  # kernel TX timestamps asked for (see _configure)
        self.expected = fill_payload(options.size, options.pattern)
        # With room for iputils' timestamp, gnt's 8-byte one starts the data; else the data is the fill.
        self.payload_tail = self.expected[STAMP.size:] if self.timing else self.expected
        self.next_seq = 1
        self.names: dict[str, str | None] = {}
        self.resolve_names = not options.numeric and not self.target.is_numeric
        self.sock: sockets.EchoSocket | None = None
        self.unanswered: collections.deque[int] = collections.deque()  # seq16s in send order, for timeouts
        self.queued_errors: list[ErrorReply | SendFailed] = []  # errors read from the error queue, to report
        self.warnings: list[str] = []  # before the header
        self.late_warnings: list[str] = []  # after it (iputils sets up the echo socket after printing it)
        self.source: str | None = None
        self.last_activity = 0.0  # monotonic time of the last send (iputils' `time` in the statistics)
        # The RTT starts at the kernel's TX timestamp (the packet leaving the stack). Setting
        # GNT_PING_TX_CLOCK=user starts it just before sendto instead, as iputils does, which
        # adds the kernel's send path to every RTT; bench/bench_ping.py uses it to show that
        # the gap between the two is that send path and nothing of gnt's own.
        self.kernel_tx_clock = os.environ.get("GNT_PING_TX_CLOCK", "kernel") != "user"

    # -- set-up -------------------------------------------------------------------------------
    def _open(self) -> sockets.EchoSocket:
        opts = self.options
        if opts.interface and not is_literal(opts.interface):
            sockets.interface_index(opts.interface)  # an unknown name is an InterfaceError
        source = opts.interface if opts.interface and is_literal(opts.interface) else None
        if source is None:
            self.source = _route_source(self.target, opts.interface, opts.mark, self.warnings)
        es = sockets.open_icmp_echo(self.target.family, source=source)
        try:
            self._configure(es, source)
        except BaseException:
            es.close()
            raise
        return es

    def _configure(self, es: sockets.EchoSocket, source: str | None) -> None:
        opts = self.options
        s = es.sock
        family = self.target.family
        if opts.interface and source is None:
            sockets.bind_device(s, opts.interface)
        if opts.ttl is not None:
            sockets.set_ttl(s, family, opts.ttl)
        if es.is_dgram:
            sockets.enable_recverr(s, family)
        sockets.enable_recv_ttl(s, family)
        if opts.mark is not None:
            try:
                sockets.set_mark(s, opts.mark)
            except PermissionDenied as exc:
                self.late_warnings.append(_mark_warning(opts.mark, exc))  # iputils warns and pings unmarked
        if opts.pmtudisc is not None:
            sockets.set_pmtu_discovery(s, family, opts.pmtudisc)
        # Without kernel timestamps RTTs fall back to the user-space clock. Back to back (-f, -i 0)
        # the RTT starts at the send call, as iputils', and no TX timestamp wakes the loop per probe:
        # that wake-up would cost more than the probe.
        self.tx_stamps = self.timing and opts.interval != 0.0
        sockets.enable_timestamping(s, tx=self.tx_stamps)
        s.setblocking(False)

    # -- sending ------------------------------------------------------------------------------
    def _echo_bytes(self, seq: int, now_ns: int) -> bytes:
        assert self.sock is not None
        if self.timing:
            sec, usec = divmod(now_ns // 1000, 1_000_000)
            data = STAMP.pack(sec & 0xFFFFFFFF, usec) + self.payload_tail
        else:
            data = self.payload_tail
        if self.v6:
            return ICMP_HEADER.pack(ICMP6_ECHO_REQUEST, 0, 0, self.sock.ident, seq & 0xFFFF) + data
        if self.sock.is_dgram:  # a ping socket: the kernel writes the id and the checksum
            return ICMP_HEADER.pack(icmp.ECHO_REQUEST, 0, 0, self.sock.ident, seq & 0xFFFF) + data
        return icmp.ICMP.echo(self.sock.ident, seq & 0xFFFF).encode(data)  # a raw socket needs both

    def _send(self, seq: int) -> SendFailed | None:
        assert self.sock is not None
        packet = self._echo_bytes(seq, time.time_ns())
        self.stats.transmitted += 1
        seq16 = seq & 0xFFFF
        probes = self.probes
        probe = probes[seq16] = _Probe(seq, 0)  # replaces the probe 65536 sends ago, if still there
        self.unanswered.append(seq16)
        old = probes.get((seq - PROBE_WINDOW) & 0xFFFF)
        if old is not None and old.seq == seq - PROBE_WINDOW and (old.replies or old.errored or old.timed_out):
            del probes[(seq - PROBE_WINDOW) & 0xFFFF]  # answered long ago: only a late duplicate could need it
        sendto = self.sock.sock.sendto
        address = (self.target.address, 0)
        try:
            try:
                probe.user_send_ns = time.time_ns()  # as close to the system call as Python gets
                sendto(packet, address)
            except OSError as exc:
                # With IP_RECVERR an ICMP error about an earlier probe is also the socket's pending
                # error, and fails this send instead. Failing cleared it: send again (a real local
                # failure fails again).
                if not (self.sock.is_dgram and exc.errno in STALE_SEND_ERRORS):
                    raise
                reported = len(self.queued_errors)
                self._read_error_queue()
                if any(type(e) is SendFailed for e in self.queued_errors[reported:]):
                    return None  # the stack refused this very send (-M do above the MTU): its local error says so
                probe.user_send_ns = time.time_ns()
                sendto(packet, address)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ENOBUFS):
                return SendFailed(seq, f"sendmsg: {os.strerror(exc.errno)}")
            # As iputils, a send the local stack refused (-M do above the MTU) is a local error with the
            # details ("local error: message too long, mtu=1400"). A ping socket (IP_RECVERR) queued
            # it: report that. A raw socket has no IP_RECVERR (ICMP errors reach it as packets), so
            # nothing was queued: the MTU the error would carry is the route's path MTU, asked now.
            if self.sock.is_dgram:
                reported = len(self.queued_errors)
                self._read_error_queue()
                if len(self.queued_errors) > reported:
                    return None
            elif exc.errno == errno.EMSGSIZE:
                mtu = self._path_mtu()
                if mtu is not None:
                    return self._local_error(seq16, errno.EMSGSIZE, mtu)
            self.stats.errors += 1
            return SendFailed(seq, f"sendmsg: {exc.strerror}")
        if self.tx_stamps:
            self.tx_keys[self.sends] = seq16
            self.tx_keys.pop(self.sends - PROBE_WINDOW, None)  # its TX timestamp never came
        self.sends += 1
        return None

    # -- receiving ----------------------------------------------------------------------------
    def _name(self, address: str) -> str | None:
        if not self.resolve_names:
            return None
        if address not in self.names:
            self.names[address] = reverse_name(address, timeout=1.0)
        return self.names[address]

    def _rtt_us(self, probe: _Probe, rx_kernel_ns: int | None, rx_user_ns: int) -> int:
        use_kernel = self.kernel_tx_clock and probe.kernel_send_ns is not None and rx_kernel_ns is not None
        sent = probe.kernel_send_ns if use_kernel and probe.kernel_send_ns is not None else probe.user_send_ns
        received = rx_kernel_ns if rx_kernel_ns is not None else rx_user_ns
        return max((received - sent) // 1000, 0)

    def _wrong_data(self, data: bytes) -> tuple[int, int, int] | None:
        """iputils checks the data after its timestamp: (index, wanted, got) of the first wrong byte."""
        expected = self.expected
        if data[TIMING_MIN:] == expected[TIMING_MIN:len(data)]:
            return None
        for index in range(TIMING_MIN, min(len(expected), len(data))):
            if expected[index] != data[index]:
                return index, expected[index], data[index]
        return None

    def _on_echo_reply(self, ident: int, seq16: int, data: bytes, source: str, ttl: int | None,
                       rx_kernel_ns: int | None, icmp_len: int, checksum_ok: bool) -> Reply | None:
        assert self.sock is not None
        if ident != self.sock.ident:
            return None  # another process's echo (raw sockets see every reply)
        probe = self.probes.get(seq16)
        if probe is None:
            return None  # a reply to something we never sent (or long forgotten)
        rx_user_ns = time.time_ns()
        if self.tx_stamps and probe.kernel_send_ns is None:
            self._read_error_queue()  # this probe's TX timestamp is there
        if not checksum_ok:
            self.stats.corrupted += 1
            return Reply(probe.seq, source, ttl, icmp_len, None, bad_checksum=True, wall_time=rx_user_ns / 1e9)
        stats = self.stats
        stats.acknowledge(probe.seq)
        dup = probe.replies > 0
        probe.replies += 1
        if dup:
            stats.duplicates += 1
        else:
            stats.received += 1
        rtt_ms = None
        if self.timing:
            rtt_us = self._rtt_us(probe, rx_kernel_ns, rx_user_ns)
            stats.add_rtt(rtt_us)
            rtt_ms = rtt_us / 1000
        wrong = None
        dump = None
        if self.options.size > TIMING_MIN:
            wrong = self._wrong_data(data[:self.options.size])
            if wrong is not None:
                dump = data[TIMING_MIN:self.options.size]
        return Reply(
            probe.seq, source, ttl, icmp_len, rtt_ms, dup=dup, name=self._name(source),
            wrong_data=wrong, data_dump=dump, wall_time=rx_user_ns / 1e9,
        )

    def _error_event(self, seq16: int, source: str | None, icmp_type: int | None, icmp_code: int | None,
                     message: str) -> ErrorReply | None:
        probe = self.probes.get(seq16)
        if probe is None:
            return None
        self.stats.errors += 1
        self.stats.acknowledge(probe.seq)
        probe.errored = True
        return ErrorReply(probe.seq, source, icmp_type, icmp_code, message,
                          name=self._name(source) if source else None, wall_time=time.time())
    def _read_socket(self) -> Iterator[Reply | ErrorReply]:
        """The next answer of ours waiting on the socket."""
        assert self.sock is not None
        while True:
            try:
                got = sockets.receive(self.sock.sock)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # A DGRAM socket with IP_RECVERR reports a pending error on recv; the queue has it.
                if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EMSGSIZE):
                    return
                raise
            event = self._parse(got)
            if event is not None:
                yield event
                return  # one answer per poll (level-triggered): no system call to find the socket empty

    def _parse(self, got: sockets.Received) -> Reply | ErrorReply | None:
        assert self.sock is not None
        data = got.data
        ttl = got.ttl
        offset = 0
        if not self.v6 and self.sock.kind == "raw":
            try:
                ip = IPv4.decode(data)
            except DecodeError:
                return None
            ttl = ip.ttl
            offset = ip.payload_offset
        if len(data) - offset < ICMP_HEADER.size:
            return None
        icmp_type, code, _csum, ident, seq16 = ICMP_HEADER.unpack_from(data, offset)
        body = data[offset + ICMP_HEADER.size:]
        icmp_len = len(data) - offset
        reply_type = ICMP6_ECHO_REPLY if self.v6 else icmp.ECHO_REPLY
        if icmp_type == reply_type:
            # The kernel verifies checksums for ping sockets and ICMPv6; a raw v4 socket must check.
            checksum_ok = True if (self.v6 or self.sock.is_dgram) else verify(data[offset:])
            return self._on_echo_reply(ident, seq16, body, got.address, ttl, got.kernel_time_ns,
                                       icmp_len, checksum_ok)
        if self.sock.is_dgram:
            return None  # errors for ping sockets come through the error queue
        return self._parse_quoted_error(icmp_type, code, data, offset, got.address)

    def _parse_quoted_error(self, icmp_type: int, code: int, data: bytes, offset: int,
                            source: str) -> ErrorReply | None:
        """A raw socket sees ICMP errors on the wire: find our echo inside the quote."""
        assert self.sock is not None
        _t, _c, _s, hi, lo = ICMP_HEADER.unpack_from(data, offset)
        info = hi << 16 | lo
        quote = offset + ICMP_HEADER.size
        if self.v6:
            if icmp_type not in (ICMP6_DEST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED,
                                 ICMP6_PARAM_PROBLEM):
                return None
            inner = quote + 40  # quoted IPv6 header; echo requests carry no extension headers
            if len(data) < inner + ICMP_HEADER.size or data[quote + 6] != socket.IPPROTO_ICMPV6:
                return None
            q_type, _qc, _qs, q_id, q_seq = ICMP_HEADER.unpack_from(data, inner)
            if q_type != ICMP6_ECHO_REQUEST or q_id != self.sock.ident:
                return None
            return self._error_event(q_seq, source, icmp_type, code, describe6(icmp_type, code, info))
        if icmp_type not in icmp.ERROR_TYPES:
            return None
        try:
            inner_ip = IPv4.decode(data, quote)
        except DecodeError:
            return None
        if inner_ip.proto != socket.IPPROTO_ICMP or len(data) < inner_ip.payload_offset + ICMP_HEADER.size:
            return None
        q_type, _qc, _qs, q_id, q_seq = ICMP_HEADER.unpack_from(data, inner_ip.payload_offset)
        if q_type != icmp.ECHO_REQUEST or q_id != self.sock.ident:
            return None
        return self._error_event(q_seq, source, icmp_type, code, icmp.describe(icmp_type, code, info))

    def _read_error_queue(self) -> None:
        """Read the error queue: TX timestamps go to their probes, ICMP errors to `queued_errors`."""
        assert self.sock is not None
        for entry in sockets.read_error_queue(self.sock.sock):
            if isinstance(entry, sockets.TxTimestamp):
                seq16 = self.tx_keys.pop(entry.key, None)  # SOF_TIMESTAMPING_OPT_ID counts sends from 0
                if seq16 is not None:
                    probe = self.probes.get(seq16)
                    if probe is not None and probe.kernel_send_ns is None:
                        probe.kernel_send_ns = entry.kernel_time_ns
                continue
            event = self._queued_error(entry)
            if event is not None:
                self.queued_errors.append(event)

    def _queued_error(self, entry: sockets.QueuedError) -> ErrorReply | SendFailed | None:
        payload = entry.payload
        if entry.origin == sockets.SO_EE_ORIGIN_LOCAL and len(payload) < ICMP_HEADER.size:
            # The local stack quotes nothing of a request it refused to send: the one being sent.
            return self._local_error(self.next_seq & 0xFFFF, entry.errno, entry.info)
        if len(payload) < ICMP_HEADER.size:
            return None
        _t, _c, _s, _id, seq16 = ICMP_HEADER.unpack_from(payload)
        if entry.origin == sockets.SO_EE_ORIGIN_ICMP:
            message = icmp.describe(entry.icmp_type, entry.icmp_code, entry.info)
        elif entry.origin == sockets.SO_EE_ORIGIN_ICMP6:
            message = describe6(entry.icmp_type, entry.icmp_code, entry.info)
        elif entry.origin == sockets.SO_EE_ORIGIN_LOCAL:
            return self._local_error(seq16, entry.errno, entry.info)
        else:
            return None
        return self._error_event(seq16, entry.offender, entry.icmp_type, entry.icmp_code, message)

    def _path_mtu(self) -> int | None:
        """The path MTU the kernel holds now toward the target, on the echo socket's route."""
        opts = self.options
        try:
            with _route_probe(self.target, opts.interface, opts.mark, []) as probe:
                return sockets.known_path_mtu(probe, self.target.family)
        except GntError:
            return None

    def _local_error(self, seq16: int, error: int, info: int) -> SendFailed | None:
        """The local stack refused a request (errno `error`, `info` the MTU for EMSGSIZE): iputils'
        stderr line, counted as an error."""
        probe = self.probes.get(seq16)
        if probe is None:
            return None
        self.stats.errors += 1
        if error == errno.EMSGSIZE:
            return SendFailed(probe.seq, f"local error: message too long, mtu{': ' if self.v6 else '='}{info}",
                              local=True)
        return SendFailed(probe.seq, f"local error: {os.strerror(error)}", local=True)

    # -- the loop -----------------------------------------------------------------------------
    def _interim(self) -> Interim:
        s = self.stats
        loss = int((s.transmitted - s.received) * 100 / s.transmitted) if s.transmitted else 0
        if s.timed:
            return Interim(s.transmitted, s.received, loss, s.tmin_us, s.tsum_us // s.timed, s.ewma8 // 8,
                           s.tmax_us)
        return Interim(s.transmitted, s.received, loss, None, None, None, None)

    def summary(self, elapsed_s: float) -> Summary:
        """The statistics block; `elapsed_s` runs from the start to the last send (iputils' `time`)."""
        s = self.stats
        opts = self.options
        loss = (s.transmitted - s.received) * 100.0 / s.transmitted if s.transmitted else 0.0
        rtt_us = s.rtt_us() if s.received else None
        rtt = Rtt(*(round(us / 1000, 3) for us in rtt_us)) if rtt_us is not None else None
        elapsed_us = int(elapsed_s * 1_000_000)
        # iputils: ipg/ewma when replies came and probes go out faster than it waits (-f, -i 0).
        show_ipg = bool(s.received) and s.transmitted > 1 and (opts.flood or int(opts.interval * 1000) == 0)
        ipg_us = elapsed_us // (s.transmitted - 1) if s.transmitted > 1 else 0
        name = self.target.host if self.v6 else (self.target.canonical or self.target.host)
        return Summary(
            host=name, address=self.target.address, transmitted=s.transmitted,
            received=s.received, duplicates=s.duplicates, errors=s.errors, loss_percent=round(loss, 3),
            time_ms=(elapsed_us + 500) // 1000, rtt=rtt, pipe=s.pipe if s.pipe > 1 else None,
            corrupted=s.corrupted, rtt_us=rtt_us, ewma_us=s.ewma8 // 8, ipg_us=ipg_us if show_ipg else None,
        )

    def start_event(self) -> PingStart:
        opts = self.options
        literal = bool(opts.interface) and is_literal(opts.interface or "")
        source = opts.interface if literal else self.source if opts.interface else None
        assert self.sock is not None
        if self.v6:
            # iputils: `PING typed(name (address))`, the address named as a reply's source is.
            name = self._name(self.target.address)
            shown = f"{name} ({self.target.address})" if name else self.target.address
            host = self.target.host
        else:
            host = self.target.canonical or self.target.host
            shown = self.target.address
        return PingStart(host, self.target.address, self.target.family, opts.size, source,
                         None if literal else opts.interface, opts.pattern, self.sock.kind, shown=shown)

    def run(self) -> Iterator[object]:
        self.sock = self._open()
        try:
            yield from self._loop()
        finally:
            self.sock.close()

    def _finished(self) -> bool:
        """iputils' exit tests after every event: -c answers (replies and errors), or an error under -w."""
        s = self.stats
        count = self.options.count
        if count is not None and s.received + s.errors >= count:
            return True
        return self.options.deadline is not None and s.errors > 0

    def _loop(self) -> Iterator[object]:
        opts = self.options
        assert self.sock is not None
        for warning in self.warnings:
            yield PingWarning(warning)
        yield self.start_event()
        for warning in self.late_warnings:
            yield PingWarning(warning)
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN | select.POLLERR)
        if self.control.wakeup_fd is not None:
            poller.register(self.control.wakeup_fd, select.POLLIN)
        # No interval (-f, -i 0), as iputils: send as soon as the reply is back, or every 10 ms.
        back_to_back = opts.interval == 0.0
        interval = FLOOD_INTERVAL if back_to_back else opts.interval
        clock = time.monotonic
        start = clock()
        self.last_activity = start
        deadline_at = start + opts.deadline if opts.deadline is not None else None
        linger = opts.timeout if opts.timeout is not None else DEFAULT_LINGER
        next_send = start
        exit_at: float | None = None
        stats = self.stats
        unanswered = self.unanswered
        probes = self.probes
        while True:
            now = clock()
            if self.control.stop:
                break
            if self.control.status:
                self.control.status = False
                yield self._interim()
            if deadline_at is not None and now >= deadline_at:
                break
            if self._finished():
                break
            if exit_at is not None and now >= exit_at:
                break
            # iputils: with a deadline, -c counts answers, not sends: keep sending until either.
            all_sent = opts.count is not None and stats.transmitted >= opts.count and deadline_at is None
            # Back to back (iputils' pinger with no interval): the next probe goes when the last
            # one is answered, or 10 ms after it at the latest.
            if not all_sent and (now >= next_send or (back_to_back and stats.acked >= stats.transmitted)):
                seq = self.next_seq
                previous = probes.get((seq - 1) & 0xFFFF)
                if opts.report_outstanding and seq > 1 and previous is not None and previous.replies == 0:
                    yield NoAnswerYet(seq - 1, time.time())
                sent_before = self.sends
                failure = self._send(seq)
                self.last_activity = now
                self.next_seq += 1
                if failure is not None:
                    yield failure
                if self.queued_errors:  # a local error the refused send queued (-M do), or stale ones
                    yield from self.queued_errors
                    self.queued_errors.clear()
                if opts.flood and self.sends > sent_before:  # a dot for each probe that went out
                    yield Sent(seq)
                next_send = now + interval if back_to_back else max(next_send + interval, now)
                if opts.count is not None and stats.transmitted >= opts.count and deadline_at is None:
                    # iputils' schedule_exit: wait 2 x the longest RTT (at least one interval)
                    # for the last replies, or the linger time (-W, default 10 s) when none came.
                    wait = max(2 * stats.tmax_us / 1e6, opts.interval) if stats.received else linger
                    exit_at = now + wait
                if now >= next_send:
                    continue  # behind schedule: the next one goes at once
                all_sent = opts.count is not None and stats.transmitted >= opts.count and deadline_at is None
            # A probe unanswered for the linger time is reported lost (scripts see it as it happens).
            # Probes go out in order, so only the oldest unanswered ones can have timed out.
            if unanswered:
                limit_ns = time.time_ns() - int(linger * 1e9)
                while unanswered:
                    probe = probes.get(unanswered[0])
                    if probe is None or probe.replies or probe.errored:
                        unanswered.popleft()
                    elif probe.user_send_ns <= limit_ns:
                        unanswered.popleft()
                        probe.timed_out = True
                        if probe.seq <= self.next_seq - PROBE_WINDOW:
                            del probes[probe.seq & 0xFFFF]  # beyond the window: nothing more to keep it for
                        yield Timeout(probe.seq)
                    else:
                        break
            targets = [t for t in (deadline_at, exit_at, None if all_sent else next_send) if t is not None]
            timeout_ms = max(int((min(targets) - now) * 1000) + 1, 0) if targets else 1000
            done = False
            for fd, mask in poller.poll(min(timeout_ms, 1000)):
                if fd == self.control.wakeup_fd:
                    try:
                        os.read(fd, 512)
                    except OSError:
                        pass
                    continue
                if mask & select.POLLERR:
                    self._read_error_queue()  # TX timestamps first: the replies below need them
                if mask & select.POLLIN:
                    for event in self._read_socket():
                        yield event
                        if self._finished():
                            done = True  # iputils stops here: a later duplicate is not counted
                            break
                while self.queued_errors and not done:
                    yield self.queued_errors.pop(0)
                    done = self._finished()
            if done:
                break
        elapsed = self.last_activity - start
        for seq16 in unanswered:
            probe = probes.get(seq16)
            if probe is not None and probe.replies == 0 and not probe.errored and not probe.timed_out:
                yield Timeout(probe.seq)
        yield self.summary(elapsed)


def ping(options: PingOptions, control: Control | None = None) -> Iterator[object]:
    """Resolve, open the socket, and yield the run's events (start, replies, errors, summary)."""
    privileged = os.geteuid() == 0
    options.validate(privileged=privileged)
    pinger = Pinger(options, control)
    options.validate(privileged=privileged, family=pinger.target.family)
    return pinger.run()


def exit_code(summary: Summary, options: PingOptions) -> int:
    """iputils: 0 when replies came; 1 when none came, or fewer than -c before the -w deadline."""
    if summary.received == 0:
        return 1
    if options.deadline is not None and options.count is not None and summary.received < options.count:
        return 1
    return 0

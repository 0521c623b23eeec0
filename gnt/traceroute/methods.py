"""Probe methods: how each kind of probe is sent, and how its identity is read back from the quote.

Every probe carries its identity (a per-trace sequence number) in something the ICMP error
quotes back, and `Answer.seq` is always decoded from that quote, never from timing:

- udp (default): one socket, destination port 33434 + seq; the kernel hands back the quoted
  destination port in msg_name of the error-queue entry (RFC 1393 style, as the Linux traceroute).
- udp-port (-U) and tcp (-T): one socket per probe, each with its own local port; the kernel
  finds the socket from the quoted source port, so the socket *is* the identity. For TCP the
  quoted header (source port) is checked too; a SYN-ACK or RST from the destination completes
  (or refuses) the non-blocking connect: "reached".
- icmp (-I): the echo sequence number, from the echo reply or from the quoted echo request.
- paris (--paris, --paths): one socket per flow with constant ports (and, for ICMP, a constant
  id and checksum), so ECMP hashing keeps every probe of a flow on one path; the identity goes
  into the payload instead (UDP: first word, with a compensating word that makes the UDP
  checksum carry it too; ICMP: the sequence, with a compensating word that keeps the checksum
  constant). Paris TCP keeps one local port per flow and so sends one probe per flow at a time.

Unprivileged throughout: UDP and TCP use ordinary sockets with IP_RECVERR/IPV6_RECVERR, ICMP the
DGRAM ping socket. A raw ICMP socket is used only when the ping socket is refused (root with a
narrow ping_group_range); then errors arrive as ordinary packets and are decoded here.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from gnt.core import sockets
from gnt.core.checksum import PROTO_UDP, add, address_bytes, pseudo_header
from gnt.core.packets import icmp
from gnt.core.packets.ipv4 import IPv4
from gnt.errors import DecodeError, GntError

UDP_BASE_PORT = 33434  # first destination port of default UDP probes (Linux traceroute, RFC 1393)
UDP_CONSTANT_PORT = 53  # -U: destination port (DNS, usually let through firewalls)
TCP_PORT = 80  # -T: destination port
PORT_SPACE = 65536  # ports wrap around after 65535
IPV4_HEADER = 20  # bytes, no options (payload_size: probes carry no IP options)
IPV6_HEADER = 40  # bytes, fixed header
UDP_HEADER = 8  # bytes, RFC 768
ICMP_HEADER = 8  # bytes, echo header (RFC 792 / RFC 4443)
TCP_HEADER = 20  # bytes, no options (RFC 9293)
TCP_SYN_RTO = 1_000_000_000  # ns: the kernel resends an unanswered SYN after 1 s (RFC 6298's initial RTO) ...
SYN_LINEAR_SYSCTL = "/proc/sys/net/ipv4/tcp_syn_linear_timeouts"  # ... the first N times (Linux 6.5+), then doubling
TCP_SYN_HEADER = 40  # bytes of the kernel's SYN: header + MSS, SACK-permitted, timestamps, window scale
DEFAULT_PACKET_V4 = 60  # bytes on the wire by default (IPv4), as the Linux traceroute
DEFAULT_PACKET_V6 = 80  # bytes on the wire by default (IPv6), as the Linux traceroute
SEND_ATTEMPTS = 4  # sends tried while earlier probes' errors keep failing them
PARIS_WORDS = 4  # bytes of payload a paris probe needs: identity word + compensation word

# ICMPv6 types, as in gnt.core.packets.icmpv6: that module (NDP and its options) costs more to
# import than the rest of a trace's start-up, so an IPv4 trace does not load it.
ICMP6_DST_UNREACH = 1  # RFC 4443 §3.1
ICMP6_PACKET_TOO_BIG = 2  # RFC 4443 §3.2
ICMP6_TIME_EXCEEDED = 3  # RFC 4443 §3.3
ICMP6_ECHO_REQUEST = 128  # RFC 4443 §4.1
ICMP6_ECHO_REPLY = 129  # RFC 4443 §4.2

# ICMPv4 destination-unreachable code -> the Linux traceroute's annotation (RFC 792, RFC 1812 §5.2.7.1).
UNREACH4 = {
    0: "!N", 6: "!N", 8: "!N", 11: "!N",  # net unreachable/unknown, source isolated, net for TOS
    1: "!H", 7: "!H", 12: "!H",  # host unreachable/unknown, host for TOS
    9: "!X", 10: "!X", 13: "!X",  # net/host administratively prohibited, communication filtered
    2: "!P",  # protocol unreachable
    5: "!S",  # source route failed
    14: "!V",  # host precedence violation
    15: "!C",  # precedence cutoff in effect
}
UNREACH4_PORT = 3  # port unreachable: the destination answered
UNREACH4_NEEDFRAG = 4  # fragmentation needed: annotated !F-<next-hop mtu>
# ICMPv6 destination-unreachable code -> annotation (RFC 4443 §3.1).
UNREACH6 = {0: "!N", 1: "!X", 2: "!H", 3: "!H"}  # no route, prohibited, beyond scope, address unreachable
UNREACH6_PORT = 4  # port unreachable: the destination answered
# Local errors (the sending stack itself gave up) -> annotation.
LOCAL_ERRNO = {errno.EHOSTUNREACH: "!H", errno.ENETUNREACH: "!N", errno.EACCES: "!X", errno.EPERM: "!X"}

HOP = "hop"  # time exceeded: a router on the way
REACHED = "reached"  # the destination answered (port unreachable, echo reply, SYN-ACK, RST, data)
FINAL = "final"  # an unreachable error: nothing beyond it will answer


@dataclass(slots=True)
class Answer:
    """What came back for probe `seq`."""

    seq: int
    kind: str  # HOP, REACHED or FINAL
    address: str | None
    annotation: str | None
    recv_ns: int  # CLOCK_REALTIME nanoseconds (kernel RX timestamp when there is one)
    sent_ns: int | None = None  # when what it answers was sent, if not the probe itself (a resent SYN)
    karn: bool = False  # it may answer a retransmission: its RTT is not used to time other probes


def classify(family: int, origin: int, icmp_type: int, code: int, info: int, err: int) -> tuple[str, str | None]:
    """(kind, annotation) for an error-queue entry or a received ICMP error, as the Linux traceroute."""
    if origin == sockets.SO_EE_ORIGIN_LOCAL:
        if err == errno.EMSGSIZE:
            return FINAL, f"!F-{info}"
        return FINAL, LOCAL_ERRNO.get(err, f"!<{err}>")
    if family == socket.AF_INET6:
        if icmp_type == ICMP6_TIME_EXCEEDED:
            return HOP, None
        if icmp_type == ICMP6_DST_UNREACH:
            if code == UNREACH6_PORT:
                return REACHED, None
            return FINAL, UNREACH6.get(code, f"!<{code}>")
        if icmp_type == ICMP6_PACKET_TOO_BIG:
            return FINAL, f"!F-{info}"
        return FINAL, f"!<{code}>"
    if icmp_type == icmp.TIME_EXCEEDED:
        return HOP, None
    if icmp_type == icmp.DEST_UNREACH:
        if code == UNREACH4_PORT:
            return REACHED, None
        if code == UNREACH4_NEEDFRAG:
            return FINAL, f"!F-{info}"
        return FINAL, UNREACH4.get(code, f"!<{code}>")
    return FINAL, f"!<{code}>"


def udp_probe_port(base: int, seq: int) -> int:
    """Destination port of default UDP probe `seq` (port 0 is skipped when the range wraps)."""
    port = (base + seq) % PORT_SPACE
    return port if port else 1


def udp_probe_seq(base: int, port: int) -> int:
    """Inverse of `udp_probe_port` for the first 65535 probes of a trace."""
    return (port - base) % PORT_SPACE


def paris_udp_payload(fixed_sum: int, seq: int, size: int) -> bytes:
    """A paris UDP payload: word 0 is the identity, word 1 makes the UDP checksum equal `seq + 1`.

    `fixed_sum` is the ones' complement sum of the pseudo-header and the UDP header with a zero
    checksum (both constant for one flow). The rest of the payload is zeros.
    """
    target = (seq % 0xFFFE) + 1  # checksum carried by the probe: never 0 (0 means "no checksum")
    ident = seq & 0xFFFF
    # checksum = ~(fixed + ident + comp)  =>  comp = ~target - fixed - ident  (mod 0xffff)
    comp = ((~target & 0xFFFF) - fixed_sum - ident) % 0xFFFF
    return struct.pack("!HH", ident, comp) + bytes(max(size, PARIS_WORDS) - PARIS_WORDS)


def paris_icmp_payload(seq: int, size: int) -> bytes:
    """A paris echo payload: word 0 compensates the sequence so the ICMP checksum stays constant."""
    comp = (0x7FFF - (seq & 0xFFFF)) % 0xFFFF  # seq + comp is the same (mod 0xffff) for every seq
    return struct.pack("!H", comp) + bytes(max(size, 2) - 2)


Handler = Callable[[int], list[Answer]]


class Method:
    """Base of the probe methods: owns its sockets and registers them with the engine's selector."""

    name = "udp"
    max_inflight_per_flow: int | None = None  # None: no limit
    oldest_inflight: Callable[[int], int | None] | None = None  # set by the engine (paris UDP replies)
    pmtudisc: str | None = None  # DF handling of the probe sockets (-F, --mtu, gnt mtu); None: kernel default

    def __init__(self, family: int, destination: str, port: int, flows: int, payload_size: int,
                 selector: selectors.BaseSelector, *, source: str | None, interface: str | None,
                 paris: bool, constant_port: bool = False) -> None:
        self.family = family
        self.destination = destination
        self.port = port
        self.flows = max(flows, 1)
        self.payload_size = payload_size
        self.selector = selector
        self.source = source
        self.interface = interface
        self.paris = paris
        self.local_address: str | None = None
        self.constant_port = constant_port  # UDP only: -U
        self.setup()

    def setup(self) -> None:
        """Per-method state, after the common attributes are set."""

    def open(self) -> None:
        """Open the per-flow sockets (per-probe methods open theirs in `send`)."""

    def send(self, seq: int, ttl: int, flow: int) -> int:
        """Send probe `seq`; returns its send time (CLOCK_REALTIME ns)."""
        raise NotImplementedError

    def retire(self, seq: int) -> None:
        """Probe `seq` needs no more answers (per-probe sockets are closed here)."""

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            sock = key.fileobj
            self.selector.unregister(sock)
            if isinstance(sock, socket.socket):
                sock.close()

    def _local_answer(self, seq: int, exc: OSError) -> Answer:
        kind, note = classify(self.family, sockets.SO_EE_ORIGIN_LOCAL, 0, 0, 0, exc.errno or 0)
        return Answer(seq, kind, self.local_address, note, time.time_ns())

    def _transmit(self, sock: socket.socket, payload: bytes, target: tuple[str, int] | None) -> int:
        """Send one datagram; returns its send time (CLOCK_REALTIME ns).

        With IP_RECVERR the ICMP error of an earlier probe also sets the socket's pending error,
        and the next send would fail with it instead of going out. Reading SO_ERROR clears it
        (the error-queue entry stays): clear, send, and clear again if an error slipped in.
        """
        for _attempt in range(SEND_ATTEMPTS):
            sockets.clear_pending_error(sock)
            sent = time.time_ns()
            try:
                if target is None:
                    sock.send(payload)
                else:
                    sock.sendto(payload, target)
            except OSError as exc:
                if exc.errno in (errno.ENETUNREACH, errno.EACCES, errno.EPERM, errno.EINVAL, errno.EMSGSIZE):
                    raise self._send_failed(exc) from exc
                continue  # an earlier probe's error (EHOSTUNREACH, ECONNREFUSED, ...): send again
            return sent
        return time.time_ns()

    def _send_failed(self, exc: OSError) -> GntError:
        return GntError(f"cannot send a probe to {self.destination}: {exc.strerror}",
                        "check the route with `ip route get " + self.destination + "`", errno=exc.errno)


class UdpMethod(Method):
    """UDP probes: port per probe (default), one socket per probe (-U), or one per flow (paris)."""

    name = "udp"

    def setup(self) -> None:
        self.name = "udp-port" if self.constant_port else "udp"
        self.flow_socks: list[socket.socket] = []
        self.flow_sums: list[int] = []
        self.probe_socks: dict[int, socket.socket] = {}
        self.per_probe = self.constant_port and not self.paris

    def open(self) -> None:
        if self.per_probe:
            return
        for flow in range(self.flows):
            sock = sockets.open_udp_probe(self.family, source=self.source, device=self.interface,
                                          pmtudisc=self.pmtudisc)
            if self.paris:
                sock.connect((self.destination, self.port))
                self.flow_sums.append(self._fixed_sum(sock))
            self.flow_socks.append(sock)
            self.selector.register(sock, selectors.EVENT_READ, self._flow_handler(flow))
            if self.paris:  # connected: bound to the source address the route picked
                self.local_address = sock.getsockname()[0]

    def _fixed_sum(self, sock: socket.socket) -> int:
        src = sock.getsockname()
        length = UDP_HEADER + max(self.payload_size, PARIS_WORDS)
        acc = add(0, pseudo_header(address_bytes(src[0]), address_bytes(self.destination), PROTO_UDP, length))
        return add(acc, struct.pack("!HHHH", src[1], self.port, length, 0))

    def send(self, seq: int, ttl: int, flow: int) -> int:
        if self.per_probe:
            sock = sockets.open_udp_probe(self.family, source=self.source, device=self.interface,
                                          pmtudisc=self.pmtudisc)
            try:
                sock.connect((self.destination, self.port))
            except OSError as exc:
                sock.close()
                raise self._send_failed(exc) from exc
            self.local_address = sock.getsockname()[0]
            self.probe_socks[seq] = sock
            self.selector.register(sock, selectors.EVENT_READ, self._probe_handler(seq, sock))
            payload = bytes(self.payload_size)
            target: tuple[str, int] | None = None
        else:
            sock = self.flow_socks[flow]
            if self.paris:
                payload = paris_udp_payload(self.flow_sums[flow], seq, self.payload_size)
                target = None
            else:
                payload = bytes(self.payload_size)
                target = (self.destination, udp_probe_port(self.port, seq))
        sockets.set_ttl(sock, self.family, ttl)
        return self._transmit(sock, payload, target)

    def retire(self, seq: int) -> None:
        sock = self.probe_socks.pop(seq, None)
        if sock is not None:
            self.selector.unregister(sock)
            sock.close()

    def _seq_from_error(self, entry: sockets.QueuedError) -> int | None:
        if self.paris:
            payload = entry.payload
            return struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else None
        if entry.quoted_port is None:
            return None
        return udp_probe_seq(self.port, entry.quoted_port)

    def _errors(self, sock: socket.socket, fixed_seq: int | None) -> list[Answer]:
        answers: list[Answer] = []
        for entry in sockets.read_probe_errors(sock):
            err = entry
            seq = fixed_seq if fixed_seq is not None else self._seq_from_error(entry)
            if seq is None:
                continue
            kind, note = classify(self.family, err.origin, err.icmp_type, err.icmp_code, err.info, err.errno)
            address = err.offender if err.origin != sockets.SO_EE_ORIGIN_LOCAL else self.local_address
            answers.append(Answer(seq, kind, address, note, err.kernel_time_ns or time.time_ns()))
        return answers

    def _data(self, sock: socket.socket, fixed_seq: int | None, flow: int) -> list[Answer]:
        """UDP data from the destination (a service answered the probe): reached."""
        answers: list[Answer] = []
        while True:
            try:
                _data, _anc, _flags, address = sock.recvmsg(65536, 512, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return answers
            except OSError:
                return answers  # a pending socket error; the error queue has the details
            if fixed_seq is not None:
                seq: int | None = fixed_seq
            elif self.paris:
                # A service's reply quotes nothing of ours: it completes this flow's oldest probe.
                seq = self.oldest_inflight(flow) if self.oldest_inflight else None
            else:
                seq = udp_probe_seq(self.port, address[1])
            if seq is not None:
                answers.append(Answer(seq, REACHED, address[0], None, time.time_ns()))

    def _flow_handler(self, flow: int) -> Handler:
        sock = self.flow_socks[flow]

        def handle(_mask: int) -> list[Answer]:
            return self._errors(sock, None) + self._data(sock, None, flow)

        return handle

    def _probe_handler(self, seq: int, sock: socket.socket) -> Handler:
        def handle(_mask: int) -> list[Answer]:
            return self._errors(sock, seq) + self._data(sock, seq, 0)

        return handle


class IcmpMethod(Method):
    """ICMP echo probes on the DGRAM ping socket (raw socket as a fallback); sequence = identity."""

    name = "icmp"

    def setup(self) -> None:
        self.echo: list[sockets.EchoSocket] = []
        self.seq_base = 1  # first echo sequence number, as the Linux traceroute

    def open(self) -> None:
        for flow in range(self.flows):
            es = sockets.open_icmp_echo(self.family, raw_ident=(os.getpid() + flow) & 0xFFFF, source=self.source)
            try:
                if self.interface:
                    sockets.bind_device(es.sock, self.interface)
                if self.pmtudisc:
                    sockets.set_pmtu_discovery(es.sock, self.family, self.pmtudisc)
                es.sock.setblocking(False)
                if es.is_dgram:
                    sockets.enable_recverr(es.sock, self.family)
                sockets.enable_timestamping(es.sock)
            except BaseException:
                es.close()
                raise
            self.echo.append(es)
            self.selector.register(es.sock, selectors.EVENT_READ, self._handler(es))

    def _wire_seq(self, seq: int) -> int:
        return (self.seq_base + seq) & 0xFFFF

    def _seq(self, wire_seq: int) -> int:
        return (wire_seq - self.seq_base) & 0xFFFF

    def send(self, seq: int, ttl: int, flow: int) -> int:
        es = self.echo[flow]
        v6 = self.family == socket.AF_INET6
        wire_seq = self._wire_seq(seq)
        payload = paris_icmp_payload(wire_seq, self.payload_size) if self.paris else bytes(self.payload_size)
        if v6:  # the kernel computes the ICMPv6 checksum (RFC 3542 §3.1)
            packet = icmp.HEADER.pack(ICMP6_ECHO_REQUEST, 0, 0, es.ident, wire_seq) + payload
        else:  # a raw socket needs the checksum; a ping socket computes its own
            packet = icmp.ICMP.echo(es.ident, wire_seq).encode(payload)
        sockets.set_ttl(es.sock, self.family, ttl)
        return self._transmit(es.sock, packet, (self.destination, 0))

    def _handler(self, es: sockets.EchoSocket) -> Handler:
        def handle(_mask: int) -> list[Answer]:
            answers: list[Answer] = []
            if es.is_dgram:
                for entry in sockets.read_probe_errors(es.sock):
                    err = entry
                    if len(err.payload) < icmp.HEADER.size:
                        continue
                    seq = self._seq(icmp.ICMP.decode(err.payload).seq)  # the quoted echo request
                    kind, note = classify(self.family, err.origin, err.icmp_type, err.icmp_code, err.info,
                                          err.errno)
                    address = err.offender if err.origin != sockets.SO_EE_ORIGIN_LOCAL else None
                    answers.append(Answer(seq, kind, address, note, err.kernel_time_ns or time.time_ns()))
            while True:
                try:
                    got = sockets.receive(es.sock)
                except (BlockingIOError, InterruptedError):
                    return answers
                except OSError:
                    return answers
                answer = self._decode(es, got)
                if answer is not None:
                    answers.append(answer)

        return handle

    def _decode(self, es: sockets.EchoSocket, got: sockets.Received) -> Answer | None:
        """An echo reply, or (raw sockets) an ICMP error quoting one of our echo requests."""
        v6 = self.family == socket.AF_INET6
        data = got.data
        offset = 0
        if es.kind == "raw" and not v6:
            try:
                offset = IPv4.decode(data).payload_offset
            except DecodeError:
                return None
        if len(data) < offset + icmp.HEADER.size:
            return None
        icmp_type, code, _csum, ident, wire_seq = icmp.HEADER.unpack_from(data, offset)  # ICMPv6: same layout
        stamp = got.kernel_time_ns or time.time_ns()
        if icmp_type == (ICMP6_ECHO_REPLY if v6 else icmp.ECHO_REPLY):
            if es.kind == "raw" and ident != es.ident:
                return None
            return Answer(self._seq(wire_seq), REACHED, got.address, None, stamp)
        if es.kind != "raw":
            return None
        # Raw socket: an ICMP error is an ordinary packet; the echo request it quotes follows.
        info = ident << 16 | wire_seq  # the rest of the error's header
        quoted = offset + icmp.HEADER.size
        if v6:
            # The quoted IPv6 header: echo requests carry no extension headers.
            if len(data) < quoted + IPV6_HEADER or data[quoted + 6] != socket.IPPROTO_ICMPV6:
                return None
            inner = quoted + IPV6_HEADER
            mtu = info
        else:
            try:
                quoted_ip = IPv4.decode(data, quoted)
            except DecodeError:
                return None
            if quoted_ip.proto != socket.IPPROTO_ICMP:
                return None
            inner = quoted_ip.payload_offset
            mtu = info & 0xFFFF
        if len(data) < inner + icmp.HEADER.size:
            return None
        q_type, _q_code, _q_csum, q_ident, q_seq = icmp.HEADER.unpack_from(data, inner)
        if q_type != (ICMP6_ECHO_REQUEST if v6 else icmp.ECHO_REQUEST) or q_ident != es.ident:
            return None
        origin = sockets.SO_EE_ORIGIN_ICMP6 if v6 else sockets.SO_EE_ORIGIN_ICMP
        kind, note = classify(self.family, origin, icmp_type, code, mtu, 0)
        return Answer(self._seq(q_seq), kind, got.address, note, stamp)


class TcpMethod(Method):
    """TCP SYN probes as non-blocking connects, one socket (local port) per probe."""

    name = "tcp"

    def setup(self) -> None:
        self.probe_socks: dict[int, socket.socket] = {}
        self.sent_ns: dict[int, int] = {}  # probe seq -> when its SYN went out
        self.syn_resends = syn_resend_offsets()
        self.flow_ports: dict[int, int] = {}
        if self.paris:
            self.max_inflight_per_flow = 1  # one local port per flow: one connect at a time

    def send(self, seq: int, ttl: int, flow: int) -> int:
        port = self.flow_ports.get(flow, 0) if self.paris else 0
        sock = sockets.open_tcp_probe(self.family, source=self.source, device=self.interface, port=port,
                                      pmtudisc=self.pmtudisc)
        sockets.enable_timestamping(sock)  # RX timestamps on the queued ICMP errors
        sockets.set_ttl(sock, self.family, ttl)
        sent = time.time_ns()
        err = sock.connect_ex((self.destination, self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise self._send_failed(OSError(err, errno.errorcode.get(err, str(err))))
        local = sock.getsockname()
        self.local_address = local[0]
        if self.paris:
            self.flow_ports.setdefault(flow, local[1])
        self.probe_socks[seq] = sock
        self.sent_ns[seq] = sent
        self.selector.register(sock, selectors.EVENT_WRITE, self._handler(seq, sock, local[1]))
        return sent

    def retire(self, seq: int) -> None:
        self.sent_ns.pop(seq, None)
        sock = self.probe_socks.pop(seq, None)
        if sock is not None:
            if self.selector.get_map().get(sock.fileno()) is not None:  # see `_handler`: may be unregistered
                self.selector.unregister(sock)
            sock.close()  # SO_LINGER 0: a RST, so the port is free at once (no TIME_WAIT)

    def close(self) -> None:
        super().close()
        for sock in self.probe_socks.values():
            sock.close()
        self.probe_socks.clear()

    def _resent_answer(self, seq: int, answer: Answer, resent: int) -> Answer:
        """An answer on a socket whose SYN the kernel resent (a rate-limited hop said nothing the first time).

        Who answered is known, so the hop is shown; which SYN it answers is not (Karn's rule), so
        its RTT is taken from the latest transmission before it arrived, by the kernel's schedule
        (1 s, then doubling), and is not used to time other probes.
        """
        sent = self.sent_ns.get(seq)
        if sent is None:
            return answer
        latest = sent
        for offset in self.syn_resends[:resent]:
            if sent + offset > answer.recv_ns:
                break
            latest = sent + offset
        return Answer(answer.seq, answer.kind, answer.address, answer.annotation, answer.recv_ns,
                      sent_ns=latest, karn=True)

    def _handler(self, seq: int, sock: socket.socket, local_port: int) -> Handler:
        def handle(_mask: int) -> list[Answer]:
            answers: list[Answer] = []
            for entry in sockets.read_probe_errors(sock):
                err = entry
                if err.origin in (sockets.SO_EE_ORIGIN_ICMP, sockets.SO_EE_ORIGIN_ICMP6) and len(err.payload) >= 2:
                    quoted_source = struct.unpack_from("!H", err.payload)[0]
                    if quoted_source != local_port:
                        continue  # not the SYN this socket sent
                kind, note = classify(self.family, err.origin, err.icmp_type, err.icmp_code, err.info, err.errno)
                address = err.offender if err.origin != sockets.SO_EE_ORIGIN_LOCAL else self.local_address
                answers.append(Answer(seq, kind, address, note, err.kernel_time_ns or time.time_ns()))
            if answers:
                resent = sockets.syn_retransmissions(sock)
                if resent:
                    answers = [self._resent_answer(seq, a, resent) for a in answers]
                return answers
            status = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            now = time.time_ns()
            if status in (0, errno.ECONNREFUSED, errno.ECONNRESET):
                if status == 0:
                    try:
                        sock.getpeername()
                    except OSError:
                        return answers  # still connecting
                answers.append(Answer(seq, REACHED, self.destination, None, now))
            elif status:
                answers.append(Answer(seq, FINAL, self.local_address, LOCAL_ERRNO.get(status, f"!<{status}>"), now))
            return answers

        return handle


def syn_resend_offsets(count: int = 8) -> list[int]:
    """When the kernel resends an unanswered SYN, in ns after the first: every RTO for the first
    tcp_syn_linear_timeouts times, then doubling (without that sysctl: doubling from the start)."""
    try:
        with open(SYN_LINEAR_SYSCTL) as f:
            linear = int(f.read())
    except (OSError, ValueError):
        linear = 0
    offsets, at, rto = [], 0, TCP_SYN_RTO
    for k in range(1, count + 1):
        at += rto
        offsets.append(at)
        if k >= linear:
            rto *= 2
    return offsets


def payload_size(method: str, family: int, packet_len: int) -> int:
    """Bytes of probe payload for a total IP packet length (clamped at what the method needs)."""
    ip = IPV6_HEADER if family == socket.AF_INET6 else IPV4_HEADER
    transport = {"icmp": ICMP_HEADER, "tcp": TCP_HEADER}.get(method, UDP_HEADER)
    return max(packet_len - ip - transport, 0)


def wire_length(method: str, family: int, payload: int) -> int:
    """Bytes of each probe on the wire, for the header: what is sent, as the Linux traceroute states it.

    A TCP probe is the kernel's SYN, whatever length was asked: 40 bytes of TCP header with options.
    """
    ip = IPV6_HEADER if family == socket.AF_INET6 else IPV4_HEADER
    if method == "tcp":
        return ip + TCP_SYN_HEADER
    return ip + (ICMP_HEADER if method == "icmp" else UDP_HEADER) + payload


def default_packet_len(family: int) -> int:
    return DEFAULT_PACKET_V6 if family == socket.AF_INET6 else DEFAULT_PACKET_V4


def default_port(method: str) -> int:
    return {"udp": UDP_BASE_PORT, "udp-port": UDP_CONSTANT_PORT, "tcp": TCP_PORT}.get(method, 0)


def make_method(method: str, family: int, destination: str, port: int, flows: int, size: int,
                selector: selectors.BaseSelector, *, source: str | None, interface: str | None,
                paris: bool) -> Method:
    kind: type[Method] = {"icmp": IcmpMethod, "tcp": TcpMethod}.get(method, UdpMethod)
    return kind(family, destination, port, flows, size, selector, source=source, interface=interface,
                paris=paris, constant_port=method == "udp-port")

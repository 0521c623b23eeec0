"""The real probe: one TCP SYN, UDP datagram or ICMP echo, sent the way an application sends it.

`Probe` sends on `start()` (called once the observers are in place) and `poll()` tells when
it has an answer. What counts as an answer: a SYN-ACK or a RST (TCP), any datagram or an ICMP
port unreachable (UDP: the host is there, the port closed), an echo reply (ICMP). An ICMP
error from a router is recorded with its sender; a local refusal (EPERM from an OUTPUT drop,
ENETUNREACH) is recorded as such.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time

from gnt.core import sockets
from gnt.core.packets import icmp
from gnt.why.facts import ProbeFacts

ICMP6_ECHO_REQUEST = 128  # RFC 4443 §4.1
ICMP6_ECHO_REPLY = 129  # RFC 4443 §4.2
ICMP_PORT_UNREACH = 3  # code of "port unreachable" (RFC 792); ICMPv6: 4 (RFC 4443)
ICMP6_PORT_UNREACH = 4  # RFC 4443 §3.1
PROBE_PAYLOAD = b"gnt why probe"  # what the UDP/ICMP probe carries
PROBE_SEQ = 1  # the one echo request's sequence number
V4_HEADER_MIN = 20  # IPv4 header without options (raw sockets deliver it)


class Probe:
    """One probe of `proto` to `dest` (`port`), from `source` when given."""

    def __init__(self, family: int, proto: str, dest: str, port: int | None, *, source: str | None = None,
                 mark: int | None = None) -> None:
        self.af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.proto = proto
        self.dest = dest
        self.port = port
        self.facts = ProbeFacts()
        self.started = 0.0
        self.done = False
        self.echo: sockets.EchoSocket | None = None
        if proto == "icmp":
            self.echo = sockets.open_icmp_echo(self.af, source=source)
            self.sock = self.echo.sock
            self.sock.setblocking(False)
            sockets.enable_recverr(self.sock, self.af)
        elif proto == "tcp":
            self.sock = sockets.open_tcp_probe(self.af, source=source)
        else:
            self.sock = sockets.open_udp_probe(self.af, source=source)
        try:
            if mark is not None:
                sockets.set_mark(self.sock, mark)
            if proto != "icmp" and source is None:
                self.sock.bind((sockets.wildcard_address(self.af), 0))
            self.facts.sport = self.sock.getsockname()[1] if proto != "icmp" else None
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def start(self) -> None:
        """Send the probe now."""
        self.started = time.monotonic()
        self.facts.sent = True
        address = (self.dest, self.port or 0)
        try:
            if self.proto == "tcp":
                err = self.sock.connect_ex(address)
                if err not in (0, errno.EINPROGRESS):
                    self._local_error(err)
            elif self.proto == "udp":
                self.sock.sendto(PROBE_PAYLOAD, address)
            else:
                assert self.echo is not None
                kind = ICMP6_ECHO_REQUEST if self.af == socket.AF_INET6 else icmp.ECHO_REQUEST
                message = icmp.ICMP(type=kind, rest=(self.echo.ident & 0xFFFF) << 16 | PROBE_SEQ)
                self.sock.sendto(message.encode(PROBE_PAYLOAD), (self.dest, 0))
        except OSError as exc:
            self._local_error(exc.errno or 0)
        if self.proto != "icmp" and not self.done:
            try:
                self.facts.source = self.sock.getsockname()[0]
            except OSError:
                pass

    def _local_error(self, code: int) -> None:
        self.facts.local_error = f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"
        self.facts.outcome = f"the kernel refused to send it: {os.strerror(code)}"
        self._finish()

    def _finish(self, *, answered: bool = False) -> None:
        self.done = True
        self.facts.answered = answered
        self.facts.seconds = round(time.monotonic() - self.started, 6)

    def poll(self) -> bool:
        """Read what came back; True once the probe has its outcome."""
        if self.done or not self.started:
            return self.done
        for entry in sockets.read_probe_errors(self.sock):
            self._on_error(entry)
            if self.done:
                return True
        readable, writable, _ = select.select([self.sock], [self.sock] if self.proto == "tcp" else [], [], 0)
        if self.proto == "tcp" and writable:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                self.facts.outcome = "connected (SYN-ACK)"
                self._finish(answered=True)
            elif err == errno.ECONNREFUSED:
                self.facts.outcome = "connection refused (RST): the host answers, the port is closed"
                self._finish(answered=True)
            elif not self.done:
                self.facts.outcome = f"connect failed: {os.strerror(err)}"
                self._finish()
        elif readable and self.proto != "tcp":
            self._on_readable()
        return self.done

    def _on_readable(self) -> None:
        try:
            data, address = self.sock.recvfrom(65536)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            if exc.errno == errno.ECONNREFUSED:
                self.facts.outcome = "port unreachable: the host answers, the port is closed"
                self._finish(answered=True)
                return
            self.facts.outcome = f"error: {os.strerror(exc.errno or 0)}"
            self._finish()
            return
        if self.proto == "udp":
            self.facts.outcome = f"datagram from {address[0]}"
            self._finish(answered=True)
            return
        assert self.echo is not None
        offset = 0
        if not self.echo.is_dgram and self.af == socket.AF_INET and len(data) >= V4_HEADER_MIN:
            offset = (data[0] & 0x0F) * 4
        if len(data) < offset + icmp.HEADER.size:
            return
        message = icmp.ICMP.decode(data, offset)
        reply = ICMP6_ECHO_REPLY if self.af == socket.AF_INET6 else icmp.ECHO_REPLY
        if message.type == reply and message.seq == PROBE_SEQ and (self.echo.is_dgram
                                                                   or message.ident == self.echo.ident):
            self.facts.outcome = f"echo reply from {address[0]}"
            self._finish(answered=True)

    def _on_error(self, entry: sockets.QueuedError) -> None:
        unreach_port = ICMP6_PORT_UNREACH if self.af == socket.AF_INET6 else ICMP_PORT_UNREACH
        if entry.origin in (sockets.SO_EE_ORIGIN_ICMP, sockets.SO_EE_ORIGIN_ICMP6):
            self.facts.error_from = entry.offender
            if entry.icmp_code == unreach_port and entry.offender == self.dest and entry.icmp_type in (1, 3):
                self.facts.outcome = "port unreachable: the host answers, the port is closed"
                self._finish(answered=True)
                return
            if self.af == socket.AF_INET6:
                from gnt.core.packets import icmpv6

                text = icmpv6.describe(entry.icmp_type, entry.icmp_code, entry.info)
            else:
                text = icmp.describe(entry.icmp_type, entry.icmp_code, entry.info)
            self.facts.error_text = text
            self.facts.outcome = f"{text} from {entry.offender}"
            self._finish()
        elif entry.errno:
            self._local_error(entry.errno)

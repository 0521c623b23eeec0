"""Probers: sized probes over UDP and ICMP echo (the probe sockets of `gnt traceroute`) and TCP.

UDP and ICMP reuse `gnt.traceroute.methods`: the same unprivileged sockets, the same error-queue
reader and the same decoding, with DF set and the cached PMTU ignored (IP_PMTUDISC_PROBE). A
size passed when the destination answered it (port unreachable for UDP, echo reply for ICMP).

TCP: a SYN is small whatever is asked of it, so sizes cannot be tested with SYNs. Each TCP size
test is one connection to an OPEN port: the socket asks for an MSS that makes one full segment
exactly SIZE bytes on the wire (TCP_MAXSEG before connect: our SYN advertises it and the kernel
clamps to it), sends one full segment after the handshake and waits for it to be acknowledged.
Acknowledged: SIZE passed. A hop's frag-needed / packet-too-big lowers the connection's PMTU
(TCP_INFO tcpi_pmtu; the kernel does not queue it on the error queue of a connected TCP socket,
so the reporting hop's address is not known): too big. Unacknowledged after the kernel's own
retransmissions (at least one) and the wait: lost. The peer's MSS caps what can be tested (reported as the
local limit).
"""

from __future__ import annotations

import errno
import select
import selectors
import socket
import time
from collections.abc import Sequence

from gnt.core import sockets
from gnt.errors import GntError
from gnt.mtu.search import DEFAULT_TTL, EXPIRED, GRACE, PASSED, SILENT, TOO_BIG, UNREACHABLE, Outcome
from gnt.traceroute.methods import (
    HOP,
    IPV4_HEADER,
    IPV6_HEADER,
    REACHED,
    TCP_HEADER,
    Answer,
    default_port,
    make_method,
    payload_size,
)

TCP_TIMESTAMP_OPTIONS = 12  # bytes of TCP options on every segment when timestamps are on (10 + 2 NOP)
TCP_CONNECT_WAIT = 3.0  # seconds a handshake may take (a lost SYN is resent after 1 s)
TCP_POLL = 0.002  # seconds between TCP_INFO reads while waiting for an acknowledgement


def ip_header(family: int) -> int:
    return IPV6_HEADER if family == socket.AF_INET6 else IPV4_HEADER


def too_big_mtu(annotation: str | None) -> int | None:
    """The MTU of a traceroute `!F-<mtu>` annotation (frag needed, packet too big, local EMSGSIZE)."""
    if annotation and annotation.startswith("!F-"):
        try:
            return int(annotation[3:])
        except ValueError:
            return None
    return None


class MethodProber:
    """UDP or ICMP echo size probes through a traceroute probe method."""

    def __init__(self, protocol: str, family: int, address: str, *, port: int | None,
                 source: str | None, interface: str | None) -> None:
        self.protocol = protocol
        self.family = family
        self.probes = 0
        self.next_seq = 0
        self.selector = selectors.DefaultSelector()
        self.method = make_method(protocol, family, address, port if port is not None else default_port(protocol),
                                  1, 0, self.selector, source=source, interface=interface, paris=False)
        self.method.pmtudisc = "probe"
        try:
            self.method.open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.method.close()
        self.selector.close()

    def _outcome(self, size: int, ttl: int | None, answer: Answer, send_ns: int) -> Outcome:
        rtt = max(answer.recv_ns - send_ns, 0) / 1e9
        if answer.kind == REACHED:
            return Outcome(size, ttl, PASSED, address=answer.address, rtt=rtt)
        if answer.kind == HOP:
            return Outcome(size, ttl, EXPIRED, address=answer.address, rtt=rtt)
        mtu = too_big_mtu(answer.annotation)
        if mtu is not None:
            return Outcome(size, ttl, TOO_BIG, mtu=mtu, address=answer.address, rtt=rtt)
        return Outcome(size, ttl, UNREACHABLE, address=answer.address, rtt=rtt, note=answer.annotation)

    def exchange(self, requests: Sequence[tuple[int, int | None]], timeout: float) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(requests)
        waiting: dict[int, tuple[int, int]] = {}  # seq -> (request index, send time ns)
        for index, (size, ttl) in enumerate(requests):
            seq = self.next_seq
            self.next_seq += 1
            self.method.payload_size = payload_size(self.protocol, self.family, size)
            try:
                send_ns = self.method.send(seq, ttl or DEFAULT_TTL, 0)
            except GntError as exc:
                if exc.errno != errno.EMSGSIZE:
                    raise
                outcomes[index] = Outcome(size, ttl, TOO_BIG)  # the local stack refused it
                continue
            self.probes += 1
            waiting[seq] = (index, send_ns)
        deadline = time.monotonic() + timeout
        last = len(requests) - 1
        while waiting:
            now = time.monotonic()
            if outcomes[last] is not None:
                deadline = min(deadline, now + GRACE)
            if now >= deadline:
                break
            for key, mask in self.selector.select(deadline - now):
                for answer in key.data(mask):
                    slot = waiting.pop(answer.seq, None)
                    if slot is None:
                        continue  # a late answer to an earlier exchange
                    index, send_ns = slot
                    size, ttl = requests[index]
                    outcomes[index] = self._outcome(size, ttl, answer, send_ns)
        for seq in list(waiting):
            self.method.retire(seq)
        return [out if out is not None else Outcome(size, ttl, SILENT)
                for out, (size, ttl) in zip(outcomes, requests, strict=True)]


class TcpProber:
    """TCP size probes: one connection per size to an open port, one full segment each."""

    protocol = "tcp"

    def __init__(self, family: int, address: str, *, port: int | None, source: str | None,
                 interface: str | None) -> None:
        self.family = family
        self.address = address
        self.port = port if port is not None else default_port("tcp")
        self.source = source
        self.interface = interface
        self.probes = 0
        self.peer_limit: int | None = None  # the largest segment the peer's MSS lets us send

    def close(self) -> None:
        """Nothing stays open between tests."""

    def exchange(self, requests: Sequence[tuple[int, int | None]], timeout: float) -> list[Outcome]:
        return [self._one(size, timeout) for size, _ttl in requests]

    def _connect(self, sock: socket.socket, timeout: float) -> None:
        err = sock.connect_ex((self.address, self.port))
        if err not in (0, errno.EINPROGRESS):
            raise GntError(f"cannot connect to {self.address} port {self.port}: {errno.errorcode.get(err, err)}",
                           errno=err)
        _r, writable, _x = select.select([], [sock], [], max(timeout, TCP_CONNECT_WAIT))
        status = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if writable else errno.ETIMEDOUT
        if status:
            raise GntError(
                f"TCP port {self.port} of {self.address} is not open ({errno.errorcode.get(status, status)}): "
                "TCP size tests need an open port",
                "give one with -p PORT (a SYN is too small to test sizes), or use -U / -I", errno=status)

    def _one(self, size: int, timeout: float) -> Outcome:
        headers = ip_header(self.family) + TCP_HEADER
        # "do", not "probe": the kernel sends TCP over IPv4 without DF in "probe" mode (only "do" and
        # "want" set it on TCP segments); the PMTU the kernel has cached is read back instead.
        sock = sockets.open_tcp_probe(self.family, source=self.source, device=self.interface, pmtudisc="do")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, max(size - headers, 88))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.monotonic()
            self._connect(sock, timeout)
            self.probes += 1  # the SYN (its size is not what is tested)
            state = sockets.tcp_state(sock)
            options = TCP_TIMESTAMP_OPTIONS if state.timestamps else 0
            wire = headers + options + state.snd_mss
            if state.pmtu < size:
                # The kernel already knows a smaller PMTU for this route (learned from a hop's
                # report, by this run or an earlier one): the segment cannot be made SIZE bytes.
                return Outcome(size, None, TOO_BIG, mtu=state.pmtu, rtt=time.monotonic() - started)
            if wire < size:
                self.peer_limit = wire  # the peer's MSS: sizes above cannot be tested over TCP
            sent_at = time.monotonic()
            sock.send(bytes(state.snd_mss))
            self.probes += 1
            deadline = sent_at + timeout
            while True:
                state = sockets.tcp_state(sock)
                if state.pmtu < size:
                    return Outcome(wire, None, TOO_BIG, mtu=state.pmtu, rtt=time.monotonic() - sent_at)
                if state.unacked == 0:
                    return Outcome(wire, None, PASSED, address=self.address, rtt=time.monotonic() - sent_at)
                if time.monotonic() >= deadline and state.retransmissions:
                    self.probes += state.retransmissions
                    return Outcome(wire, None, SILENT)
                time.sleep(TCP_POLL)
        finally:
            sock.close()

"""Name resolution: the one resolver every command uses (-4/-6 selection, clear errors)."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass

from gnt.errors import ResolveError


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved destination: what the user typed and the address gnt will use."""

    host: str
    address: str
    family: int
    canonical: str | None = None  # the resolver's canonical name (asked for with `canonical=True`)

    @property
    def is_numeric(self) -> bool:
        return self.host == self.address or is_literal(self.host)


def is_literal(host: str) -> bool:
    """True for a numeric IPv4 or IPv6 address (an IPv6 zone, "%eth0", allowed)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.split("%", 1)[0])
        except OSError:
            continue
        return True
    return False


def resolve(host: str, family: int = socket.AF_UNSPEC, *, canonical: bool = False) -> Target:
    """Resolve `host` to one address of `family` (AF_UNSPEC: the first the system prefers).

    `canonical=True` also asks for the canonical name (AI_CANONNAME), as ping prints it.
    """
    if not host:
        raise ResolveError("no host given")
    try:
        # An ASCII name goes in as bytes: a str host makes the socket module load the IDNA
        # codec (and stringprep) first, a millisecond of start-up on every ping.
        query: str | bytes = host.encode("ascii") if host.isascii() else host
        infos = socket.getaddrinfo(query, None, family, socket.SOCK_DGRAM, 0,
                                   socket.AI_CANONNAME if canonical else 0)
    except socket.gaierror as exc:
        if family != socket.AF_UNSPEC and is_literal(host):
            want = "IPv6" if family == socket.AF_INET6 else "IPv4"
            raise ResolveError(f"{host}: not an {want} address", errno=exc.errno) from exc
        raise ResolveError(f"{host}: {exc.strerror}", errno=exc.errno) from exc
    canon = next((c for *_rest, c, _sa in infos if c), None) if canonical else None
    for fam, _type, _proto, _canon, sockaddr in infos:
        if fam in (socket.AF_INET, socket.AF_INET6):
            return Target(host, str(sockaddr[0]), fam, canon)
    raise ResolveError(f"{host}: no address of the requested family")


def _lookup_ptr(address: str) -> str | None:
    """getnameinfo, blocking: only ever called in a child process (see NameLookups)."""
    try:
        name, _port = socket.getnameinfo((address, 0), socket.NI_NAMEREQD)
    except (OSError, UnicodeError):
        return None
    return name


# Reverse lookups run in forked children. `socket.getnameinfo` keeps the GIL while it waits
# for DNS in CPython before the fix for python/cpython#104308 (Debian 12's 3.11.2 among
# them), so a lookup in a thread froze the whole program for the resolver's own timeout
# (5 s per address, measured) whatever timeout the caller asked for. A child writes the
# name to a pipe; the caller's event loop reads it and kills the child when time is up.

MAX_CHILDREN = 8  # lookups running at once; the rest wait their turn
NAME_BYTES = 1025  # NI_MAXHOST: the longest name getnameinfo returns


@dataclass(slots=True)
class _Lookup:
    address: str
    pid: int
    fd: int
    deadline: float  # time.monotonic()


class NameLookups:
    """Reverse lookups, each in a child process, driven by the trace's selector."""

    def __init__(self, selector: selectors.BaseSelector, timeout: float) -> None:
        self.selector = selector
        self.timeout = timeout
        self.names: dict[str, str | None] = {}  # finished lookups
        self.running: dict[str, _Lookup] = {}
        self.waiting: list[str] = []

    def want(self, address: str) -> None:
        if address in self.names or address in self.running or address in self.waiting:
            return
        self.waiting.append(address)
        self._start_waiting()

    def done(self, address: str) -> bool:
        return address in self.names

    def name(self, address: str) -> str | None:
        return self.names.get(address)

    def next_deadline(self) -> float | None:
        deadlines = [lookup.deadline for lookup in self.running.values()]
        return min(deadlines) if deadlines else None

    def expire(self, now: float) -> None:
        for lookup in list(self.running.values()):
            if now >= lookup.deadline:
                self._finish(lookup, None)
        self._start_waiting()

    def close(self) -> None:
        for lookup in list(self.running.values()):
            self._finish(lookup, None)
        for address in self.waiting:
            self.names[address] = None
        self.waiting.clear()

    def _start_waiting(self) -> None:
        while self.waiting and len(self.running) < MAX_CHILDREN:
            self._start(self.waiting.pop(0))

    def _start(self, address: str) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: look up, write, leave without running any parent cleanup
            status = 0
            try:
                os.close(read_fd)
                name = _lookup_ptr(address) or ""
                os.write(write_fd, name.encode("utf-8", "replace")[:NAME_BYTES])
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        lookup = _Lookup(address, pid, read_fd, time.monotonic() + self.timeout)
        self.running[address] = lookup
        self.selector.register(read_fd, selectors.EVENT_READ, self._reader(lookup))

    def _reader(self, lookup: _Lookup):  # type: ignore[no-untyped-def]
        def handle(_mask: int) -> list[object]:
            try:
                data = os.read(lookup.fd, NAME_BYTES + 1)
            except BlockingIOError:
                return []
            self._finish(lookup, data.decode("utf-8", "replace") or None)
            return []

        return handle

    def _finish(self, lookup: _Lookup, name: str | None) -> None:
        self.names[lookup.address] = name
        self.running.pop(lookup.address, None)
        try:
            self.selector.unregister(lookup.fd)
        except (KeyError, ValueError):
            pass
        os.close(lookup.fd)
        try:
            os.kill(lookup.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(lookup.pid, 0)
        except ChildProcessError:
            pass


def reverse_name(address: str, timeout: float = 1.0) -> str | None:
    """The PTR name of `address`, or None when it has none or the lookup takes longer than `timeout`."""
    selector = selectors.DefaultSelector()
    lookups = NameLookups(selector, timeout)
    try:
        lookups.want(address)
        while not lookups.done(address):
            deadline = lookups.next_deadline()
            wait = max(deadline - time.monotonic(), 0.0) if deadline is not None else 0.0
            for key, mask in selector.select(wait):
                key.data(mask)
            lookups.expire(time.monotonic())
        return lookups.name(address)
    finally:
        lookups.close()
        selector.close()


def split_host_port(text: str) -> tuple[str, str | None]:
    """HOST[:PORT] -> (host, port text or None): `[IPv6]:PORT`, `host:port`, or a bare host or IPv6
    address (more than one colon and no brackets). ValueError for an unclosed `[` or text after `]`
    that is not `:PORT`."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(text)
        return host, (rest[1:] if rest else None)
    if text.count(":") == 1:
        host, port_text = text.split(":")
        return host, port_text
    return text, None

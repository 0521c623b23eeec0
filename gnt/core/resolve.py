"""Name resolution: the one resolver every command uses (-4/-6 selection, clear errors)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from gnt.errors import ResolveError


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved destination: what the user typed and the address gnt will use."""

    host: str
    address: str
    family: int

    @property
    def is_numeric(self) -> bool:
        return self.host == self.address or _is_literal(self.host)


def _is_literal(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.split("%", 1)[0])
        except OSError:
            continue
        return True
    return False


def resolve(host: str, family: int = socket.AF_UNSPEC) -> Target:
    """Resolve `host` to one address of `family` (AF_UNSPEC: the first the system prefers)."""
    if not host:
        raise ResolveError("no host given")
    try:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        if family != socket.AF_UNSPEC and _is_literal(host):
            want = "IPv6" if family == socket.AF_INET6 else "IPv4"
            raise ResolveError(f"{host}: not an {want} address", errno=exc.errno) from exc
        raise ResolveError(f"{host}: {exc.strerror}", errno=exc.errno) from exc
    for fam, _type, _proto, _canon, sockaddr in infos:
        if fam in (socket.AF_INET, socket.AF_INET6):
            return Target(host, str(sockaddr[0]), fam)
    raise ResolveError(f"{host}: no address of the requested family")


def reverse_name(address: str, timeout: float = 1.0) -> str | None:
    """The PTR name of `address`, or None when it has none or the lookup takes longer than `timeout`.

    getnameinfo cannot be given a timeout, so it runs in a daemon thread that is abandoned
    when it is too slow: a dead resolver never holds up a trace or a ping.
    """
    result: list[str | None] = [None]

    def lookup() -> None:
        try:
            name, _port = socket.getnameinfo((address, 0), socket.NI_NAMEREQD)
        except (OSError, UnicodeError):
            return
        result[0] = name

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    return result[0]

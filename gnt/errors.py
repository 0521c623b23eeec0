"""The error tree and exit codes every command shares.

A `GntError` carries one sentence a user can act on (`message`) and, where there is
one, the fix (`hint`: the sysctl, capability or module to change). The single error
boundary in `gnt.__main__` turns it into one line on stderr and its `exit_code`.
"""

from __future__ import annotations

import enum
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


class ExitCode(enum.IntEnum):
    OK = 0  # the command did what was asked and the answer was positive
    NEGATIVE = 1  # ran fine, answer negative: no reply, bad checksums, nothing matched
    ERROR = 2  # bad input, missing permission, unusable environment
    INTERRUPTED = 130  # SIGINT: 128 + 2, as shells report it


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # all three end a command the same way


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (what `timeout`, systemd and Kubernetes send), raised where SIGINT raises
    KeyboardInterrupt, so every command's Ctrl-C path prints its summary; the exit is 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopHandlers:
    """`with StopHandlers(handler):` — the block runs with `handler` on the stop signals, then the
    previous handlers come back. The one place a command installs its own: a signal the caller
    ignores (`nohup` SIGHUP, a shell's `cmd &` SIGINT) stays ignored, and outside the main thread
    (where Python allows no handler) nothing is installed."""

    def __init__(self, handler: Callable[[int, FrameType | None], object]) -> None:
        self.handler = handler
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopHandlers:
        threading = sys.modules.get("threading")  # not loaded: no thread was started with it
        if threading is None or threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                current = signal.getsignal(signum)
                if current is not signal.SIG_IGN:
                    self.previous[signum] = current
                    signal.signal(signum, self.handler)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self.previous = {}


def interrupted_exit_code(signum: int | None) -> int:
    """128 + the signal that stopped the command, as shells report it (130 for SIGINT or unknown)."""
    return int(ExitCode.INTERRUPTED) if signum is None else 128 + int(signum)


class GntError(Exception):
    """An expected failure, reported as one line (plus an optional hint)."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.errno = errno  # kept from the OSError/netlink error that caused it, as pyroute2 does

    def __str__(self) -> str:
        return self.message


class UsageError(GntError):
    """A bad option value or a missing argument."""


class ResolveError(GntError):
    """A host name that does not resolve (for the address family asked)."""


class PermissionDenied(GntError):
    """The process lacks a privilege (sysctl range, CAP_NET_RAW, CAP_NET_ADMIN)."""


class InterfaceError(GntError):
    """An interface name or address that does not exist on this node."""


class UnavailableError(GntError):
    """A kernel facility (conntrack, nftables trace, ...) is missing here."""


class DecodeError(GntError):
    """A buffer too short or malformed for the header being decoded.

    `layer` names the codec ("ipv4", "udp", ...) and `offset` is the byte offset
    inside the buffer handed to that codec where decoding failed.
    """

    def __init__(self, layer: str, offset: int, reason: str) -> None:
        super().__init__(f"cannot decode {layer} at offset {offset}: {reason}")
        self.layer = layer
        self.offset = offset
        self.reason = reason

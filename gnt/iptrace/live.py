"""Live tracing: install the tagged trace rules, read the kernel's trace, yield packets, clean up.

Cleanup runs in a `finally` with SIGINT/SIGTERM/SIGHUP blocked, so a second signal cannot
cut it short; the CLI turns those signals into a stop request (see `StopRequest`) so the
packets already seen are still shown before the run ends.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from gnt.core.caps import CAP_NET_ADMIN, has_capability
from gnt.core.process import signals_blocked
from gnt.errors import PermissionDenied, UnavailableError
from gnt.iptrace import legacy, nftrules
from gnt.iptrace.logparse import LEGACY_PROTOS, LegacyGrouper, Malformed, parse_legacy
from gnt.iptrace.models import Filter, Packet
from gnt.iptrace.nftevents import decode_trace, open_trace_socket, split_messages
from gnt.iptrace.paths import IDLE_SECONDS, NftTracker

POLL_SECONDS = 0.1  # longest wait between checks of the stop request and the clock
RECV_SIZE = 65536  # one netlink datagram
DRAIN_BATCH = 512  # datagrams read per wakeup before packets are handed on
EXPIRY_INTERVAL = 0.05  # seconds between sweeps for finished (idle) packets
KMSG_RECORD = 8192  # one /dev/kmsg record (the kernel caps them well below this)


@dataclass
class StopRequest:
    """Set by a signal handler: the run ends, shows what it has, and cleans up."""

    signum: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        self.signum = signum


@dataclass
class RunStats:
    backend: str = ""
    packets: int = 0
    skipped: int = 0  # undecodable events or kernel log lines
    notices: list[str] = field(default_factory=list)


def has_net_admin() -> bool:
    """CAP_NET_ADMIN in the effective set of this process."""
    return has_capability(CAP_NET_ADMIN)


def require_net_admin() -> None:
    if not has_net_admin():
        raise PermissionDenied(
            "live tracing needs CAP_NET_ADMIN to install trace rules and read nftables trace events",
            "run as root (sudo gnt iptrace ...), or read a captured trace with --from-log FILE",
        )


def cleanup_leftovers(own_pid: int | None = None) -> list[str]:
    """Remove trace tables/rules of runs that are gone (and `own_pid`'s); returns what was removed."""
    removed: list[str] = []
    with contextlib.suppress(UnavailableError):
        removed += nftrules.cleanup_stale(own_pid)
    if legacy.available():
        with contextlib.suppress(UnavailableError, PermissionDenied):
            removed += legacy.remove(own_pid, stale=True)
    return removed


def choose_backend(requested: str) -> str:
    """nft unless asked otherwise, or unless the firewall here is iptables-legacy."""
    if requested in ("nft", "legacy"):
        return requested
    if legacy.legacy_in_use() and legacy.available():
        return "legacy"
    try:
        probe = nftrules.run_nft("list", "tables", check=False)  # UnavailableError too when nft is missing
    except UnavailableError:
        if legacy.available():
            return "legacy"
        raise
    if probe.returncode != 0 and "not supported" in probe.stderr and legacy.available():
        return "legacy"  # a kernel without nf_tables
    return "nft"


def _deadline(duration: float | None, clock: Callable[[], float]) -> float | None:
    return None if duration is None else clock() + duration


def trace_live(flt: Filter, *, backend: str = "auto", count: int | None = None, duration: float | None = None,
               stop: StopRequest | None = None, stats: RunStats | None = None,
               clock: Callable[[], float] = time.monotonic, idle: float = IDLE_SECONDS,
               on_ready: Callable[[], None] | None = None) -> Generator[Packet, None, None]:
    """Yield traced packets until `count` packets, `duration` seconds, or a stop request."""
    require_net_admin()
    flt = nftrules.validate(flt)
    stop = stop or StopRequest()
    stats = stats if stats is not None else RunStats()
    chosen = choose_backend(backend)
    stats.backend = chosen
    pid = os.getpid()
    cleanup_leftovers()
    runner = _trace_nft if chosen == "nft" else _trace_legacy
    packets = runner(flt, pid, deadline=_deadline(duration, clock), stop=stop, stats=stats, clock=clock,
                     idle=idle, on_ready=on_ready)
    with contextlib.closing(packets):  # closing runs the runner's cleanup now, however we leave
        for packet in packets:
            stats.packets += 1
            yield packet
            if count is not None and stats.packets >= count:
                return


def _poll(source: socket.socket | int, read: Callable[[float], list[Packet]],
          expire: Callable[[float], list[Packet]], *, deadline: float | None, stop: StopRequest,
          clock: Callable[[], float]) -> Generator[Packet, None, None]:
    """The live loop of both backends: wait for `source`, `read` what it holds (packets it completed),
    `expire` idle packets now and then; until the deadline or a stop request."""
    last_expiry = clock()
    while stop.signum is None:
        now = clock()
        if deadline is not None and now >= deadline:
            break
        wait = POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - now))
        try:
            readable, _, _ = select.select([source], [], [], wait)
        except InterruptedError:
            continue
        done = read(now) if readable else []
        now = clock()
        if now - last_expiry >= EXPIRY_INTERVAL:
            done += expire(now)
            last_expiry = now
        yield from done


def _trace_nft(flt: Filter, pid: int, *, deadline: float | None, stop: StopRequest, stats: RunStats,
               clock: Callable[[], float], idle: float,
               on_ready: Callable[[], None] | None) -> Generator[Packet, None, None]:
    sock = open_trace_socket()  # subscribe before the rule exists: no event is missed
    tracker = NftTracker(nftrules.RuleBook(), idle=idle)

    def read(now: float) -> list[Packet]:
        done: list[Packet] = []
        for datagram in _drain(sock):
            for message in split_messages(datagram):
                event = decode_trace(message)
                if event is None:
                    stats.skipped += 1
                    continue
                done += tracker.feed(event, now)
        return done

    try:
        nftrules.install(flt, pid)
        if on_ready is not None:
            on_ready()
        yield from _poll(sock, read, tracker.expire, deadline=deadline, stop=stop, clock=clock)
        yield from tracker.drain()
    finally:
        with signals_blocked():
            sock.close()
            nftrules.remove(pid)  # also when install was cut short: the table may exist


def _drain(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on the socket (up to a batch): reading one per wakeup falls behind."""
    out: list[bytes] = []
    while len(out) < DRAIN_BATCH:
        try:
            out.append(sock.recv(RECV_SIZE, socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            break
        # No ENOBUFS here: the trace socket is opened with NETLINK_NO_ENOBUFS (nftevents.py).
    return out


def _read_kmsg(fd: int) -> list[str]:
    lines = []
    while True:
        try:
            record = os.read(fd, KMSG_RECORD)
        except BlockingIOError:
            break
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # records overwritten before we read them
                continue
            raise
        if not record:
            break
        text = record.decode("utf-8", "replace")
        _, _, message = text.partition(";")
        lines.append(message.split("\n", 1)[0])
    return lines


def _trace_legacy(flt: Filter, pid: int, *, deadline: float | None, stop: StopRequest, stats: RunStats,
                  clock: Callable[[], float], idle: float,
                  on_ready: Callable[[], None] | None) -> Generator[Packet, None, None]:
    try:
        fd = os.open(legacy.KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError as exc:
        raise PermissionDenied("cannot read the kernel log (/dev/kmsg)",
                               "run as root, or set kernel.dmesg_restrict=0", errno=exc.errno) from exc
    except OSError as exc:
        raise UnavailableError(f"cannot read the kernel log: {exc.strerror}", errno=exc.errno) from exc
    os.lseek(fd, 0, os.SEEK_END)
    if not legacy.in_initial_netns():
        stats.notices.append("in a network namespace the kernel logs TRACE lines only when "
                             "net.netfilter.nf_log_all_netns=1 in the host namespace")
    rules = legacy.LegacyRules()
    grouper = LegacyGrouper(rules.rule, rules.policy)

    def read(now: float) -> list[Packet]:
        for line in _read_kmsg(fd):
            try:
                parsed = parse_legacy(line)
            except Malformed:
                stats.skipped += 1
                continue
            if parsed is not None and _legacy_matches(flt, parsed.fields, parsed.l4):
                grouper.feed(parsed, now)
        return []  # log lines carry no end mark: packets complete only by going idle

    try:
        legacy.install(flt, pid)
        if on_ready is not None:
            on_ready()
        yield from _poll(fd, read, lambda now: grouper.expire(now, idle), deadline=deadline, stop=stop,
                         clock=clock)
        yield from grouper.drain()
    finally:
        with signals_blocked():
            os.close(fd)
            legacy.remove(pid)


def _legacy_matches(flt: Filter, fields: dict[str, str], l4: dict[str, str]) -> bool:
    """The kernel log is shared by every namespace: keep the lines of packets our filter would trace."""
    for want, have in ((flt.src, fields.get("SRC")), (flt.dst, fields.get("DST"))):
        if want is not None:
            try:
                if have is None or ipaddress.ip_address(have) not in ipaddress.ip_network(want, strict=False):
                    return False
            except ValueError:
                return False
    if flt.family is not None and (":" in fields.get("SRC", "")) != (flt.family == 6):
        return False
    if flt.proto is not None:
        proto = LEGACY_PROTOS.get(fields.get("PROTO", ""), fields.get("PROTO", "").lower())
        if proto != flt.proto and not (flt.proto == "icmp" and proto == "ipv6-icmp"):
            return False
    for want_port, key in ((flt.sport, "SPT"), (flt.dport, "DPT")):
        if want_port is not None and l4.get(key) != str(want_port):
            return False
    return True

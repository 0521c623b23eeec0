"""`gnt mtu`: the largest packet that reaches a host, and why larger ones do not. Unprivileged.

Public API (other tools, e.g. `gnt why`, call these; they never print):

- `discover(host, protocol="udp", family=0, port=None, min_size=None, max_size=None, wait=1.0,
  source=None, interface=None, find_hop=True, overlay=False) -> MtuResult`
  Path MTU discovery to `host` over "udp" (port unreachable answers), "icmp" (echo through the
  ping socket) or "tcp" (one full segment to an OPEN `port`). `MtuResult.verdict` is one of
  "ok" (the local MTU reaches), "pmtu" (a hop reported a smaller MTU: `hop`, `reported_mtu`),
  "black-hole" (sizes above `largest_ok` vanish with no ICMP: `smallest_lost`, and `hop`, the
  last hop the large size reached), "local-mismatch" (the device the route leaves through is an
  overlay set larger than its underlay carries: `mismatch`; given even when the sizes pass
  because the underlay fragments the encapsulated packets), "unreachable" (nothing answered).
  Sizes are whole IP packets. Raises GntError (resolution, permission, closed TCP port).
- `run(MtuOptions) -> Iterator[MtuStart | MtuResult]`: the same, with the header first (the CLI).
- `check_overlays(measured=None) -> list[OverlayFinding]`: every vxlan/geneve/wireguard device
  of this namespace against its underlay MTU minus the encapsulation (`measured`: path MTUs to
  tunnel remotes, address -> bytes, when the caller measured them).
- `exit_code(result)`: 0 for "ok", 1 for every other verdict.

The kernel learns from the "fragmentation needed" / "packet too big" answers these probes
cause, as from any traffic: the PMTU stays in its route cache (about 600 s,
net.ipv4.route.mtu_expires / net.ipv6.route.mtu_expires) after gnt exits. gnt changes nothing
else; `ip route flush cache` (and `ip -6 route flush cache`) forgets it. The probes themselves
ignore that cache (IP_PMTUDISC_PROBE), so a second run measures the path again.

How sizes are searched, paced and confirmed: see `gnt.mtu.search`; how they are sent: `probers`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from gnt.core import sockets
from gnt.core.resolve import resolve
from gnt.errors import GntError
from gnt.mtu.models import (
    BLACK_HOLE,
    LOCAL_MISMATCH,
    OK,
    PMTU,
    UNREACHABLE,
    VERDICTS,
    HopRef,
    MtuOptions,
    MtuResult,
    MtuStart,
    OverlayFinding,
)
from gnt.mtu.overlay import check_overlays

__all__ = ["VERDICTS", "HopRef", "MtuOptions", "MtuResult", "MtuStart", "OverlayFinding", "check_overlays",
           "discover", "exit_code", "run"]

MIN_SIZE_V4 = 68  # RFC 791: every IPv4 link carries 68 bytes
MIN_SIZE_V6 = 1280  # RFC 8200 §5: every IPv6 link carries 1280 bytes
PROTOCOLS = ("udp", "icmp", "tcp")

def min_size_for(family: int) -> int:
    return MIN_SIZE_V6 if family == socket.AF_INET6 else MIN_SIZE_V4

def discover(host: str, protocol: str = "udp", family: int = socket.AF_UNSPEC, port: int | None = None,
             min_size: int | None = None, max_size: int | None = None, wait: float = 1.0,
             source: str | None = None, interface: str | None = None, find_hop: bool = True,
             overlay: bool = False) -> MtuResult:
    """Path MTU discovery to `host` (see the module docstring)."""
    options = MtuOptions(host, protocol, family, port, min_size, max_size, wait, source, interface, find_hop,
                         overlay)
    result: MtuResult | None = None
    for event in run(options):
        if isinstance(event, MtuResult):
            result = event
    assert result is not None
    return result

def _egress(address: str, source: str | None = None,
            device: str | None = None) -> tuple[str | None, OverlayFinding | None]:
    """The name of the device toward `address`, and its overlay judgement when it is an overlay.

    The route and link come from a lean rtnetlink query; pyroute2 (slow to import) is loaded only
    to judge an overlay device.
    """
    from gnt.mtu import overlay as ov

    found = ov.egress_link(address, source=source, device=device)
    if found is None:
        return None, None
    index, name, kind, _mtu = found
    if kind not in ov.KINDS:
        return name, None
    try:
        return name, ov.judge_index(index)
    except (ImportError, OSError):
        return name, None


def _prober(options: MtuOptions, protocol: str, family: int, address: str):  # type: ignore[no-untyped-def]
    from gnt.mtu.probers import MethodProber, TcpProber

    if protocol == "tcp":
        return TcpProber(family, address, port=options.port, source=options.source, interface=options.interface)
    return MethodProber(protocol, family, address, port=options.port if protocol == "udp" else None,
                        source=options.source, interface=options.interface)

def run(options: MtuOptions) -> Iterator[MtuStart | MtuResult]:
    """Resolve, measure the local MTU, search, walk to the hop; yields the header, then the result."""
    from gnt.mtu.search import TOO_BIG, NoAnswer, Search  # here: `from gnt.mtu import check_overlays` needs none of it

    if options.protocol not in PROTOCOLS:
        raise GntError(f"unknown protocol {options.protocol!r} (udp, icmp or tcp)")
    started = time.monotonic()
    target = resolve(options.host, options.family)
    family, address = target.family, target.address
    local_mtu = sockets.device_mtu_toward(family, address, source=options.source, device=options.interface)
    device, mismatch = _egress(address, options.source, options.interface)
    min_size = options.min_size if options.min_size is not None else min_size_for(family)
    max_size = min(options.max_size, local_mtu) if options.max_size is not None else local_mtu
    if min_size > max_size:
        raise GntError(f"--min {min_size} is above the largest size to test ({max_size})")
    yield MtuStart(options.host, address, options.protocol, local_mtu, device, max_size)
    prober = _prober(options, options.protocol, family, address)
    walker = None
    try:
        search = Search(prober, min_size=min_size, max_size=max_size, wait=options.wait)
        found = search.search()
        hop: HopRef | None = None
        report = found.report
        if found.unreachable is not None:
            verdict = UNREACHABLE
        elif found.smallest_lost is None:
            verdict = OK if found.largest_ok == local_mtu or options.max_size is not None else BLACK_HOLE
        elif found.lost_kind == TOO_BIG:
            verdict = PMTU
        else:
            verdict = BLACK_HOLE
        if verdict in (PMTU, BLACK_HOLE) and options.find_hop and found.smallest_lost is not None:
            if options.protocol == "tcp":  # TTL-limited TCP data gets no queued errors: walk with UDP
                walker = _prober(options, "udp", family, address)
                walk = Search(walker, min_size=min_size, max_size=max_size, wait=options.wait)
                walk.lo, walk.max_rtt = search.lo, search.max_rtt
            else:
                walk = search
            reporter = report.address if verdict == PMTU and report is not None else None
            size = found.smallest_lost if verdict == BLACK_HOLE or report is None else report.size
            try:
                hop = walk.walk(size, reporter=reporter)
            except NoAnswer:
                hop = None
            if hop is None and reporter is not None:
                hop = HopRef(None, reporter)
        elif verdict == PMTU and report is not None:
            hop = HopRef(None, report.address)
        if verdict != UNREACHABLE and mismatch is not None and mismatch.too_large:
            # Even when the sizes pass (the underlay fragments the encapsulated packets), the
            # kernel caps DF traffic through the device at what the underlay carries.
            verdict = LOCAL_MISMATCH
        probes = prober.probes + (walker.probes if walker is not None else 0)
    finally:
        prober.close()
        if walker is not None:
            walker.close()
    largest = found.largest_ok
    findings: list[OverlayFinding] = []
    if options.overlay:
        measured = {address: largest} if largest is not None and verdict != UNREACHABLE else None
        findings = check_overlays(measured)
    yield MtuResult(
        host=options.host, address=address, protocol=options.protocol, verdict=verdict,
        path_mtu=largest if verdict != UNREACHABLE else None, largest_ok=largest,
        smallest_lost=found.smallest_lost, hop=hop, probes=probes, local_mtu=local_mtu, device=device,
        reported_mtu=report.mtu if report is not None and report.kind == TOO_BIG else None,
        elapsed_ms=int((time.monotonic() - started) * 1000),
        mismatch=mismatch if verdict == LOCAL_MISMATCH else None, overlay=findings,
    )

def exit_code(result: MtuResult) -> int:
    """0 when the full local MTU reaches; 1 for a pmtu, black hole, mismatch or no answer."""
    return 0 if result.verdict == OK else 1

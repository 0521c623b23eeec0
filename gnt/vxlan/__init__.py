"""`gnt vxlan-csum`: the VXLAN outer-checksum bug behind 63-second connection delays.

`scan` verifies checksums on the wire (a pcap/pcapng file or a live interface); `audit` checks
the node's configuration for the conditions that produce bad checksums. Pure logic: both yield
model objects (gnt.vxlan.models) and never print.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gnt.core.capture import CaptureFile, LiveCapture, Record
from gnt.vxlan.models import ScanReport
from gnt.vxlan.scan import DEFAULT_PORTS, Flows, Tally, build_report, scan

__all__ = ["DEFAULT_PORTS", "FileScan", "LiveScan", "scan_file"]


def scan_file(path: str, ports: Iterable[int] = DEFAULT_PORTS, count: int | None = None) -> ScanReport:
    """Scan a pcap/pcapng file; damage in the file is listed in `report.summary.problems`."""
    return FileScan(path, ports).run(count=count)


class FileScan:
    """Scan a capture file, a pipe or stdin; Ctrl-C (or SIGTERM, through the error boundary) stops it
    with the tallies so far: `interrupt` then holds the KeyboardInterrupt for the caller to re-raise
    once the report is out."""

    def __init__(self, path: str, ports: Iterable[int] = DEFAULT_PORTS) -> None:
        self.ports = tuple(ports)
        self.capture = CaptureFile(path)
        self.source = f"{self.capture.format} {'file' if self.capture.mapped else 'stream'} {path}"
        self.interrupt: KeyboardInterrupt | None = None

    def run(self, *, count: int | None = None) -> ScanReport:
        flows: Flows = {}
        tally = Tally()
        try:
            scan(self.capture, self.ports, flows=flows, tally=tally, limit=count)
        except KeyboardInterrupt as exc:
            self.interrupt = exc  # the tallies so far still stand
        return build_report(flows, tally, source=self.source, ports=self.ports, problems=self.capture.problems)


class LiveScan:
    """Scan a live interface until `count` VXLAN-port packets, `duration` seconds, or Ctrl-C/SIGTERM
    (`interrupt` then holds the KeyboardInterrupt, as in FileScan)."""

    def __init__(self, ifname: str, ports: Iterable[int] = DEFAULT_PORTS, buffer_bytes: int | None = None) -> None:
        self.ifname = ifname
        self.ports = tuple(ports)
        self.interrupt: KeyboardInterrupt | None = None
        self.capture = LiveCapture(ifname, self.ports, buffer_bytes=buffer_bytes)
        self.flows: Flows = {}
        self.tally = Tally()

    def _records(self, count: int | None, duration: float | None) -> Iterator[Record]:
        try:
            yield from self.capture.records(count=count, duration=duration)
        except KeyboardInterrupt as exc:
            self.interrupt = exc

    def run(self, *, count: int | None = None, duration: float | None = None) -> ScanReport:
        try:
            scan(self._records(count, duration), self.ports, flows=self.flows, tally=self.tally)
        except KeyboardInterrupt as exc:
            self.interrupt = exc  # between two packets: the tallies so far still stand
        finally:
            drops = self.capture.kernel_drops()
            self.capture.close()
        return build_report(self.flows, self.tally, source=f"live capture on {self.ifname}", ports=self.ports,
                            kernel_drops=drops)

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

__all__ = ["DEFAULT_PORTS", "LiveScan", "scan_file"]


def scan_file(path: str, ports: Iterable[int] = DEFAULT_PORTS, count: int | None = None) -> ScanReport:
    """Scan a pcap/pcapng file; damage in the file is listed in `report.summary.problems`."""
    ports = tuple(ports)
    capture = CaptureFile(path)
    flows, tally = scan(capture, ports, limit=count)
    return build_report(flows, tally, source=f"{capture.format} file {path}", ports=ports,
                        problems=capture.problems)


class LiveScan:
    """Scan a live interface until `count` VXLAN-port packets, `duration` seconds, or Ctrl-C."""

    def __init__(self, ifname: str, ports: Iterable[int] = DEFAULT_PORTS) -> None:
        self.ifname = ifname
        self.ports = tuple(ports)
        self.interrupted = False
        self.capture = LiveCapture(ifname, self.ports)
        self.flows: Flows = {}
        self.tally = Tally()

    def _records(self, count: int | None, duration: float | None) -> Iterator[Record]:
        try:
            yield from self.capture.records(count=count, duration=duration)
        except KeyboardInterrupt:
            self.interrupted = True

    def run(self, *, count: int | None = None, duration: float | None = None) -> ScanReport:
        try:
            scan(self._records(count, duration), self.ports, flows=self.flows, tally=self.tally)
        except KeyboardInterrupt:
            self.interrupted = True  # between two packets: the tallies so far still stand
        finally:
            drops = self.capture.kernel_drops()
            self.capture.close()
        return build_report(self.flows, self.tally, source=f"live capture on {self.ifname}", ports=self.ports,
                            kernel_drops=drops)

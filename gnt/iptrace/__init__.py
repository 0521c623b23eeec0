"""`gnt iptrace`: follow packets through iptables/nftables rules, live or from captured logs.

Live tracing installs a tagged trace rule set of its own (an nftables table, or on an
iptables-legacy node a raw-table TRACE rule), reads the kernel's trace (nftables trace
events over netlink, or the kernel log), groups the events into packets and yields one
`Packet` per packet; everything it installed is removed on every exit path. Offline,
`from_log` reads legacy kernel TRACE lines, `xtables-monitor --trace` and `nft monitor
trace` output. Nothing here prints: `gnt.output.text.iptrace` renders.
"""

from gnt.iptrace.models import Filter, Packet, Step, Summary, TraceEnd

__all__ = ["Filter", "Packet", "Step", "Summary", "TraceEnd"]

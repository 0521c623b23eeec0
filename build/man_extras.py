"""What the man pages say that the typer definitions do not: examples, exit-status meanings, see also.

build/gen_man.py checks that every example parses with the command's real options, so an
example cannot outlive an option it uses.
"""

from __future__ import annotations

# The meaning of every exit code, shared by all commands (gnt.errors.ExitCode).
EXIT_STATUS: dict[int, str] = {
    0: "Success: the command did what was asked and the answer was positive.",
    1: "Negative result: the command ran, but the answer was no (no reply, bad checksums, nothing matched).",
    2: "Error: bad usage, a missing permission or an unusable environment; one line on standard error says which.",
    130: "Interrupted (SIGINT).",
}

# command -> meaning of exit status 1 for that command
NEGATIVE: dict[str, str] = {
    "ping": "No reply was received (or fewer than -c replies before the -w deadline).",
    "traceroute": "The destination was not reached.",
    "ndisc": "No neighbour advertisement was received.",
    "rdisc": "No router advertisement was received.",
    "neigh": "Nothing matched.",
    "ip6": "Nothing matched.",
    "conntrack": "No connection matched.",
    "iptrace": "No packet was traced.",
    "drops": "Drops matched the filter (0: none did).",
    "vxlan-csum": "Packets with bad checksums were found.",
}

# command -> [(command line, what it does)]
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "gnt": [
        ("gnt --version --verbose", "Print the version, the Python it runs on, whether it is frozen, and glibc."),
        ("gnt ping --help", "The options of one command."),
    ],
    "ping": [
        ("gnt ping -c 3 127.0.0.1", "Send three echo requests and print the iputils-style summary."),
        ("gnt ping -c 1 -W 1 -q 192.0.2.1", "A health check: one probe, one second, only the summary; "
         "the exit status says whether a reply came."),
        ("gnt ping --json -c 2 ::1", "One JSON object per reply and one for the summary."),
    ],
    "traceroute": [
        ("gnt traceroute -n 192.0.2.1", "UDP probes, addresses only, as traceroute(8) prints them."),
        ("gnt traceroute -T -p 443 192.0.2.1", "TCP SYN probes to port 443, through firewalls that drop UDP."),
        ("gnt traceroute --paths 8 -n 2001:db8::1", "Trace 8 flows and list every router of each hop (ECMP)."),
    ],
    "iptrace": [
        ("gnt iptrace -p tcp --dport 443 -c 5", "Follow the next five packets to TCP port 443 through the rules."),
        ("gnt iptrace --cleanup", "Remove the trace rules a killed run left behind."),
    ],
    "drops": [
        ("gnt drops", "Packets the kernel drops, per second, by reason, kernel location and protocol."),
        ("gnt drops --reason UDP_CSUM --duration 10", "A health check: exit 1 if a UDP checksum drop "
         "happened in ten seconds."),
        ("gnt drops --cleanup", "Remove the tracing instance a killed run left behind."),
    ],
    "ndisc": [
        ("gnt ndisc 2001:db8::1 eth0", "Who has this address on eth0: its link-layer address, or exit 1."),
        ("gnt ndisc --dad 2001:db8::5 eth0", "Duplicate address detection: exit 1 if another node answers."),
    ],
    "rdisc": [
        ("gnt rdisc eth0", "Solicit the routers on eth0 and decode every advertisement."),
        ("gnt rdisc --listen -c 1 eth0", "Send nothing; wait for the next periodic advertisement."),
    ],
    "ip6": [
        ("gnt ip6 fe80::1 ff02::1:ff00:1", "What each address is: kind, scope, full form, groups, reverse name."),
        ("gnt ip6 --mac 02:00:00:00:00:01 --prefix 2001:db8::/64", "The SLAAC (EUI-64) address of a MAC."),
    ],
    "neigh": [
        ("gnt neigh -i eth0", "The neighbour table of eth0."),
        ("gnt neigh --watch -d 60", "Print neighbour state transitions for a minute."),
    ],
    "conntrack": [
        ("gnt conntrack list -p tcp --dport 443 --dnat", "Destination-NATed TCP connections to port 443."),
        ("gnt conntrack watch -e new,destroy -c 10", "The next ten new or destroyed connections."),
        ("gnt conntrack stats", "Per-CPU counters; insert_failed is the 5-second DNS delay."),
    ],
    "vxlan-csum": [
        ("gnt vxlan-csum scan --pcap capture.pcap", "Verify every VXLAN packet's checksums in a capture; "
         "exit 1 if any is bad."),
        ("gnt vxlan-csum scan -i eth0 -d 10", "Ten seconds of live capture on eth0."),
        ("gnt vxlan-csum audit", "Check this node's configuration for the conditions behind the bug."),
    ],
}

# See also, beyond gnt(1) and the peers named here.
SEE_ALSO: dict[str, list[str]] = {
    "ping": ["ping(8)"],
    "traceroute": ["traceroute(8)", "mtr(8)"],
    "ndisc": ["ndisc6(8)"],
    "rdisc": ["rdisc6(8)"],
    "neigh": ["ip-neighbour(8)"],
    "ip6": ["ip(8)"],
    "conntrack": ["conntrack(8)"],
    "iptrace": ["iptables(8)", "nft(8)"],
    "drops": ["perf(1)", "dropwatch(1)"],
    "vxlan-csum": ["tcpdump(8)", "ethtool(8)"],
}

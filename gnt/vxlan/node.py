"""Facts about this node that `gnt vxlan-csum audit` judges: read-only, gathered once.

Device attributes come from rtnetlink (pyroute2), offload features from the ethtool ioctls
(ETHTOOL_GSSET_INFO / GSTRINGS / GFEATURES, linux/ethtool.h: the same names `ethtool -k`
prints), the NAT rules from iptables-save (nft and legacy back ends, IPv4 and IPv6) and
`nft -j list ruleset`, counters from /proc/net/snmp and /proc/net/snmp6.
"""

from __future__ import annotations

import ctypes
import fcntl
import itertools
import os
import shutil
import socket
import struct
from dataclasses import dataclass, field

from gnt.core.process import run_tool
from gnt.errors import UnavailableError

SIOCETHTOOL = 0x8946  # linux/sockios.h
ETHTOOL_GSSET_INFO = 0x37  # get string set sizes
ETHTOOL_GSTRINGS = 0x1B  # get a string set
ETHTOOL_GFEATURES = 0x3A  # get feature bitmaps (available, requested, active, never_changed)
ETH_SS_FEATURES = 4  # the string set of feature names
ETH_GSTRING_LEN = 32  # bytes per name
IFNAMSIZ = 16  # linux/if.h
TOOL_TIMEOUT = 20  # seconds for iptables-save / nft to answer

RULE_SOURCES = (  # rule dumps read, in this order: (command, family, the command that edits them)
    ("iptables-save", "ipv4", "iptables"),
    ("ip6tables-save", "ipv6", "ip6tables"),
    ("iptables-legacy-save", "ipv4", "iptables-legacy"),
    ("ip6tables-legacy-save", "ipv6", "ip6tables-legacy"),
)


@dataclass
class VxlanDevice:
    name: str
    port: int
    family: int  # 4 or 6: the underlay the device sends over
    sends_checksum: bool  # udpcsum (IPv4) / not udp6zerocsumtx (IPv6)
    features: dict[str, bool]  # ethtool feature name -> active


@dataclass
class RuleDump:
    command: str  # e.g. "iptables-save"
    family: str  # "ipv4" / "ipv6"
    tool: str  # the command that changes these rules ("iptables", "ip6tables-legacy", ...)
    text: str


@dataclass
class NodeFacts:
    kernel: str
    vxlan: list[VxlanDevice] = field(default_factory=list)
    features: dict[str, dict[str, bool]] = field(default_factory=dict)  # every device's features
    ip_forward: bool = False
    ipv6_forwarding: bool = False
    rules: list[RuleDump] = field(default_factory=list)
    nft_json: str | None = None
    udp_csum_errors: dict[str, int] = field(default_factory=dict)  # "Udp"/"Udp6" -> InCsumErrors
    notes: list[str] = field(default_factory=list)


def ethtool_features(ifname: str) -> dict[str, bool]:
    """Every offload feature of `ifname` by its `ethtool -k` name -> active (empty if unavailable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        def ioctl(buf: ctypes.Array[ctypes.c_char]) -> None:
            ifreq = struct.pack(f"{IFNAMSIZ}sP", ifname.encode()[:IFNAMSIZ - 1], ctypes.addressof(buf))
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)

        try:
            info = ctypes.create_string_buffer(struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0))
            ioctl(info)
            _cmd, _res, mask, count = struct.unpack("IIQI", info.raw[:20])
            if not mask & (1 << ETH_SS_FEATURES) or count == 0:
                return {}
            names_buf = ctypes.create_string_buffer(
                struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count) + bytes(count * ETH_GSTRING_LEN)
            )
            ioctl(names_buf)
            raw = names_buf.raw[12:12 + count * ETH_GSTRING_LEN]
            names = [raw[i:i + ETH_GSTRING_LEN].split(b"\0", 1)[0].decode()
                     for i in range(0, len(raw), ETH_GSTRING_LEN)]
            blocks = (count + 31) // 32
            feat_buf = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GFEATURES, blocks) + bytes(16 * blocks))
            ioctl(feat_buf)
        except OSError:
            return {}
        words = struct.unpack(f"{4 * blocks}I", feat_buf.raw[8:8 + 16 * blocks])
    out: dict[str, bool] = {}
    for i, name in enumerate(names):
        if name:
            active = words[4 * (i // 32) + 2]
            out[name] = bool(active >> (i % 32) & 1)
    return out


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def udp_csum_errors() -> dict[str, int]:
    """InCsumErrors of Udp (/proc/net/snmp) and Udp6 (/proc/net/snmp6) in this network namespace."""
    out: dict[str, int] = {}
    try:
        with open("/proc/net/snmp") as f:
            lines = [line.split() for line in f]
        for head, values in itertools.pairwise(lines):
            if head and head[0] == "Udp:" and values and values[0] == "Udp:" and "InCsumErrors" in head:
                out["Udp"] = int(values[head.index("InCsumErrors")])
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/net/snmp6") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == "Udp6InCsumErrors":
                    out["Udp6"] = int(parts[1])
    except (OSError, ValueError):
        pass
    return out


def _run(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = run_tool(argv, argv[0], TOOL_TIMEOUT, extra_env={"LC_ALL": "C"})
    except (OSError, UnavailableError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _vxlan_devices(notes: list[str]) -> list[tuple[str, int, int, bool]]:
    """(name, port, family, sends_checksum) of every VXLAN device, through rtnetlink."""
    try:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - pyroute2 is a dependency
        notes.append("pyroute2 is missing: VXLAN devices not checked")
        return []
    out = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            if not info or info.get_attr("IFLA_INFO_KIND") != "vxlan":
                continue
            data = info.get_attr("IFLA_INFO_DATA")
            name = link.get_attr("IFLA_IFNAME")
            port = int(data.get_attr("IFLA_VXLAN_PORT") or 0) if data else 0
            v6 = bool(data and (data.get_attr("IFLA_VXLAN_GROUP6") or data.get_attr("IFLA_VXLAN_LOCAL6")))
            if v6:
                sends = not (data and data.get_attr("IFLA_VXLAN_UDP_ZERO_CSUM6_TX"))
            else:
                sends = bool(data and data.get_attr("IFLA_VXLAN_UDP_CSUM"))
            out.append((name, port, 6 if v6 else 4, sends))
    return out


def gather() -> NodeFacts:
    """Read everything the audit needs (the snmp counters are read again at the end by the audit)."""
    facts = NodeFacts(kernel=os.uname().release)
    facts.udp_csum_errors = udp_csum_errors()
    for name in sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []:
        facts.features[name] = ethtool_features(name)
    for name, port, underlay, sends in _vxlan_devices(facts.notes):
        feats = facts.features.get(name) or ethtool_features(name)
        facts.vxlan.append(VxlanDevice(name, port, underlay, sends, feats))
    facts.ip_forward = _read_int("/proc/sys/net/ipv4/ip_forward") == 1
    facts.ipv6_forwarding = _read_int("/proc/sys/net/ipv6/conf/all/forwarding") == 1
    for command, family, tool in RULE_SOURCES:
        text = _run([command])
        if text is not None:
            facts.rules.append(RuleDump(command, family, tool, text))
    facts.nft_json = _run(["nft", "-j", "list", "ruleset"])
    if not facts.rules and facts.nft_json is None:
        who = "" if os.geteuid() == 0 else " (run the audit as root)"
        facts.notes.append(f"neither iptables-save nor nft could list the rules{who}: NAT rules not checked")
    elif not any(d.family == "ipv4" for d in facts.rules):
        facts.notes.append("iptables-save could not list the rules: only native nftables rules checked")
    return facts

"""Throw-away network namespaces for integration tests.

Every namespace is named `gnt-<pid>-<n>-<role>` so parallel runs never collide and a later
run can remove what a killed one left (`remove_stale`). Only addresses inside these
namespaces (198.18.0.0/15, the benchmarking range, and 2001:db8::/32) are ever targets.

The chain topology every tool's tests share:

    h1 ── r1 ── r2 ── r3 ── h2        (IPv4 and IPv6, forwarding on in r1..r3)

link k (1..4) is 198.18.k.0/24 and 2001:db8:k::/64; the left end of link k is .1/::1,
the right end .2/::2. In h1 and h2 the interface is `eth0`; in routers `eth0` faces h1
and `eth1` faces h2. ping_group_range is widened in every namespace so unprivileged ICMP
works there (it stays "1 0" in the root namespace).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from helpers.jsonl import check_stream, is_json_run

NOBODY_UID = 65534
NOBODY_GID = 65534
_counter = itertools.count(1)
_NAME_RE = re.compile(r"^gnt-(\d+)-\d+-")
# Run inside a namespace by Namespace.send_frames: frames as hex lines on stdin, sent on argv[1].
FRAME_SENDER = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for line in sys.stdin:
    if line.strip():
        s.send(bytes.fromhex(line.strip()))
"""


def sh(
    *cmd: str, check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), check=check, text=True, capture_output=True, timeout=timeout, input=input)


def remove_stale() -> None:
    """Delete namespaces left by test runs whose process is gone."""
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # its run is still alive
        except ProcessLookupError:
            sh("ip", "netns", "del", name, check=False)
        except PermissionError:
            continue


def gnt_command(*args: str) -> list[str]:
    """argv that runs the installed gnt with this interpreter."""
    return [sys.executable, "-m", "gnt", *args]


@dataclass
class Namespace:
    name: str
    role: str

    def exec_argv(self, argv: Sequence[str], *, user: str | None = None) -> list[str]:
        base = ["ip", "netns", "exec", self.name]
        if user == "nobody":
            base += ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_GID}", "--clear-groups",
                     "--inh-caps=-all"]
        elif user is not None:
            raise ValueError(f"unknown user {user}")
        return base + list(argv)

    def run(self, *argv: str, check: bool = True, timeout: float = 60, user: str | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.exec_argv(argv, user=user), check=check, text=True, capture_output=True,
                              timeout=timeout, cwd="/", input=input)

    def popen(self, *argv: str, user: str | None = None, **kwargs: object) -> subprocess.Popen[str]:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("text", True)
        kwargs.setdefault("cwd", "/")
        return subprocess.Popen(self.exec_argv(argv, user=user), **kwargs)  # type: ignore[call-overload]

    def gnt(self, *args: str, user: str | None = None, timeout: float = 60,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `gnt ARGS` inside this namespace, as root or as nobody (a --json stream is schema-checked)."""
        result = self.run(*gnt_command(*args), user=user, timeout=timeout, check=check)
        if is_json_run(args):
            check_stream(result.stdout)
        return result

    def gnt_popen(self, *args: str, user: str | None = None, **kwargs: object) -> subprocess.Popen[str]:
        return self.popen(*gnt_command(*args), user=user, **kwargs)

    def send_frames(self, iface: str, frames: list[bytes]) -> None:
        """Send whole Ethernet frames on `iface` of this namespace (a packet socket), in order."""
        self.run(sys.executable, "-c", FRAME_SENDER, iface, input="\n".join(f.hex() for f in frames))

    def bound_packet_sockets(self) -> int:
        """Packet sockets in this namespace bound to a protocol: a capture that set up its filter and
        ring (it binds last; a socket still at protocol 0 receives nothing yet)."""
        lines = self.run("cat", "/proc/net/packet").stdout.splitlines()[1:]
        # Columns: sk RefCnt Type Proto Iface R Rmem User Inode
        return sum(1 for f in (line.split() for line in lines) if len(f) > 3 and int(f[3], 16) != 0)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "-n", self.name, *args, check=check)


@dataclass
class Topology:
    """A set of namespaces made for one test, removed by `close()`."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    run_id: int = field(default_factory=lambda: next(_counter))

    def add(self, role: str) -> Namespace:
        name = f"gnt-{os.getpid()}-{self.run_id}-{role}"
        sh("ip", "netns", "add", name)
        ns = Namespace(name, role)
        self.namespaces[role] = ns
        ns.ip("link", "set", "lo", "up")
        ns.sysctl("net.ipv4.ping_group_range", "0 2147483647")
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0")
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0")
        return ns

    def __getitem__(self, role: str) -> Namespace:
        return self.namespaces[role]

    def veth(self, a: Namespace, a_if: str, b: Namespace, b_if: str) -> None:
        sh("ip", "link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if, "netns", b.name)
        a.ip("link", "set", a_if, "up")
        b.ip("link", "set", b_if, "up")

    def close(self) -> None:
        for ns in self.namespaces.values():
            # Kill anything a test left running in the namespace before removing it.
            pids = sh("ip", "netns", "pids", ns.name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns.name, check=False)
        self.namespaces.clear()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CHAIN = ("h1", "r1", "r2", "r3", "h2")


def v4(link: int, end: int) -> str:
    return f"198.18.{link}.{end}"


def v6(link: int, end: int) -> str:
    return f"2001:db8:{link}::{end}"


class Chain(Topology):
    """h1 ── r1 ── r2 ── r3 ── h2, IPv4 and IPv6 (see the module docstring for the plan)."""

    def build(self) -> Chain:
        nodes = [self.add(role) for role in CHAIN]
        for router in nodes[1:4]:
            router.sysctl("net.ipv4.ip_forward", "1")
            router.sysctl("net.ipv6.conf.all.forwarding", "1")
        for link in range(1, 5):
            left, right = nodes[link - 1], nodes[link]
            left_if = "eth0" if left.role == "h1" else "eth1"
            self.veth(left, left_if, right, "eth0")
            left.ip("addr", "add", f"{v4(link, 1)}/24", "dev", left_if)
            right.ip("addr", "add", f"{v4(link, 2)}/24", "dev", "eth0")
            left.ip("-6", "addr", "add", f"{v6(link, 1)}/64", "dev", left_if, "nodad")
            right.ip("-6", "addr", "add", f"{v6(link, 2)}/64", "dev", "eth0", "nodad")
        h1, r1, r2, r3, h2 = nodes
        h1.ip("route", "add", "default", "via", v4(1, 2))
        h1.ip("-6", "route", "add", "default", "via", v6(1, 2))
        h2.ip("route", "add", "default", "via", v4(4, 1))
        h2.ip("-6", "route", "add", "default", "via", v6(4, 1))
        # r1: everything right of it via r2; r3: everything left of it via r2; r2: both ways.
        for link in (3, 4):
            r1.ip("route", "add", f"198.18.{link}.0/24", "via", v4(2, 2))
            r1.ip("-6", "route", "add", f"2001:db8:{link}::/64", "via", v6(2, 2))
        for link in (1, 2):
            r3.ip("route", "add", f"198.18.{link}.0/24", "via", v4(3, 1))
            r3.ip("-6", "route", "add", f"2001:db8:{link}::/64", "via", v6(3, 1))
        r2.ip("route", "add", "198.18.1.0/24", "via", v4(2, 1))
        r2.ip("-6", "route", "add", "2001:db8:1::/64", "via", v6(2, 1))
        r2.ip("route", "add", "198.18.4.0/24", "via", v4(3, 2))
        r2.ip("-6", "route", "add", "2001:db8:4::/64", "via", v6(3, 2))
        return self

    # Addresses by role, for readable tests.
    addresses4 = {"h1": v4(1, 1), "r1": v4(1, 2), "r2": v4(2, 2), "r3": v4(3, 2), "h2": v4(4, 2)}
    addresses6 = {"h1": v6(1, 1), "r1": v6(1, 2), "r2": v6(2, 2), "r3": v6(3, 2), "h2": v6(4, 2)}

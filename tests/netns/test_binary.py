"""The one-file binary (build/build.sh: PyInstaller one-file, in a staticx bundle, behind a static
launcher) on the hosts the README promises, proven in real roots:

- bullseye: a debootstrapped Debian 11 root (glibc 2.31, older than the build host's 2.36),
  cached in /var/cache/gnt-test-rootfs/bullseye (`debootstrap --variant=minbase bullseye DIR
  MIRROR`, the mirror apt uses here);
- empty: a root holding only the binary, /proc, /tmp, /etc/hosts and /etc/resolv.conf (no libc,
  no dynamic loader, no shell);
- host: this machine.
In each: --version, ping 127.0.0.1 and localhost (/etc/hosts), a name served by a DNS server
(/etc/resolv.conf), traceroute -n across the netns chain (hops compared with traceroute(8) in
the same run), vxlan-csum scan --pcap, conntrack stats, ip6. Plus: setcap does not reach gnt
(and what the README says works instead does), a child process sees the user's environment,
and a noexec or read-only /tmp gets one line naming TMPDIR.

Slow the first time (the build venv and the debootstrap), cached after that: build/build.sh
returns at once when dist/gnt matches the sources; its venv lives under /var/cache/gnt-test-build.
Each chroot run gets its own mount namespace (`unshare --mount`) inside the test's network
namespace: /proc is mounted only there, and the test's resolv.conf is bound over the root's.
"""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.netns import NOBODY_GID, NOBODY_UID, Chain, Namespace, Topology, sh

from gnt import __version__

pytestmark = [pytest.mark.slow, pytest.mark.netns, pytest.mark.timeout(1800)]  # first build + debootstrap

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "dist" / "gnt"
BUILD_VENV = "/var/cache/gnt-test-build/venv"  # kept across clones: pip install is the slow part
ROOTFS_CACHE = Path("/var/cache/gnt-test-rootfs")
OLD_SUITE = "bullseye"  # Debian 11: glibc 2.31, older than the build host's
MAX_SIZE = 16 * 1000 * 1000  # the size target for dist/gnt
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DNS_NAME = "node.gnt.test"  # answered by the test's DNS server with 127.0.0.1
HOSTS = "127.0.0.1 localhost\n"
# Each run in a mount namespace of its own: /proc mounted for a root, the test's resolv.conf
# (when it has one) bound over the root's or this machine's, then the binary with an empty
# environment (plus PATH).
CHROOT_RUN = f"""
root=$1; binary=$2; resolv=$3; shift 3
mount -t proc proc "$root/proc"
[ -n "$resolv" ] && mount --bind "$resolv" "$root/etc/resolv.conf"
exec env -i PATH={PATH} chroot "$root" "$binary" "$@"
"""
HOST_RUN = f"""
binary=$1; resolv=$2; shift 2
[ -n "$resolv" ] && mount --bind "$resolv" /etc/resolv.conf
exec env -i PATH={PATH} "$binary" "$@"
"""
DNS_SERVER = r"""
import socket, struct, sys
name = sys.argv[1].encode()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    query, peer = sock.recvfrom(512)
    ident, _flags, _qd = struct.unpack("!HHH", query[:6])
    end = 12
    labels = []
    while query[end]:
        labels.append(query[end + 1:end + 1 + query[end]])
        end += 1 + query[end]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
    question = query[12:end + 5]
    found = b".".join(labels).lower() == name
    answers = 1 if found and qtype == 1 else 0
    reply = struct.pack("!HHHHHH", ident, 0x8180 if found else 0x8183, 1, answers, 0, 0) + question
    if answers:
        reply += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    sock.sendto(reply, peer)
"""


def debian_mirror(suite: str = "bookworm") -> str:
    """The Debian archive apt uses on this machine (deb822 .sources or one-line sources.list)."""
    paths = [*sorted(glob.glob("/etc/apt/sources.list.d/*.sources")), "/etc/apt/sources.list"]
    paths += sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if suite in fields.get("Suites", "").split() and fields.get("URIs"):
                    return fields["URIs"].split()[0]
        else:
            for match in re.finditer(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{suite}\s", text, re.M):
                return match.group(1)
    return "http://deb.debian.org/debian"


def debootstrap(suite: str, arch: str | None = None) -> Path:
    """A minimal Debian root, made once and cached (older suites come from the same archive)."""
    name = suite if arch is None else f"{suite}-{arch}"
    target = ROOTFS_CACHE / name
    if not (target / "usr" / "bin" / "env").exists():
        partial = ROOTFS_CACHE / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        ROOTFS_CACHE.mkdir(parents=True, exist_ok=True)
        argv = ["debootstrap", "--variant=minbase", *([f"--arch={arch}"] if arch else []), suite, str(partial),
                debian_mirror()]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=1500, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


@dataclass
class Host:
    """Where the binary runs: a root directory (chroot) or this machine (path None)."""

    name: str
    path: Path | None
    binary: str  # the binary's path as seen from inside

    def argv(self, ns: Namespace, args: tuple[str, ...], *, resolv: Path | None = None) -> list[str]:
        if self.path is None:
            return ns.exec_argv(["unshare", "--mount", "--fork", "sh", "-c", HOST_RUN, "sh", self.binary,
                                 str(resolv or ""), *args])
        return ns.exec_argv(["unshare", "--mount", "--fork", "sh", "-c", CHROOT_RUN, "sh", str(self.path),
                             self.binary, str(resolv or ""), *args])

    def run(self, ns: Namespace, *args: str, resolv: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(ns, args, resolv=resolv), capture_output=True, text=True,
                              timeout=timeout, check=False, cwd="/")

    def tmp(self) -> Path:
        return Path("/tmp") if self.path is None else self.path / "tmp"


@pytest.fixture(scope="module")
def binary() -> Path:
    env = {**os.environ, "GNT_BUILD_VENV": BUILD_VENV}
    os.makedirs(os.path.dirname(BUILD_VENV), exist_ok=True)
    result = subprocess.run(["bash", str(ROOT / "build" / "build.sh")], capture_output=True, text=True, env=env,
                            timeout=1500, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert BINARY.is_file()
    return BINARY


def make_empty_root(binary: Path, root: Path) -> Path:
    """Only the binary (as /gnt), /proc, /tmp, /etc/hosts and /etc/resolv.conf: nothing else at all."""
    root.chmod(0o755)
    for directory in ("proc", "tmp", "etc"):
        (root / directory).mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "hosts").write_text(HOSTS)
    (root / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    shutil.copy2(binary, root / "gnt")
    return root


@pytest.fixture(scope="module")
def empty_root(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_empty_root(binary, tmp_path_factory.mktemp("empty-root"))


@pytest.fixture(scope="module", params=[OLD_SUITE, "empty", "host"])
def host(request: pytest.FixtureRequest, binary: Path) -> Host:
    if request.param == "host":
        return Host("host", None, str(binary))
    if request.param == "empty":
        return Host("empty", request.getfixturevalue("empty_root"), "/gnt")
    root = debootstrap(OLD_SUITE)
    (root / "etc" / "hosts").write_text(HOSTS)  # minbase has none; every real node has one
    (root / "etc" / "resolv.conf").touch()
    (root / "usr" / "local" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, root / "usr" / "local" / "bin" / "gnt")
    assert not glob.glob(str(root / "usr" / "bin" / "python*")), "the minimal root file system has Python"
    return Host(OLD_SUITE, root, "/usr/local/bin/gnt")


@pytest.fixture
def solo() -> Iterator[Namespace]:
    with Topology() as topology:
        yield topology.add("solo")


def test_binary_is_one_small_file_that_names_what_it_carries(binary: Path) -> None:
    assert binary.stat().st_size <= MAX_SIZE
    verbose = subprocess.run(["env", "-i", str(binary), "--version", "--verbose"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert verbose.returncode == 0, verbose.stderr
    lines = verbose.stdout.splitlines()
    assert lines[0] == f"gnt {__version__}"
    assert f"machine: {os.uname().machine}" in lines
    assert any(line.startswith("frozen: static bundle, one file") for line in lines), lines
    build_glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]  # staticx carries the build host's
    assert f"libc: glibc {build_glibc}, carried in the binary" in lines
    assert any(line.startswith("needs from the host: nothing") for line in lines), lines


def test_version(host: Host, solo: Namespace) -> None:
    result = host.run(solo, "--version")
    assert (result.returncode, result.stdout) == (0, f"gnt {__version__}\n"), result.stderr
    verbose = host.run(solo, "--version", "--verbose")
    assert "libc: glibc 2.36, carried in the binary" in verbose.stdout.splitlines(), verbose.stdout + verbose.stderr


@pytest.mark.parametrize("target", ["127.0.0.1", "localhost"])
def test_ping(host: Host, solo: Namespace, target: str) -> None:
    result = host.run(solo, "ping", "-c", "1", "-W", "2", target)
    assert result.returncode == 0, result.stdout + result.stderr
    # this machine's /etc/hosts may give localhost ::1 too (and ping prefers it, as iputils does)
    assert re.search(rf"^PING {re.escape(target)} ?\((127\.0\.0\.1|::1)\)", result.stdout, re.M), result.stdout
    assert "1 packets transmitted, 1 received" in result.stdout


def test_a_name_from_the_dns_server_in_resolv_conf(host: Host, solo: Namespace, tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    server = solo.popen("python3", "-c", DNS_SERVER, DNS_NAME)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        result = host.run(solo, "ping", "-c", "1", "-W", "2", DNS_NAME, resolv=resolv)
    finally:
        server.kill()
        server.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"PING {DNS_NAME} (127.0.0.1)" in result.stdout


def hops(text: str) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(r"^\s*(\d+)\s+(\S+)", text, re.M)]


def test_traceroute_across_the_chain(host: Host, chain: Chain) -> None:
    target = chain.addresses4["h2"]
    result = host.run(chain["h1"], "traceroute", "-n", "-q", "1", "-w", "2", target)
    peer = chain["h1"].run("traceroute", "-n", "-q", "1", "-w", "2", target, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hops(result.stdout) == hops(peer.stdout) == [(1, "198.18.1.2"), (2, "198.18.2.2"), (3, "198.18.3.2"),
                                                         (4, target)]


def test_vxlan_csum_scan_of_a_pcap(host: Host, solo: Namespace) -> None:
    from helpers.vxlan_frames import vxlan_frame, write_pcap

    name = f"gnt-test-{uuid.uuid4().hex}"
    good, bad = host.tmp() / f"{name}-good.pcap", host.tmp() / f"{name}-bad.pcap"
    inside = "/tmp" if host.path is not None else str(host.tmp())
    try:
        write_pcap(str(good), [vxlan_frame("ok"), vxlan_frame("ok")])
        write_pcap(str(bad), [vxlan_frame("ok"), vxlan_frame("bad")])
        clean = host.run(solo, "vxlan-csum", "scan", "--json", "--pcap", f"{inside}/{good.name}")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        broken = host.run(solo, "vxlan-csum", "scan", "--json", "--pcap", f"{inside}/{bad.name}")
        assert broken.returncode == 1, broken.stdout + broken.stderr
        records = [json.loads(line) for line in broken.stdout.splitlines()]
        assert records and all("type" in record for record in records)
    finally:
        good.unlink(missing_ok=True)
        bad.unlink(missing_ok=True)


def test_conntrack_stats(host: Host, solo: Namespace) -> None:
    result = host.run(solo, "conntrack", "stats", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    stats = [record for record in map(json.loads, result.stdout.splitlines()) if record.get("type") == "stats"]
    limit = solo.run("cat", "/proc/sys/net/netfilter/nf_conntrack_max").stdout.strip()
    assert [record["max_entries"] for record in stats] == [int(limit)]


def test_ip6(host: Host, solo: Namespace) -> None:
    address = "2001:db8::a:b:c:d"
    result = host.run(solo, "ip6", "--json", address)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [record for record in map(json.loads, result.stdout.splitlines()) if record.get("type") == "address"]
    low24 = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    assert [record["solicited_node"] for record in records] == [
        str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low24))]


@pytest.mark.parametrize("argv", [
    ["neigh", "--json"],  # pyroute2, imported lazily
    ["conntrack", "list", "--json"],  # netlink conntrack socket
], ids=lambda argv: "-".join(a.strip("-") for a in argv))
def test_binary_carries_the_lazily_imported_paths(binary: Path, argv: list[str]) -> None:
    # in a fresh network namespace: whatever the answer, no module may be missing from the binary
    result = subprocess.run(["unshare", "--net", "--", str(binary), *argv], capture_output=True,
                            text=True, timeout=60, check=False)
    for sign in ("internal error", "ModuleNotFound", "Traceback"):
        assert sign not in result.stderr, result.stderr
    assert result.returncode in (0, 1, 2), result.stderr
    if result.returncode == 2:  # an expected refusal is one line (plus its hint), never a crash
        assert 1 <= len(result.stderr.splitlines()) <= 2, result.stderr


@pytest.fixture
def binary_for_nobody(binary: Path) -> Iterator[Path]:
    """A copy of dist/gnt that the user nobody can run (the test's tmp_path is root's alone)."""
    place = Path("/tmp") / f"gnt-test-{uuid.uuid4().hex}"
    place.mkdir(mode=0o755)
    copy = place / "gnt"
    shutil.copy2(binary, copy)
    copy.chmod(0o755)
    yield copy
    shutil.rmtree(place)


def test_setcap_does_not_reach_gnt_and_what_the_readme_says_works_does(binary_for_nobody: Path,
                                                                       solo: Namespace) -> None:
    # The README advises ping_group_range (or root), not setcap: the bundle runs gnt from files
    # the user can write, so a file capability must not pass on. Proven as nobody, in a netns.
    subprocess.run(["setcap", "cap_net_raw+ep", str(binary_for_nobody)], check=True)
    assert "cap_net_raw" in subprocess.run(["getcap", str(binary_for_nobody)], capture_output=True, text=True,
                                           check=True).stdout
    ping = [str(binary_for_nobody), "ping", "-c", "1", "-W", "2", "127.0.0.1"]
    solo.sysctl("net.ipv4.ping_group_range", "1 0")
    refused = solo.run(*ping, user="nobody", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("gnt: capabilities set on this file (setcap) do not reach gnt"), lines
    assert "cannot open an ICMP socket" in lines[1] and "ping_group_range" in refused.stderr
    solo.sysctl("net.ipv4.ping_group_range", f"{NOBODY_GID} {NOBODY_GID}")
    allowed = solo.run(*ping, user="nobody", check=False)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "1 packets transmitted, 1 received" in allowed.stdout
    assert os.stat(binary_for_nobody).st_uid != NOBODY_UID


FAKE_TOOL = """#!/bin/sh
env > "{out}"
"""


def test_a_child_process_gets_the_users_environment_not_the_bundles(binary: Path, solo: Namespace,
                                                                     tmp_path: Path) -> None:
    # vxlan-csum audit runs iptables-save (and friends) from PATH: a stand-in records its environment
    tools = tmp_path / "bin"
    tools.mkdir()
    out = tmp_path / "child.env"
    fake = tools / "iptables-save"
    fake.write_text(FAKE_TOOL.format(out=out))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    for inherited in (None, "/opt/gnt-test/lib"):
        out.unlink(missing_ok=True)
        env = ["env", "-i", f"PATH={tools}:{PATH}", "GNT_TEST_MARK=kept"]
        env += [f"LD_LIBRARY_PATH={inherited}", f"TMPDIR={tmp_path}"] if inherited else []
        solo.run(*env, str(binary), "vxlan-csum", "audit", "--json", check=False)
        assert out.exists(), "the stand-in iptables-save was not run"
        seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        assert seen.get("GNT_TEST_MARK") == "kept"
        assert seen.get("LD_LIBRARY_PATH") == inherited, seen
        assert seen.get("TMPDIR") == (str(tmp_path) if inherited else None), seen
        assert not [name for name in seen
                    if name.startswith(("_PYI_", "STATICX_", "_GNT_", "LD_LIBRARY_PATH_ORIG"))], seen


@pytest.mark.parametrize("mount_options", ["noexec", "ro"])
def test_an_unusable_tmp_gets_one_line_naming_tmpdir(binary: Path, mount_options: str) -> None:
    script = f'mount -t tmpfs -o {mount_options} tmpfs /tmp && exec env -i "$@"'
    # The binary is run from outside /tmp: the checkout itself may live under the /tmp mounted over.
    outside = Path("/var/tmp") / f"gnt-test-{uuid.uuid4().hex}"
    (outside / "tmp").mkdir(parents=True)
    copy = outside / "gnt"
    shutil.copy2(binary, copy)
    try:
        result = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", str(copy), "--version"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(result.stderr.splitlines()) == 1 and "set TMPDIR" in result.stderr, result.stderr
        # and the fix it names works: TMPDIR on a usable file system (not under the /tmp mounted over)
        usable = outside / "tmp"
        fixed = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script, "sh", f"TMPDIR={usable}",
                                str(copy), "--version"], capture_output=True, text=True, timeout=60, check=False)
        assert (fixed.returncode, fixed.stdout) == (0, f"gnt {__version__}\n"), fixed.stderr
        assert not list(usable.iterdir()), "the bundle left files behind"
    finally:
        shutil.rmtree(outside)


ARM64_BINARY = ROOT / "dist" / "gnt-arm64"


@pytest.fixture(scope="module")
def arm64_root(tmp_path_factory: pytest.TempPathFactory) -> Host:
    """dist/gnt-arm64 (build/build.sh --arch arm64, under qemu-user in a cached arm64 Debian root)
    alone in an otherwise empty root; it runs through the qemu-aarch64 binfmt_misc handler."""
    result = subprocess.run(["bash", str(ROOT / "build" / "build.sh"), "--arch", "arm64"], capture_output=True,
                            text=True, timeout=3600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(), "build.sh registers qemu-aarch64"
    root = make_empty_root(ARM64_BINARY, tmp_path_factory.mktemp("arm64-root"))
    with open(root / "gnt", "rb") as handle:
        header = handle.read(20)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183, "not an aarch64 ELF"
    return Host("arm64-empty", root, "/gnt")


@pytest.mark.timeout(3600)
def test_arm64_binary_under_qemu_in_an_empty_root(arm64_root: Host, solo: Namespace) -> None:
    version = arm64_root.run(solo, "--version", "--verbose")
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert lines[0] == f"gnt {__version__}" and "machine: aarch64" in lines, lines
    assert any(line.startswith("libc: glibc") and line.endswith("carried in the binary") for line in lines), lines

    ping = arm64_root.run(solo, "ping", "-c", "1", "-W", "5", "127.0.0.1")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 packets transmitted, 1 received" in ping.stdout

    from helpers.vxlan_frames import vxlan_frame, write_pcap

    pcap = arm64_root.tmp() / f"gnt-test-{uuid.uuid4().hex}.pcap"
    try:
        write_pcap(str(pcap), [vxlan_frame("ok"), vxlan_frame("bad")])
        scan = arm64_root.run(solo, "vxlan-csum", "scan", "--json", "--pcap", f"/tmp/{pcap.name}")
    finally:
        pcap.unlink(missing_ok=True)
    assert scan.returncode == 1, scan.stdout + scan.stderr  # the bad checksum is found
    records = [json.loads(line) for line in scan.stdout.splitlines()]
    assert records and all("type" in record for record in records)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name)
def test_a_signal_to_the_binary_stops_gnt_and_leaves_nothing_behind(binary: Path, solo: Namespace,
                                                                   sig: signal.Signals) -> None:
    unpack = Path("/var/tmp") / f"gnt-test-{uuid.uuid4().hex}"  # its own TMPDIR, to see what is left
    unpack.mkdir()
    try:
        proc = solo.popen("env", "-i", f"PATH={PATH}", f"TMPDIR={unpack}", str(binary), "ping", "-i", "0.2",
                          "127.0.0.1")
        deadline = time.monotonic() + 30
        while not (proc.stdout and proc.stdout.readline().startswith("64 bytes")) and time.monotonic() < deadline:
            pass
        launcher = [pid for pid in map(int, sh("ip", "netns", "pids", solo.name).stdout.split())
                    if os.path.realpath(f"/proc/{pid}/exe") == str(binary)]
        assert len(launcher) == 1, launcher
        os.kill(launcher[0], sig)  # to the binary alone, as `kill` does (a terminal signals every process)
        proc.communicate(timeout=30)
        assert proc.returncode != 0 or sig == signal.SIGINT
        assert sh("ip", "netns", "pids", solo.name).stdout.split() == [], "gnt still runs"
        assert not list(unpack.iterdir()), f"left behind: {list(unpack.iterdir())}"
    finally:
        shutil.rmtree(unpack)


# (how the signal is sent, the signal, the exit status): a terminal's Ctrl-C (^C typed on a pty:
# the kernel signals the foreground group), `kill -- -PGID`,
# `timeout` and systemd reach every process of the group; `kill PID` and a container runtime reach
# the launcher alone, which passes the signal on.
START_UP_SIGNALS = [("terminal", signal.SIGINT, 130), ("group", signal.SIGINT, 130), ("group", signal.SIGTERM, 143),
                    ("launcher", signal.SIGINT, 130), ("launcher", signal.SIGTERM, 143),
                    ("launcher", signal.SIGHUP, 129)]


@pytest.mark.parametrize(("target", "sig", "status"), START_UP_SIGNALS,
                         ids=[f"{target}-{sig.name}" for target, sig, _ in START_UP_SIGNALS])
def test_a_signal_at_any_moment_of_the_binarys_start_up_is_one_line_and_128_plus_the_signal(
        binary: Path, target: str, sig: signal.Signals, status: int) -> None:
    """The launcher holds the stop signals until gnt's handlers are up (build/launcher.c), so even
    one landing in the bootloaders or in Python's own start-up ends as gnt's own would: no
    traceback, at most the line that closes the ^C echo, 128 + the signal. The first ~0.3 s
    of a run are the unpacking and the interpreter's start; 0.6 s covers them and the command."""
    import fcntl
    import termios

    rng = random.Random(int(sig) * 31 + len(target))
    for _ in range(30):
        # Reads a capture from its standard input, which never brings a byte: nothing but the signal
        # ends it. For "terminal" that input is a pty whose controlling process gnt is, and ^C is typed.
        # (A pipe held open until gnt ends: closed at once, its end of file could beat the signal.)
        master, slave = os.openpty() if target == "terminal" else os.pipe()[::-1]
        proc = subprocess.Popen(
            [str(binary), "vxlan-csum", "scan", "--pcap", "-"], stdin=slave,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd="/", start_new_session=True,
            preexec_fn=(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)) if target == "terminal" else None)
        delay = rng.uniform(0, 0.6)
        time.sleep(delay)
        if target == "terminal":
            os.write(master, b"\x03")
        elif target == "group":
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            os.close(master)
            os.close(slave)
        assert (proc.returncode, err.strip()) == (status, ""), (delay, proc.returncode, err)
        assert err in ("", "\n"), (delay, err)


def test_a_stop_signal_ignored_by_the_caller_stays_ignored(binary: Path) -> None:
    """`nohup` ignores SIGHUP and a shell's `cmd &` SIGINT: the launcher leaves such a signal ignored
    for gnt too (no handler, nothing held), as the installed `gnt` does; SIGTERM still stops it."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([str(binary), "vxlan-csum", "scan", "--pcap", "-"], stdin=read_end,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd="/",
                                start_new_session=True,
                                preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_IGN),
                                                    signal.signal(signal.SIGHUP, signal.SIG_IGN)))
        for moment in (0.05, 0.6):  # in start-up, then running
            time.sleep(moment)
            os.killpg(proc.pid, signal.SIGINT)
            os.kill(proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert (proc.returncode, err) == (143, "")
    finally:
        os.close(read_end)
        os.close(write_end)

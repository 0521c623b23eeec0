"""The one-file binary: built by build/build.sh, it runs with an empty environment and inside a
minimal Debian root file system that has no Python at all.

Slow the first time (the build venv and the debootstrap), cached after that:
- the binary: build/build.sh returns at once when dist/gnt matches the sources (a stamp);
  its virtual environment lives under /var/cache/gnt-test-build so fresh clones reuse it;
- the root file system: /var/cache/gnt-test-rootfs/bookworm, made once with
  `debootstrap --variant=minbase bookworm DIR MIRROR` from the mirror apt uses here.
Each chroot run gets a fresh mount and network namespace (`unshare --mount --net`): /proc is
mounted only inside it and the loopback that ping uses is its own.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from helpers.jsonl import records

from gnt import __version__

pytestmark = [pytest.mark.slow, pytest.mark.netns, pytest.mark.timeout(1800)]  # first build + debootstrap

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "dist" / "gnt"
BUILD_VENV = "/var/cache/gnt-test-build/venv"  # kept across clones: pip install is the slow part
ROOTFS_CACHE = Path("/var/cache/gnt-test-rootfs")
SUITE = "bookworm"  # the Debian release of this machine: the oldest glibc reachable here
MAX_SIZE = 25 * 1000 * 1000  # the size target for dist/gnt
CHROOT_RUN = """
root=$1; shift
mount -t proc proc "$root/proc"
ip link set lo up
exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin /usr/local/bin/gnt "$@"
"""


def debian_mirror() -> str:
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
                if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                    return fields["URIs"].split()[0]
        else:
            for match in re.finditer(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", text, re.M):
                return match.group(1)
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def binary() -> Path:
    env = {**os.environ, "GNT_BUILD_VENV": BUILD_VENV}
    os.makedirs(os.path.dirname(BUILD_VENV), exist_ok=True)
    result = subprocess.run(["bash", str(ROOT / "build" / "build.sh")], capture_output=True, text=True, env=env,
                            timeout=1500, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert BINARY.is_file()
    return BINARY


@pytest.fixture(scope="module")
def rootfs() -> Path:
    target = ROOTFS_CACHE / SUITE
    if not (target / "usr" / "bin" / "env").exists():
        partial = ROOTFS_CACHE / f"{SUITE}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        ROOTFS_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(partial), debian_mirror()],
                                capture_output=True, text=True, timeout=1500, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


@pytest.fixture(scope="module")
def chroot(binary: Path, rootfs: Path) -> Path:
    """The root file system with the binary installed as /usr/local/bin/gnt."""
    target = rootfs / "usr" / "local" / "bin" / "gnt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, target)
    return rootfs


def run_in_chroot(rootfs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unshare", "--mount", "--net", "--fork", "sh", "-c", CHROOT_RUN, "sh", str(rootfs), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_binary_is_one_small_file_and_runs_with_an_empty_environment(binary: Path) -> None:
    assert binary.stat().st_size <= MAX_SIZE
    result = subprocess.run(["env", "-i", str(binary), "--version"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"gnt {__version__}\n"
    verbose = subprocess.run(["env", "-i", str(binary), "--version", "--verbose"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert "frozen: yes" in verbose.stdout
    needs = re.search(r"needs glibc >= (\d+)\.(\d+)", verbose.stdout)
    assert needs, verbose.stdout
    running = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    assert tuple(map(int, needs.groups())) <= tuple(map(int, running.split(".")))


@pytest.mark.parametrize("argv", [
    ["neigh", "--json"],  # pyroute2, imported lazily
    ["conntrack", "list", "--json"],  # netlink conntrack socket
    ["conntrack", "stats"],
    ["ip6", "--json", "fe80::1"],  # netaddr, imported lazily
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


def test_binary_runs_in_a_root_file_system_without_python(chroot: Path) -> None:
    rootfs = chroot
    assert not glob.glob(str(rootfs / "usr" / "bin" / "python*")), "the minimal root file system has Python"

    version = run_in_chroot(rootfs, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"gnt {__version__}\n"

    ping = run_in_chroot(rootfs, "ping", "-c", "1", "-W", "2", "127.0.0.1")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 packets transmitted, 1 received" in ping.stdout

    trace = run_in_chroot(rootfs, "traceroute", "-n", "-m", "1", "-q", "1", "127.0.0.1")
    assert trace.returncode == 0, trace.stdout + trace.stderr
    assert " 1  127.0.0.1  " in trace.stdout


def test_binary_scans_a_pcap_in_the_root_file_system(chroot: Path) -> None:
    from helpers.vxlan_frames import vxlan_frame, write_pcap

    rootfs = chroot
    name = f"gnt-test-{uuid.uuid4().hex}"
    good, bad = rootfs / "tmp" / f"{name}-good.pcap", rootfs / "tmp" / f"{name}-bad.pcap"
    try:
        write_pcap(str(good), [vxlan_frame("ok"), vxlan_frame("ok")])
        write_pcap(str(bad), [vxlan_frame("ok"), vxlan_frame("bad")])
        clean = run_in_chroot(rootfs, "vxlan-csum", "scan", "--json", "--pcap", f"/tmp/{good.name}")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        broken = run_in_chroot(rootfs, "vxlan-csum", "scan", "--json", "--pcap", f"/tmp/{bad.name}")
        assert broken.returncode == 1, broken.stdout + broken.stderr
        objs = records(broken.stdout)
        assert objs and all("type" in record for record in objs)
    finally:
        good.unlink(missing_ok=True)
        bad.unlink(missing_ok=True)

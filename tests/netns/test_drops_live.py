"""`gnt drops` against the real kernel: each drop made in namespaces the test builds and named by gnt.

Drop events are global (every namespace, every engineer's parallel tests), so each test asks gnt for
the reason it provokes (a kernel filter) and checks that the count is at least what it caused, at
the kernel location that drops it. gnt runs in a private mount namespace (`unshare -m`) so that the
tracefs it may mount is never seen by other processes; instances live in the one tracefs superblock
and are visible everywhere, which the cleanup tests rely on.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from helpers.netns import Chain, Namespace, Topology, sh

pytestmark = pytest.mark.netns

TRACEFS = "/sys/kernel/tracing"
# A python sender run inside a namespace: argv = dst, port, count, [payload size], [src]; UDP with DF.
UDP_SENDER = """
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 8
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
if ":" not in dst:
    s.setsockopt(socket.IPPROTO_IP, 10, 3)  # IP_MTU_DISCOVER = IP_PMTUDISC_PROBE: DF set, PMTU ignored
if len(sys.argv) > 5:
    s.bind((sys.argv[5], 0))
for _ in range(n):
    try:
        s.sendto(b"d" * size, (dst, port))
    except OSError:
        pass
"""
def gnt_drops_argv(*args: str) -> list[str]:
    return ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "gnt", "drops", *args]


def start(*args: str) -> subprocess.Popen[str]:
    """Start `gnt drops ARGS` and return once it traces (its "tracing" line on stderr)."""
    proc = subprocess.Popen(gnt_drops_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd="/")
    assert proc.stderr is not None
    first = proc.stderr.readline()
    if "tracing skb:kfree_skb" not in first:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"gnt drops did not start: {first}{err}{out}")
    return proc


def drops_while(action: Callable[[], object], *args: str) -> tuple[int, list[dict[str, object]], str]:
    """Run `gnt drops --json ARGS`, do `action`, stop it with SIGINT; (exit code, objects, stderr)."""
    proc = start("--json", *args)
    try:
        action()
        time.sleep(0.4)  # the drops are in the ring; gnt reads it every 0.1 s and once more on SIGINT
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.strip()], err


def counted(objects: list[dict[str, object]], reason: str, at: str = "") -> int:
    """Drops of `reason` in the `drop` objects, at a location starting with `at`."""
    return sum(int(o["count"]) for o in objects  # type: ignore[call-overload]
               if o.get("type") == "drop" and o["reason"] == reason and str(o["location"]).startswith(at))


def provoke(action: Callable[[], object], reason: str, *args: str) -> list[dict[str, object]]:
    """gnt's objects for a run filtered on `reason` during which `action` made those drops (ended by SIGINT)."""
    code, objs, err = drops_while(action, "--reason", reason, *args)
    assert code == 130, err
    return objs


def summary_of(objects: list[dict[str, object]]) -> dict[str, object]:
    summaries = [o for o in objects if o.get("type") == "summary"]
    assert len(summaries) == 1, objects
    return summaries[0]


def instances() -> list[str]:
    """gnt_drops_* instances, seen through a tracefs mounted in a private mount namespace."""
    out = sh("unshare", "-m", "--propagation", "private", "sh", "-c",
             f"grep -q ' {TRACEFS} tracefs' /proc/mounts || mount -t tracefs nodev {TRACEFS}; "
             f"ls {TRACEFS}/instances").stdout
    return [name for name in out.split() if name.startswith("gnt_drops_")]


def kernel_format() -> str:
    """skb:kfree_skb's format file, read by the test itself (not through gnt)."""
    return sh("unshare", "-m", "--propagation", "private", "sh", "-c",
              f"grep -q ' {TRACEFS} tracefs' /proc/mounts || mount -t tracefs nodev {TRACEFS}; "
              f"cat {TRACEFS}/events/skb/kfree_skb/format").stdout


def send_udp(ns: Namespace, dst: str, port: int, n: int, size: int = 8, src: str | None = None) -> None:
    ns.run(sys.executable, "-c", UDP_SENDER, dst, str(port), str(n), str(size), *([src] if src else []))


@pytest.fixture
def pair(topology: Topology) -> tuple[Namespace, Namespace]:
    """a ── b over one veth, 198.18.200.1/24 and .2."""
    a, b = topology.add("dra"), topology.add("drb")
    topology.veth(a, "eth0", b, "eth0")
    a.ip("addr", "add", "198.18.200.1/24", "dev", "eth0")
    b.ip("addr", "add", "198.18.200.2/24", "dev", "eth0")
    return a, b


def test_udp_to_a_closed_port_is_no_socket(pair: tuple[Namespace, Namespace]) -> None:
    a, _ = pair
    objs = provoke(lambda: send_udp(a, "198.18.200.2", 9, 25), "NO_SOCKET")
    assert counted(objs, "NO_SOCKET", "__udp4_lib_rcv+0x") >= 25, objs
    assert all(o["protocol"] in ("ipv4", "ipv6") for o in objs if o.get("type") == "drop")
    summary = summary_of(objs)
    assert summary["kernel_filter"] and "reason ==" in str(summary["kernel_filter"])
    assert [r["reason"] for r in summary["reasons"]] == ["NO_SOCKET"]  # type: ignore[attr-defined]
    assert "listens" in summary["reasons"][0]["hint"]  # type: ignore[index]


def test_nft_drop_rule_is_netfilter_drop(pair: tuple[Namespace, Namespace]) -> None:
    a, b = pair
    b.run("nft", "-f", "-", input="table inet gntdroptest {\n chain input {\n"
                                  "  type filter hook input priority 0;\n  udp dport 7777 drop\n }\n}\n")
    objs = provoke(lambda: send_udp(a, "198.18.200.2", 7777, 20), "NETFILTER_DROP", "--proto", "ipv4")
    assert counted(objs, "NETFILTER_DROP", "nft_do_chain+0x") >= 20, objs


def test_spoofed_source_with_rp_filter_is_ip_rpfilter(pair: tuple[Namespace, Namespace]) -> None:
    a, b = pair
    b.sysctl("net.ipv4.conf.all.rp_filter", "1")
    b.sysctl("net.ipv4.conf.eth0.rp_filter", "1")
    # b routes 198.18.201.0/24 out of another interface, so a source from there arriving on eth0 fails rp_filter.
    b.ip("link", "add", "side0", "type", "veth", "peer", "name", "side1")
    b.ip("link", "set", "side0", "up")
    b.ip("link", "set", "side1", "up")
    b.ip("addr", "add", "198.18.201.254/24", "dev", "side0")
    a.ip("addr", "add", "198.18.201.1/32", "dev", "eth0")
    # b would not answer ARP for the spoofed source (rp_filter checks ARP too): a static entry on a.
    b_mac = json.loads(b.ip("-j", "link", "show", "eth0").stdout)[0]["address"]
    a.ip("neigh", "replace", "198.18.200.2", "lladdr", b_mac, "dev", "eth0", "nud", "permanent")
    objs = provoke(lambda: send_udp(a, "198.18.200.2", 9999, 15, src="198.18.201.1"), "IP_RPFILTER")
    assert counted(objs, "IP_RPFILTER") >= 15, objs


def test_no_route_on_a_router(chain: Chain) -> None:
    h1 = chain["h1"]
    # h1's default route points at r1; r1 has no route for 198.18.250.0/24 and no default.
    objs = provoke(lambda: send_udp(h1, "198.18.250.9", 4000, 12), "IP_INNOROUTES,IP_OUTNOROUTES")
    # This kernel (6.18) says IP_INNOROUTES, from ip_error on the router's input path.
    assert counted(objs, "IP_INNOROUTES") + counted(objs, "IP_OUTNOROUTES") >= 12, objs


def test_too_big_to_forward_with_df(chain: Chain) -> None:
    h1, r1 = chain["h1"], chain["r1"]
    r1.ip("link", "set", "eth1", "mtu", "1280")
    objs = provoke(lambda: send_udp(h1, chain.addresses4["h2"], 5000, 10, size=1400), "PKT_TOO_BIG")
    # This kernel (6.18) names it PKT_TOO_BIG, in ip_forward.
    assert counted(objs, "PKT_TOO_BIG", "ip_forward+0x") >= 10, objs


def test_vxlan_with_a_wrong_outer_udp_checksum_is_udp_csum(pair: tuple[Namespace, Namespace]) -> None:
    from helpers.vxlan_frames import inner_frame, vxlan_frame

    a, b = pair
    # The frames come from 198.18.100.1 to 198.18.100.2 (the helper's outer addresses), MACs 02:..:01 -> 02:..:02.
    b.ip("link", "set", "eth0", "address", "02:00:00:00:00:02")
    b.ip("addr", "add", "198.18.100.2/24", "dev", "eth0")
    b.ip("link", "add", "vx0", "type", "vxlan", "id", "1", "dstport", "8472", "local", "198.18.100.2",
         "noudpcsum", "udp6zerocsumrx")
    b.ip("link", "set", "vx0", "up")
    bad = vxlan_frame("bad", dport=8472, inner=inner_frame("udp", payload=20))
    good_but_zero = vxlan_frame("zero", dport=8472, inner=inner_frame("udp", payload=20))

    def inject() -> None:
        frames = [bad] * 8 + [good_but_zero] * 3
        a.send_frames("eth0", frames)

    objs = provoke(inject, "UDP_CSUM")
    # Dropped where UDP checks the checksum before handing a datagram to an encapsulation socket (vxlan).
    assert counted(objs, "UDP_CSUM", "udp_queue_rcv_one_skb+0x") >= 8, objs
    summary = summary_of(objs)
    assert "vxlan-csum" in summary["reasons"][0]["hint"]  # type: ignore[index]


def test_duration_end_exit_codes_and_text(pair: tuple[Namespace, Namespace]) -> None:
    a, _ = pair
    # No drops matched: a reason nobody provokes here, over a short run -> 0.
    quiet = subprocess.run(gnt_drops_argv("--reason", "CAN_RX_INVALID_FRAME", "--duration", "0.5"),
                           capture_output=True, text=True, timeout=30)
    assert quiet.returncode == 0, quiet.stderr
    assert "0 drops" in quiet.stdout
    # Drops matched -> 1, text shows the reason, location, protocol and the hint.
    proc = start("--reason", "NO_SOCKET", "--duration", "2", "-I", "0.5")
    send_udp(a, "198.18.200.2", 9, 5)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "NO_SOCKET" in out and "__udp4_lib_rcv+0x" in out and "ipv4" in out
    assert "nothing listens on the destination port" in out
    assert not [n for n in instances() if n == f"gnt_drops_{proc.pid}"]


def test_count_stops_the_run(pair: tuple[Namespace, Namespace]) -> None:
    a, _ = pair
    proc = start("--reason", "NO_SOCKET", "--count", "3", "--json")
    send_udp(a, "198.18.200.2", 9, 5)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert summary_of([json.loads(x) for x in out.splitlines()])["total"] >= 3  # type: ignore[operator]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_remove_the_instance_and_show_the_summary(signum: int) -> None:
    proc = start("--json")
    # unshare execs the interpreter: the pid of the run is the pid gnt names its instance with.
    name = f"gnt_drops_{proc.pid}"
    assert name in instances()
    # The filter is in the kernel, in the instance: the default hides NOT_SPECIFIED there.
    expression = sh("unshare", "-m", "--propagation", "private", "sh", "-c",
                    f"grep -q ' {TRACEFS} tracefs' /proc/mounts || mount -t tracefs nodev {TRACEFS}; "
                    f"cat {TRACEFS}/instances/{name}/events/skb/kfree_skb/filter").stdout.strip()
    not_specified = re.search(r'\{ (\d+), "NOT_SPECIFIED" \}', kernel_format())
    assert not_specified and expression == f"reason != {not_specified.group(1)}"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    # 130 through the SIGINT path; 128+signal once the error boundary maps SIGTERM/SIGHUP itself.
    assert proc.returncode in (130, 128 + signum), err
    assert summary_of([json.loads(x) for x in out.splitlines()])["type"] == "summary"
    assert name not in instances()


def test_sigkill_leftover_is_removed_by_cleanup_and_by_the_next_run() -> None:
    proc = start()
    name = f"gnt_drops_{proc.pid}"
    proc.kill()
    proc.wait(timeout=10)
    assert name in instances()  # SIGKILL leaves it: nothing can run on SIGKILL
    done = subprocess.run(gnt_drops_argv("--cleanup"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"removed tracing instance {name}" in done.stderr
    assert name not in instances()
    # And a new run removes a leftover too.
    proc = start()
    leftover = f"gnt_drops_{proc.pid}"
    proc.kill()
    proc.wait(timeout=10)
    run = subprocess.run(gnt_drops_argv("--duration", "0.2"), capture_output=True, text=True, timeout=30)
    assert f"removed tracing instance {leftover}" in run.stderr, run.stderr
    assert leftover not in instances()


def _mkinstance(name: str) -> None:
    sh("unshare", "-m", "--propagation", "private", "sh", "-c",
       f"grep -q ' {TRACEFS} tracefs' /proc/mounts || mount -t tracefs nodev {TRACEFS}; "
       f"mkdir {TRACEFS}/instances/{name}")


def test_cleanup_keeps_a_live_owners_instance_and_takes_it_once_the_owner_is_gone() -> None:
    owner = subprocess.Popen(["sleep", "60"])
    name = f"gnt_drops_{owner.pid}"
    try:
        time.sleep(0.1)
        _mkinstance(name)  # made after its owner started: what a live run's instance looks like
        done = subprocess.run(gnt_drops_argv("--cleanup"), capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert name in instances()
    finally:
        owner.kill()
        owner.wait()
    done = subprocess.run(gnt_drops_argv("--cleanup"), capture_output=True, text=True, timeout=30)
    assert f"removed tracing instance {name}" in done.stderr
    assert name not in instances()


def test_cleanup_takes_an_instance_whose_pid_was_reused() -> None:
    # Make the instance for a pid first, then a process that gets that pid: what a reused pid looks like.
    # The kernel hands out pids in order, so we aim at the next pid with ns_last_pid in a new pid namespace.
    script = (
        f"grep -q ' {TRACEFS} tracefs' /proc/mounts || mount -t tracefs nodev {TRACEFS}; "
        f"mkdir {TRACEFS}/instances/gnt_drops_4242; sleep 0.2; "
        "echo 4241 > /proc/sys/kernel/ns_last_pid; "
        f"sh -c 'echo $$; [ $$ = 4242 ] && {sys.executable} -m gnt drops --cleanup; "
        f"ls {TRACEFS}/instances'"
    )
    try:
        result = sh("unshare", "-m", "-p", "-f", "--mount-proc", "--propagation", "private", "sh", "-c", script)
    finally:
        sh("unshare", "-m", "--propagation", "private", "sh", "-c",
           f"mount -t tracefs nodev {TRACEFS}; rmdir {TRACEFS}/instances/gnt_drops_4242", check=False)
    lines = result.stdout.split()
    assert lines[0] == "4242", result.stdout  # the cleanup ran as the new owner of pid 4242 ...
    # ... in a pid namespace where 4242 is itself: its own pid, but started after the instance -> removed.
    assert "gnt_drops_4242" not in lines[1:], result.stdout + result.stderr
    assert "removed tracing instance gnt_drops_4242" in result.stderr


def test_tracefs_left_mounted_or_unmounted_as_found() -> None:
    argv = f"{sys.executable} -m gnt drops --duration 1.5"
    # Not mounted before: gnt mounts it for the run and unmounts it after.
    script = (
        f"umount {TRACEFS} 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; "
        f"{argv} >/dev/null 2>&1 & sleep 0.8; grep -c ' tracefs ' /proc/mounts; wait; "
        "grep -c ' tracefs ' /proc/mounts; true"
    )
    out = sh("unshare", "-m", "--propagation", "private", "sh", "-c", script).stdout.split()
    assert out == ["1", "0"], out
    # Mounted before: still mounted after.
    script = (
        f"grep -q ' {TRACEFS} tracefs' /proc/mounts || mount -t tracefs nodev {TRACEFS}; "
        f"{argv} >/dev/null 2>&1; grep -c ' tracefs ' /proc/mounts; true"
    )
    out = sh("unshare", "-m", "--propagation", "private", "sh", "-c", script).stdout.split()
    assert out == ["1"], out
    # Mounted by a run killed with SIGKILL: left mounted, and `--cleanup` unmounts it (the mount record).
    script = (
        f"umount {TRACEFS} 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; "
        f"{sys.executable} -m gnt drops >/dev/null 2>&1 & sleep 1; kill -9 $!; wait; "
        "grep -c ' tracefs ' /proc/mounts; "
        f"{sys.executable} -m gnt drops --cleanup 2>&1 | grep -c 'removed tracing instance'; "
        "grep -c ' tracefs ' /proc/mounts; true"
    )
    out = sh("unshare", "-m", "--propagation", "private", "sh", "-c", script).stdout.split()
    assert out == ["1", "1", "0"], out


def test_not_root_is_exit_2_with_a_hint(pair: tuple[Namespace, Namespace]) -> None:
    a, _ = pair
    result = a.gnt("drops", "--duration", "1", user="nobody")
    assert result.returncode == 2
    assert "CAP_SYS_ADMIN" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_reasons_comes_from_the_kernel() -> None:
    result = subprocess.run(gnt_drops_argv("--list-reasons", "--json"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    reasons = {o["name"]: o["value"] for o in map(json.loads, result.stdout.splitlines())}
    fmt = kernel_format()
    for name, value in reasons.items():
        assert f'{{ {value}, "{name}" }}' in fmt
    assert {"NO_SOCKET", "UDP_CSUM", "NETFILTER_DROP", "IP_RPFILTER"} <= set(reasons)


def test_unknown_reason_is_one_line_exit_2() -> None:
    result = subprocess.run(gnt_drops_argv("--reason", "NO_SUCH_REASON", "--duration", "1"), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown drop reason 'NO_SUCH_REASON'" in result.stderr


# Runs under `unshare -m`: a session with a tiny ring that is not read while the drops happen, so the
# kernel overwrites events; gnt must count them as lost (per-CPU stats) and what it read must add up.
LOSS_PROBE = """
import json, subprocess, sys
from gnt.drops import DropFilter, tracing
with tracing(DropFilter(reasons=("NO_SOCKET",)), buffer_kb=8) as session:
    subprocess.run(sys.argv[1:], check=True)
    session.poll()
    part = session.collect()
    print(json.dumps({"seen": part.total, "lost": part.lost, "summary_lost": session.summary().lost}))
"""


def test_events_the_ring_overwrote_are_reported_lost(pair: tuple[Namespace, Namespace]) -> None:
    a, _ = pair
    sender = a.exec_argv([sys.executable, "-c", UDP_SENDER, "198.18.200.2", "9", "3000"])
    result = sh("unshare", "-m", "--propagation", "private", sys.executable, "-c", LOSS_PROBE, *sender, timeout=60)
    counts = json.loads(result.stdout)
    assert counts["lost"] > 0, counts  # an 8 KiB ring holds ~180 events
    assert counts["seen"] + counts["lost"] >= 3000, counts
    assert counts["summary_lost"] == counts["lost"]

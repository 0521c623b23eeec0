"""gnt iptrace leaves nothing behind: after a normal end, --count, SIGINT, SIGTERM, an error while
writing, and kill -9 followed by --cleanup (or by the next run), checked with `nft list ruleset`
and `iptables-save` in the namespace; the same for the iptables-legacy fallback. Without
CAP_NET_ADMIN it refuses with exit 2 and a hint."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from helpers.netns import Namespace, Topology

pytestmark = pytest.mark.netns


@pytest.fixture
def ns(topology: Topology) -> Namespace:
    return topology.add("t")


def _nft_tables(ns: Namespace) -> str:
    return ns.run("nft", "list", "ruleset").stdout


def _saved(ns: Namespace) -> str:
    return "".join(ns.run(cmd, check=False).stdout for cmd in ("iptables-save", "ip6tables-save"))


def _legacy_saved(ns: Namespace) -> str:
    return "".join(ns.run(cmd, check=False).stdout for cmd in ("iptables-legacy-save", "ip6tables-legacy-save"))


def _assert_clean(ns: Namespace) -> None:
    assert "gnt_iptrace" not in _nft_tables(ns)
    assert "gnt-iptrace" not in _saved(ns)
    assert "gnt-iptrace" not in _legacy_saved(ns)


def _wait(predicate, what: str, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def _start(ns: Namespace, *args: str) -> subprocess.Popen[str]:
    proc = ns.gnt_popen("iptrace", "-p", "icmp", *args)
    _wait(lambda: "gnt_iptrace_" in _nft_tables(ns) or "gnt-iptrace" in _legacy_saved_raw(ns),
          "trace rules never appeared")
    return proc


def _legacy_saved_raw(ns: Namespace) -> str:
    names = ns.run("cat", "/proc/net/ip_tables_names").stdout
    return ns.run("iptables-legacy-save", "-t", "raw").stdout if "raw" in names else ""


def _ping(ns: Namespace, count: int = 1) -> None:
    ns.run("ping", "-c", str(count), "-i", "0.2", "-W", "1", "127.0.0.1", check=False)


def test_table_is_tagged_with_pid_and_hooks_before_raw(ns: Namespace) -> None:
    proc = _start(ns)
    ruleset = _nft_tables(ns)
    assert f"table inet gnt_iptrace_{proc.pid}_" in ruleset
    assert "hook prerouting priority -350" in ruleset and "hook output priority -350" in ruleset
    assert "meta nftrace set 1" in ruleset
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    _assert_clean(ns)


def test_normal_end_with_duration(ns: Namespace) -> None:
    done = ns.gnt("iptrace", "-p", "icmp", "--duration", "1", timeout=30)
    assert done.returncode == 1  # nothing was sent: no packet
    _assert_clean(ns)


def test_count_end(ns: Namespace) -> None:
    proc = _start(ns, "--count", "2", "--json")
    _ping(ns, 2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.count('"type": "packet"') == 2
    _assert_clean(ns)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_removes_table_and_shows_what_was_traced(ns: Namespace, signum: int, code: int) -> None:
    proc = _start(ns, "--json")
    _ping(ns)
    time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == code, err
    assert '"type": "packet"' in out and '"type": "iptrace_end"' in out
    assert "Traceback" not in err
    _assert_clean(ns)


def test_error_while_writing_still_cleans_up(ns: Namespace) -> None:
    proc = _start(ns)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader goes away: writing the first packet fails
    _ping(ns, 2)
    proc.wait(timeout=20)
    _assert_clean(ns)


def test_kill9_then_cleanup(ns: Namespace) -> None:
    proc = _start(ns)
    proc.kill()
    proc.wait(timeout=10)
    assert f"gnt_iptrace_{proc.pid}" in _nft_tables(ns)  # the killed run could not clean up
    done = ns.gnt("iptrace", "--cleanup", timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"removed nft table inet gnt_iptrace_{proc.pid}" in done.stderr
    _assert_clean(ns)


def test_kill9_then_next_run_removes_leftover(ns: Namespace) -> None:
    proc = _start(ns)
    proc.kill()
    proc.wait(timeout=10)
    assert f"gnt_iptrace_{proc.pid}" in _nft_tables(ns)
    done = ns.gnt("iptrace", "-p", "udp", "--duration", "0.5", timeout=30)
    assert done.returncode == 1, done.stderr
    _assert_clean(ns)


def test_cleanup_leaves_a_live_run_alone(ns: Namespace) -> None:
    proc = _start(ns)
    done = ns.gnt("iptrace", "--cleanup", timeout=30)
    assert done.returncode == 0
    assert f"gnt_iptrace_{proc.pid}" in _nft_tables(ns)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    _assert_clean(ns)


def test_legacy_signal_and_kill9_cleanup(ns: Namespace) -> None:
    ns.run("iptables-legacy", "-A", "INPUT", "-p", "icmp", "-j", "ACCEPT")  # a legacy firewall
    proc = _start(ns, "--backend", "legacy", "-4")
    assert f"gnt-iptrace:{proc.pid}" in _legacy_saved(ns)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    _assert_clean(ns)
    proc = _start(ns)  # auto picks legacy here
    assert f"gnt-iptrace:{proc.pid}" in _legacy_saved(ns)
    proc.kill()
    proc.wait(timeout=10)
    assert f"gnt-iptrace:{proc.pid}" in _legacy_saved(ns)
    done = ns.gnt("iptrace", "--cleanup", timeout=30)
    assert done.returncode == 0, done.stderr
    assert "removed iptables-legacy -t raw -D" in done.stderr
    _assert_clean(ns)
    assert "-A INPUT -p icmp -j ACCEPT" in _legacy_saved(ns)  # the node's own rules stay


def test_without_net_admin_exit_2_with_hint(ns: Namespace) -> None:
    done = ns.gnt("iptrace", "-p", "icmp", "--duration", "1", user="nobody", timeout=30)
    assert done.returncode == 2
    assert "CAP_NET_ADMIN" in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr
    done = ns.gnt("iptrace", "--cleanup", user="nobody", timeout=30)
    assert done.returncode == 2 and "hint:" in done.stderr
    _assert_clean(ns)


def test_cleanup_tells_a_reused_pid_from_the_run(ns: Namespace) -> None:
    """A leftover whose pid now belongs to another process is stale: the start time says so."""
    sleeper = ns.popen("sleep", "60")
    try:
        with open(f"/proc/{sleeper.pid}/stat") as stat:
            start = int(stat.read().rsplit(")", 1)[1].split()[19])
        reused = f"gnt_iptrace_{sleeper.pid}_{start + 1}"  # the pid of a live process, another start time
        current = f"gnt_iptrace_{sleeper.pid}_{start}"  # that very process: a live run, kept
        for name in (reused, current):
            ns.run("nft", "add", "table", "inet", name)
        done = ns.gnt("iptrace", "--cleanup", timeout=30)
        assert done.returncode == 0, done.stderr
        assert f"removed nft table inet {reused}" in done.stderr
        tables = _nft_tables(ns)
        assert reused not in tables and current in tables
        ns.run("nft", "delete", "table", "inet", current)
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("args", [("--cleanup", "-p", "udp"), ("--cleanup", "--json"), ("-i", "nosuchif0")])
def test_usage_errors_are_one_line_exit_2(ns: Namespace, args: tuple[str, ...]) -> None:
    done = ns.gnt("iptrace", *args, "--duration", "1", timeout=30) if "-i" in args else ns.gnt("iptrace", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    _assert_clean(ns)

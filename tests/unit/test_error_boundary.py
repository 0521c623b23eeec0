"""The error boundary around the whole process (gnt/__main__.py), exercised on real processes:
closed and full standard streams, closed pipes, and Ctrl-C at random moments of start-up.

Only loopback is ever a target here (ping 127.0.0.1); `ip6 ::1` sends nothing.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gnt

PACKAGE = str(Path(gnt.__file__).parent) + os.sep  # frames in here are gnt's own code
GNT_SCRIPT = str(Path(sys.executable).with_name("gnt"))  # the console script pip installed
ENTRIES = {"script": [GNT_SCRIPT], "module": [sys.executable, "-m", "gnt"]}
QUICK = [["ip6", "::1"], ["ping", "-c", "1", "127.0.0.1"], ["--help"], ["ping", "--help"],
         ["conntrack", "--help"], ["vxlan-csum", "scan", "--help"], ["--version", "--verbose"], ["--version"]]


def _sh(command: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` (a shell redirection around "$@") with gnt's argv as the positional parameters."""
    return subprocess.run(["sh", "-c", command, "sh", *ENTRIES["script"], *argv], capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def _one_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv", QUICK, ids=" ".join)
def test_closed_stdout_is_one_line_and_exit_2(argv: list[str]) -> None:
    done = _sh('"$@" >&-', *argv)
    assert done.returncode == 2, done.stderr
    assert "cannot write the output" in _one_line(done.stderr)


@pytest.mark.parametrize("argv", QUICK, ids=" ".join)
def test_full_disk_is_one_line_and_exit_2(argv: list[str]) -> None:
    done = _sh('"$@" > /dev/full', *argv)
    assert done.returncode == 2, done.stderr
    assert "cannot write the output: No space left on device" in _one_line(done.stderr)


@pytest.mark.parametrize("argv", QUICK, ids=" ".join)
def test_closed_pipe_is_a_quiet_exit_0(argv: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before gnt writes a byte
    try:
        done = subprocess.run([*ENTRIES["script"], *argv], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=30, cwd="/")
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("argv", [["ping", "-c", "x", "127.0.0.1"], ["no-such-command"], ["ip6", "not-an-address"],
                                  ["traceroute"], ["conntrack", "watch", "-b", "2147483648"]], ids=" ".join)
def test_an_error_while_stderr_is_full_still_exits_2(argv: list[str]) -> None:
    done = _sh('"$@" 2> /dev/full', *argv)
    assert done.returncode == 2


def test_closed_stderr_and_stdin_change_nothing() -> None:
    assert _sh('"$@" 2>&- <&-', "ip6", "not-an-address").returncode == 2
    done = _sh('"$@" <&-', "ip6", "::1")
    assert done.returncode == 0, done.stderr


def test_a_closed_stdout_is_not_reused_by_a_socket() -> None:
    """fd 1 closed by the shell gets /dev/null, so the ping socket cannot become fd 1 (and get the
    output written into it): the error is reported and nothing else happens."""
    done = _sh('"$@" >&-', "ping", "-c", "2", "-i", "0.2", "127.0.0.1")
    assert done.returncode == 2
    assert "cannot write the output" in _one_line(done.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_ctrl_c_at_any_moment_of_start_up_is_130_without_a_traceback(entry: str) -> None:
    """SIGINT at random moments of the first 80 ms. Once gnt's own code runs (gnt/__main__.py installs
    the policy first thing), the end is exit 130 and at most one line. Before that the interpreter
    and the launcher run (Python's init, site, the pip wrapper's `import re`); a KeyboardInterrupt
    report whose frames are all outside gnt/ comes from there, not from gnt, and is passed over.
    (No Python code can run there; the binary's launcher holds the signals through it:
    tests/netns/test_binary.py, test_a_signal_at_any_moment_of_the_binarys_start_up...)"""
    rng = random.Random(18)
    handled = 0
    for _ in range(40):
        # Reads a capture from a pipe that never brings a byte: no network, nothing ends it but the signal.
        proc = subprocess.Popen([*ENTRIES[entry], "vxlan-csum", "scan", "--pcap", "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd="/")
        time.sleep(rng.uniform(0, 0.08))
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        if "KeyboardInterrupt" in err:  # the interpreter's own report (a traceback, or a fatal error in init)
            frames = re.findall(r'File "([^"]+)"', err)
            assert not any(frame.startswith(PACKAGE) for frame in frames), err
            continue
        assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
        assert len(err.splitlines()) <= 1, err
        handled += proc.returncode == 130
    assert handled  # some interrupts landed in gnt's own start-up and run (where the policy holds)


@pytest.mark.parametrize("argv", [["ping", "-i", "0.2", "127.0.0.1"], ["vxlan-csum", "scan", "--pcap", "-"]],
                         ids=["ping", "vxlan-csum"])
def test_a_stop_signal_the_caller_ignores_stays_ignored(argv: list[str]) -> None:
    """`nohup` ignores SIGHUP: the boundary and a command's own handler (ping's) both leave it so."""
    read_end, write_end = os.pipe()  # stdin that never ends, for the scan
    try:
        proc = subprocess.Popen([*ENTRIES["script"], *argv], stdin=read_end, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd="/",
                                preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        time.sleep(1.0)  # running: ping is in its loop, with its own handlers
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.6)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert "Traceback" not in err, err
    if argv[0] == "ping":
        assert proc.returncode == 0 and "packets transmitted" in out, (proc.returncode, out, err)
    else:
        assert proc.returncode == 130, (proc.returncode, err)

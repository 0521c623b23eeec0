"""The firewall commands `gnt iptrace` runs (nft, iptables-legacy): found and run one way."""

from __future__ import annotations

import os
import shutil
import subprocess

from gnt.core.process import process_start_ticks, run_tool

SBIN_DIRS = ("/usr/sbin", "/sbin")  # where the firewall tools live when PATH lacks them (sudo, cron)


def find_binary(name: str) -> str | None:
    """The path of command `name`, on PATH or in the sbin directories; None when absent."""
    return shutil.which(name) or next((path for path in (f"{d}/{name}" for d in SBIN_DIRS)
                                       if os.path.exists(path)), None)


def run_command(argv: list[str], name: str, timeout: float,
                script: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a firewall command, output captured; a hang becomes an UnavailableError naming `name`."""
    # A session of its own: Ctrl-C on the terminal must not kill the tool halfway through a change.
    return run_tool(argv, name, timeout, script=script, new_session=True)


def failure_text(done: subprocess.CompletedProcess[str]) -> str:
    """A failed run's stderr on one line (or its exit status when it said nothing)."""
    return " ".join(done.stderr.split()) or f"exit status {done.returncode}"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_tag(pid: int) -> str:
    """The tag of run `pid` in the names and comments of what it installs: PID_START."""
    return f"{pid}_{process_start_ticks(pid) or 0}"


def run_alive(pid: int, start: int | None) -> bool:
    """Whether the run that tagged something with `pid` (and `start`, when recorded) still runs:
    a pid now held by another process (another start time) is not that run."""
    if not pid_alive(pid):
        return False
    return start is None or process_start_ticks(pid) in (start, None)

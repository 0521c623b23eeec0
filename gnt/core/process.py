"""Running the node's own tools (nft, iptables-save, ethtool...): one runner, one environment.

The frozen binary runs Python from an unpack directory: PyInstaller's bootloader points
`LD_LIBRARY_PATH` at it (keeping the user's value in `LD_LIBRARY_PATH_ORIG`) and, with the
static bundle, staticx and PyInstaller add `STATICX_*` and `_PYI_*` variables; the launcher in
front of them (build/launcher.c) points `TMPDIR` at its private directory and keeps the user's
in `_GNT_TMPDIR` ("+value", or "-" when it was not set). A child must not
load the bundle's libraries nor mistake itself for part of the bundle, so every tool gnt runs
gets the environment the user started gnt with, rebuilt here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from gnt.errors import STOP_SIGNALS, UnavailableError

BUNDLE_PREFIXES = ("_PYI_", "STATICX_", "_GNT_")  # variables the bootloaders and the launcher add
LIBRARY_PATH = "LD_LIBRARY_PATH"
LIBRARY_PATH_SAVED = "LD_LIBRARY_PATH_ORIG"  # where PyInstaller's bootloader keeps the user's value
TMPDIR_SAVED = "_GNT_TMPDIR"  # where build/launcher.c keeps the user's TMPDIR


def host_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment gnt was started with (the bundle's own variables undone), plus `extra`."""
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        saved = env.pop(LIBRARY_PATH_SAVED, None)
        if saved is None:
            env.pop(LIBRARY_PATH, None)
        else:
            env[LIBRARY_PATH] = saved
        tmpdir = env.get(TMPDIR_SAVED)
        if tmpdir == "-":
            env.pop("TMPDIR", None)
        elif tmpdir is not None and tmpdir.startswith("+"):
            env["TMPDIR"] = tmpdir[1:]
        for name in [name for name in env if name.startswith(BUNDLE_PREFIXES)]:
            del env[name]
    env.update(extra or {})
    return env


def run_tool(argv: list[str], name: str, timeout: float, *, script: str | None = None,
             extra_env: dict[str, str] | None = None,
             new_session: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a node tool with the user's environment, output captured; a hang becomes an
    UnavailableError naming `name`. OSError (tool missing, not executable) reaches the caller."""
    try:
        return subprocess.run(argv, input=script, capture_output=True, text=True, timeout=timeout,
                              check=False, start_new_session=new_session, env=host_environment(extra_env))
    except subprocess.TimeoutExpired as exc:
        raise UnavailableError(f"{name} did not answer in time") from exc




@contextlib.contextmanager
def signals_blocked(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Hold `signals` back (they are delivered after) while kernel state a run made is undone."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (/proc/PID/stat field 22); None when
    it is gone. With the pid it names one run: a pid the kernel reuses comes with another start."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
        return int(text[text.rindex(b")") + 2:].split()[19])  # after "pid (comm)", which may hold spaces
    except (OSError, ValueError, IndexError):
        return None

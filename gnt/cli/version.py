"""`gnt --version [--verbose]`.

`--verbose` adds what an operator needs to know about the copy they run: the Python inside
it, the machine, how it is frozen (the static bundle build/build.sh makes, a plain PyInstaller
one-file binary, or a pip install), the libc it runs on and whether that libc is carried inside
the binary or taken from the host, and what it needs from the host. The binary's facts were
recorded at build time by build/gnt.spec in gnt/_build_info.json inside it.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from gnt import __version__
from gnt.output.env import Environment

BUILD_INFO = "_build_info.json"  # written next to gnt/ inside the binary by build/gnt.spec
STATICX_BUNDLE = "STATICX_BUNDLE_DIR"  # set by the staticx bootloader for the program it runs


def running_glibc() -> str:
    """The version of the glibc this process runs on ("2.36"), or "unknown" (musl, no confstr)."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        value = None
    if value:
        return value.split()[-1]
    name, version = platform.libc_ver()
    return version if name == "glibc" and version else "unknown"


def build_info() -> dict[str, Any]:
    """What build/gnt.spec recorded about the one-file binary; empty when not frozen."""
    base = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or base is None:
        return {}
    import json  # only for --verbose: plain --version stays as light as it can

    try:
        with open(os.path.join(base, "gnt", BUILD_INFO), encoding="utf-8") as handle:
            info: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        return {}
    return info


def describe_build() -> list[tuple[str, str]]:
    """(label, value) lines for --verbose: frozen kind, libc, and what the host must provide."""
    glibc = running_glibc()
    if not getattr(sys, "frozen", False):
        return [("frozen", "no (a Python install)"), ("libc", f"glibc {glibc}, the host's"),
                ("needs from the host", f"Python {platform.python_version()} and gnt's Python packages")]
    info = build_info()
    if os.environ.get(STATICX_BUNDLE):
        kernel = info.get("kernel", "unknown")
        return [("frozen", f"static bundle, one file (PyInstaller one-file in staticx {info.get('staticx', '?')},"
                           " with a static launcher)"),
                ("libc", f"glibc {glibc}, carried in the binary"),
                ("needs from the host", f"nothing: a Linux kernel >= {kernel} and a writable $TMPDIR"
                                        " (default /tmp) that allows exec")]
    return [("frozen", "one-file binary (PyInstaller), not in the static bundle"),
            ("libc", f"glibc {glibc}, the host's"),
            ("needs from the host", f"glibc >= {info.get('build_glibc', 'unknown')} (the build host's)")]


def print_version(env: Environment, *, verbose: bool) -> None:
    env.stdout.write(f"gnt {__version__}\n")
    if verbose:
        env.stdout.write(f"python: {platform.python_version()} ({sys.implementation.name})\n")
        env.stdout.write(f"machine: {platform.machine()}\n")
        for label, value in describe_build():
            env.stdout.write(f"{label}: {value}\n")
    env.stdout.flush()

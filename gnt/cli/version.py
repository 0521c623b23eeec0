"""`gnt --version [--verbose]`.

`--verbose` adds what an operator needs to know about the copy they run: the Python inside
it, whether it is the one-file binary (frozen) or a pip install, the glibc it runs on and, for
the binary, the glibc it was built on and the oldest glibc it needs (recorded at build time
by build/gnt.spec in gnt/_build_info.json inside the binary).
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from gnt import __version__
from gnt.output.env import Environment

BUILD_INFO = "_build_info.json"  # written next to gnt/ inside the binary by build/gnt.spec


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


def print_version(env: Environment, *, verbose: bool) -> None:
    env.stdout.write(f"gnt {__version__}\n")
    if verbose:
        info = build_info()
        frozen = bool(getattr(sys, "frozen", False))
        env.stdout.write(f"python: {platform.python_version()} ({sys.implementation.name})\n")
        env.stdout.write(f"frozen: {'yes, one-file binary' if frozen else 'no'}\n")
        env.stdout.write(f"machine: {platform.machine()}\n")
        env.stdout.write(f"glibc: {running_glibc()}\n")
        if info:
            env.stdout.write(f"build glibc: {info.get('build_glibc', 'unknown')}"
                             f" (needs glibc >= {info.get('needs_glibc', 'unknown')})\n")
    env.stdout.flush()

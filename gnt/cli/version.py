"""`gnt --version [--verbose]`."""

from __future__ import annotations

import platform
import sys

from gnt import __version__
from gnt.output.env import Environment

VERBOSE_FLAG = False


def build_glibc() -> str:
    """The glibc this interpreter (or the frozen binary's bootloader) runs on."""
    name, version = platform.libc_ver()
    return f"{name} {version}" if name else "unknown"


def print_version(env: Environment, *, verbose: bool) -> None:
    env.stdout.write(f"gnt {__version__}\n")
    if verbose:
        frozen = bool(getattr(sys, "frozen", False))
        env.stdout.write(f"python {platform.python_version()} ({sys.implementation.name})\n")
        env.stdout.write(f"frozen: {'yes' if frozen else 'no'}\n")
        env.stdout.write(f"glibc: {build_glibc()}\n")
    env.stdout.flush()

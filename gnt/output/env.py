"""The environment a command writes to, injected so commands run in-process under test."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Environment:
    """Where output goes. Tests pass io.StringIO streams; `main()` passes the real ones."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    debug: bool = False
    argv: tuple[str, ...] = ()  # the command line after `gnt`, for the JSON stream's `meta` object
    meta_written: bool = False  # the stream's `meta` object is out (one per stream, however many renderers)
    prom_path: str | None = None  # --prom FILE: write Prometheus textfile metrics there at the end
    npd: bool = False  # --npd: print only node-problem-detector's one condition line
    tap: object | None = None  # the FleetTap of this run, when --prom or --npd asked for one
    finishers: list[Callable[[int], None]] = field(default_factory=list)  # called with the exit code

    @property
    def stdout_isatty(self) -> bool:
        isatty = getattr(self.stdout, "isatty", None)
        return bool(isatty and isatty())

"""The `meta` object that opens every `--json` stream: who ran what, where, and when."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import ClassVar

from gnt import __version__

SCHEMA = "gnt/v1"  # bumped when an object type changes incompatibly; schema/v1/ in the repo
BOOT_ID = "/proc/sys/kernel/random/boot_id"  # changes at every boot: tells a rebooted node apart


@dataclass(slots=True)
class StreamMeta:
    """The first object of a stream: enough for a merger to tell nodes and runs apart."""

    json_type: ClassVar[str] = "meta"

    schema: str
    gnt_version: str
    command: str | None  # the command word (`ping`, `vxlan-csum`), None for bare `gnt`
    argv: list[str]  # the command line after `gnt`
    node: str  # the host name (the Kubernetes node name on hostNetwork pods)
    boot_id: str | None
    started: str  # ISO 8601 UTC, second resolution


def _boot_id() -> str | None:
    try:
        with open(BOOT_ID, encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def stream_meta(argv: tuple[str, ...] | list[str]) -> StreamMeta:
    """The `meta` object for a run with this command line (after `gnt`)."""
    command = next((word for word in argv if not word.startswith("-")), None)
    return StreamMeta(
        schema=SCHEMA,
        gnt_version=__version__,
        command=command,
        argv=list(argv),
        node=socket.gethostname(),
        boot_id=_boot_id(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )

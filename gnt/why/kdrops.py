"""Kernel drop reasons for `gnt why`, from `gnt drops` (tracefs skb:kfree_skb in a private instance)."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from gnt.errors import UnavailableError


class DropWatcher(Protocol):
    def read(self) -> Counter[str]: ...

    def close(self) -> None: ...


def start() -> DropWatcher:
    """Start counting kernel drops by reason; the watcher's `close()` removes the tracing instance."""
    raise UnavailableError("gnt drops is not part of this build")

"""Kernel addresses as `symbol+0xoffset`, from /proc/kallsyms (loaded once, on the first address)."""

from __future__ import annotations

import bisect

KALLSYMS = "/proc/kallsyms"
TEXT_TYPES = frozenset("tTwW")  # code symbols (local, global, weak)


class Symbolizer:
    """Resolves code addresses; prints the bare address when kallsyms is unreadable or hides addresses
    (kernel.kptr_restrict)."""

    def __init__(self, path: str = KALLSYMS) -> None:
        self.path = path
        self._addresses: list[int] | None = None
        self._names: list[str] = []
        self._cache: dict[int, str] = {}

    def _load(self) -> None:
        pairs: list[tuple[int, str]] = []
        try:
            with open(self.path, "rb") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 3 or parts[1].decode() not in TEXT_TYPES:
                        continue
                    address = int(parts[0], 16)
                    if address:
                        name = parts[2].decode()
                        if len(parts) > 3:  # [module]
                            name += " " + parts[3].decode()
                        pairs.append((address, name))
        except OSError:
            pairs = []
        pairs.sort()
        self._addresses = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]

    @property
    def available(self) -> bool:
        if self._addresses is None:
            self._load()
        return bool(self._addresses)

    def __call__(self, address: int) -> str:
        text = self._cache.get(address)
        if text is not None:
            return text
        if self._addresses is None:
            self._load()
        assert self._addresses is not None
        i = bisect.bisect_right(self._addresses, address) - 1
        if i < 0 or not self._addresses:
            text = f"{address:#x}"
        else:
            name = self._names[i]
            module = ""
            if " " in name:
                name, module = name.split(" ", 1)
                module = " " + module
            text = f"{name}+{address - self._addresses[i]:#x}{module}"
        self._cache[address] = text
        return text

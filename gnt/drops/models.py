"""What `gnt drops` yields: drops grouped per interval, and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Drop:
    """Packets the kernel freed for one reason, at one kernel location, of one protocol, in one interval."""

    json_type = "drop"

    reason: str  # the kernel's name (NO_SOCKET, UDP_CSUM, ...) or the number it has no name for
    location: str  # symbol+0xoffset of the code that dropped it, or the address when kallsyms is hidden
    protocol: str  # EtherType name (ipv4, ipv6, arp, ...) or 0x-hex
    count: int
    start: float  # interval start, seconds since the epoch
    end: float  # interval end
    reason_code: int = field(default=0, metadata={"json": None})  # the kernel's enum value (renumbered per kernel)
    address: int = field(default=0, metadata={"json": None})  # the location as an address


@dataclass(slots=True)
class Interval:
    """One interval's drops (most first) and the events the per-CPU buffers lost in it."""

    start: float
    end: float
    drops: list[Drop] = field(default_factory=list)
    lost: int = 0  # events overwritten or refused by the ring buffers during the interval

    @property
    def total(self) -> int:
        return sum(d.count for d in self.drops)


@dataclass(slots=True)
class Lost:
    """Events the kernel's ring buffers lost during an interval (JSON only when non-zero)."""

    json_type = "lost"

    count: int
    start: float
    end: float


@dataclass(slots=True)
class ReasonTotal:
    reason: str
    count: int
    hint: str | None = None  # what usually causes it and what to look at next
    locations: dict[str, int] = field(default_factory=dict)  # "symbol+0xoff protocol" -> count


@dataclass(slots=True)
class DropSummary:
    """The end of a run: totals per reason (most first), lost events, seconds traced, the filter."""

    json_type = "summary"

    reasons: list[ReasonTotal]
    total: int
    lost: int
    seconds: float
    kernel_filter: str = ""  # the expression written to the event's filter file
    hidden: list[str] = field(default_factory=list)  # reasons hidden by default (--all shows them)


@dataclass(slots=True)
class DropFilter:
    """Which drops to count; applied in the kernel (the event's filter file).

    `reasons`: only these (names as the kernel spells them, any case); `exclude`: not these;
    `protocols`: EtherType names or numbers; `all`: do not hide the default noise (DEFAULT_HIDDEN).
    """

    reasons: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    all: bool = False


@dataclass(slots=True)
class ReasonInfo:
    """One line of `gnt drops --list-reasons`."""

    json_type = "reason"

    name: str
    value: int  # this kernel's number for it
    hint: str | None = None

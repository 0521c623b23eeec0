"""What `gnt ping` reports: one dataclass per event, rendered as iputils text or NDJSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(slots=True)
class PingStart:
    """The header line: what is pinged, from where, with how many bytes."""

    json_type: ClassVar[str | None] = None  # text only: the summary carries host and address
    host: str
    address: str
    family: int
    size: int
    source: str | None = None
    interface: str | None = None
    pattern: bytes | None = None
    socket_kind: str = "dgram"
    shown: str = ""  # the destination as the header shows it (IPv6: `name (address)` or the address)


@dataclass(slots=True)
class PingWarning:
    """Something iputils warns about and carries on (a mark the user may not set)."""

    json_type: ClassVar[str | None] = None
    message: str


Data = bytes  # inside Reply, `bytes` names its field


@dataclass(slots=True)
class Reply:
    json_type: ClassVar[str] = "reply"
    seq: int
    source: str = field(metadata={"json": "from"})
    ttl: int | None
    bytes: int
    time_ms: float | None
    dup: bool = False
    name: str | None = field(default=None, metadata={"json": None})  # reverse name, text only
    wrong_data: tuple[int, int, int] | None = field(default=None, metadata={"json": None})  # index, want, got
    data_dump: Data | None = field(default=None, metadata={"json": None})  # data from byte 16, with wrong_data
    bad_checksum: bool = field(default=False, metadata={"json": None})
    wall_time: float = field(default=0.0, metadata={"json": None})  # for -D


@dataclass(slots=True)
class Timeout:
    json_type: ClassVar[str] = "timeout"
    seq: int


@dataclass(slots=True)
class NoAnswerYet:
    """-O: the previous probe is still unanswered when the next one goes out."""

    json_type: ClassVar[str | None] = None
    seq: int
    wall_time: float = 0.0


@dataclass(slots=True)
class ErrorReply:
    """An ICMP error (or a local error) about one of our echo requests."""

    json_type: ClassVar[str] = "error"
    seq: int
    source: str | None = field(metadata={"json": "from"})
    icmp_type: int | None
    icmp_code: int | None
    message: str
    name: str | None = field(default=None, metadata={"json": None})
    wall_time: float = field(default=0.0, metadata={"json": None})


@dataclass(slots=True)
class SendFailed:
    """sendmsg itself failed (no route, buffer full): iputils prints `ping: sendmsg: ...`."""

    json_type: ClassVar[str] = "error"
    seq: int
    message: str
    source: str | None = field(default=None, metadata={"json": "from"})
    icmp_type: int | None = None
    icmp_code: int | None = None
    local: bool = field(default=False, metadata={"json": None})  # the local stack refused it (flood: "E")


@dataclass(slots=True)
class Sent:
    """A probe went out (only reported in flood mode, for the dots)."""

    json_type: ClassVar[str | None] = None
    seq: int


@dataclass(slots=True)
class Rtt:
    min: float
    avg: float
    max: float
    mdev: float


@dataclass(slots=True)
class Interim:
    """SIGQUIT: the running counts, on stderr, like iputils."""

    json_type: ClassVar[str | None] = None
    transmitted: int
    received: int
    loss_percent: int
    rtt_min_us: int | None
    rtt_avg_us: int | None
    rtt_ewma_us: int | None
    rtt_max_us: int | None


@dataclass(slots=True)
class Summary:
    json_type: ClassVar[str] = "summary"
    host: str
    address: str
    transmitted: int
    received: int
    duplicates: int
    errors: int
    loss_percent: float
    time_ms: int
    rtt: Rtt | None
    pipe: int | None = None  # most probes outstanding at once, when more than one (iputils' `pipe N`)
    corrupted: int = field(default=0, metadata={"json": None})
    rtt_us: tuple[int, int, int, int] | None = field(default=None, metadata={"json": None})  # exact, for text
    ewma_us: int = field(default=0, metadata={"json": None})
    ipg_us: int | None = field(default=None, metadata={"json": None})  # None: iputils prints no ipg/ewma

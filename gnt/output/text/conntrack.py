"""Text for `gnt conntrack`: a line a person reads at a glance, or conntrack-tools' own format.

`-o conntrack` reproduces libnetfilter_conntrack's default snprintf (what `conntrack -L` and
`conntrack -E` print) field for field: a field appears exactly when the kernel sent it, so
parsers written for conntrack-tools read gnt unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gnt.conntrack.entries import (
    IPPROTO_GRE,
    IPS_ASSURED,
    IPS_HW_OFFLOAD,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    PORT_PROTOS,
    PROTO_NAMES,
    FusedLines,
    status_names,
)
from gnt.conntrack.models import (
    CpuStats,
    Entry,
    EventEntry,
    IcmpTuple,
    ListSummary,
    Lost,
    PortTuple,
    Stats,
    Tuple,
    WatchSummary,
)
from gnt.output import ToStderr
from gnt.output.text import endpoint

_ASSURED_MASK = IPS_ASSURED | IPS_OFFLOAD | IPS_HW_OFFLOAD  # the bits behind the one status tag after the reply
_ASSURED = ("[ASSURED] ", "[OFFLOAD] ", "[HW_OFFLOAD] ", "[HW_OFFLOAD] ")  # by (HW_OFFLOAD, OFFLOAD) bits
_proto_prefix: dict[int, str] = {}  # protocol number -> "tcp      6", made once per protocol
FLAG_ORDER = ("UNREPLIED", "ASSURED", "OFFLOAD", "HW_OFFLOAD", "EXPECTED", "HELPER", "DYING")  # shown, in this order


# ---- conntrack-tools format ---------------------------------------------------------------

def _conntrack_proto(num: int) -> str:
    prefix = _proto_prefix.get(num)
    if prefix is None:
        prefix = f"{PROTO_NAMES.get(num, 'unknown'):<8} {num}"  # libnetfilter_conntrack's __proto2str
        _proto_prefix[num] = prefix
    return prefix


def _conntrack_tuple(t: Tuple, protonum: int) -> str:
    if type(t) is PortTuple:
        if protonum == IPPROTO_GRE:
            return f"src={t.src} dst={t.dst} srckey=0x{t.sport:x} dstkey=0x{t.dport:x}"
        if protonum in PORT_PROTOS:
            return f"src={t.src} dst={t.dst} sport={t.sport} dport={t.dport}"
    elif type(t) is IcmpTuple:
        return f"src={t.src} dst={t.dst} type={t.type} code={t.code} id={t.id}"
    return f"src={t.src} dst={t.dst}"


def conntrack_line(e: Entry, now: float | None = None) -> str:
    """One entry (or event) exactly as `conntrack -L` (`conntrack -E`) prints it."""
    o, r = e.original, e.reply
    bits = e.status_bits
    num = e.protonum
    if (type(o) is PortTuple and type(r) is PortTuple and num in PORT_PROTOS and e.counters is None
            and bits is not None and e.timeout is not None and e.mark is not None and e.use is not None
            and e.start is None and e.helper is None and e.secctx is None and not e.zone
            and e.orig_zone is None and e.reply_zone is None and e.labels is None and type(e) is Entry):
        # The shape of nearly every dumped entry, in one f-string (the listing's hot path).
        state = e.state
        return (f"{_proto_prefix.get(num) or _conntrack_proto(num)} {e.timeout} "
                f"{'' if state is None else state + ' '}"
                f"src={o.src} dst={o.dst} sport={o.sport} dport={o.dport} "
                f"{'' if bits & IPS_SEEN_REPLY else '[UNREPLIED] '}"
                f"src={r.src} dst={r.dst} sport={r.sport} dport={r.dport} "
                f"{_ASSURED[bits >> 14 & 3] if bits & _ASSURED_MASK else ''}mark={e.mark} use={e.use}")
    return conntrack_line_general(e, now)


def _conntrack_render(f: dict[str, str]) -> str | None:
    """The expression of conntrack_line's common shape over a compiled layout's fields (see
    gnt.conntrack.entries.compile_builder), or None when the layout has fields it does not print."""
    needed = ("status", "timeout", "mark", "use", "o_sport", "o_dport", "r_sport", "r_dport")
    if f["kind"] != "ports" or any(f[name] == "None" for name in needed):
        return None
    if f["counters"] != "None" or f["start"] != "None" or f["stop"] != "None" or f["zone"] != "0" \
            or f["o_zone"] != "None" or f["r_zone"] != "None":
        return None
    state = "''" if f["state"] == "None" else f"{f['state']} + ' '"
    status = f["status"]
    return ("(f\"{_proto_prefix.get(proto) or _conntrack_proto(proto)} {" + f["timeout"] + "} {" + state + "}"
            "src={o_src} dst={o_dst} sport={" + f["o_sport"] + "} dport={" + f["o_dport"] + "} "
            "{'' if " + status + " & IPS_SEEN_REPLY else '[UNREPLIED] '}"
            "src={r_src} dst={r_dst} sport={" + f["r_sport"] + "} dport={" + f["r_dport"] + "} "
            "{_ASSURED[" + status + " >> 14 & 3] if " + status + " & _ASSURED_MASK else ''}"
            "mark={" + f["mark"] + "} use={" + f["use"] + "}\" if proto in _LINE_PROTOS else None)")


_LINE_PROTOS = PORT_PROTOS  # printed as sport/dport (GRE's keys are not)


def _text_render(f: dict[str, str]) -> str | None:
    """The expression of entry_line over a compiled layout's fields (the common shape: ports, no
    counters, timestamps or zones), or None."""
    needed = ("o_sport", "o_dport", "r_sport", "r_dport")
    if f["kind"] != "ports" or any(f[name] == "None" for name in needed):
        return None
    if f["counters"] != "None" or f["start"] != "None" or f["stop"] != "None" or f["zone"] != "0" \
            or f["o_zone"] != "None" or f["r_zone"] != "None":
        return None
    return (f"(_text_line(proto, {f['state']}, {f['status']}, o_src, o_dst, {f['o_sport']}, {f['o_dport']}, "
            f"r_src, r_dst, {f['r_sport']}, {f['r_dport']}, {f['nat']}, {f['mark']}, {f['timeout']}) "
            "if proto in _LINE_PROTOS else None)")


_flags_text: dict[int | None, str] = {}


def _flags(bits: int | None) -> str:
    """entry_line's flags part for these status bits (a handful of values per table: cached)."""
    text = _flags_text.get(bits)
    if text is None:
        names = status_names(bits) if bits is not None else ()
        flags = [f"[{name}]" for name in FLAG_ORDER if name in names and name != "UNREPLIED"]
        if bits is not None and not bits & IPS_SEEN_REPLY:
            flags.insert(0, "[UNREPLIED]")
        text = "  " + " ".join(flags) if flags else ""
        if len(_flags_text) < 4096:
            _flags_text[bits] = text
    return text


def _text_line(proto: int, state: str | None, bits: int | None, o_src: str, o_dst: str, sport: int, dport: int,
               r_src: str, r_dst: str, rsport: int, rdport: int, nat: tuple[str, ...], mark: int | None,
               timeout: int | None) -> str:
    """entry_line of an entry of the common shape, from its values (the fused listing's path)."""
    text = (f"{PROTO_NAMES.get(proto) or str(proto):<6} {state or '':<11} "
            f"{f'[{o_src}]:{sport}' if ':' in o_src else f'{o_src}:{sport}'} -> "
            f"{f'[{o_dst}]:{dport}' if ':' in o_dst else f'{o_dst}:{dport}'}")
    if nat:
        if "dnat" in nat:
            text += f"  DNAT to {endpoint(r_src, rsport if rsport != dport else None)}"
        if "snat" in nat:
            text += f"  SNAT to {endpoint(r_dst, rdport if rdport != sport else None)}"
    text += _flags_text.get(bits) or _flags(bits)
    if mark:
        text += f"  mark=0x{mark:x}"
    if timeout is not None:
        text += f"  timeout={timeout}s"
    return text


def fused_lines(mode: str) -> FusedLines:
    """The listing's lines straight from the messages (gnt.conntrack.entries.FusedLines)."""
    if mode == "conntrack":
        helpers = {"_proto_prefix": _proto_prefix, "_conntrack_proto": _conntrack_proto, "_ASSURED": _ASSURED,
                   "_ASSURED_MASK": _ASSURED_MASK, "IPS_SEEN_REPLY": IPS_SEEN_REPLY, "_LINE_PROTOS": _LINE_PROTOS}
        return FusedLines(render=_conntrack_render, helpers=helpers, general=conntrack_line)
    return FusedLines(render=_text_render, helpers={"_text_line": _text_line, "_LINE_PROTOS": _LINE_PROTOS},
                      general=entry_line)


def conntrack_line_general(e: Entry, now: float | None = None) -> str:
    """`conntrack_line` for any entry: every field conntrack-tools may print, in its order."""
    o, r = e.original, e.reply
    bits = e.status_bits
    num = e.protonum
    parts: list[str] = []
    if isinstance(e, EventEntry):
        parts.append(f"{'[' + e.event.upper() + ']':>9}")
    parts.append(_conntrack_proto(num))
    if e.timeout is not None:
        parts.append(str(e.timeout))
    if e.state is not None:
        parts.append(e.state)
    parts.append(_conntrack_tuple(o, num))
    if e.orig_zone is not None:
        parts.append(f"zone-orig={e.orig_zone}")
    counters = e.counters
    if counters is not None:
        parts.append(f"packets={counters.original_packets} bytes={counters.original_bytes}")
    if bits is not None and not bits & IPS_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    parts.append(_conntrack_tuple(r, num))
    if e.reply_zone is not None:
        parts.append(f"zone-reply={e.reply_zone}")
    if counters is not None:
        parts.append(f"packets={counters.reply_packets} bytes={counters.reply_bytes}")
    if bits is not None:
        if bits & IPS_HW_OFFLOAD:
            parts.append("[HW_OFFLOAD]")
        elif bits & IPS_OFFLOAD:
            parts.append("[OFFLOAD]")
        elif bits & IPS_ASSURED:
            parts.append("[ASSURED]")
    if e.mark is not None:
        parts.append(f"mark={e.mark}")
    if e.secctx is not None:
        parts.append(f"secctx={e.secctx}")
    if e.zone:
        parts.append(f"zone={e.zone}")
    if e.start is not None:
        stop = int(e.stop) if e.stop is not None else int(time.time() if now is None else now)
        parts.append(f"delta-time={stop - int(e.start)}")
    if e.helper is not None:
        parts.append(f"helper={e.helper}")
    if e.use is not None:
        parts.append(f"use={e.use}")
    return " ".join(parts)


# ---- the readable format ------------------------------------------------------------------

def _ports(t: Tuple) -> tuple[int | None, int | None]:
    if type(t) is PortTuple:
        return t.sport, t.dport
    return None, None


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def entry_line(e: Entry) -> str:
    """protocol, state, original tuple, the translation spelled out, flags, mark, timeout."""
    o, r = e.original, e.reply
    sport, dport = _ports(o)
    text = f"{e.proto:<6} {e.state or '':<11} {endpoint(o.src, sport)} -> {endpoint(o.dst, dport)}"
    if type(o) is IcmpTuple:
        text += f" type={o.type} code={o.code} id={o.id}"
    if e.nat:
        rsport, rdport = _ports(r)
        if "dnat" in e.nat:
            port = rsport if rsport != dport else None
            text += f"  DNAT to {endpoint(r.src, port)}"
        if "snat" in e.nat:
            port = rdport if rdport != sport else None
            text += f"  SNAT to {endpoint(r.dst, port)}"
            if type(o) is IcmpTuple and type(r) is IcmpTuple and r.id != o.id:
                text += f" id={r.id}"
    flags = [f"[{name}]" for name in FLAG_ORDER if name in e.status and name != "UNREPLIED"]
    bits = e.status_bits
    if bits is not None and not bits & IPS_SEEN_REPLY:
        flags.insert(0, "[UNREPLIED]")
    if flags:
        text += "  " + " ".join(flags)
    if e.mark:
        text += f"  mark=0x{e.mark:x}"
    if e.zone:
        text += f"  zone={e.zone}"
    if e.orig_zone is not None:
        text += f"  zone-orig={e.orig_zone}"
    if e.reply_zone is not None:
        text += f"  zone-reply={e.reply_zone}"
    if e.labels:
        text += f"  labels={','.join(e.labels)}"
    if e.helper:
        text += f"  helper={e.helper}"
    if e.counters is not None:
        c = e.counters
        text += f"  packets={c.original_packets}/{c.reply_packets} bytes={c.original_bytes}/{c.reply_bytes}"
    if e.timeout is not None:
        text += f"  timeout={e.timeout}s"
    if e.start is not None:
        text += f"  start={_clock(e.start)}"
    if e.stop is not None:
        text += f"  stop={_clock(e.stop)}"
    return text


def event_line(e: EventEntry) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(e.timestamp)) + f".{int(e.timestamp * 1000) % 1000:03d}"
    line = f"{stamp} {e.event.upper():<7} {entry_line(e)}"
    if e.portid:
        line += f"  by {e.program or 'userspace'} (netlink port {e.portid})"
    return line


def _lost_events(estimate: int | None) -> str:
    if estimate is None:
        return "an unknown number of events"
    return f"{estimate} event{'s' if estimate != 1 else ''}"


def lost_line(lost: Lost) -> ToStderr:
    return ToStderr(
        f"gnt conntrack: events lost: {_lost_events(lost.events)} so far, in {lost.total} overflow"
        f"{'s' if lost.total != 1 else ''} (ENOBUFS); raise --buffer-size or narrow -e"
    )


def stats_lines(obj: CpuStats | Stats) -> str:
    if isinstance(obj, CpuStats):
        counters = (f"found={obj.found} invalid={obj.invalid} insert={obj.insert} "
                    f"insert_failed={obj.insert_failed} drop={obj.drop} early_drop={obj.early_drop} "
                    f"error={obj.error} search_restart={obj.search_restart}")
        if obj.clash_resolve is not None:
            counters += f" clash_resolve={obj.clash_resolve}"
        if obj.chain_toolong is not None:
            counters += f" chain_toolong={obj.chain_toolong}"
        return f"cpu={obj.cpu:<4} {counters}"
    marker = "  <-- insert races lost" if obj.insert_failed else ""
    lines = [
        f"total    found={obj.found} invalid={obj.invalid} insert={obj.insert} "
        f"insert_failed={obj.insert_failed}{marker} drop={obj.drop} early_drop={obj.early_drop} "
        f"error={obj.error} search_restart={obj.search_restart}"
    ]
    if obj.entries is not None:
        fill = f"{obj.entries}"
        if obj.max_entries:
            fill += f" of {obj.max_entries} ({100 * obj.entries / obj.max_entries:.1f}%)"
        lines.append(f"entries  {fill}")
    lines.extend(f"warning: {w}" for w in obj.warnings)
    return "\n".join(lines)


def make_formatter(mode: str = "text", now: Callable[[], float] = time.time) -> Callable[[object], str | None]:
    """The formatter for `-o text` (readable) or `-o conntrack` (conntrack-tools' lines)."""
    format_any = _format_any(mode, now)

    if mode == "conntrack":
        def format_obj(obj: object) -> str | None:
            if type(obj) is Entry and obj.start is None:  # a listed entry: the hot path of a dump
                return conntrack_line(obj)
            return format_any(obj)
        return format_obj
    if mode == "text":
        def format_text(obj: object) -> str | None:
            if type(obj) is Entry:
                return entry_line(obj)
            return format_any(obj)
        return format_text
    raise ValueError(f"unknown text mode {mode!r}")


def _format_any(mode: str, now: Callable[[], float]) -> Callable[[object], str | None]:
    """Every object `gnt conntrack` yields, in `mode`."""

    def format_any(obj: object) -> str | None:
        if isinstance(obj, Entry):
            if mode == "conntrack":
                line = conntrack_line(obj, None if obj.start is None else now())
                if isinstance(obj, EventEntry) and obj.portid:
                    line += f" [USERSPACE] portid={obj.portid}"
                    if obj.program:
                        line += f" progname={obj.program}"
                return line
            return event_line(obj) if isinstance(obj, EventEntry) else entry_line(obj)
        if isinstance(obj, Lost):
            return lost_line(obj)
        if isinstance(obj, ListSummary):
            return ToStderr(f"gnt conntrack: {obj.shown} flow entries have been shown"
                            + (f" ({obj.scanned} in the table)." if obj.filtered else "."))
        if isinstance(obj, WatchSummary):
            lost = (f", events lost: {_lost_events(obj.lost_events)} in {obj.lost} overflow"
                    f"{'s' if obj.lost != 1 else ''} (ENOBUFS)") if obj.lost else ""
            return ToStderr(f"gnt conntrack: {obj.events} events shown in {obj.duration:.1f}s{lost}.")
        if isinstance(obj, (CpuStats, Stats)):
            return stats_lines(obj)
        return None

    return format_any

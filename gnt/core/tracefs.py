"""tracefs without eBPF: find or mount it, private instances, event formats, kernel filters, raw buffers.

Standard library only. The one module that opens tracefs files (`gnt drops` and `gnt why` use it).

- `mounted()` finds tracefs (or mounts it at /sys/kernel/tracing when it is nowhere) and unmounts
  on exit only what a gnt process mounted, once no live gnt instance remains in it (a mount record
  in /run names the process that mounted it, so a mount a killed run left is undone later).
- `Instance` is a private tracing instance (`instances/<prefix>_<pid>`): events enabled in it
  write to its own ring buffers, so the node's top-level trace and other tools are untouched.
  The owner is the pid in the name *and* the instance's creation time (the ctime the kernel gives
  the directory at mkdir): a live process with that pid that started after the instance existed
  is not its owner (a reused pid), so `remove_stale` takes the instance of a dead run and never a
  live one's. A live run also keeps a file of its instance open, which makes the kernel refuse
  `rmdir` (EBUSY) whatever the check decides.
- `read_format` parses an event's `format` file: the field layout and the value tables of its
  `__print_symbolic()` calls (the kernel's own names, e.g. the skb drop reasons).
- `RawReader` reads the per-CPU `trace_pipe_raw` pages (binary ring-buffer sub-buffers, parsed
  here) without blocking, and the per-CPU `stats` counters of events the ring lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import glob
import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from gnt.core.process import process_start_ticks, signals_blocked

DEFAULT_MOUNTPOINT = "/sys/kernel/tracing"  # where tracefs lives since 4.1
DEBUGFS_TRACING = "/sys/kernel/debug/tracing"  # the older place, under a mounted debugfs
LOCK_PATH = "/sys/kernel"  # flock()ed (a directory: no lock file left behind) around mount decisions
MOUNT_RECORDS = "/run/gnt-tracefs.{namespace}.mount"  # who mounted tracefs in a mount namespace
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8  # mount flags (linux/mount.h), as systemd mounts tracefs
MOUNT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC
OWNER_SLACK = 0.05  # seconds: start-time tick (10 ms) plus the realtime->boottime conversion error

RB_MISSED_EVENTS = 1 << 31  # commit flag: events were lost before this sub-buffer (ring_buffer.c)
RB_MISSED_STORED = 1 << 30  # commit flag: the number lost is stored after the data
RB_LENGTH_MASK = RB_MISSED_STORED - 1  # commit bits that hold the data length
TYPE_LEN_MAX = 28  # type_len 1..28: data of type_len * 4 bytes follows the 4-byte header
TYPE_PADDING = 29  # padding or a discarded event; time_delta 0 means "rest of the sub-buffer"
TYPE_TIME_EXTEND = 30  # 8-byte time delta extension, no data
TYPE_TIME_STAMP = 31  # 8-byte absolute time stamp, no data
U32 = struct.Struct("<I")  # event header / length word (the ring buffer is host-endian; x86/arm64 LE)


class TracefsError(Exception):
    """A tracefs operation failed; `errno` is kept."""

    def __init__(self, message: str, err: int | None = None) -> None:
        super().__init__(message)
        self.errno = err


# --- finding and mounting --------------------------------------------------------------------

def find_mount(mounts: str = "/proc/self/mounts") -> str | None:
    """Where tracefs is reachable now: a tracefs mount, or `tracing/` under a debugfs mount."""
    debugfs: list[str] = []
    try:
        with open(mounts) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                target = parts[1].replace("\\040", " ")
                if parts[2] == "tracefs":
                    return target
                if parts[2] == "debugfs":
                    debugfs.append(target)
    except OSError:
        return None
    for target in debugfs:
        if os.path.isfile(os.path.join(target, "tracing", "trace")):
            return os.path.join(target, "tracing")
    return None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tracefs(target: str = DEFAULT_MOUNTPOINT) -> None:
    libc = _libc()
    if libc.mount(b"nodev", target.encode(), b"tracefs", ctypes.c_ulong(MOUNT_FLAGS), None) != 0:
        err = ctypes.get_errno()
        raise TracefsError(f"cannot mount tracefs on {target}: {os.strerror(err)}", err)


def unmount_tracefs(target: str) -> int:
    """umount(2) without forcing: 0, or the errno (EBUSY while someone has a file open in it)."""
    if _libc().umount2(target.encode(), 0) != 0:
        return ctypes.get_errno()
    return 0


@contextlib.contextmanager
def _mount_lock() -> Iterator[None]:
    try:
        fd = os.open(LOCK_PATH, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield  # no sysfs: decide without the lock
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class Mount:
    """tracefs as this process reaches it; `mounted_here` when this process mounted it."""

    path: str
    mounted_here: bool = False
    unmounted: bool = False  # set at exit when this call unmounted it (its own mount, or a dead run's)


def _mount_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/mnt")
    except OSError:
        return "?"


def _mount_id(path: str) -> int | None:
    """The id of the tracefs mount on `path` in this mount namespace (/proc/self/mountinfo), if any."""
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) > 4 and fields[4] == path and right.split()[:1] == ["tracefs"]:
                    found = int(fields[0])  # the last one listed is the one on top
    except OSError:
        return None
    return found


def _record_path(namespace: str) -> str:
    return MOUNT_RECORDS.format(namespace=re.sub(r"\D", "", namespace) or "0")


def _write_mount_record(path: str) -> None:
    """Say who mounted tracefs (pid, start time, mount id) in this mount namespace, so that the next gnt
    there can unmount it if this process dies without doing so (SIGKILL) or leaves while others use it."""
    started = process_start(os.getpid())
    with contextlib.suppress(OSError), open(_record_path(_mount_namespace()), "w") as f:
        f.write(f"{os.getpid()} {started!r} {_mount_id(path)} {path}\n")


def _release_stale_mounts(owner_prefix: str) -> bool:
    """Unmount a tracefs that a gnt process mounted in this mount namespace and did not unmount, once
    that process is gone and no live gnt instance of this namespace remains; only that very mount.
    The record of a dead owner in another namespace is dropped only when no process is left in that
    namespace (its mount went with it). Call with the mount lock held."""
    here = _record_path(_mount_namespace())
    done = False
    for record in glob.glob(MOUNT_RECORDS.format(namespace="*")):
        if record != here and _namespace_in_use(record):
            continue  # a gnt there will judge it
        try:
            with open(record) as f:
                pid_text, started_text, mount_id, path = f.read().split()
        except (OSError, ValueError):
            continue
        started = process_start(int(pid_text))
        if started is not None and repr(started) == started_text:
            continue  # its owner still runs and will unmount it
        if record == here and str(_mount_id(path)) == mount_id:
            if _live_instances(path, owner_prefix):
                continue  # someone here still traces: the last of them unmounts it
            done = unmount_tracefs(path) == 0
        with contextlib.suppress(OSError):
            os.unlink(record)
    return done


def _namespace_in_use(record: str) -> bool:
    """Some process is still in the mount namespace a record (by its file name) was written in."""
    digits = re.sub(r"\D", "", os.path.basename(record))
    wanted = f"mnt:[{digits}]"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") == wanted:
                    return True
            except OSError:
                continue
    return False


def _live_instances(root: str, owner_prefix: str) -> list[str]:
    """gnt instances whose owner is alive and uses this mount namespace."""
    pattern = re.compile(re.escape(owner_prefix) + r"\w*?(\d+)$")
    namespace = _mount_namespace()
    try:
        names = os.listdir(os.path.join(root, "instances"))
    except OSError:
        return []
    live = []
    for name in names:
        m = pattern.match(name)
        if not m or _is_stale(root, name):
            continue
        try:
            if os.readlink(f"/proc/{m.group(1)}/ns/mnt") != namespace:
                continue
        except OSError:
            continue
        live.append(name)
    return live


@contextlib.contextmanager
def mounted(*, owner_prefix: str = "gnt_") -> Iterator[Mount]:
    """tracefs, mounted for the duration when it was not found mounted.

    At exit it is unmounted when this call mounted it and no live gnt instance (`owner_prefix`)
    remains in it; when one does, the last gnt run to leave unmounts it (the mount record). A mount
    left by a gnt process that died (SIGKILL) is unmounted by the next one that leaves.
    """
    # Mounting and its record, and unmounting, are done whole: a stop signal waits until they are.
    with signals_blocked(), _mount_lock():
        path = find_mount()
        if path is not None:
            mount = Mount(path)
        else:
            mount_tracefs(DEFAULT_MOUNTPOINT)
            mount = Mount(DEFAULT_MOUNTPOINT, mounted_here=True)
            _write_mount_record(mount.path)
    try:
        yield mount
    finally:
        with signals_blocked(), _mount_lock():
            if mount.mounted_here and not _live_instances(mount.path, owner_prefix):
                mount.unmounted = unmount_tracefs(mount.path) == 0
                if mount.unmounted:
                    with contextlib.suppress(OSError):
                        os.unlink(_record_path(_mount_namespace()))
            elif not mount.mounted_here:
                mount.unmounted = _release_stale_mounts(owner_prefix)


# --- instances and their owners --------------------------------------------------------------

def process_start(pid: int) -> float | None:
    """Seconds since boot at which `pid` started, None when it is gone."""
    ticks = process_start_ticks(pid)
    return None if ticks is None else ticks / os.sysconf("SC_CLK_TCK")


def _boottime_of(realtime: float) -> float:
    """A CLOCK_REALTIME instant as seconds since boot (the clock /proc/PID/stat counts in)."""
    return realtime - (time.time() - time.clock_gettime(time.CLOCK_BOOTTIME))


def list_instances(root: str, prefix: str) -> list[tuple[str, int]]:
    """(name, owner pid) of the instances named `<prefix><pid>`."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    out = []
    try:
        names = os.listdir(os.path.join(root, "instances"))
    except OSError:
        return []
    for name in names:
        m = pattern.match(name)
        if m:
            out.append((name, int(m.group(1))))
    return sorted(out)


def _is_stale(root: str, name: str) -> bool:
    """The instance's owner is gone: no process with its pid, or that pid started after the instance."""
    m = re.search(r"_(\d+)$", name)
    if m is None:
        return False
    started = process_start(int(m.group(1)))
    if started is None:
        return True
    try:
        created = _boottime_of(os.stat(os.path.join(root, "instances", name)).st_ctime)
    except FileNotFoundError:
        return False  # removed meanwhile
    return started > created + OWNER_SLACK


def remove_stale(root: str, prefix: str) -> list[str]:
    """Remove the instances `<prefix><pid>` whose owner is gone; returns their names.

    An instance a live process still reads is refused by the kernel (EBUSY) and kept.
    """
    removed = []
    for name, _pid in list_instances(root, prefix):
        if not _is_stale(root, name):
            continue
        try:
            os.rmdir(os.path.join(root, "instances", name))
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                continue
            raise TracefsError(f"cannot remove tracing instance {name}: {exc.strerror}", exc.errno) from exc
        removed.append(name)
    return removed


class Instance:
    """A private tracing instance `instances/<prefix><pid>` of this process; `close()` removes it.

    While open it holds its `tracing_on` file open, so no other process can remove it.
    """

    def __init__(self, root: str, prefix: str) -> None:
        self.root = root
        self.name = f"{prefix}{os.getpid()}"
        self.path = os.path.join(root, "instances", self.name)
        self._hold: int | None = None
        try:
            os.mkdir(self.path)
        except FileExistsError:
            # Our own pid: a leftover of an earlier process with this pid (ours is not running yet).
            with contextlib.suppress(OSError):
                os.rmdir(self.path)
            try:
                os.mkdir(self.path)
            except OSError as exc:
                raise TracefsError(f"cannot create tracing instance {self.path}: {exc.strerror}", exc.errno) from exc
        except OSError as exc:
            raise TracefsError(f"cannot create tracing instance {self.path}: {exc.strerror}", exc.errno) from exc
        try:
            self._hold = os.open(os.path.join(self.path, "tracing_on"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.close()
            raise

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def write(self, relative: str, text: str) -> None:
        """Write a control file of the instance (one write(2), as the kernel parses it)."""
        path = self.file(relative)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        except OSError as exc:
            raise TracefsError(f"cannot open {path}: {exc.strerror}", exc.errno) from exc
        try:
            os.write(fd, text.encode())
        except OSError as exc:
            raise TracefsError(f"cannot write {text!r} to {path}: {exc.strerror}", exc.errno) from exc
        finally:
            os.close(fd)

    def read(self, relative: str) -> str:
        with open(self.file(relative)) as f:
            return f.read()

    def set_filter(self, system: str, event: str, expression: str) -> None:
        """The kernel-side event filter ("0" clears it); a syntax error comes back as EINVAL."""
        self.write(f"events/{system}/{event}/filter", expression or "0")

    def enable(self, system: str, event: str, on: bool = True) -> None:
        self.write(f"events/{system}/{event}/enable", "1" if on else "0")

    def cpus(self) -> list[int]:
        out = []
        for name in os.listdir(self.file("per_cpu")):
            if name.startswith("cpu") and name[3:].isdigit():
                out.append(int(name[3:]))
        return sorted(out)

    def close(self) -> None:
        """Remove the instance (its events, filters and buffers go with it). Safe to call twice."""
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        for attempt in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                # EBUSY while a reader of ours is still closing (another thread, a child): retry briefly.
                if exc.errno != errno.EBUSY or attempt == 49:
                    raise TracefsError(f"cannot remove tracing instance {self.path}: {exc.strerror}",
                                       exc.errno) from exc
                time.sleep(0.02)

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- event formats ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    name: str
    type: str
    offset: int
    size: int
    signed: bool


@dataclass
class EventFormat:
    """An event's `format` file: its id, fields, and the value tables of its print format."""

    system: str
    name: str
    id: int
    fields: dict[str, Field] = field(default_factory=dict)
    symbols: dict[str, dict[int, str]] = field(default_factory=dict)  # field -> value -> name


_FIELD_RE = re.compile(r"field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
                       r"\s*signed:(?P<signed>\d+);")
_DECL_RE = re.compile(r"(\w+)\s*(?:\[[^\]]*\])?$")  # the field name at the end of a declaration
_SYMBOLIC_RE = re.compile(r"__print_symbolic\(REC->(\w+),")
_PAIR_RE = re.compile(r"\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*\"([^\"]*)\"\s*\}")


def parse_format(system: str, name: str, text: str) -> EventFormat:
    event_id = -1
    fields: dict[str, Field] = {}
    print_fmt = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("ID:"):
            event_id = int(stripped[3:])
        elif stripped.startswith("print fmt:"):
            print_fmt = stripped
        else:
            m = _FIELD_RE.search(stripped)
            if m:
                decl = m.group("decl").strip()
                named = _DECL_RE.search(decl)
                fname = named.group(1) if named else decl
                ftype = decl[: named.start()].strip() if named else ""
                fields[fname] = Field(fname, ftype, int(m.group("offset")), int(m.group("size")),
                                      m.group("signed") == "1")
    symbols: dict[str, dict[int, str]] = {}
    for m in _SYMBOLIC_RE.finditer(print_fmt):
        table = _balanced_args(print_fmt, m.end())
        symbols[m.group(1)] = {int(v, 0): label for v, label in _PAIR_RE.findall(table)}
    return EventFormat(system, name, event_id, fields, symbols)


def _balanced_args(text: str, start: int) -> str:
    """The text from `start` up to the parenthesis that closes the call opened just before it."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return text[start:]


def read_format(root: str, system: str, event: str) -> EventFormat:
    """The event's format as the running kernel describes it (FileNotFoundError: no such event)."""
    with open(os.path.join(root, "events", system, event, "format")) as f:
        return parse_format(system, event, f.read())


@dataclass(frozen=True)
class PageLayout:
    """Where a sub-buffer keeps its commit word and its data (events/header_page)."""

    commit_offset: int = 8
    commit_size: int = 8
    data_offset: int = 16


def read_page_layout(root: str) -> PageLayout:
    try:
        with open(os.path.join(root, "events", "header_page")) as f:
            text = f.read()
    except OSError:
        return PageLayout()
    offsets = {m.group("decl").split()[-1]: (int(m.group("offset")), int(m.group("size")))
               for m in _FIELD_RE.finditer(text)}
    commit = offsets.get("commit", (8, 8))
    data = offsets.get("data", (16, 0))
    return PageLayout(commit[0], commit[1], data[0])


# --- reading the per-CPU buffers -------------------------------------------------------------

def iter_events(page: bytes, layout: PageLayout) -> Iterator[int]:
    """Offsets in `page` (one sub-buffer from trace_pipe_raw) where each event's data starts."""
    commit_fmt = "<Q" if layout.commit_size == 8 else "<I"
    (commit,) = struct.unpack_from(commit_fmt, page, layout.commit_offset)
    end = layout.data_offset + (commit & RB_LENGTH_MASK)
    end = min(end, len(page))
    off = layout.data_offset
    unpack = U32.unpack_from
    while off + 4 <= end:
        (header,) = unpack(page, off)
        type_len = header & 0x1F
        if type_len == 0:
            (length,) = unpack(page, off + 4)
            yield off + 8
            off += 4 + length
        elif type_len <= TYPE_LEN_MAX:
            yield off + 4
            off += 4 + type_len * 4
        elif type_len == TYPE_PADDING:
            if header >> 5 == 0:
                break
            (length,) = unpack(page, off + 4)
            off += 4 + length
        else:  # time extend / time stamp
            off += 8


@dataclass
class CpuLoss:
    overrun: int = 0  # events overwritten before they were read (the ring was full)
    dropped: int = 0  # events refused when the ring was full in non-overwrite mode

    @property
    def total(self) -> int:
        return self.overrun + self.dropped


def parse_stats(text: str) -> CpuLoss:
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        with contextlib.suppress(ValueError):
            values[key.strip()] = int(value.strip().split()[0]) if value.strip() else 0
    return CpuLoss(overrun=values.get("overrun", 0), dropped=values.get("dropped events", 0))


class RawReader:
    """Non-blocking readers of an instance's per-CPU `trace_pipe_raw`, with their loss counters."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.layout = read_page_layout(instance.root)
        self.page_size = _subbuf_size(instance)
        self.fds: dict[int, int] = {}
        try:
            for cpu in instance.cpus():
                path = instance.file("per_cpu", f"cpu{cpu}", "trace_pipe_raw")
                self.fds[cpu] = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self.close()
            raise TracefsError(f"cannot open the per-CPU buffers of {instance.path}: {exc.strerror}",
                               exc.errno) from exc

    def pages(self, limit: int = 1024) -> Iterator[bytes]:
        """Every sub-buffer waiting now on every CPU (up to `limit` per CPU per call)."""
        for fd in self.fds.values():
            for _ in range(limit):
                try:
                    page = os.read(fd, self.page_size)
                except (BlockingIOError, InterruptedError):
                    break
                if not page:
                    break
                yield page

    def lost(self) -> int:
        """Events the rings lost so far, summed over the CPUs (from per_cpu/cpuN/stats)."""
        total = 0
        for cpu in self.fds:
            try:
                total += parse_stats(self.instance.read(f"per_cpu/cpu{cpu}/stats")).total
            except OSError:
                continue
        return total

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def _subbuf_size(instance: Instance) -> int:
    """The sub-buffer size trace_pipe_raw reads in (buffer_subbuf_size_kb since 6.8, else a page)."""
    try:
        return int(instance.read("buffer_subbuf_size_kb").split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return os.sysconf("SC_PAGE_SIZE")

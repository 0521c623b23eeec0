"""Renderers: text for people, NDJSON for scripts, both fed by the same model objects.

A tool yields dataclasses; the CLI hands each one to a renderer made by `make_renderer`.
The JSON renderer needs nothing per tool (one encoder for every model, in `json.py`).
The text renderer takes the tool's formatter (in `output/text/<tool>.py`): a callable
that turns one model object into the lines to print, or None to print nothing.
"""

from __future__ import annotations

import errno
import io
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from gnt.output.env import Environment


class ToStderr(str):
    """A formatted line that belongs on stderr (interim status, warnings)."""

    __slots__ = ()


class OutputClosed(Exception):
    """The reader of stdout went away (`gnt ... | head`): stop quietly, exit 0.

    Raised instead of BrokenPipeError so that no layer in between (click turns an EPIPE
    OSError into exit 1) mistakes a closed pipe for an error.
    """


class Inline(str):
    """Text written exactly as is, with no newline added (ping's flood dots)."""

    __slots__ = ()


Formatter = Callable[[object], "str | None"]


class Renderer(Protocol):
    def emit(self, obj: object) -> None: ...


def write(stream: TextIO, text: str) -> None:
    """Write and flush one piece of output: a closed pipe is OutputClosed, any other failure
    (a full disk behind `> file`) one GntError line instead of a traceback."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise OutputClosed from None
    except OSError as exc:
        raise _write_error(exc) from exc


def _write_error(exc: OSError) -> Exception:
    from gnt.errors import GntError

    return GntError(f"cannot write the output: {exc.strerror or exc}", errno=exc.errno)


class GuardedStream(io.TextIOBase):
    """A standard stream as the error boundary hands it to commands: every writer (renderers,
    click's help, `--version`) fails the same way — a closed pipe is OutputClosed (exit 0),
    any other failure (/dev/full, a stream the shell closed with `>&-`) one "cannot write the
    output" GntError (exit 2)."""

    def __init__(self, inner: TextIO | None) -> None:
        super().__init__()
        self.inner = inner  # None: the shell closed this stream (`>&-`)

    def _target(self) -> TextIO:
        if self.inner is None:
            raise OSError(errno.EBADF, "the stream was closed by the shell (>&-)")
        return self.inner

    def write(self, text: str) -> int:
        try:
            return self._target().write(text)
        except BrokenPipeError:
            raise OutputClosed from None
        except OSError as exc:
            raise _write_error(exc) from exc

    def flush(self) -> None:
        try:
            self._target().flush()
        except BrokenPipeError:
            raise OutputClosed from None
        except OSError as exc:
            raise _write_error(exc) from exc

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.inner is not None and self.inner.isatty()

    def fileno(self) -> int:
        return self._target().fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", None) or "utf-8"

    def close(self) -> None:
        """The process's stream is not ours to close (nor to flush again when this wrapper goes)."""

    def __getattr__(self, name: str) -> object:  # getvalue() of a test's StringIO, buffer, ...
        if self.inner is None:
            raise AttributeError(name)
        return getattr(self.inner, name)


class TextRenderer:
    """Writes what the tool's formatter makes of each object; flushes so output streams."""

    INLINE_FLUSH = 0.05  # seconds: inline text (ping's flood dots) is written at most this often

    def __init__(self, env: Environment, formatter: Formatter) -> None:
        self.env = env
        self.formatter = formatter
        self.inline: list[str] = []  # inline text not written yet
        self.inline_since = 0.0

    def emit(self, obj: object) -> None:
        text = self.formatter(obj)
        if text is None:
            return
        if isinstance(text, Inline):
            # A write per flood dot costs more than the ping: gather them, write a few times a second.
            now = time.monotonic()
            if not self.inline:
                self.inline_since = now
            self.inline.append(text)
            if now - self.inline_since >= self.INLINE_FLUSH:
                self.flush_inline()
            return
        self.flush_inline()
        stream = self.env.stderr if isinstance(text, ToStderr) else self.env.stdout
        write(stream, text if text.endswith("\n") else text + "\n")

    def flush_inline(self) -> None:
        if self.inline:
            text = "".join(self.inline)
            self.inline.clear()
            write(self.env.stdout, text)


class JsonRenderer:
    """NDJSON: one object per line, each with a "type"; the first line of a stream is `meta`."""

    def __init__(self, env: Environment) -> None:
        from gnt.output.json import encode

        self.env = env
        self._encode = encode  # imported once, not per object (a conntrack dump emits a million)
        if not env.meta_written:
            from gnt.fleet.envelope import stream_meta

            env.meta_written = True
            write(env.stdout, str(encode(stream_meta(env.argv))) + "\n")

    def emit(self, obj: object) -> None:
        line = self._encode(obj)
        if line is None:
            return
        write(self.env.stdout, line + "\n")


def make_renderer(env: Environment, *, json: bool, formatter: Formatter) -> Renderer:
    if env.npd:  # node-problem-detector reads one line: nothing else goes to stdout
        return _tap(env, None)
    base: Renderer = JsonRenderer(env) if json else TextRenderer(env, formatter)
    return _tap(env, base) if env.prom_path else base


def _tap(env: Environment, inner: Renderer | None) -> Renderer:
    """The run's one FleetTap (--prom/--npd), passing objects on to `inner`."""
    from gnt.output.prom import FleetTap

    if isinstance(env.tap, FleetTap):
        env.tap.inner = inner
        return env.tap
    tap = FleetTap(env, inner)
    env.tap = tap
    return tap

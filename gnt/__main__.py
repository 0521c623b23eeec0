"""Entry point: `gnt` and `python -m gnt`. The single error boundary of the program.

Every expected failure is a `GntError` and becomes one line on stderr (plus a hint line
when there is a fix to name) and its exit code. Anything else is a bug: one line asking
for `--debug`, which shows the traceback. Kept free of heavy imports: start-up time is
part of the product (health checks run gnt many times a minute).

Signals, one policy for every command: SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP
raise `Terminated` (a KeyboardInterrupt), so each command's Ctrl-C path prints its summary;
the exit status is 128 + the signal. Before the boundary is up (imports) a signal ends the process
at once with that same status and no traceback. The binary's launcher holds the stop signals
through the interpreter's own start-up too (`_release_held_signals`); a pip-installed `gnt` runs
Python's start-up (site, the console script's imports) before any gnt code, unprotected.

Streams: the commands write to guarded copies of stdout and stderr (`GuardedStream`), so a
closed pipe is a quiet exit 0 and any other write failure (/dev/full, `>&-`) one "cannot
write the output" line and exit 2, whoever writes (renderers, click's --help, --version).
"""

from __future__ import annotations

# The C core of `signal`, loaded with the interpreter: `import signal` itself imports enum, which
# takes milliseconds of start-up during which a Ctrl-C would still be a traceback.
import _signal
import os
import sys

_exiting = False


def _exit_at_once(signum: int, _frame: object) -> None:
    """A stop signal during start-up, before the error boundary runs: nothing to summarise yet."""
    global _exiting
    if _exiting or globals().get("_stopped_by") == signum:
        return  # the same stop again (sent to the process group and passed on by the launcher)
    _exiting = True
    if signum == _signal.SIGINT:
        try:
            os.write(2, b"\n")  # closes the terminal's ^C echo, as the boundary does
        except OSError:
            pass
    os._exit(128 + signum)


def _started_as_gnt() -> bool:
    """This module is the program (`gnt`, `python -m gnt`, the one-file binary), not a library import."""
    return (__name__ == "__main__" or bool(getattr(sys, "frozen", False))
            or os.path.basename(sys.argv[0] if sys.argv else "") == "gnt")


def _reopen_closed_fds() -> None:
    """A standard fd the shell closed (`>&-`) gets /dev/null, so no socket or file opened later
    takes its number (and receives what is meant for stdout); sys.stdout stays None, and writing
    to it is reported as "cannot write the output"."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            except OSError:
                pass
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - reads as an empty stdin


def _release_held_signals() -> None:
    """The binary's launcher (build/launcher.c) starts gnt with the stop signals blocked, so none
    lands in the interpreter's start-up: say this process's pid on its pipe (signals sent to the
    launcher come here directly), then unblock them, and a signal that waited is handled now."""
    pipe_fd = os.environ.pop("_GNT_LAUNCHER_FD", "")
    held = os.environ.pop("_GNT_HELD_SIGNALS", "")
    if pipe_fd.isdigit():
        try:
            os.write(int(pipe_fd), b"%d\n" % os.getpid())
            os.close(int(pipe_fd))
        except OSError:
            pass
    signals = {int(number) for number in held.split(",") if number.isdigit()}
    if signals:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, signals)


# First thing, before any other import: from here on a Ctrl-C during start-up is exit 130, no traceback.
if _started_as_gnt():
    for _signum in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        if _signal.getsignal(_signum) is not _signal.SIG_IGN:  # `nohup` and `cmd &` keep theirs
            _signal.signal(_signum, _exit_at_once)
    _release_held_signals()
    _reopen_closed_fds()

import signal  # noqa: E402
import time  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from gnt.errors import STOP_SIGNALS, ExitCode, GntError, StopHandlers, Terminated, interrupted_exit_code  # noqa: E402

if TYPE_CHECKING:
    from typing import TextIO

_stopped_by: int | None = None  # the stop signal received during the current run
_stopped_at = 0.0  # when (time.monotonic)
# A stop signal often comes twice at once: `timeout`, systemd and `kill -- -PGID` send it to every
# process of the group, and the binary's launcher passes on what it was sent. A repeat of the same
# signal this soon after the first is that one stop, not a second (which would cut the summary short).
REPEAT_WINDOW = 0.5  # seconds


def _raise_stop(signum: int, _frame: object) -> None:
    """The handler of the running command: SIGINT is KeyboardInterrupt, SIGTERM/SIGHUP Terminated."""
    global _stopped_by, _stopped_at
    now = time.monotonic()
    if _stopped_by == signum and now - _stopped_at < REPEAT_WINDOW:
        return
    _stopped_by, _stopped_at = signum, now
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _say(stream: TextIO, text: str) -> None:
    """Write to stderr when it can be written; an error is still exit 2 when stderr is /dev/full."""
    try:
        stream.write(text)
        stream.flush()
    except Exception:  # nowhere left to report it
        pass


def _prog(argv: list[str]) -> str:
    """`gnt` or `gnt CMD` for the error prefix, as iputils prefixes `ping:`."""
    from gnt.cli import COMMANDS, command_name

    name = command_name(argv)
    return f"gnt {name}" if name in COMMANDS else "gnt"


def main(argv: list[str] | None = None, env: object | None = None) -> int:
    """Run gnt with `argv` (default: sys.argv[1:]); returns the exit code (and exits when run as a script)."""
    global _stopped_by
    _stopped_by = None
    with StopHandlers(_raise_stop):
        return _run(argv, env)


def _interrupt_inside(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt an exception was raised from (its cause or context chain), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _run(argv: list[str] | None, env: object | None) -> int:
    import dataclasses

    from gnt.output import GuardedStream, OutputClosed
    from gnt.output.env import Environment

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("GNT_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    given = env if isinstance(env, Environment) else Environment()
    environment = dataclasses.replace(given, stdout=GuardedStream(given.stdout), stderr=GuardedStream(given.stderr))
    environment.debug = debug
    prog = "gnt"
    code: int
    try:
        prog = _prog(args)
        from gnt.cli import run, take_fleet_options

        args = take_fleet_options(args, environment)
        environment.argv = tuple(args)
        code = run(args, environment)
        if code == ExitCode.INTERRUPTED and _stopped_by is not None:
            # The command (or typer, which turns every KeyboardInterrupt into exit 130) ended on the
            # signal after its summary: the status names the signal, Ctrl-C closes the ^C echo.
            if _stopped_by == signal.SIGINT:
                _say(environment.stderr, "\n")
            code = interrupted_exit_code(_stopped_by)
    except GntError as exc:
        _say(environment.stderr, f"{prog}: {_clip(exc.message)}\n")
        if exc.hint:
            _say(environment.stderr, f"{prog}: hint: {_clip(exc.hint)}\n")
        if debug:
            import traceback

            _say(environment.stderr, traceback.format_exc())
        code = int(exc.exit_code)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Terminated) else _stopped_by
        if signum in (None, signal.SIGINT) and not getattr(exc, "line_written", False):
            _say(environment.stderr, "\n")  # closes the terminal's ^C echo
        code = interrupted_exit_code(signum)
    except (BrokenPipeError, OutputClosed):
        # The reader went away (`gnt ... | head`): not an error worth a message.
        _silence_stdout()
        code = int(ExitCode.OK)
    except Exception as exc:  # a bug: say so in one line, show it with --debug
        interrupt = _interrupt_inside(exc)
        if interrupt is not None:
            # A signal that landed while Python was building a class (it wraps the interrupt in a
            # RuntimeError from __set_name__) or a module: still an interruption, not a bug.
            code = interrupted_exit_code(interrupt.signum if isinstance(interrupt, Terminated) else _stopped_by)
        else:
            if debug:
                import traceback

                _say(environment.stderr, traceback.format_exc())
            else:
                _say(environment.stderr, f"{prog}: internal error: {type(exc).__name__}: {_clip(str(exc))}"
                                         " (run with --debug for details)\n")
            code = int(ExitCode.ERROR)
    for finish in environment.finishers:  # --prom / --npd: written once the exit code is known
        try:
            finish(code)
        except GntError as exc:
            _say(environment.stderr, f"{prog}: {_clip(exc.message)}\n")
            code = int(exc.exit_code)
        except OutputClosed:  # --npd into a reader that went away
            _silence_stdout()
    try:
        environment.stdout.flush()
    except OutputClosed:
        _silence_stdout()
    except Exception:  # already reported by the renderer (or the reader is gone)
        pass
    return code


LONGEST_WORD = 80  # characters of one word of an error line; a 10,000-character argument is cut


def _clip(text: str) -> str:
    """One line, with any overlong word (an argument quoted back) cut to LONGEST_WORD characters."""
    import re

    def cut(match: re.Match[str]) -> str:
        word = match.group()
        return f"{word[:LONGEST_WORD]}...({len(word)} characters)"

    return re.sub(rf"\S{{{LONGEST_WORD + 1},}}", cut, " ".join(text.split()))


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush of a closed pipe stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def _entry() -> None:
    """The process: the boundary, and a last net for a signal that lands between its steps."""
    try:
        code = main()
    except KeyboardInterrupt as exc:
        code = interrupted_exit_code(exc.signum if isinstance(exc, Terminated) else _stopped_by)
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except Exception:  # the reader is gone or the disk is full: reported already
        _silence_stdout()  # so the interpreter's own last flush does not print a traceback
    # The run is over and its status decided. Python's shutdown puts SIG_DFL back for every signal
    # it handles, so a second copy of a stop signal (group-wide and passed on by the binary's
    # launcher) would kill the process now with another status; it is ignored instead.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    _entry()

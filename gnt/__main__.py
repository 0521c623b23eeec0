"""Entry point: `gnt` and `python -m gnt`. The single error boundary of the program.

Every expected failure is a `GntError` and becomes one line on stderr (plus a hint line
when there is a fix to name) and its exit code. Anything else is a bug: one line asking
for `--debug`, which shows the traceback. Kept free of heavy imports: start-up time is
part of the product (health checks run gnt many times a minute).
"""

from __future__ import annotations

import os
import sys

from gnt.errors import ExitCode, GntError


def _prog(argv: list[str]) -> str:
    """`gnt` or `gnt CMD` for the error prefix, as iputils prefixes `ping:`."""
    from gnt.cli import COMMANDS, command_name

    name = command_name(argv)
    return f"gnt {name}" if name in COMMANDS else "gnt"


def main(argv: list[str] | None = None, env: object | None = None) -> int:
    """Run gnt with `argv` (default: sys.argv[1:]); returns the exit code (and exits when run as a script)."""
    from gnt.output import OutputClosed
    from gnt.output.env import Environment

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("GNT_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    environment = env if isinstance(env, Environment) else Environment()
    environment.debug = debug
    prog = _prog(args)
    code: int
    try:
        from gnt.cli import run, take_fleet_options

        args = take_fleet_options(args, environment)
        environment.argv = tuple(args)
        code = run(args, environment)
    except GntError as exc:
        environment.stderr.write(f"{prog}: {exc.message}\n")
        if exc.hint:
            environment.stderr.write(f"{prog}: hint: {exc.hint}\n")
        if debug:
            import traceback

            traceback.print_exc(file=environment.stderr)
        code = int(exc.exit_code)
    except KeyboardInterrupt:
        environment.stderr.write("\n")
        code = int(ExitCode.INTERRUPTED)
    except (BrokenPipeError, OutputClosed):
        # The reader went away (`gnt ... | head`): not an error worth a message.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        code = int(ExitCode.OK)
    except Exception as exc:  # a bug: say so in one line, show it with --debug
        if debug:
            import traceback

            traceback.print_exc(file=environment.stderr)
        else:
            environment.stderr.write(
                f"{prog}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n"
            )
        code = int(ExitCode.ERROR)
    for finish in environment.finishers:  # --prom / --npd: written once the exit code is known
        try:
            finish(code)
        except GntError as exc:
            environment.stderr.write(f"{prog}: {exc.message}\n")
            code = int(exc.exit_code)
        except OSError:
            pass  # stdout gone: nothing left to tell
    try:
        environment.stdout.flush()
    except (OSError, ValueError):
        pass  # already reported by the renderer (or the reader is gone)
    return code


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()

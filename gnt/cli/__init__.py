"""The typer app: one module per command under gnt/cli/, each with a `register(app)`.

`run(argv, env)` is what `gnt.__main__` calls. Only the module of the command being run
is imported (every module for `gnt --help`), and each command imports its tool inside
the function body, so `gnt ping` never pays for scapy, pyroute2 or another command.
Click's usage errors are turned into one-line `UsageError`s here, so the error boundary
prints them like every other error (exit 2).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from gnt.errors import ExitCode, UsageError
from gnt.output.env import Environment

if TYPE_CHECKING:
    import typer

# command name -> module that registers it. Order is the order of `gnt --help`.
COMMANDS: dict[str, str] = {
    "ping": "gnt.cli.ping",
    "traceroute": "gnt.cli.traceroute",
    "mtu": "gnt.cli.mtu",
    "vxlan-csum": "gnt.cli.vxlan",
    "conntrack": "gnt.cli.conntrack",
    "iptrace": "gnt.cli.iptrace",
    "drops": "gnt.cli.drops",
    "ndisc": "gnt.cli.ndisc",
    "rdisc": "gnt.cli.rdisc",
    "ip6": "gnt.cli.ip6",
    "neigh": "gnt.cli.neigh",
    "why": "gnt.cli.why",
    "merge": "gnt.cli.merge",
}

_current: Environment | None = None
_verbose = False  # `--verbose` was on the command line of the running `gnt --version`


def current_env() -> Environment:
    """The environment of the running command (set by `run`)."""
    return _current if _current is not None else Environment()


def _version_callback(value: bool) -> None:
    if value:
        import gnt.cli.version as version

        version.print_version(current_env(), verbose=_verbose)
        import typer

        raise typer.Exit(0)


def build_app(only: str | None = None, *, with_commands: bool = True) -> typer.Typer:
    """The typer app with every command registered, or only `only` (the one being run).

    `with_commands=False` registers none: `gnt --version` needs only the root options.
    """
    import importlib

    import typer

    app = typer.Typer(
        name="gnt",
        help="A network toolbox for Linux and Kubernetes nodes.",
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", "-V", is_eager=True, callback=_version_callback,
            help="Print the version and exit (--verbose adds build details).",
        ),
        verbose: bool = typer.Option(False, "--verbose", help="With --version: Python, frozen or not, glibc."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
        prom: str | None = typer.Option(
            None, "--prom", metavar="FILE",
            help="Also write the result as Prometheus textfile metrics to FILE (atomically); "
                 "for ping, traceroute, mtu, drops, conntrack stats, vxlan-csum and why. Anywhere on the line."),
        npd: bool = typer.Option(
            False, "--npd",
            help="Print only one condition line of at most 80 characters (node-problem-detector), keep the exit code."),
    ) -> None:
        """A network toolbox for Linux and Kubernetes nodes."""

    names = [] if not with_commands else [only] if only in COMMANDS else list(COMMANDS)
    for name in names:
        importlib.import_module(COMMANDS[name]).register(app)
    return app


def command_name(argv: list[str]) -> str | None:
    """The first word of the command line that is not an option (the command, when it is one)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


# Command words -> (module, parser, runner): the parser turns a well-formed rest of the command
# line into option values (None: let typer parse it), the runner runs them. These commands,
# the ones health checks run many times a minute, then never import typer (gnt/cli/table.py).
FAST_PATHS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("ping",): ("gnt.cli.ping", "fast", "run"),
    ("traceroute",): ("gnt.cli.traceroute", "fast", "run"),
    ("conntrack", "list"): ("gnt.cli.conntrack", "fast_list", "run_list"),
    ("vxlan-csum", "scan"): ("gnt.cli.vxlan", "fast_scan", "run_scan"),
}


def _run_fast(argv: list[str], env: Environment) -> int | None:
    """Run a fast-path command, or None when typer has to parse this command line."""
    import importlib

    words = next((w for w in FAST_PATHS if tuple(argv[: len(w)]) == w), None)
    if words is None:
        return None
    module_name, parser, runner = FAST_PATHS[words]
    module = importlib.import_module(module_name)
    values = getattr(module, parser)(argv[len(words):])
    if values is None:
        return None
    global _current
    _current = env
    try:
        return int(getattr(module, runner)(values, env))
    finally:
        _current = None


def run(argv: list[str], env: Environment) -> int:
    """Parse `argv` and run the command; returns the exit code."""
    global _current, _verbose
    fast = _run_fast(argv, env)
    if fast is not None:
        return fast
    _verbose = "--verbose" in argv  # read by the eager --version callback (per run, not sticky)
    _current = env
    name = command_name(argv)
    version_only = name is None and ("--version" in argv or "-V" in argv)
    app = build_app(name, with_commands=not version_only)
    import click
    import typer
    import typer.main

    command = typer.main.get_command(app)
    try:
        # click writes help and completion scripts to sys.stdout: point it at the injected streams.
        with contextlib.redirect_stdout(env.stdout), contextlib.redirect_stderr(env.stderr):
            result = command.main(args=argv, prog_name="gnt", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort as exc:
        # click has written the blank line after ^C already; keep the interrupt itself (a SIGTERM
        # stays a Terminated, for its exit status).
        cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc.__context__
        interrupt = cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt()
        interrupt.line_written = True  # type: ignore[attr-defined]
        if isinstance(cause, EOFError):
            raise cause from None
        raise interrupt from None
    except click.ClickException as exc:  # click's UsageError and the rest: one line, exit 2
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `gnt`: the help, as click shows it
            env.stderr.write(exc.format_message().rstrip("\n") + "\n")
            return int(ExitCode.ERROR)
        raise UsageError(_one_line(exc.format_message())) from exc
    finally:
        _current = None
    if isinstance(result, int):
        return result
    return 0


MAX_SECONDS = 2**31 - 1  # 68 years: poll()/select() overflow on waits near 2**63 ns


def parse_seconds(text: str, what: str) -> float:
    """A non-negative, finite number of seconds given on the command line; else a UsageError naming `what`."""
    from gnt.cli.numbers import float_value, shown

    try:
        value = float_value(text, None, None)
    except ValueError:
        raise UsageError(f"{what}: {shown(text)} is not a number of seconds (e.g. 0.2)") from None
    if not 0 <= value <= MAX_SECONDS:
        raise UsageError(f"{what}: {shown(text)} (a non-negative number of seconds, at most {MAX_SECONDS})")
    return value


def check_duration(value: float, option: str = "--duration") -> None:
    """A --duration as the watch/capture commands take it: positive, and short enough to wait for."""
    if not value > 0:  # NaN too
        raise UsageError(f"invalid {option} {value}: must be positive")
    if value > MAX_SECONDS:  # inf too
        raise UsageError(f"invalid {option} {value}: at most {MAX_SECONDS} seconds")


def take_fleet_options(argv: list[str], env: Environment) -> list[str]:
    """Take `--prom FILE` and `--npd` out of the command line (anywhere in it) into `env`.

    They work the same way for every command that supports them (the commands whose result
    a fleet judges: gnt/output/prom.py PROM_COMMANDS), so they are read here once, not by
    each command's parser; `gnt --help` lists them as root options.
    """
    if not any(a == "--npd" or a == "--prom" or a.startswith("--prom=") for a in argv):
        return argv
    from gnt.output.prom import PROM_COMMANDS

    rest: list[str] = []
    words = iter(argv)
    for arg in words:
        if arg == "--":
            rest.append(arg)
            rest.extend(words)
            break
        if arg == "--npd":
            env.npd = True
        elif arg == "--prom" or arg.startswith("--prom="):
            path = arg.partition("=")[2] if "=" in arg else next(words, None)
            if not path:
                raise UsageError("--prom needs a FILE (e.g. /var/lib/node_exporter/textfile/gnt.prom)")
            env.prom_path = path
        else:
            rest.append(arg)
    name = command_name(rest)
    if name not in PROM_COMMANDS:
        which = "--npd" if env.npd else "--prom"
        raise UsageError(f"{which} is for {', '.join(sorted(PROM_COMMANDS))}, not {name or 'bare gnt'}")
    return rest


def _one_line(message: str) -> str:
    return " ".join(message.split())

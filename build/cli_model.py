"""A plain description of gnt's command line, read from the typer app, for the generators.

build/gen_completions.py and build/gen_man.py both start here, so the shell completions and
the man pages come from the same definitions `gnt --help` prints. Everything is read from
the click-level commands that `typer.main.get_command(gnt.cli.build_app())` returns, through
attributes that typer keeps across its releases (the ones that still depend on click and the
ones that carry their own copy of it).
"""

from __future__ import annotations

import enum
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from gnt.cli.complete import complete_interface

PROG = "gnt"  # the program name every page and script is generated for


@dataclass
class Param:
    """One option or positional argument."""

    name: str  # the Python parameter name
    opts: list[str]  # "-c", "--count" (options) or [] (arguments)
    secondary_opts: list[str]  # "--no-color" for "--color/--no-color"
    help: str
    metavar: str  # shown after an option that takes a value, or as the argument's name
    takes_value: bool  # False for flags
    required: bool
    multiple: bool  # the option may repeat / the argument takes several values
    default: str | None  # rendered default, None when not shown
    choices: list[str]  # fixed values, in declaration order
    completes: str  # "interface", "path", "choice" or "" (nothing to complete)
    optional_value: bool = False  # the value may be left out (`--dnat` or `--dnat ADDR`)

    @property
    def is_option(self) -> bool:
        return bool(self.opts)

    @property
    def all_opts(self) -> list[str]:
        """Every spelling of the option: "-c", "--count", and "--no-color" after "--color"."""
        return [*self.opts, *self.secondary_opts]


@dataclass
class Command:
    """A command (`gnt`, `gnt ping`) or a sub-command of a group (`gnt conntrack list`)."""

    path: list[str]  # ["gnt", "ping"]
    help: str
    short_help: str
    options: list[Param] = field(default_factory=list)
    arguments: list[Param] = field(default_factory=list)
    subcommands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def walk(self) -> list[Command]:
        """This command and every command under it, depth first, in registration order."""
        result = [self]
        for sub in self.subcommands:
            result.extend(sub.walk())
        return result


def load() -> Command:
    """The whole CLI, every command in gnt.cli.COMMANDS registered."""
    import typer.main

    from gnt.cli import build_app

    return _command([PROG], typer.main.get_command(build_app()))


def _command(path: list[str], click_command: Any) -> Command:
    help_text = _clean_help(getattr(click_command, "help", None) or "")
    short = getattr(click_command, "short_help", None) or _first_sentence(help_text)
    command = Command(path=path, help=help_text, short_help=_clean_help(short))
    declared = _declared(getattr(click_command, "callback", None))
    for click_param in click_command.params:
        if getattr(click_param, "hidden", False):
            continue
        param = _param(click_param, declared.get(click_param.name or ""))
        (command.options if param.is_option else command.arguments).append(param)
    subcommands = getattr(click_command, "commands", None) or {}
    for name, sub in subcommands.items():
        if getattr(sub, "hidden", False):
            continue
        command.subcommands.append(_command([*path, name], sub))
    return command


def _param(click_param: Any, declared: Any) -> Param:
    """The parameter as click sees it; `declared` is its typer.Option/Argument (or None)."""
    is_option = type(click_param).__name__.endswith("Option")
    opts = list(click_param.opts) if is_option else []
    is_flag = bool(getattr(click_param, "is_flag", False)) or bool(getattr(click_param, "count", False))
    choices = _choices(click_param)
    if getattr(declared, "autocompletion", None) is complete_interface:
        completes = "interface"
    elif choices:
        completes = "choice"
    elif _is_path(click_param):
        completes = "path"
    else:
        completes = ""
    name = click_param.name or ""
    metavar = getattr(click_param, "metavar", None) or name.upper().replace("_", "-")
    multiple = bool(getattr(click_param, "multiple", False)) or getattr(click_param, "nargs", 1) == -1
    # typer versions that keep click's Argument drop an argument's help: take the declared one
    help_text = getattr(click_param, "help", None) or getattr(declared, "help", None) or ""
    return Param(
        name=name,
        opts=_sorted_opts(opts),
        secondary_opts=list(getattr(click_param, "secondary_opts", []) or []),
        help=_clean_help(help_text),
        metavar=metavar,
        takes_value=is_option and not is_flag,
        required=bool(click_param.required),
        multiple=multiple,
        default=_default(click_param, is_flag),
        choices=choices,
        completes=completes,
        optional_value=metavar.startswith("["),  # `--dnat [ADDR[:PORT]]`: the value may be left out
    )


def _declared(callback: Any) -> dict[str, Any]:
    """The typer.Option/Argument of each parameter of the command function, by parameter name.

    From them come an argument's help (see `_param`) and `autocompletion=`: typer hands click
    only a closure around the completion function, the declaration names it.
    """
    if callback is None:
        return {}
    import typing

    from typer.models import ParameterInfo

    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return {}
    try:
        hints = typing.get_type_hints(inspect.unwrap(callback), include_extras=True)
    except Exception:  # unresolvable annotations: fall back to defaults only
        hints = {}
    result: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        candidates = [parameter.default, *getattr(hints.get(name), "__metadata__", ())]
        info = next((candidate for candidate in candidates if isinstance(candidate, ParameterInfo)), None)
        if info is not None:
            result[name] = info
    return result


def _sorted_opts(opts: list[str]) -> list[str]:
    """Short options first (`-c, --count`), as help pages list them."""
    return sorted(opts, key=lambda opt: (opt.startswith("--"), opts.index(opt)))


def _choices(click_param: Any) -> list[str]:
    for holder in (getattr(click_param, "type", None), getattr(click_param, "type_descriptor", None)):
        values = getattr(holder, "choices", None)
        if values:
            return [_plain(value) for value in values]
    return []


PATH_METAVARS = ("FILE", "PATH", "PCAP", "DIR")  # a str option with one of these metavars names a file


def _is_path(click_param: Any) -> bool:
    type_name = getattr(getattr(click_param, "type", None), "name", "")
    if type_name in ("path", "file", "filename"):
        return True
    metavar = (getattr(click_param, "metavar", None) or click_param.name or "").upper()
    if any(word in re.split(r"[^A-Z]+", metavar) for word in PATH_METAVARS):
        return True
    descriptor = getattr(click_param, "type_descriptor", None)
    return bool(getattr(descriptor, "is_path", False) or getattr(descriptor, "is_file", False))


def _default(click_param: Any, is_flag: bool) -> str | None:
    show = getattr(click_param, "show_default", False)
    if isinstance(show, str):
        return show
    value = click_param.default
    if not show or value is None or callable(value) or is_flag:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(item) for item in value) if value else None
    return _plain(value)


def _plain(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _clean_help(text: str) -> str:
    """The help as plain paragraphs: dedented, click's no-rewrap markers (\\b) dropped."""
    lines = [line for line in inspect.cleandoc(text).splitlines() if line.strip() != "\b"]
    return "\n".join(lines).strip()


def _first_sentence(text: str) -> str:
    first = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    end = first.find(". ")
    return first[: end + 1] if end >= 0 else first

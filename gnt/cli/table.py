"""Option tables: declare a command's options once, get a typer command and a typer-free parser.

typer and click are most of gnt's start-up time. Commands run many times a minute by health
checks (`gnt ping`, `gnt conntrack list`) declare their options in a table of `Opt`s; from it
`parameters()` makes the typer signature (help, completion, man pages) and `fast_parse()`
parses a well-formed command line with the standard library's getopt. Whatever fast_parse is
not sure of (--help, a value of the wrong type, an unknown option, an abbreviated long option,
the wrong number of operands) it leaves to typer, which reports it. Tests keep the two in
agreement (tests/unit/test_fast_parsers.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Opt:
    """One option: its flags, where its value goes, its type and its help."""

    flags: tuple[str, ...]  # ("-p", "--proto"): short and/or long spellings
    dest: str
    kind: type  # bool (a switch), int, float or str
    metavar: str | None
    help: str
    default: object = None
    interface: bool = False  # completes to the node's interface names
    low: int | float | None = None  # int/float options: the range the value must be in (gnt/cli/numbers.py)
    high: int | float | None = None
    flag_value: str | None = None  # a str option whose value may be left out: it then takes this value
    multiple: bool = False  # may be given more than once: the values are collected in a list
    bounds: tuple[int, int] | None = None  # an integer value's inclusive range (see `check_bounds`)


LONG_RANGE = (-(2**63), 2**63 - 1)  # what a C long holds: beyond it iputils' strtol fails with ERANGE


def check_bounds(options: Sequence[Opt], values: dict[str, Any]) -> None:
    """Check every bounded option's value, with iputils' wording; integers given as text become ints.

    One line, a UsageError (exit 2): `invalid argument: 'TEXT': out of range: LO <= value <= HI`,
    `... Numerical result out of range` beyond a C long, or `invalid argument: 'TEXT'` for a
    value that is not an integer (a fractional -w, say).
    """
    from gnt.cli.numbers import int_value
    from gnt.errors import UsageError

    for o in options:
        value = values.get(o.dest)
        if o.bounds is None or value is None:
            continue
        text = str(value)
        try:
            number = int_value(text.strip(), None, None) if isinstance(value, str) else int(value)
        except ValueError:  # not ASCII digits (the one number parser's rule), or a fraction
            raise UsageError(f"invalid argument: '{text}'") from None
        if not LONG_RANGE[0] <= number <= LONG_RANGE[1]:
            raise UsageError(f"invalid argument: '{text}': Numerical result out of range")
        low, high = o.bounds
        if not low <= number <= high:
            raise UsageError(f"invalid argument: '{text}': out of range: {low} <= value <= {high}")
        values[o.dest] = number


def fast_parse(options: Sequence[Opt], argv: Sequence[str], operands: int | tuple[int, int]) -> dict[str, Any] | None:
    """Option values (plus "operands") of a well-formed command line, or None to let typer decide.
    `operands`: how many the command takes, or the (fewest, most) when some are optional."""
    import getopt

    by_flag = {flag: o for o in options for flag in o.flags}
    longs_exact = {flag for flag in by_flag if flag.startswith("--")}
    for arg in argv:
        if arg == "--":
            break
        if arg.startswith("--") and arg.split("=", 1)[0] not in longs_exact:
            return None  # getopt would take an abbreviation of a long option; click does not
        if arg in by_flag and by_flag[arg].flag_value is not None and not arg.startswith("--"):
            return None  # a short option with an optional value: click's rules, not getopt's
    argv = _optional_values(by_flag, argv)
    shorts = "".join(f[1] + ("" if by_flag[f].kind is bool else ":") for f in by_flag if not f.startswith("--"))
    longs = [f[2:] + ("" if by_flag[f].kind is bool else "=") for f in longs_exact]
    try:
        pairs, rest = getopt.gnu_getopt(list(argv), shorts, longs)
    except getopt.GetoptError:
        return None
    fewest, most = (operands, operands) if isinstance(operands, int) else operands
    if not fewest <= len(rest) <= most:
        return None
    values: dict[str, Any] = {o.dest: () if o.multiple else o.default for o in options}
    for flag, text in pairs:
        option = by_flag[flag]
        if option.kind is bool:
            values[option.dest] = True
            continue
        try:
            value = number(option, text) if option.kind in (int, float) else option.kind(text)
        except ValueError:
            return None  # typer reports it, through the same parser
        if option.multiple:
            values[option.dest] = (*values[option.dest], value)
        else:
            values[option.dest] = value
    values["operands"] = rest
    return values


def number(option: Opt, text: str) -> int | float:
    """An int or float option's value, by the one number parser; ValueError when it is not one."""
    from gnt.cli.numbers import float_value, int_value

    if option.kind is int:
        return int_value(text, _int_or_none(option.low), _int_or_none(option.high))
    return float_value(text, option.low, option.high)


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def click_type(option: Opt) -> Any:
    """The click type of an int or float option: the number parser with the option's range."""
    from gnt.cli.numbers import click_float, click_int

    if option.kind is int:
        return click_int(_int_or_none(option.low), _int_or_none(option.high))
    return click_float(option.low, option.high)


def _optional_values(by_flag: dict[str, Opt], argv: Sequence[str]) -> list[str]:
    """`--opt VALUE` / `--opt` of optional-value options rewritten as `--opt=VALUE` / `--opt=FLAG_VALUE`
    (as click reads them: the next word is the value unless it starts with "-")."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        option = by_flag.get(arg)
        if option is not None and option.flag_value is not None:
            if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                out.append(f"{arg}={argv[i + 1]}")
                i += 2
                continue
            out.append(f"{arg}={option.flag_value}")
        else:
            out.append(arg)
        i += 1
    return out


def parameters(options: Sequence[Opt]) -> list[inspect.Parameter]:
    """typer parameters for the table, in order (keyword-only, typer.Option defaults)."""
    import typer

    from gnt.cli.complete import complete_interface

    out = []
    for o in options:
        extra: dict[str, Any] = {"autocompletion": complete_interface} if o.interface else {}
        if o.kind in (int, float):
            extra["click_type"] = click_type(o)
        annotation: Any = o.kind if o.kind is bool or o.default is not None else o.kind | None
        if o.multiple:
            annotation = list[o.kind] | None  # type: ignore[name-defined]
        out.append(inspect.Parameter(
            o.dest, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
            default=typer.Option(o.default, *o.flags, metavar=o.metavar, help=o.help, **extra),
        ))
    return out


def command_class(options: Sequence[Opt]) -> Any:
    """The typer command class for a table: it reads optional-value options as fast_parse does
    (typer does not pass click's flag_value on, so `--snat` alone would swallow the next word)."""
    from typer.core import TyperCommand

    by_flag = {flag: o for o in options for flag in o.flags}

    class TableCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            return super().parse_args(ctx, _optional_values(by_flag, args))  # type: ignore[no-any-return]

    return TableCommand


def with_signature(function: Any, params: list[inspect.Parameter]) -> Any:
    """Give a `**values` function the signature typer reads its options from."""
    function.__signature__ = inspect.Signature(params, return_annotation=int)
    function.__annotations__ = {p.name: p.annotation for p in params} | {"return": int}
    return function

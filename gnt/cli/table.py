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
    bounds: tuple[int, int] | None = None  # an integer value's inclusive range (see `check_bounds`)


LONG_RANGE = (-(2**63), 2**63 - 1)  # what a C long holds: beyond it iputils' strtol fails with ERANGE


def check_bounds(options: Sequence[Opt], values: dict[str, Any]) -> None:
    """Check every bounded option's value, with iputils' wording; integers given as text become ints.

    One line, a UsageError (exit 2): `invalid argument: 'TEXT': out of range: LO <= value <= HI`,
    `... Numerical result out of range` beyond a C long, or `invalid argument: 'TEXT'` for a
    value that is not an integer (a fractional -w, say).
    """
    from gnt.errors import UsageError

    for o in options:
        value = values.get(o.dest)
        if o.bounds is None or value is None:
            continue
        text = str(value)
        try:
            number = int(text.strip()) if isinstance(value, str) else int(value)
        except ValueError:
            raise UsageError(f"invalid argument: '{text}'") from None
        if not LONG_RANGE[0] <= number <= LONG_RANGE[1]:
            raise UsageError(f"invalid argument: '{text}': Numerical result out of range")
        low, high = o.bounds
        if not low <= number <= high:
            raise UsageError(f"invalid argument: '{text}': out of range: {low} <= value <= {high}")
        values[o.dest] = number


def fast_parse(options: Sequence[Opt], argv: Sequence[str], operands: int) -> dict[str, Any] | None:
    """Option values (plus "operands") of a well-formed command line, or None to let typer decide."""
    import getopt

    by_flag = {flag: o for o in options for flag in o.flags}
    longs_exact = {flag for flag in by_flag if flag.startswith("--")}
    for arg in argv:
        if arg == "--":
            break
        if arg.startswith("--") and arg.split("=", 1)[0] not in longs_exact:
            return None  # getopt would take an abbreviation of a long option; click does not
    shorts = "".join(f[1] + ("" if by_flag[f].kind is bool else ":") for f in by_flag if not f.startswith("--"))
    longs = [f[2:] + ("" if by_flag[f].kind is bool else "=") for f in longs_exact]
    try:
        pairs, rest = getopt.gnu_getopt(list(argv), shorts, longs)
    except getopt.GetoptError:
        return None
    if len(rest) != operands:
        return None
    values: dict[str, Any] = {o.dest: o.default for o in options}
    for flag, text in pairs:
        option = by_flag[flag]
        if option.kind is bool:
            values[option.dest] = True
            continue
        try:
            values[option.dest] = option.kind(text)
        except ValueError:
            return None
    values["operands"] = rest
    return values


def parameters(options: Sequence[Opt]) -> list[inspect.Parameter]:
    """typer parameters for the table, in order (keyword-only, typer.Option defaults)."""
    import typer

    from gnt.cli.complete import complete_interface

    out = []
    for o in options:
        extra: dict[str, Any] = {"autocompletion": complete_interface} if o.interface else {}
        annotation: Any = o.kind if o.kind is bool or o.default is not None else o.kind | None
        out.append(inspect.Parameter(
            o.dest, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
            default=typer.Option(o.default, *o.flags, metavar=o.metavar, help=o.help, **extra),
        ))
    return out


def with_signature(function: Any, params: list[inspect.Parameter]) -> Any:
    """Give a `**values` function the signature typer reads its options from."""
    function.__signature__ = inspect.Signature(params, return_annotation=int)
    function.__annotations__ = {p.name: p.annotation for p in params} | {"return": int}
    return function

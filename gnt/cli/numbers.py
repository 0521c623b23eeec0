"""The one parser for numbers given on the command line.

Python's int() and float() read more than a command line should mean: other scripts' digits
(Arabic-Indic three, full-width five), underscores ("1_000"), surrounding spaces, "nan" and "inf", and digit strings
long enough to be slow. Every numeric option goes through here instead: ASCII digits only
(0x hex where the peer takes it), a range checked against the peer's limits, and an error
line that quotes at most a few dozen characters of what was typed.

`parse_int`/`parse_float` raise UsageError (for values parsed in a command's body or the
fast paths of gnt/cli/table.py); `click_int`/`click_float` are the same checks as click
parameter types, for `typer.Option(click_type=...)`. Only those two import click.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gnt.errors import UsageError

if TYPE_CHECKING:
    import click

MAX_DIGITS = 40  # longer than any number an option takes; keeps int() far from its digit limit
SHOWN_CHARS = 40  # characters of a bad value quoted back in the error line
U32_MAX = 2**32 - 1  # fwmarks, and the unsigned long of iputils' -m
I32_MAX = 2**31 - 1  # the C int most peers read counts and sizes into
I64_MAX = 2**63 - 1  # the C long of iputils' -c
PORT_MAX = 65535

_INT = re.compile(r"[+-]?[0-9]+\Z")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")


def shown(text: str) -> str:
    """`text` quoted for an error line, cut after SHOWN_CHARS characters."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text)} characters)"


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}" if isinstance(low, float) else f"from {low} to {high}"
    if low is not None:
        return f"at least {low}"
    return f"at most {high}"


def int_value(text: str, low: int | None, high: int | None, *, hex_ok: bool = False) -> int:
    """The whole number in `text`, within [low, high]; ValueError with the reason otherwise."""
    hexadecimal = hex_ok and _HEX.match(text) is not None
    if len(text) > MAX_DIGITS or not (hexadecimal or _INT.match(text)):
        kind = "a whole number (digits 0-9" + (", or 0x hex)" if hex_ok else ")")
        raise ValueError(f"{shown(text)} is not {kind}")
    value = int(text, 16 if hexadecimal else 10)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{shown(text)} is out of range: {_range(low, high)}")
    return value


def float_value(text: str, low: float | None, high: float | None) -> float:
    """The decimal number in `text` (1, 0.2, 1e3), within [low, high]; ValueError otherwise."""
    if len(text) > MAX_DIGITS or not _FLOAT.match(text):
        raise ValueError(f"{shown(text)} is not a number (digits 0-9, e.g. 0.2)")
    value = float(text)
    if (low is not None and value < low) or (high is not None and value > high):  # inf too
        raise ValueError(f"{shown(text)} is out of range: {_range(low, high)}")
    return value


def parse_int(text: str, option: str, low: int | None, high: int | None, *, hex_ok: bool = False) -> int:
    """`int_value`, a UsageError naming `option` when it is not a number in range."""
    try:
        return int_value(text, low, high, hex_ok=hex_ok)
    except ValueError as exc:
        raise UsageError(f"invalid {option} value: {exc}") from None


def parse_float(text: str, option: str, low: float | None, high: float | None) -> float:
    try:
        return float_value(text, low, high)
    except ValueError as exc:
        raise UsageError(f"invalid {option} value: {exc}") from None


_types: dict[tuple[Any, ...], Any] = {}  # click.ParamType (generic in click 8.5, not before)


def click_int(low: int | None, high: int | None, *, hex_ok: bool = False) -> Any:
    """A click parameter type: `int_value` with these limits (for typer.Option(click_type=...))."""
    key = ("int", low, high, hex_ok)
    if key not in _types:
        import click

        base: Any = click.ParamType

        class Integer(base):  # type: ignore[misc]
            name = "integer"

            def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
                if isinstance(value, int):  # a default
                    return value
                try:
                    return int_value(str(value), low, high, hex_ok=hex_ok)
                except ValueError as exc:
                    raise click.BadParameter(str(exc), ctx, param) from None

        _types[key] = Integer()
    return _types[key]


def click_float(low: float | None, high: float | None) -> Any:
    """A click parameter type: `float_value` with these limits."""
    key = ("float", low, high)
    if key not in _types:
        import click

        base: Any = click.ParamType

        class Decimal(base):  # type: ignore[misc]
            name = "float"

            def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
                if isinstance(value, float):
                    return value
                try:
                    return float_value(str(value), low, high)
                except ValueError as exc:
                    raise click.BadParameter(str(exc), ctx, param) from None

        _types[key] = Decimal()
    return _types[key]

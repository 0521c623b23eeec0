"""The guard over the whole command line: every command, subcommand and option, found in the typer
app itself (so an option added tomorrow is covered), fed generated bad values in-process.

Each bad command line must end as every usage error does: exit 2, nothing on stdout, one line on
stderr (plus an optional `hint:` line) that quotes at most a short piece of what was typed, no
traceback and no "internal error". Numeric options must go through the one number parser
(gnt/cli/numbers.py); the getopt fast paths (gnt/cli/table.py) must refuse what typer refuses.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator

import click
import pytest
import typer.main
from helpers.cli import run_gnt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnt.cli import COMMANDS, FAST_PATHS, build_app
from gnt.cli.numbers import MAX_DIGITS
from gnt.cli.table import Opt

MAX_ERROR_LINE = 300  # characters: a 10,000-character argument must not come back whole
LONG = 10_000


@functools.cache
def surface() -> tuple[tuple[tuple[str, ...], click.Command], ...]:
    """(command words, click command) for every runnable command and subcommand of `gnt`."""
    root = typer.main.get_command(build_app())
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(command: click.Command, words: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*words, name))
        else:
            found.append((words, command))

    walk(root, ())
    return tuple(found)


def value_options() -> Iterator[tuple[tuple[str, ...], click.Option]]:
    for words, command in surface():
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag and param.opts[0] != "--help":
                yield words, param


def is_number_parser(kind: click.ParamType) -> bool:
    return type(kind).__module__ == "gnt.cli.numbers"


NUMERIC = [(words, option) for words, option in value_options() if is_number_parser(option.type)]
NUMERIC_IDS = [" ".join((*words, option.opts[0])) for words, option in NUMERIC]


def limits(kind: click.ParamType) -> tuple[float | None, float | None]:
    """The (low, high) the parser type closes over (as its convert() sees them)."""
    cells = {name: cell.cell_contents for name, cell in zip(
        type(kind).convert.__code__.co_freevars, type(kind).convert.__closure__ or (), strict=True)}
    return cells.get("low"), cells.get("high")


def bad_numbers(kind: click.ParamType) -> st.SearchStrategy[str]:
    """Text that is not a number this option may take."""
    low, high = limits(kind)
    other_digits = st.text(st.characters(categories=["Nd"], exclude_characters="0123456789"), min_size=1,
                           max_size=4)
    mixed = st.builds(lambda a, b, c: a + b + c, st.sampled_from(["", "1", "-2"]), other_digits,
                      st.sampled_from(["", "0", "5"]))
    junk = st.sampled_from(["", " ", "1_000", " 5", "5 ", "+", "-", "1e", "nan", "inf", "-inf", "NaN",
                            "0x", "0b101", "1,5", "1.2.3", "5s", "\x00", "1\n", "²", "⅕", "Ⅻ",
                            "9" * (MAX_DIGITS + 1), "9" * LONG, "x" * LONG])
    words = st.text(min_size=1, max_size=20).filter(lambda s: not _looks_numeric(s))
    strategies = [other_digits, mixed, junk, words]
    if high is not None:
        strategies.append(st.integers(1, 10**30).map(lambda k: str(int(high) + k)))
    if low is not None:
        strategies.append(st.integers(1, 10**30).map(lambda k: str(int(low) - k)))
    if type(kind).__name__ == "Integer":
        strategies.append(st.sampled_from(["1.5", "2e3", "0.0"]))
    return st.one_of(strategies)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_usage_error(argv: list[str], *, mentions: str | None = None) -> str:
    code, out, err = run_gnt(*argv)
    shown = [a if len(a) < 80 else f"{a[:20]}...({len(a)})" for a in argv]
    assert code == 2, (shown, code, out, err)
    assert out == "", (shown, out)
    assert "Traceback" not in err and "internal error" not in err, (shown, err)
    lines = err.splitlines()
    assert err.endswith("\n") and 1 <= len(lines) <= 2, (shown, err)
    if len(lines) == 2:
        assert ": hint: " in lines[1], (shown, err)
    assert all(len(line) <= MAX_ERROR_LINE for line in lines), (shown, [len(line) for line in lines])
    if mentions is not None:
        assert mentions in lines[0], (shown, err)
    return lines[0]


def test_the_surface_is_every_command() -> None:
    assert {words[0] for words, _ in surface()} == set(COMMANDS)
    assert len(NUMERIC) >= 26  # ping 4, traceroute 6, conntrack watch 3, iptrace 4, vxlan 2, ndisc 2, rdisc 3, neigh 2


def test_every_numeric_option_goes_through_the_number_parser() -> None:
    """An int/float option declared with click's own types would accept "٣" and "1_000" again."""
    numeric_kinds = (click.types.IntParamType, click.types.FloatParamType)
    stray = [" ".join((*words, option.opts[0])) for words, option in value_options()
             if isinstance(option.type, numeric_kinds)]
    assert stray == []
    for words, command in surface():  # arguments too (traceroute's PACKETLEN is parsed in the body)
        for param in command.params:
            if isinstance(param, click.Argument):
                assert not isinstance(param.type, numeric_kinds), (words, param.name)


@pytest.mark.parametrize(("words", "option"), NUMERIC, ids=NUMERIC_IDS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bad_numbers_are_one_line_usage_errors(words: tuple[str, ...], option: click.Option,
                                               data: st.DataObject) -> None:
    value = data.draw(bad_numbers(option.type), label="value")
    flag = option.opts[0]
    # The bad option comes first: click converts what is on the command line before it checks the
    # operands, so no command runs, and the error is about this option.
    assert_usage_error([*words, flag, value], mentions=flag)
    if flag.startswith("--"):
        assert_usage_error([*words, f"{flag}={value}"], mentions=flag)


@pytest.mark.parametrize(("words", "option"), NUMERIC, ids=NUMERIC_IDS)
def test_the_edges_of_each_range_are_errors(words: tuple[str, ...], option: click.Option) -> None:
    low, high = limits(option.type)
    for value in ([str(int(high) + 1), str(2**64)] if high is not None else []) + \
                 ([str(int(low) - 1)] if low is not None else []):
        assert_usage_error([*words, option.opts[0], value], mentions=option.opts[0])


@pytest.mark.parametrize("words", sorted({w for w, _ in surface()}), ids=" ".join)
def test_unknown_long_options_are_not_echoed_whole(words: tuple[str, ...]) -> None:
    line = assert_usage_error([*words, "--" + "x" * LONG])
    assert "characters" in line or "x" * 100 not in line


def _fast_numeric() -> list[tuple[tuple[str, ...], Opt, list[str]]]:
    """(fast path, numeric option of its table, operands a well-formed line needs), found by asking
    each fast parser which numeric options of its module's option tables take a plain number."""
    found = []
    for path, (module_name, parser_name, _runner) in FAST_PATHS.items():
        module = importlib.import_module(module_name)
        parser = getattr(module, parser_name)
        operands = next(ops for ops in ([], ["198.18.0.1"], ["198.18.0.1", "60"]) if parser(ops) is not None)
        options = {o for table in vars(module).values() if isinstance(table, tuple) and table
                   and all(isinstance(o, Opt) for o in table) for o in table if o.kind in (int, float)}
        found += [(path, o, operands) for o in sorted(options, key=lambda o: o.flags)
                  if parser([o.flags[0], "5", *operands]) is not None]
    return found


FAST_NUMERIC = _fast_numeric()


def test_every_fast_path_is_guarded() -> None:
    """Each fast path with numeric options has them found above (a new fast path joins by itself)."""
    assert {path for path, _o, _ops in FAST_NUMERIC} >= {("ping",)}
    for path, (module_name, parser_name, _runner) in FAST_PATHS.items():
        parser = getattr(importlib.import_module(module_name), parser_name)
        assert parser(["--no-such-option-at-all"]) is None, path  # unknown options go to typer


@pytest.mark.parametrize(("path", "option", "operands"), FAST_NUMERIC,
                         ids=[" ".join((*p, o.flags[0])) for p, o, _ops in FAST_NUMERIC])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_fast_paths_refuse_what_typer_refuses(path: tuple[str, ...], option: Opt, operands: list[str],
                                             data: st.DataObject) -> None:
    """gnt ping (and every other fast path) parses without typer; a bad number must not slip through
    there (None: the command line goes to typer, which reports it)."""
    module_name, parser, _runner = FAST_PATHS[path]
    past_the_end = [str(int(option.high) + 1)] if option.high is not None else []
    value = data.draw(st.one_of(
        st.text(st.characters(categories=["Nd"], exclude_characters="0123456789"), min_size=1, max_size=3),
        st.sampled_from(["1_0", " 1", "nan", "inf", "9" * LONG, *past_the_end])))
    assert getattr(importlib.import_module(module_name), parser)([option.flags[0], value, *operands]) is None

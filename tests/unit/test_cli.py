"""In-process CLI tests with an injected environment: exit codes and one-line errors."""

from __future__ import annotations

import io

import pytest
from helpers.cli import run_gnt as run

from gnt.__main__ import main
from gnt.output.env import Environment


def test_version() -> None:
    from gnt import __version__

    code, out, _ = run("--version")
    assert code == 0
    assert out.strip() == f"gnt {__version__}"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["ping"], "missing host"),
        (["ping", "-c", "-1", "127.0.0.1"], "'-1': out of range: 1 <= value"),  # iputils' words
        (["ping", "-c", "x", "127.0.0.1"], "-c"),
        (["ping", "-s", "65508", "127.0.0.1"], "size"),
        (["ping", "-t", "256", "127.0.0.1"], "'256': out of range: 0 <= value <= 255"),
        (["ping", "-w", "0.5", "127.0.0.1"], "invalid argument: '0.5'"),
        (["ping", "-m", "4294967296", "127.0.0.1"], "0 <= value <= 4294967295"),
        (["ping", "-i", "abc", "127.0.0.1"], "interval"),
        (["ping", "-W", "-1", "127.0.0.1"], "linger"),
        (["ping", "-I", "nosuchif0", "127.0.0.1"], "unknown interface"),
        (["ping", "-p", "zz", "127.0.0.1"], "hex"),
        (["ping", "-4", "::1"], "IPv4"),
        (["ping", "-4", "-6", "::1"], "-4"),
        (["ping", "--bogus", "127.0.0.1"], "bogus"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv: list[str], fragment: str) -> None:
    code, _out, err = run(*argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_debug_shows_traceback_for_errors() -> None:
    code, _out, err = run("--debug", "ping", "-I", "nosuchif0", "127.0.0.1")
    assert code == 2
    assert "Traceback" in err


def test_help_lists_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert "ping" in out


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_stdout_is_not_an_error() -> None:
    """`gnt ... | head`: the reader leaving is a normal end (exit 0), not click's exit 1."""
    env = Environment(stdout=_ClosedPipe(), stderr=io.StringIO())
    code = main(["ip6", "::1"], env)
    assert code == 0
    assert isinstance(env.stderr, io.StringIO) and env.stderr.getvalue() == ""


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_output_that_cannot_be_written_is_one_line_exit_2() -> None:
    """`gnt ... > /dev/full`: one line naming the failure, not an internal error."""
    env = Environment(stdout=_FullDisk(), stderr=io.StringIO())
    code = main(["ip6", "::1"], env)
    assert code == 2
    assert isinstance(env.stderr, io.StringIO)
    assert env.stderr.getvalue() == "gnt ip6: cannot write the output: No space left on device\n"

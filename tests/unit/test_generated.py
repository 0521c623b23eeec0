"""completions/ and man/ are generated from the CLI: they must be current, and they must work.

Regenerates both into a temporary directory with build/gen_completions.py and
build/gen_man.py and fails when a committed file differs (fix: run both scripts and commit).
Then checks what a person sees: `gnt tr<TAB>` completes to traceroute in bash, zsh and fish,
options complete, interface operands complete to this machine's interfaces, and
`man -l man/gnt-*.1` renders with no groff warning.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gnt.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "build"))

import cli_model  # noqa: E402
import gen_completions  # noqa: E402
import gen_man  # noqa: E402

REGENERATE = "run: python build/gen_completions.py && python build/gen_man.py"
BASH_COMPLETE = """
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_gnt
printf '%s\\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def model() -> cli_model.Command:
    return cli_model.load()


def test_completions_are_current(tmp_path: Path) -> None:
    written = gen_completions.generate(tmp_path)
    assert {p.name for p in written} == {"gnt.bash", "gnt.zsh", "gnt.fish"}
    for path in written:
        committed = ROOT / "completions" / path.name
        assert committed.exists(), f"completions/{path.name} is missing; {REGENERATE}"
        assert committed.read_text() == path.read_text(), f"completions/{path.name} is out of date; {REGENERATE}"


def test_man_pages_are_current(tmp_path: Path) -> None:
    written = {p.name: p for p in gen_man.generate(tmp_path)}
    assert set(written) == {"gnt.1", *(f"gnt-{name}.1" for name in COMMANDS)}
    committed = {p.name for p in (ROOT / "man").glob("*.1")}
    assert committed == set(written), f"man/ has pages for other commands; {REGENERATE}"
    for name, path in written.items():
        assert (ROOT / "man" / name).read_text() == path.read_text(), f"man/{name} is out of date; {REGENERATE}"


@pytest.mark.parametrize("page", ["gnt", *(f"gnt-{name}" for name in COMMANDS)])
def test_man_page_renders_cleanly(page: str) -> None:
    path = ROOT / "man" / f"{page}.1"
    groff = subprocess.run(["groff", "-ww", "-z", "-man", "-Tutf8", str(path)], capture_output=True, text=True,
                           check=False, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert groff.returncode == 0 and groff.stderr == "", groff.stderr
    man = subprocess.run(["man", "-l", str(path)], capture_output=True, text=True, check=False,
                         env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"})
    assert man.returncode == 0 and man.stderr == "", man.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert f"\n{section}\n" in man.stdout, f"{page}(1) has no {section} section"
    assert "\n       130    Interrupted" in man.stdout


def test_a_stale_example_stops_the_man_pages(model: cli_model.Command) -> None:
    gen_man.check_example(model, "gnt ping -c 3 127.0.0.1")
    with pytest.raises(gen_man.StaleExample, match="no option --no-such-option"):
        gen_man.check_example(model, "gnt ping --no-such-option 127.0.0.1")
    with pytest.raises(gen_man.StaleExample, match="no command"):
        gen_man.check_example(model, "gnt no-such-command")


def interface_param(model: cli_model.Command) -> tuple[cli_model.Command, cli_model.Param]:
    for command in model.walk():
        for param in command.options:
            if param.completes == "interface":
                return command, param
    raise AssertionError("no option uses gnt.cli.complete.complete_interface")


def words_before_interface_operand(model: cli_model.Command) -> list[str]:
    """A command line up to an interface-name operand, which is the empty last word.

    It goes through an option with its value, then plausible words for the operands before
    (addresses for ADDRESS, else names), so the scripts must skip the value and count operands.
    """
    for command in model.walk():
        for index, arg in enumerate(command.arguments):
            if arg.completes == "interface":
                valued = [opt for p in command.options if p.takes_value for opt in p.opts[:1]][:1]
                before = ["2001:db8::1" if "ADDR" in a.metavar else "x" for a in command.arguments[:index]]
                return [*command.path, *([*valued, "1"] if valued else []), *before, ""]
    raise AssertionError("no argument uses gnt.cli.complete.complete_interface")


def bash_complete(*words: str) -> list[str]:
    result = subprocess.run(["bash", "-c", BASH_COMPLETE, "bash", str(ROOT / "completions" / "gnt.bash"), *words],
                            capture_output=True, text=True, check=True)
    assert result.stderr == ""
    return result.stdout.split()


def test_bash_completes_commands_options_and_interfaces(model: cli_model.Command) -> None:
    assert bash_complete("gnt", "tr") == ["traceroute"]
    assert "-c" in bash_complete("gnt", "ping", "-")
    assert "--version" in bash_complete("gnt", "--v")
    command, param = interface_param(model)
    # the value after an interface option: this machine's interfaces (loopback is always one)
    values = bash_complete(*command.path, param.opts[0], "")
    assert "lo" in values
    assert sorted(values) == sorted(os.listdir("/sys/class/net"))
    assert bash_complete(*command.path, param.opts[0], "l") == [n for n in sorted(values) if n.startswith("l")]
    # an interface operand after other operands and an option with its value
    assert "lo" in bash_complete(*words_before_interface_operand(model))


def fish_complete(line: str) -> list[str]:
    script = f"source {ROOT / 'completions' / 'gnt.fish'}; complete -C {line!r}"
    result = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True, check=True)
    assert result.stderr == ""
    return [row.split("\t")[0] for row in result.stdout.splitlines()]


def test_fish_completes_commands_options_and_interfaces(model: cli_model.Command) -> None:
    assert shutil.which("fish"), "fish is in .ci/run's DEBS"
    assert fish_complete("gnt tr") == ["traceroute"]
    assert "-c" in fish_complete("gnt ping -")
    command, param = interface_param(model)
    assert "lo" in fish_complete(" ".join([*command.path, param.opts[0], ""]))
    assert "lo" in fish_complete(" ".join(words_before_interface_operand(model)))


def zsh_complete(line: str, expect: str, timeout: float = 10.0) -> str:
    """Type `line` and TAB into an interactive zsh (on a pty) with completions/gnt.zsh loaded.

    Returns what the terminal showed after the TAB, as soon as `expect` appears in it (or at
    the timeout): the completed line, or the list of candidates.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: a bare interactive zsh
        os.execvpe("zsh", ["zsh", "-f", "-i"], {"TERM": "dumb", "PATH": os.environ["PATH"], "HOME": "/tmp"})
    output = b""

    def read_until(marker: bytes, since: int, seconds: float) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output[since:] and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    return

    try:
        script = ROOT / "completions" / "gnt.zsh"
        os.write(fd, f"PS1='> '; autoload -U compinit; compinit -u -D; source {script}; print GNT-$((6*7))\n".encode())
        read_until(b"GNT-42", 0, timeout)  # printed only once compinit and the script are loaded
        start = len(output)
        os.write(fd, line.encode() + b"\t")
        read_until(expect.encode(), start, timeout)
        read_until(b"\0", start, 0.3)  # and whatever follows it at once (the rest of a list)
        return output[start:].decode(errors="replace")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_zsh_completes_commands_options_and_interfaces(model: cli_model.Command) -> None:
    assert shutil.which("zsh"), "zsh is in .ci/run's DEBS"
    assert "gnt traceroute " in zsh_complete("gnt tr", "gnt traceroute ")
    assert "Stop after COUNT replies" in zsh_complete("gnt ping -", "Stop after COUNT replies")
    command, param = interface_param(model)
    shown = zsh_complete(" ".join([*command.path, param.opts[0], ""]), "lo")
    assert set(shown.split()) >= set(os.listdir("/sys/class/net"))


def test_zsh_script_parses_and_defines_every_command() -> None:
    assert shutil.which("zsh"), "zsh is in .ci/run's DEBS"
    path = ROOT / "completions" / "gnt.zsh"
    check = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    functions = " ".join(f"_gnt_{name.replace('-', '_')}" for name in COMMANDS)
    probe = f"autoload -U compinit; compinit -u -D; source {path}; for f in _gnt {functions}; do " \
            "(( $+functions[$f] )) || { echo missing $f; exit 1; }; done"
    result = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_typer_dynamic_completion_still_works() -> None:
    # what `gnt --install-completion` installs calls gnt back with these variables
    env = {**os.environ, "_GNT_COMPLETE": "complete_bash", "COMP_WORDS": "gnt tr", "COMP_CWORD": "1"}
    result = subprocess.run([sys.executable, "-m", "gnt"], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["traceroute"]


def test_install_completion_still_works(tmp_path: Path) -> None:
    # typer's installer writes into $HOME: point it at a temporary one
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "gnt", "--install-completion", "bash"], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "gnt.sh"
    assert "_GNT_COMPLETE" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()

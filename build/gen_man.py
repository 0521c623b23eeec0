#!/usr/bin/env python3
"""Generate man/gnt.1 and man/gnt-<command>.1 from gnt's typer app.

    python build/gen_man.py [OUTDIR]      (default: man/ of this checkout)

NAME, SYNOPSIS, DESCRIPTION, OPTIONS, ARGUMENTS and COMMANDS come from the same definitions
`gnt CMD --help` prints; EXIT STATUS, EXAMPLES and SEE ALSO from build/man_extras.py. Every example is parsed with the
command's real options first: a stale example stops the generation. The output is plain
man(7) macros, deterministic (no dates), checked with `groff -ww -z` by the tests.
tests/unit/test_generated.py regenerates the pages and fails when the committed ones differ.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import man_extras  # noqa: E402
from cli_model import PROG, Command, Param, load  # noqa: E402

MANUAL = "gnt manual"  # the centre footer of every page


class StaleExample(Exception):
    """An example that no longer parses with the command's options."""


def escape(text: str) -> str:
    """Text for a roff input line: backslashes and dashes escaped, no leading control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def _paragraphs(text: str) -> list[str]:
    """Help text as roff paragraphs between .PP; lines inside a paragraph joined (the pager refills them)."""
    result: list[str] = []
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines:
            result += [".PP"] if result else []
            result.append(escape(" ".join(lines)))
    return result


def _option_heading(param: Param) -> str:
    names = [f"\\fB{escape(opt)}\\fR" for opt in param.all_opts]
    heading = ", ".join(names)
    if param.takes_value:
        heading += f" \\fI{escape(param.metavar)}\\fR"
    return heading


def _option_body(param: Param) -> list[str]:
    text = param.help or ""
    extra = []
    if param.choices:
        extra.append("One of: " + ", ".join(param.choices) + ".")
    if param.default is not None:
        extra.append(f"Default: {param.default}.")
    if param.multiple:
        extra.append("May be given more than once.")
    if param.required:
        extra.append("Required.")
    body = " ".join(part for part in [text.replace("\n", " "), *extra] if part)
    return [escape(body)] if body else []


def _synopsis(command: Command) -> list[str]:
    parts = [f".B {escape(command.name)}"]
    words = []
    if command.options:
        words.append("[\\fIOPTIONS\\fR]")
    if command.subcommands:
        words.append("\\fICOMMAND\\fR [\\fIARGS\\fR]...")
    for arg in command.arguments:
        word = f"\\fI{escape(arg.metavar)}\\fR" + ("..." if arg.multiple else "")
        words.append(word if arg.required else f"[{word}]")
    if words:
        parts.append(" ".join(words))
    return parts


def _examples(command: Command) -> list[tuple[str, str]]:
    key = command.path[-1] if len(command.path) > 1 else PROG
    examples = man_extras.EXAMPLES.get(key)
    if examples:
        return examples
    return [(" ".join([*command.path, "--help"]), "The options of this command, as this page lists them.")]


def _exit_status(command: Command) -> dict[int, str]:
    status = dict(man_extras.EXIT_STATUS)
    if len(command.path) > 1 and command.path[1] in man_extras.NEGATIVE:
        status[1] = "Negative result: " + _lower_first(man_extras.NEGATIVE[command.path[1]])
    return status


def check_example(root: Command, line: str) -> None:
    """Check an example against the real options; raise StaleExample when it uses a missing one.

    Options must exist on the command they follow, options that take a value get one (and a
    value among the choices when there are choices), sub-commands must exist, and there may
    not be more operands than the command has arguments.
    """
    words = shlex.split(line.split("|")[0])
    if not words or words[0] != PROG:
        raise StaleExample(f"example does not start with {PROG}: {line!r}")
    command, operands, index = root, 0, 1
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("-") and word != "-":
            name, has_value, _value = word.partition("=")
            if name in ("-h", "--help"):
                continue
            param = next((p for p in command.options if name in p.all_opts), None)
            if param is None:
                raise StaleExample(f"{command.name} has no option {name} (example {line!r})")
            value_left_out = param.optional_value and (index >= len(words) or words[index].startswith("-"))
            if param.takes_value and not has_value and not value_left_out:
                if index >= len(words):
                    raise StaleExample(f"{name} needs a value (example {line!r})")
                value = words[index]
                index += 1
                if param.choices and value not in param.choices:
                    raise StaleExample(f"{value!r} is not a choice of {name} (example {line!r})")
            continue
        sub = next((c for c in command.subcommands if c.path[-1] == word), None)
        if sub is not None and operands == 0:
            command = sub
            continue
        if command.subcommands and operands == 0:
            raise StaleExample(f"{command.name} has no command {word!r} (example {line!r})")
        operands += 1
        takes_many = any(arg.multiple for arg in command.arguments)
        if operands > len(command.arguments) and not takes_many:
            raise StaleExample(f"too many operands for {command.name} (example {line!r})")


def render(command: Command, version: str) -> str:
    """The man page of one top-level command (with its sub-commands) or of gnt itself."""
    is_root = len(command.path) == 1
    title = "-".join(command.path)
    out = [
        '.\\" generated by build/gen_man.py from gnt\'s command definitions; do not edit',
        f'.TH "{escape(title.upper())}" "1" "" "{PROG} {version}" "{MANUAL}"',
        ".nh",  # no hyphenation: option names and addresses must stay whole
        ".SH NAME",
        f"{escape(title)} \\- {escape(_lower_first(command.short_help.rstrip('.')))}",
        ".SH SYNOPSIS",
        *_synopsis(command),
    ]
    if not is_root:
        for sub in command.subcommands:
            out.append(".br")
            out += _synopsis(sub)
    out.append(".SH DESCRIPTION")
    out += _paragraphs(command.help)
    if command.arguments:
        out.append(".SH ARGUMENTS")
        for arg in command.arguments:
            out += [".TP", f"\\fI{escape(arg.metavar)}\\fR", *_option_body(arg)]
    if command.options:
        out.append(".SH OPTIONS")
        for param in command.options:
            out += [".TP", _option_heading(param), *_option_body(param)]
        out += [".TP", "\\fB\\-h\\fR, \\fB\\-\\-help\\fR", "Show the help and exit."]
    if command.subcommands:
        out.append(".SH COMMANDS")
        for sub in command.subcommands:
            if is_root:
                out += [".TP", f"\\fB{escape(sub.path[-1])}\\fR", escape(sub.short_help),
                        f"See \\fB{escape('-'.join(sub.path))}\\fR(1)."]
            else:
                out += _subcommand_section(sub)
    out.append(".SH EXIT STATUS")
    for code, meaning in _exit_status(command).items():
        out += [".TP", f"\\fB{code}\\fR", escape(meaning)]
    out.append(".SH EXAMPLES")
    for line, meaning in _examples(command):
        out += [".PP", escape(meaning), ".PP", ".RS 4", ".nf", f"\\fB{escape(line)}\\fR", ".fi", ".RE"]
    out.append(".SH SEE ALSO")
    see_also = [] if is_root else [f"{PROG}(1)"]
    if is_root:
        see_also += [f"{PROG}-{sub.path[-1]}(1)" for sub in command.subcommands]
    else:
        see_also += man_extras.SEE_ALSO.get(command.path[1], [])
    out.append(",\n".join(_reference(ref) for ref in see_also))
    return "\n".join(out) + "\n"


def _subcommand_section(sub: Command) -> list[str]:
    out = [f'.SS "{escape(" ".join(sub.path))}"', *_paragraphs(sub.help)]
    for arg in sub.arguments:
        out += [".TP", f"\\fI{escape(arg.metavar)}\\fR", *_option_body(arg)]
    for param in sub.options:
        out += [".TP", _option_heading(param), *_option_body(param)]
    for deeper in sub.subcommands:
        out += _subcommand_section(deeper)
    return out


def _reference(ref: str) -> str:
    name, _, section = ref.partition("(")
    return f".BR {escape(name)} ({section}"


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def generate(outdir: Path) -> list[Path]:
    """Write gnt.1 and one gnt-<command>.1 per command into `outdir`; returns their paths."""
    from gnt import __version__

    root = load()
    pages = {f"{PROG}.1": root, **{f"{PROG}-{sub.path[-1]}.1": sub for sub in root.subcommands}}
    for command in pages.values():
        for line, _meaning in _examples(command):
            check_example(root, line)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, command in pages.items():
        path = outdir / name
        path.write_text(render(command, __version__), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else HERE.parent / "man"
    try:
        paths = generate(outdir)
    except StaleExample as exc:
        print(f"gen_man: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

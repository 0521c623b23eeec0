#!/usr/bin/env python3
"""Start-up of every gnt command, and of the one-file binary, reported as ratios (hyperfine).

1. Installed with pip (this interpreter's `gnt`): `gnt ping -c 1 127.0.0.1`, `gnt --help`,
   `gnt --version` and each `gnt CMD --help`, against `python3 -c pass` of the same
   interpreter. Target: ping <= 7x, the help pages as light.
2. The PyInstaller one-file binary (build/work/onefile/gnt, step 1 of build/build.sh, built
   when missing or stale): `--version` and `ping -c 1 127.0.0.1` against a bare one-file typer
   app (one command, an eager --version) frozen with the same PyInstaller. Target: <= 1.1x.
3. The portable binary dist/gnt (that one-file binary in the staticx bundle behind the
   launcher, from the same build) against the one-file binary: `--version` and
   `ping -c 1 127.0.0.1`, runs interleaved (A B A B ...) so a busy machine's drift hits both
   alike; wall time and the CPU time of the process tree. Target: <= 1.2x; dist/gnt <= 16 MB.
   Sizes and the load average are printed too.

Run as root (the ping runs use a raw socket; or widen net.ipv4.ping_group_range), with the
interpreter of a regular pip install (an editable one adds its import hook to every start):
    [GNT_BUILD_VENV=DIR] /opt/gnt/venv/bin/python bench/bench_startup.py [--runs N] [--no-binary]
Run it on a quiet machine: the fastest-run column shows how much the median was disturbed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "work"
BARE_APP = '''
import typer

app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


def version(value: bool) -> None:
    if value:
        print("bare 0.1.0")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", is_eager=True, callback=version)) -> None:
    """A bare typer app."""


@app.command()
def hello(name: str = "world") -> None:
    print(f"hello {name}")


if __name__ == "__main__":
    app()
'''


def hyperfine(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Median and fastest wall time in ms of each command (hyperfine, no shell, 3 warm-ups).

    The median is the figure; the fastest run shows the cost without a busy machine's noise.
    """
    with tempfile.TemporaryDirectory() as tmp:
        export = os.path.join(tmp, "result.json")
        argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", export,
                "--style", "none"]
        for name, command in commands.items():
            argv += ["--command-name", name, " ".join(command)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        with open(export) as handle:
            results = json.load(handle)["results"]
    return {result["command"]: (result["median"] * 1000, result["min"] * 1000) for result in results}


def interleaved(commands: dict[str, list[str]], runs: int) -> tuple[dict[str, tuple[float, float]],
                                                                    dict[str, tuple[float, float]]]:
    """Median and fastest wall time, and CPU time (user + system of the whole process tree), in ms
    of each command, run in turn (3 warm-up rounds). On a busy machine the CPU time is the steadier
    figure: waiting for a core counts in the wall time only."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 3):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_ >= 3:
                wall[name].append(elapsed * 1000)
                cpu[name].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)

    def summary(samples: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
        return {name: (sorted(times)[len(times) // 2], min(times)) for name, times in samples.items()}

    return summary(wall), summary(cpu)


def report(title: str, times: dict[str, tuple[float, float]], baseline: str, target: float | None) -> None:
    print(f"## {title}")
    print(f"{'':42s} {'median':>11s} {'ratio':>6s}   {'fastest':>10s} {'ratio':>6s}")
    base, base_min = times[baseline]
    for name, (ms, fastest) in times.items():
        ratio = ms / base
        mark = ""
        if target is not None and name != baseline:
            mark = "  ok" if ratio <= target else f"  OVER {target}x"
        print(f"{name:42s} {ms:8.1f} ms {ratio:5.2f}x   {fastest:7.1f} ms {fastest / base_min:5.2f}x{mark}")
    print()


def installed(runs: int) -> None:
    from gnt.cli import COMMANDS

    python = sys.executable
    gnt = [python, "-m", "gnt"]
    script = Path(python).parent / "gnt"
    if script.exists():
        gnt = [str(script)]  # the console script, as an operator runs it
    bare = Path(tempfile.mkdtemp(prefix="gnt-bench-")) / "bare_typer.py"
    bare.write_text(BARE_APP, encoding="utf-8")
    commands = {"python3 -c pass": [python, "-c", "pass"],
                "bare typer app hello (reference)": [python, str(bare), "hello"],
                "gnt ping -c 1 127.0.0.1": [*gnt, "ping", "-c", "1", "127.0.0.1"],
                "gnt --version": [*gnt, "--version"],
                "gnt --help": [*gnt, "--help"]}
    for name in COMMANDS:
        commands[f"gnt {name} --help"] = [*gnt, name, "--help"]
    try:
        report(f"installed gnt ({' '.join(gnt)}) against python3 -c pass; target ping <= 7x",
               hyperfine(commands, runs), "python3 -c pass", 7.0)
    finally:
        shutil.rmtree(bare.parent, ignore_errors=True)


def build_bare() -> Path:
    """The bare typer app, one file, frozen by build.sh's venv's PyInstaller (as dist/gnt is)."""
    bare_dir = WORK / "bare"
    binary = bare_dir / "dist" / "bare-typer"
    if binary.exists():
        return binary
    bare_dir.mkdir(parents=True, exist_ok=True)
    source = bare_dir / "bare_typer.py"
    source.write_text(BARE_APP, encoding="utf-8")
    venv = Path(os.environ.get("GNT_BUILD_VENV", WORK / "venv"))  # the venv build/build.sh uses
    subprocess.run([str(venv / "bin" / "pyinstaller"), "--onefile", "--noconfirm", "--log-level", "WARN",
                    "--name", "bare-typer", "--distpath", str(bare_dir / "dist"),
                    "--workpath", str(bare_dir / "work"), "--specpath", str(bare_dir), str(source)],
                   check=True)
    return binary


def binary(runs: int) -> None:
    subprocess.run(["bash", str(ROOT / "build" / "build.sh")], check=True)
    portable, onefile = ROOT / "dist" / "gnt", WORK / "onefile" / "gnt"
    bare = build_bare()
    for path in (portable, onefile, bare):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.1f} MB")
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print()
    commands = {"bare typer one-file --version": [str(bare), "--version"],
                "one-file gnt --version": [str(onefile), "--version"],
                "bare typer one-file hello": [str(bare), "hello"],
                "one-file gnt ping -c 1 127.0.0.1": [str(onefile), "ping", "-c", "1", "127.0.0.1"],
                "one-file gnt --help": [str(onefile), "--help"]}
    report("one-file binary against a bare one-file typer app; target --version <= 1.1x",
           hyperfine(commands, runs), "bare typer one-file --version", 1.1)
    for what in (["--version"], ["ping", "-c", "1", "127.0.0.1"]):
        label = " ".join(what)
        pair = {f"one-file gnt {label}": [str(onefile), *what], f"dist/gnt {label}": [str(portable), *what]}
        wall, cpu = interleaved(pair, runs)
        report("portable dist/gnt against the one-file binary of the same build, interleaved, wall time;"
               " target <= 1.2x", wall, f"one-file gnt {label}", 1.2)
        report("the same runs, CPU time (user + system, every process of the tree)", cpu,
               f"one-file gnt {label}", 1.2)
    size = portable.stat().st_size / 1e6
    print(f"dist/gnt size: {size:.1f} MB ({'ok' if size <= 16 else 'OVER'} target 16 MB)")
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="hyperfine runs per command")
    parser.add_argument("--no-binary", action="store_true", help="skip building and timing dist/gnt")
    parser.add_argument("--binary-only", action="store_true", help="time only the binaries (parts 2 and 3)")
    args = parser.parse_args()
    if shutil.which("hyperfine") is None:
        print("bench_startup: hyperfine is not installed (apt-get install hyperfine)", file=sys.stderr)
        return 2
    if not args.binary_only:
        installed(args.runs)
    if not args.no_binary:
        binary(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

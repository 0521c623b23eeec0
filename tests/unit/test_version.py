"""`gnt --version [--verbose]`, in-process, as a pip install and as the one-file binary sees it."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import pytest
from helpers.cli import run_gnt as run

from gnt import __version__


def test_verbose_version_of_a_pip_install() -> None:
    code, out, err = run("--version", "--verbose")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"gnt {__version__}"
    assert f"python: {platform.python_version()} (cpython)" in lines
    assert "frozen: no" in lines
    assert f"glibc: {os.confstr('CS_GNU_LIBC_VERSION').split()[-1]}" in lines
    assert not any(line.startswith("build glibc") for line in lines)


def test_short_flag_and_order_do_not_matter() -> None:
    assert run("-V")[:2] == (0, f"gnt {__version__}\n")
    assert run("--verbose", "-V")[1].startswith(f"gnt {__version__}\npython: ")


def test_verbose_version_of_the_binary_reads_the_build_record(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # what PyInstaller's bootloader sets up, with the record build/gnt.spec writes
    (tmp_path / "gnt").mkdir()
    record = {"build_glibc": "2.36", "needs_glibc": "2.35", "python": "3.11.2", "machine": "x86_64"}
    (tmp_path / "gnt" / "_build_info.json").write_text(json.dumps(record))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    code, out, _ = run("--version", "--verbose")
    assert code == 0
    assert "frozen: yes, one-file binary" in out.splitlines()
    assert "build glibc: 2.36 (needs glibc >= 2.35)" in out.splitlines()

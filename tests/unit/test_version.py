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
    assert "frozen: no (a Python install)" in lines
    assert f"libc: glibc {os.confstr('CS_GNU_LIBC_VERSION').split()[-1]}, the host's" in lines
    assert f"needs from the host: Python {platform.python_version()} and gnt's Python packages" in lines


def test_short_flag_and_order_do_not_matter() -> None:
    assert run("-V")[:2] == (0, f"gnt {__version__}\n")
    assert run("--verbose", "-V")[1].startswith(f"gnt {__version__}\npython: ")


@pytest.fixture
def frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What PyInstaller's bootloader sets up, with the record build/gnt.spec writes."""
    (tmp_path / "gnt").mkdir()
    record = {"build_glibc": "2.36", "python": "3.11.2", "machine": "x86_64", "staticx": "0.14.2", "kernel": "3.2"}
    (tmp_path / "gnt" / "_build_info.json").write_text(json.dumps(record))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.delenv("STATICX_BUNDLE_DIR", raising=False)


def test_verbose_version_of_the_one_file_binary_names_the_glibc_it_needs(frozen: None) -> None:
    code, out, _ = run("--version", "--verbose")
    assert code == 0
    lines = out.splitlines()
    assert "frozen: one-file binary (PyInstaller), not in the static bundle" in lines
    assert f"libc: glibc {os.confstr('CS_GNU_LIBC_VERSION').split()[-1]}, the host's" in lines
    assert "needs from the host: glibc >= 2.36 (the build host's)" in lines


def test_verbose_version_of_the_static_bundle_says_it_needs_nothing(frozen: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATICX_BUNDLE_DIR", "/tmp/staticx-test")  # what the staticx bootloader sets
    code, out, _ = run("--version", "--verbose")
    assert code == 0
    lines = out.splitlines()
    assert "frozen: static bundle, one file (PyInstaller one-file in staticx 0.14.2, with a static launcher)" in lines
    assert f"libc: glibc {os.confstr('CS_GNU_LIBC_VERSION').split()[-1]}, carried in the binary" in lines
    assert ("needs from the host: nothing: a Linux kernel >= 3.2 and a writable $TMPDIR (default /tmp)"
            " that allows exec") in lines

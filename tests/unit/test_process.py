"""gnt.core.process: the tools gnt runs get the user's environment, not the frozen bundle's."""

from __future__ import annotations

import sys

import pytest

from gnt.core.process import host_environment, run_tool
from gnt.errors import UnavailableError

BUNDLE = {"LD_LIBRARY_PATH": "/tmp/_MEI123", "_PYI_APPLICATION_HOME_DIR": "/tmp/_MEI123",
          "STATICX_BUNDLE_DIR": "/tmp/staticx-abc", "STATICX_PROG_PATH": "/usr/local/bin/gnt",
          "TMPDIR": "/tmp/gnt-abc"}  # the launcher's private directory


def test_a_pip_install_passes_its_environment_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    assert host_environment()["LD_LIBRARY_PATH"] == "/opt/lib"


@pytest.mark.parametrize("user_value", [None, "/opt/lib"])
def test_the_frozen_binary_gives_back_the_users_library_path(monkeypatch: pytest.MonkeyPatch,
                                                             user_value: str | None) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    for name, value in BUNDLE.items():
        monkeypatch.setenv(name, value)
    if user_value is None:
        monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
        monkeypatch.setenv("_GNT_TMPDIR", "-")  # the launcher's note: the user had no TMPDIR
    else:
        monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", user_value)  # where PyInstaller keeps the user's value
        monkeypatch.setenv("_GNT_TMPDIR", "+/var/tmp/user")
    monkeypatch.setenv("GNT_TEST_MARK", "kept")
    env = host_environment({"LC_ALL": "C"})
    assert env.get("LD_LIBRARY_PATH") == user_value
    assert env.get("TMPDIR") == (None if user_value is None else "/var/tmp/user")
    assert not [name for name in env
                if name.startswith(("_PYI_", "STATICX_", "_GNT_")) or name == "LD_LIBRARY_PATH_ORIG"]
    assert (env["GNT_TEST_MARK"], env["LC_ALL"]) == ("kept", "C")


def test_run_tool_passes_that_environment_and_names_a_hung_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("STATICX_BUNDLE_DIR", "/tmp/staticx-abc")
    done = run_tool(["sh", "-c", 'echo "${STATICX_BUNDLE_DIR-unset} $LC_ALL"'], "sh", 10, extra_env={"LC_ALL": "C"})
    assert done.stdout == "unset C\n"
    with pytest.raises(UnavailableError, match="sleeper did not answer in time"):
        run_tool(["sleep", "5"], "sleeper", 0.2)

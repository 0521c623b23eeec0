"""The script PyInstaller freezes: the same entry point as the installed `gnt` command."""

from gnt.__main__ import _entry

_entry()

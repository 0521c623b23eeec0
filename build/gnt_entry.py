"""The script PyInstaller freezes: the same entry point as the installed `gnt` command.

Importing gnt.__main__ is the first thing it does: that module's first statements install the
stop-signal policy (a Ctrl-C during the rest of start-up is exit 130, not a traceback)."""

from gnt.__main__ import _entry

_entry()

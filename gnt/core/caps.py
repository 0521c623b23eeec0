"""Linux capabilities of this process (the effective set in /proc/self/status)."""

from __future__ import annotations

import os

CAP_NET_ADMIN = 12  # interfaces, routes, netfilter, trace rules (linux/capability.h)
CAP_NET_RAW = 13  # raw and packet sockets
CAP_SYS_ADMIN = 21  # mount, tracefs control


def has_capability(bit: int) -> bool:
    """`bit` is in the effective set; without /proc, root is taken to have it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return os.geteuid() == 0

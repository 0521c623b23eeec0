"""Large packets on a path where small ones pass: the black-hole check, from `gnt mtu`."""

from __future__ import annotations

from gnt.why.facts import Facts
from gnt.why.models import SKIPPED, Check


def check(facts: Facts) -> Check | None:
    """Whether packets of the out device's full MTU reach the destination (needs `gnt mtu`)."""
    return Check("path-mtu", SKIPPED, "gnt mtu is not part of this build")

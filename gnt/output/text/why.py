"""Text for `gnt why`: the verdict line first, then each check with its evidence, then the fix.

    dropped: filter FORWARD policy DROP (no rule accepted 198.18.1.1 → 198.18.2.2:80)
      route            ok    198.18.2.2 dev eth1 src 198.18.2.1 table main (unicast)
                             route get 198.18.2.2 from 198.18.1.1 iif eth0: ...
      ...
    fix: add a rule that accepts 198.18.1.1 → 198.18.2.2:80 to filter FORWARD

The checks arrive before the verdict (they are what it is chosen from), so they are held
until it comes and printed under it.
"""

from __future__ import annotations

from gnt.why.models import Check, Verdict

NAME_WIDTH = 16  # the check-name column
STATUS_WIDTH = 7  # the status column
INDENT = "  "
EVIDENCE_INDENT = " " * (len(INDENT) + NAME_WIDTH + 1 + STATUS_WIDTH + 1)


def format_check(check: Check) -> list[str]:
    lines = [f"{INDENT}{check.name:<{NAME_WIDTH}} {check.status:<{STATUS_WIDTH}} {check.summary}"]
    lines += [f"{EVIDENCE_INDENT}{line}" for line in check.evidence]
    if check.fix and check.status in ("fail", "warn"):
        lines.append(f"{EVIDENCE_INDENT}fix: {check.fix}")
    return lines


def format_verdict(verdict: Verdict, checks: list[Check]) -> str:
    lines = [verdict.line]
    for check in checks:
        lines += format_check(check)
    tail = f"confidence: {verdict.confidence}"
    lines.append(f"fix: {verdict.fix}" if verdict.fix else tail)
    if verdict.fix:
        lines.append(tail)
    return "\n".join(lines)


class WhyText:
    """Holds the checks until the verdict arrives, then prints the verdict first."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def __call__(self, obj: object) -> str | None:
        if isinstance(obj, Check):
            self.checks.append(obj)
            return None
        if isinstance(obj, Verdict):
            text = format_verdict(obj, self.checks)
            self.checks = []
            return text
        return None

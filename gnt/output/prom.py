"""Prometheus textfile output (`--prom FILE`) and node-problem-detector output (`--npd`).

Both are fed by the same model objects as the text and JSON renderers: each object is put in
its JSON form and handed to the command's fleet judge (gnt/fleet/verdicts.py), which keeps
the verdict, a one-line detail and the Prometheus samples. When the command ends, the error
boundary calls `finish(exit_code)`: `--prom` writes the file atomically (a temporary file in
the same directory, then rename, so node_exporter never reads half a file), `--npd` prints
the one condition line node-problem-detector shows (at most 80 characters).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING

from gnt.fleet.verdicts import JUDGES
from gnt.output import write
from gnt.output.env import Environment

if TYPE_CHECKING:
    from gnt.fleet.verdicts import Judge, Sample
    from gnt.output import Renderer

NPD_MAX = 80  # node-problem-detector's condition message limit
PROM_COMMANDS = frozenset(JUDGES)  # the commands whose result a fleet judge reads


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample_line(sample: Sample) -> str:
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
    value = sample.value
    number = repr(float(value)) if value != int(value) else str(int(value))
    return f"{sample.name}{{{labels}}} {number}" if labels else f"{sample.name} {number}"


def exposition(samples: list[Sample]) -> str:
    """Prometheus text exposition 0.0.4 of the samples: HELP and TYPE once per name, no timestamps."""
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    lines = []
    for name, group in by_name.items():
        lines.append(f"# HELP {name} {_escape(group[0].help)}")
        lines.append(f"# TYPE {name} {group[0].kind}")
        lines.extend(_sample_line(s) for s in group)
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old file or the new one, never half of one."""
    from gnt.errors import GntError

    directory = os.path.dirname(os.path.abspath(path))
    try:
        import tempfile  # here: --npd and the runs that write nothing do not pay for it

        fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise GntError(f"cannot write {path}: {exc.strerror}", errno=exc.errno) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)  # node_exporter often runs as another user
        os.replace(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise GntError(f"cannot write {path}: {exc.strerror}", errno=exc.errno) from None


class FleetTap:
    """A renderer that feeds the fleet judge, and passes objects on to `inner` (None with --npd)."""

    def __init__(self, env: Environment, inner: Renderer | None) -> None:
        from gnt.fleet.envelope import stream_meta
        from gnt.fleet.verdicts import judge_for
        from gnt.output.json import to_jsonable

        self.env = env
        self.inner = inner
        self._jsonable = to_jsonable
        meta = to_jsonable(stream_meta(env.argv))
        self.judge: Judge = judge_for(meta)
        self.started = time.time()
        env.finishers.append(self.finish)

    def emit(self, obj: object) -> None:
        if getattr(obj, "json_type", None) is not None:
            self._feed(obj)
        elif dataclasses.is_dataclass(obj):  # a text-only wrapper (vxlan's ScanReport): what it carries
            for f in dataclasses.fields(obj):
                inner = getattr(obj, f.name)
                for part in inner if isinstance(inner, list) else [inner]:
                    if getattr(part, "json_type", None) is not None:
                        self._feed(part)
        if self.inner is not None:
            self.inner.emit(obj)

    def _feed(self, obj: object) -> None:
        """Hand the judge an object in its JSON form, only when it reads that type (not every entry)."""
        reads = self.judge.reads
        if reads is None or getattr(obj, "json_type", None) in reads:
            self.judge.feed(self._jsonable(obj))

    def finish(self, exit_code: int) -> None:
        verdict, _bad, detail = self.judge.finish()
        if self.env.prom_path:
            write_atomically(self.env.prom_path, exposition(self.run_samples(exit_code) + self.judge.samples))
        if self.env.npd:
            message = f"{self.judge.label}: {verdict}" + (f": {detail}" if detail else "")
            if len(message) > NPD_MAX:
                message = message[: NPD_MAX - 3] + "..."
            write(self.env.stdout, message + "\n")

    def run_samples(self, exit_code: int) -> list[Sample]:
        from gnt.fleet.verdicts import Sample

        label = {"command": self.judge.label}
        return [
            Sample("gnt_run_success", "1 when the last run's result was positive (exit 0).", "gauge",
                   1.0 if exit_code == 0 else 0.0, label),
            Sample("gnt_run_exit_code", "Exit code of the last run: 0 ok, 1 negative result, 2 error.", "gauge",
                   float(exit_code), label),
            Sample("gnt_run_duration_seconds", "How long the last run took.", "gauge",
                   round(time.time() - self.started, 6), label),
            Sample("gnt_run_last_time_seconds", "When the last run ended (Unix time).", "gauge",
                   round(time.time(), 3), label),
        ]

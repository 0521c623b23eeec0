"""deploy/: every Kubernetes manifest validates against the API schemas offline
(kubernetes-validate, strict), and every node-problem-detector rule's command line runs
through gnt with one line of at most max_output_length and an exit code npd understands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import run_gnt

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
JOB_SUBSTITUTIONS = {"@NODE@": "node-a", "@NAME@": "gnt-audit-node-a", "@ARGS@": '"vxlan-csum", "audit", "--json"'}


def _validate(tmp_path: Path, text: str, name: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(text)
    tool = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(tool), "--strict", "--no-warn", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("name", ["daemonset.yaml", "job-node.yaml"])
def test_manifests_validate(tmp_path: Path, name: str) -> None:
    text = (DEPLOY / "kubernetes" / name).read_text()
    for placeholder, value in JOB_SUBSTITUTIONS.items():
        text = text.replace(placeholder, value)
    result = _validate(tmp_path, text, name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    text = (DEPLOY / "kubernetes" / "daemonset.yaml").read_text().replace("hostNetwork: true", "hostNetwrk: true")
    assert _validate(tmp_path, text, "broken.yaml").returncode != 0


def test_containerfile_is_from_scratch_with_only_the_binary() -> None:
    lines = [line for line in (DEPLOY / "kubernetes" / "Containerfile").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[:3] == ["FROM scratch AS gnt", "COPY dist/gnt /gnt", 'ENTRYPOINT ["/gnt"]']


@pytest.mark.parametrize("config", sorted((DEPLOY / "npd").glob("*.json")), ids=lambda p: p.name)
def test_npd_rules_run_through_gnt(config: Path) -> None:
    plugin = json.loads(config.read_text())
    assert plugin["plugin"] == "custom"
    limit = plugin["pluginConfig"]["max_output_length"]
    conditions = {c["type"] for c in plugin["conditions"]}
    for rule in plugin["rules"]:
        assert rule["path"] == "/usr/local/bin/gnt" and "--npd" in rule["args"]
        assert rule["type"] == "temporary" or rule["condition"] in conditions
        args = [a for a in rule["args"]]
        if "--duration" in args:  # a capture: keep the test short
            args[args.index("--duration") + 1] = "0.2"
        code, out, err = run_gnt(*args)
        assert code in (0, 1, 2), err
        if code != 2:
            assert len(out.splitlines()) == 1 and len(out.rstrip("\n")) <= limit, out

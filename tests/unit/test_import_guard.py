"""gnt.core is standard library only: importing it, every module in it, pulls in no heavy package."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("scapy", "pyroute2", "netaddr", "typer", "click")

PROBE = """
import importlib, json, pkgutil, sys
import gnt.core
names = ["gnt.core"]
for info in pkgutil.walk_packages(gnt.core.__path__, "gnt.core."):
    importlib.import_module(info.name)
    names.append(info.name)
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"modules": names, "loaded": loaded}))
"""


def run_probe(probe: str) -> dict[str, list[str]]:
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    report: dict[str, list[str]] = json.loads(result.stdout)
    return report


def test_gnt_core_imports_no_third_party_package():
    report = run_probe(PROBE)
    # the walk really covered the codecs (an empty walk would pass vacuously)
    expected = {"gnt.core.checksum", "gnt.core.packets.ipv4", "gnt.core.packets.dispatch"}
    assert expected <= set(report["modules"])
    heavy = [name for name in FORBIDDEN if name in report["loaded"]]
    assert heavy == [], f"gnt.core loaded {heavy}"


def test_the_probe_sees_a_heavy_import():
    # the same probe, with scapy imported on purpose, must report it: the guard is able to fail
    probe = PROBE.replace("import gnt.core\n", "import gnt.core\nimport scapy.layers.inet\n")
    assert "scapy" in run_probe(probe)["loaded"]


def test_gnt_core_imports_nothing_above_it():
    """gnt.core is the bottom layer: no module in it imports a tool, the CLI or the renderers, not even
    inside a function (where the walk above cannot see it); gnt.errors is the one module it shares."""
    import ast
    from pathlib import Path

    import gnt.core

    above = []
    files = sorted(Path(gnt.core.__path__[0]).rglob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            above += [f"{path.name}: {n}" for n in names
                      if n.split(".")[0] == "gnt" and not (n.startswith("gnt.core") or n == "gnt.errors")]
    assert len(files) > 10 and above == []

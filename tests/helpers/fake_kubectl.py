"""A stand-in for kubectl and the API server, for testing deploy/kubernetes/kubectl-gnt.

No cluster runs here. This answers the few kubectl calls the plugin makes, and "runs" each
Job it is given for real: the Job's manifest (after the plugin's substitutions) is parsed as
YAML, and its container args are run as `gnt ARGS` inside the network namespace that stands
for the Job's nodeName, in a UTS namespace whose host name is the node's name.

Environment: FAKE_NODES="node-a=NETNS,node-b=NETNS2,..."; FAKE_STATE=a directory;
FAKE_GNT="the gnt command line" (space separated).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml


def main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_STATE"])
    nodes = dict(pair.split("=", 1) for pair in os.environ["FAKE_NODES"].split(","))
    with open(state / "calls.log", "a") as log:
        log.write(" ".join(argv) + "\n")
    job = next((a[4:] for a in argv if a.startswith("job/")), "")
    if argv[:2] == ["get", "nodes"]:
        print(" ".join(nodes), end="")
        return 0
    if argv[0] == "apply":
        manifest = yaml.safe_load(sys.stdin.read())
        name = manifest["metadata"]["name"]
        spec = manifest["spec"]["template"]["spec"]
        assert spec["hostNetwork"] is True
        node = spec["nodeName"]
        args = [str(a) for a in spec["containers"][0]["args"]]
        gnt = shlex.split(os.environ["FAKE_GNT"])
        inner = f"hostname {shlex.quote(node)} && exec {shlex.join(gnt + args)}"
        run = subprocess.run(["ip", "netns", "exec", nodes[node], "unshare", "--uts", "sh", "-c", inner],
                             capture_output=True, text=True, timeout=120, check=False)
        (state / f"{name}.log").write_text(run.stdout)
        (state / f"{name}.rc").write_text(str(run.returncode))
        return 0
    if argv[0] == "get" and job:
        rc = state / f"{job}.rc"
        if rc.exists():
            print("1" if rc.read_text() == "0" else "", end="")  # succeeded
            print("" if rc.read_text() == "0" else "1", end="")  # failed
        return 0
    if argv[0] == "logs":
        log = state / f"{job}.log"
        if not log.exists():
            return 1
        sys.stdout.write(log.read_text())
        return 0
    if argv[0] == "delete":
        for suffix in (".log", ".rc"):
            (state / f"{job}{suffix}").unlink(missing_ok=True)
        return 0
    print(f"fake kubectl: unexpected call {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

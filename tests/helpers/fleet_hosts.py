"""Fleet-sized stand-ins built from network namespaces, shared by the deploy tests and bench/.

`fleet_nodes` makes one namespace per node name, each with a veth underlay; the nodes in
`at_risk` get flannel's VXLAN device (noudpcsum, tx checksum offload on) and kube-proxy's
`MASQUERADE --random-fully` of marked traffic, the configuration `gnt vxlan-csum audit`
reports. `start_sshd` runs an sshd inside a node's namespace, in its own UTS namespace
whose host name is the node's name, so gnt's `meta.node` tells the nodes apart.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from helpers.netns import Namespace, Topology, sh

KUBE_RULES = [
    "-t nat -N KUBE-POSTROUTING",
    "-t nat -A POSTROUTING -j KUBE-POSTROUTING",
    "-t nat -A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully",
]


def fleet_nodes(topology: Topology, names: list[str], at_risk: set[str]) -> dict[str, Namespace]:
    nodes = {}
    for index, name in enumerate(names, 1):
        ns = topology.add(name)
        ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        ns.ip("link", "set", "eth0", "up")
        ns.ip("link", "set", "eth0p", "up")
        ns.ip("addr", "add", f"198.18.200.{index}/24", "dev", "eth0")
        if name in at_risk:
            ns.ip("link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", f"198.18.200.{index}",
                  "dev", "eth0", "dstport", "8472", "noudpcsum", "nolearning")
            ns.ip("link", "set", "flannel.1", "up")
            for rule in KUBE_RULES:
                ns.run("iptables", *rule.split())
        nodes[name] = ns
    return nodes


def gnt_wrapper(path: Path) -> Path:
    """An executable that runs the gnt under test (what the playbook copies as "the binary")."""
    path.write_text(f"#!/bin/sh\nexec {sys.executable} -m gnt \"$@\"\n")
    path.chmod(0o755)
    return path


def keypair(directory: Path) -> Path:
    key = directory / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    return key


def start_sshd(ns: Namespace, node: str, directory: Path, client_key: Path) -> subprocess.Popen[str]:
    """sshd on 127.0.0.1:22 inside `ns`, host name `node`, accepting `client_key` for root."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = directory / "host_key"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    config = directory / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", "Port 22", f"HostKey {host_key}", f"PidFile {directory}/sshd.pid",
        f"AuthorizedKeysFile {authorized}", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "LogLevel ERROR",
        "Subsystem sftp internal-sftp", "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = ns.popen("unshare", "--uts", "sh", "-c", f"hostname {node} && exec /usr/sbin/sshd -D -e -f {config}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if ":22 " in ns.run("ss", "-Hltn").stdout:
            return proc
        if proc.poll() is not None:
            raise AssertionError(f"sshd in {ns.name} exited: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"sshd in {ns.name} never listened")


def inventory(path: Path, nodes: dict[str, Namespace], key: Path, control_dir: Path) -> Path:
    """An Ansible inventory reaching each node's sshd through `ip netns exec NS socat`.

    Each host has its own ansible_host (and ControlPath by host), so ssh connection reuse can
    never send one host's commands to another's sshd.
    """
    lines = ["[nodes]"]
    for node, ns in nodes.items():
        proxy = f"ip netns exec {ns.name} socat - TCP:127.0.0.1:22"
        lines.append(
            f"{node} ansible_host={node}.fleet.test "
            f"ansible_ssh_common_args='-o ProxyCommand=\"{proxy}\" -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o ControlPath={control_dir}/%h'"
        )
    lines += ["", "[nodes:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={key}",
              "ansible_python_interpreter=/usr/bin/python3", ""]
    path.write_text("\n".join(lines))
    return path


def ansible_env(directory: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update({
        "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_LOCAL_TEMP": str(directory / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(directory / "ansible-remote"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_FORKS": "5", "ANSIBLE_SSH_RETRIES": "0",
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
    })
    return env

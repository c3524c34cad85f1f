# SPDX-License-Identifier: Apache-2.0
"""Every key with an invalid value, end to end: `run` prints FILE:LINE: and
exits 78, and nothing on the node changed (no etcd key, no overlay, no
file in /run), with etcd reachable so that it could have."""

import os
import subprocess

import pytest

from conftest import AGENT

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not AGENT, reason="AGENT_BIN not set (run through meson test)"),
]

BAD = [
    ("node", "role", "boss"),
    ("node", "name", "-x/y"),
    ("node", "interface", "eth0/1"),
    ("node", "address", "192.168.3.300/24"),
    ("etcd", "endpoints", "ftp://127.0.0.1:2379"),
    ("etcd", "prefix", "/a/../b"),
    ("etcd", "ttl", "30"),
    ("etcd", "ca-file", "ca.pem"),
    ("etcd", "cert-file", "/etc/../c.pem"),
    ("etcd", "key-file", "k.pem"),
    ("etcd", "password-file", "pw"),
    ("network", "prefix", "coreos.com"),
    ("network", "network", "10.244.0.1/16"),
    ("network", "subnet-len", "31"),
    ("network", "vni", "16777216"),
    ("network", "port", "0"),
    ("network", "mtu", "67"),
    ("network", "subnet-file", "run/flannel/subnet.env"),
    ("network", "docker-opts-file", "/run/flannel/../x"),
    ("network", "ip-masq", "maybe"),
    ("docker", "unit", "docker"),
    ("docker", "restart", "2"),
    ("role.master", "units", "kube-apiserver"),
    ("role.master", "artifacts", "a/b"),
    ("role.master", "register-url", "gopher://x"),
    ("role.minion", "units", "kubelet.service x"),
    ("artifact.kubelet", "url", "file:///etc/passwd"),
    ("artifact.kubelet", "sha256", "abc"),
    ("artifact.kubelet", "path", "opt/bin/kubelet"),
    ("artifact.kubelet", "mode", "0999"),
]


def test_every_invalid_value_exits_78_and_changes_nothing(node):
    node.start_etcd()
    node.write_config()
    dropins = node.conf + ".d"
    os.makedirs(dropins)
    bad = os.path.join(dropins, "50-bad.conf")
    problems = []
    for section, key, value in BAD:
        with open(bad, "w") as f:
            f.write(f"# line 1\n[{section}]\n{key} = {value}\n")
        p = subprocess.run(node.agent_cmd("-c", node.conf, "run"), capture_output=True, text=True, timeout=60)
        where = f"{bad}:3: [{section}] {key}"
        if p.returncode != 78 or where not in p.stderr:
            problems.append(f"[{section}] {key} = {value}: exit {p.returncode}: {p.stderr.strip()}")
    os.unlink(bad)

    assert not problems, "\n".join(problems)
    keys = node.etcdctl("get", "--prefix", "/", "--keys-only").stdout.split()
    assert keys == [], keys
    assert node.ip("link", "show", "flannel.1", check=False).returncode != 0
    assert sorted(os.listdir(node.run_dir)) in ([], ["mount"]), os.listdir(node.run_dir)

    # The same config without the drop-in is fine: the test can fail.
    p = subprocess.run(node.agent_cmd("-c", node.conf, "check-config"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr

# SPDX-License-Identifier: Apache-2.0
"""What the agent writes and what it reads as secrets: exact modes whatever
the umask, no symlink planted in /run/flannel or /run/corekube followed
(and recovery once it is gone), world-readable secrets refused with exit 78
before anything on the node changes."""

import os
import signal
import stat
import subprocess

import pytest

from conftest import AGENT, stop, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not AGENT, reason="AGENT_BIN not set (run through meson test)"),
]

WRITTEN = ["flannel/subnet.env", "flannel/docker_opts.env", "corekube/cluster.env"]


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("umask", [0o077, 0o000])
def test_written_files_have_exact_modes(node, umask):
    node.start_etcd()
    node.write_config()
    node.start_agent(umask=umask)
    node.wait_state("ready")
    for rel in WRITTEN:
        p = os.path.join(node.run_dir, rel)
        assert stat.S_ISREG(os.lstat(p).st_mode), rel
        assert mode(p) == 0o644, f"{rel}: {oct(mode(p))} under umask {oct(umask)}"
    assert stop(node.agent) == 0


@pytest.mark.parametrize("planted", ["flannel/subnet.env", "flannel/docker_opts.env", "corekube/cluster.env",
                                     "flannel"])
def test_planted_symlink_is_not_followed(node, planted):
    victim = os.path.join(node.tmp, "victim")
    os.makedirs(victim)
    with open(os.path.join(victim, "precious"), "w") as f:
        f.write("untouched\n")
    link = os.path.join(node.run_dir, planted)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    # A file link points at a file we own; a directory link at a directory.
    os.symlink(os.path.join(victim, "precious") if planted.endswith(".env") else victim, link)

    node.start_etcd()
    node.write_config()
    node.start_agent()
    # Not one of the failures that need an operator (issue 12): waiting.
    m = node.wait_state("waiting")
    assert m.get("reason") in ("network", "files") and m.get("message"), m
    with open(os.path.join(victim, "precious")) as f:
        assert f.read() == "untouched\n"
    assert os.listdir(victim) == ["precious"]
    assert os.path.islink(link)
    assert node.agent.poll() is None, "the agent must stay up and retry"

    # Once the link is gone the retry succeeds.
    os.unlink(link)
    node.wait_state("ready", timeout=90)
    for rel in WRITTEN:
        assert not os.path.islink(os.path.join(node.run_dir, rel))
    assert os.listdir(victim) == ["precious"]
    assert stop(node.agent) == 0


@pytest.mark.parametrize("planted", ["corekube", "corekube/agent.lock"])
def test_planted_lock_symlink_is_not_followed(node, planted):
    """/run/corekube holds the agent's lock, taken before anything else: a
    symlink in place of the directory or the lock file makes the agent
    refuse to start (exit 1; under systemd, Restart= tries again) rather
    than create or truncate a file where it points."""
    victim = os.path.join(node.tmp, "victim")
    os.makedirs(victim)
    with open(os.path.join(victim, "precious"), "w") as f:
        f.write("untouched\n")
    link = os.path.join(node.run_dir, planted)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(victim if planted == "corekube" else os.path.join(victim, "precious"), link)

    node.start_etcd()
    node.write_config()
    p = subprocess.run(node.agent_cmd("-c", node.conf, "run"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "Failed to lock /run/corekube/agent.lock" in p.stderr, p.stderr
    assert os.listdir(victim) == ["precious"]
    with open(os.path.join(victim, "precious")) as f:
        assert f.read() == "untouched\n"
    assert node.machine() is None

    # Once the link is gone the agent starts.
    os.unlink(link)
    node.start_agent()
    node.wait_state("ready", timeout=90)
    assert not os.path.islink(os.path.join(node.run_dir, "corekube", "agent.lock"))
    assert stop(node.agent) == 0


@pytest.mark.parametrize("key", ["key-file", "password-file"])
def test_readable_secret_is_refused(node, key):
    secret = os.path.join(node.tmp, "secret")
    with open(secret, "w") as f:
        f.write("s3cret\n")
    os.chmod(secret, 0o644)
    extra = {"key-file": f"cert-file = {secret}\nkey-file = {secret}\n",
             "password-file": f"username = root\npassword-file = {secret}\n"}[key]
    node.start_etcd()
    node.write_config()
    with open(node.conf) as f:
        text = f.read().replace("ttl = 10s\n", "ttl = 10s\n" + extra)
    with open(node.conf, "w") as f:
        f.write(text)

    for verb in ("check-config", "run"):
        p = subprocess.run(node.agent_cmd("-c", node.conf, verb), capture_output=True, text=True, timeout=60)
        assert p.returncode == 78, (verb, p.returncode, p.stderr)
        assert f"[etcd] {key} {secret} is accessible by group or others (mode 0644)" in p.stderr, p.stderr
        assert f"{node.conf}:" in p.stderr, p.stderr
    # Nothing on the node changed: no record, no overlay, no files.
    assert node.machine() is None
    assert node.ip("link", "show", "flannel.1", check=False).returncode != 0
    assert not os.path.exists(os.path.join(node.run_dir, "flannel"))

    os.chmod(secret, 0o600)
    p = subprocess.run(node.agent_cmd("-c", node.conf, "check-config"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr

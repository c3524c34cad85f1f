# SPDX-License-Identifier: Apache-2.0
"""docs/: the man pages render without a warning and cover every command
of the binary (and of SPEC section 3) and every configuration key."""
import os
import re

import pytest

from conftest import SRCDIR, run

PAGES = ["corekube-agent.8", "corekube-agent.conf.5"]
SPEC_COMMANDS = ["run", "check-config", "status", "leave", "version"]


def page(name):
    with open(os.path.join(SRCDIR, "docs", name)) as f:
        return f.read()


@pytest.mark.parametrize("name", PAGES)
def test_groff_renders_without_warnings(name):
    r = run("groff", "-man", "-ww", "-z", os.path.join(SRCDIR, "docs", name), env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("name", PAGES)
def test_man_renders_without_warnings(name):
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    r = run("man", "--warnings", "-l", os.path.join(SRCDIR, "docs", name), env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "corekube-agent" in r.stdout


def test_warnings_are_seen(tmpdir_clean):
    bad = os.path.join(tmpdir_clean, "bad.8")
    with open(bad, "w") as f:
        f.write('.TH BAD 8\n.SH NAME\nbad \\- x\n.BOGUS\n\\f(XXnot a font\n')
    r = run("groff", "-man", "-ww", "-z", bad)
    assert r.stderr != ""


def test_every_command_is_documented(agent_bin):
    help_text = run(agent_bin, "--help").stdout
    commands = re.findall(r"^  ([a-z][a-z-]+) ", help_text, re.M)
    assert "run" in commands
    text = page("corekube-agent.8")
    for c in set(commands) | set(SPEC_COMMANDS):
        assert re.search(rf"^\.BR? {re.escape(c)}\b", text, re.M), f"command {c} not in corekube-agent(8)"


def test_every_key_is_documented(agent_bin, tmpdir_clean):
    conf = os.path.join(tmpdir_clean, "a.conf")
    with open(conf, "w") as f:
        f.write("[node]\nrole = minion\n[etcd]\nendpoints = http://127.0.0.1:2379\n"
                "[role.minion]\nartifacts = k\n[artifact.k]\nurl = http://x/k\n"
                f"sha256 = {'ab' * 32}\npath = /opt/bin/k\n")
    out = run(agent_bin, "check-config", "-c", conf).stdout
    keys = set(re.findall(r"^#?([a-z][a-z0-9-]*) =", out, re.M))
    assert {"role", "endpoints", "subnet-len", "sha256", "register-body"} <= keys
    text = page("corekube-agent.conf.5")
    sections = set(re.findall(r"^\[([a-z.]+)\]", out, re.M))
    for s in sections:
        s = "artifact.NAME" if s.startswith("artifact.") else s
        assert f"[{s}]" in text, f"section [{s}] not in corekube-agent.conf(5)"
    for k in keys:
        assert re.search(rf"^\.B {re.escape(k)}$", text, re.M), f"key {k} not in corekube-agent.conf(5)"

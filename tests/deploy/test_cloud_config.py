# SPDX-License-Identifier: Apache-2.0
"""cloud-config/: the files are what generate.py writes, the cloud-init forms
pass `cloud-init schema`, the agent.conf each one writes passes the agent's
own check-config once its placeholders are filled, and the CoreOS forms embed
exactly the units the package ships."""
import configparser
import glob
import os
import re

import pytest
import yaml

from conftest import SRCDIR, run

CC = os.path.join(SRCDIR, "cloud-config")
CLOUD_INIT = sorted(glob.glob(os.path.join(CC, "cloud-init-*.yaml")))
NODE_FILES = [os.path.join(CC, f) for f in
              ("master.yaml", "minion.yaml", "cloud-init-master.yaml", "cloud-init-minion.yaml")]
SAMPLE = {
    "%etcd_endpoints%": "http://192.168.3.2:2379",
    "%private_interface%": "eth2",
    "%overlay_network%": "10.244.0.0/15",
    "%kubernetes_url%": "https://example.invalid/v0.6.2",
    "%agent_apt_source%": "deb [trusted=yes] http://192.168.3.2:8000/apt ./",
    "%agent_binary_url%": "https://example.invalid/corekube-agent",
    "%agent_binary_sha256%": "ab" * 32,
}


def fill(text):
    for k, v in SAMPLE.items():
        text = text.replace(k, v)
    return re.sub(r"%[a-z_]+_sha256%", "cd" * 32, text)


def names(paths):
    return [os.path.basename(p) for p in paths]


def test_files_are_generated():
    r = run("/usr/bin/python3", os.path.join(CC, "generate.py"), "--check")
    assert r.returncode == 0, r.stderr


def test_there_are_cloud_init_files():
    assert names(CLOUD_INIT) == ["cloud-init-discovery.yaml", "cloud-init-master.yaml", "cloud-init-minion.yaml"]


@pytest.mark.parametrize("path", CLOUD_INIT, ids=names(CLOUD_INIT))
def test_cloud_init_schema(path):
    r = run("cloud-init", "schema", "-c", path)
    assert r.returncode == 0 and "Valid cloud-config" in r.stdout, r.stdout + r.stderr


def test_cloud_init_schema_can_fail(tmpdir_clean):
    bad = os.path.join(tmpdir_clean, "bad.yaml")
    with open(bad, "w") as f:
        f.write("#cloud-config\nwrite_files:\n  - content: no path\npackages: 3\n")
    assert run("cloud-init", "schema", "-c", bad).returncode != 0


def written_agent_conf(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    files = [w for w in doc.get("write_files", []) if w["path"] == "/etc/corekube/agent.conf"]
    assert len(files) == 1, f"{path} must write /etc/corekube/agent.conf once"
    return files[0]["content"]


@pytest.mark.parametrize("path", NODE_FILES, ids=names(NODE_FILES))
def test_written_config_passes_check_config(path, agent_bin, tmpdir_clean):
    role = "minion" if "minion" in os.path.basename(path) else "master"
    conf = os.path.join(tmpdir_clean, "agent.conf")
    with open(conf, "w") as f:
        f.write(fill(written_agent_conf(path)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREKUBE_")}
    r = run(agent_bin, "check-config", "-c", conf, env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^role = {role}\b", r.stdout, re.M)
    assert re.search(r"^endpoints = http://192.168.3.2:2379\b", r.stdout, re.M)


def test_unfilled_config_is_refused(agent_bin, tmpdir_clean):
    conf = os.path.join(tmpdir_clean, "agent.conf")
    with open(conf, "w") as f:
        f.write(written_agent_conf(os.path.join(CC, "cloud-init-minion.yaml")))
    assert run(agent_bin, "check-config", "-c", conf).returncode == 78


def packaged_unit(name):
    with open(os.path.join(SRCDIR, "units", name)) as f:
        return f.read().replace("/usr/sbin/corekube-agent", "/opt/bin/corekube-agent")


@pytest.mark.parametrize("role", ["master", "minion"])
def test_coreos_form_embeds_the_packaged_units(role):
    with open(os.path.join(CC, f"{role}.yaml")) as f:
        doc = yaml.safe_load(f)
    units = {u["name"]: u for u in doc["coreos"]["units"]}
    role_units = {"master": ["kube-apiserver.service", "kube-controller-manager.service",
                             "kube-scheduler.service"],
                  "minion": ["kubelet.service", "kube-proxy.service"]}[role]
    for name in role_units + ["corekube-agent.service"]:
        assert units[name]["content"] == packaged_unit(name), name
    assert units["corekube-agent.service"].get("command") == "start"
    drop = units["docker.service"]["drop-ins"][0]
    assert drop["content"] == packaged_unit("docker.service.d/40-flannel.conf")


@pytest.mark.parametrize("role", ["master", "minion"])
def test_cloud_init_form_installs_and_starts(role):
    with open(os.path.join(CC, f"cloud-init-{role}.yaml")) as f:
        text = f.read()
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert "corekube-agent" in doc["packages"]
    assert doc["apt"]["sources"]["corekube-agent.list"]["source"] == "%agent_apt_source%"
    assert ["systemctl", "enable", "--now", "--no-block", "corekube-agent.service"] in doc["runcmd"]
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(written_agent_conf(os.path.join(CC, f"cloud-init-{role}.yaml")))
    assert cp["node"]["role"] == role

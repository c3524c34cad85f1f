# SPDX-License-Identifier: Apache-2.0
"""heat/: each template passes heat_check.py (version, references, every
parameter used, user_data = the cloud-config files with every placeholder
filled), and the checker catches each kind of mistake."""
import copy
import glob
import os

import pytest
import yaml

import heat_check
from conftest import SRCDIR

TEMPLATES = sorted(glob.glob(os.path.join(SRCDIR, "heat", "*.yaml")))


def test_templates_exist():
    assert [os.path.basename(t) for t in TEMPLATES] == [
        "corekube-heat-rackconnect-v3.yaml", "corekube-heat-rackspace.yaml", "corekube-heat.yaml"]


@pytest.mark.parametrize("path", TEMPLATES, ids=[os.path.basename(t) for t in TEMPLATES])
def test_template_checks_clean(path):
    assert heat_check.check(path) == []


def test_generic_template_shape():
    with open(os.path.join(SRCDIR, "heat", "corekube-heat.yaml")) as f:
        t = yaml.safe_load(f)
    r = t["resources"]
    assert r["priv_subnet"]["properties"]["cidr"] == {"get_param": "private-cidr"}
    assert t["parameters"]["private-cidr"]["default"] == "192.168.3.0/24"
    assert {r[g]["type"] for g in ("masters", "minions")} == {"OS::Heat::ResourceGroup"}
    assert "overlord" not in r
    assert {"key-name", "flavor", "image", "master-count", "minion-count", "agent-apt-source"} <= set(t["parameters"])
    assert {"master-addresses", "minion-addresses", "discovery-address"} <= set(t["outputs"])


def test_rackconnect_variant_takes_the_network():
    with open(os.path.join(SRCDIR, "heat", "corekube-heat-rackconnect-v3.yaml")) as f:
        t = yaml.safe_load(f)
    assert "rackconnect-network" in t["parameters"]


def mutate(tmp, change):
    src = os.path.join(SRCDIR, "heat", "corekube-heat.yaml")
    with open(src) as f:
        t = yaml.safe_load(f)
    t = copy.deepcopy(t)
    change(t)
    # get_file paths are relative to the template: keep the same depth.
    d = os.path.join(tmp, "heat")
    os.makedirs(d, exist_ok=True)
    os.symlink(os.path.join(SRCDIR, "cloud-config"), os.path.join(tmp, "cloud-config"))
    path = os.path.join(d, "t.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(t, f)
    return heat_check.check(path)


def _params(t, group):
    return t["resources"][group]["properties"]["resource_def"]["properties"]["user_data"]["str_replace"]["params"]


MUTATIONS = {
    "bad version": (lambda t: t.update(heat_template_version="2099-01-01"), "not a HOT version"),
    "unknown param": (lambda t: t["resources"]["discovery"]["properties"].update(
        flavor={"get_param": "nope"}), "no such parameter"),
    "unknown resource": (lambda t: t["resources"]["discovery_port"]["properties"].update(
        network={"get_resource": "nope"}), "no such resource"),
    "unknown attr resource": (lambda t: t["outputs"]["master-addresses"].update(
        value={"get_attr": ["nope", "first_address"]}), "no such resource"),
    "unused param": (lambda t: t["parameters"].update(spare={"type": "string"}), "never used"),
    "missing token": (lambda t: _params(t, "minions").pop("%kubelet_sha256%"), "needs %kubelet_sha256%"),
    "extra token": (lambda t: _params(t, "minions").update({"%nope%": "x"}), "does not occur"),
    "inline user_data": (lambda t: t["resources"]["discovery"]["properties"].update(
        user_data="#cloud-config\n"), "not str_replace over get_file"),
    "function too new": (lambda t: t.update(heat_template_version="2013-05-23") or
                         t["outputs"]["etcd-endpoints"].update(value={"str_split": [",", "a,b"]}),
                         "not available"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_checker_catches(name, tmpdir_clean):
    change, expect = MUTATIONS[name]
    problems = mutate(tmpdir_clean, change)
    assert any(expect in p for p in problems), problems

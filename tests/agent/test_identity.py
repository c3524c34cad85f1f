# SPDX-License-Identifier: Apache-2.0
"""Issue 15: the node is named in etcd by its app-specific ID
(sd_id128_get_machine_app_specific() with corekube's application ID), never
by the raw /etc/machine-id (machine-id(5)). An upgraded node removes the
record its old agent wrote under the raw ID, when that record is its own.
Real agents and a real etcd (conftest.py)."""

import base64
import json
import shutil
import subprocess

import pytest

from conftest import wait_until
from corekube_test.machineid import APP_ID, app_specific

MACHINES = "/corekube/machines/"


def everything(c):
    """Every key and value in etcd, decoded."""
    out = json.loads(c.etcd.ctl("get", "", "--from-key", "-w", "json").stdout)
    return [(base64.b64decode(kv["key"]).decode(errors="replace"),
             base64.b64decode(kv.get("value", "")).decode(errors="replace")) for kv in out.get("kvs", [])]


def old_record(c, n, name=None):
    """The record an agent before issue 15 kept, on a lease of its own."""
    lease = c.etcd.ctl("lease", "grant", "600").stdout.split()[1]
    rec = {"id": n.machine_id, "name": name or n.name, "role": n.role, "ip": n.ip, "state": "ready"}
    c.etcd.ctl("put", f"--lease={lease}", MACHINES + n.machine_id, "--", json.dumps(rec))


@pytest.mark.skipif(not shutil.which("systemd-id128"), reason="no systemd-id128")
def test_the_pylib_helper_is_systemds_derivation():
    with open("/etc/machine-id") as f:
        mid = f.read().strip()
    for app in (APP_ID, "0123456789abcdef0123456789abcdef"):
        out = subprocess.run(["systemd-id128", "machine-id", f"--app-specific={app}"], check=True,
                             capture_output=True, text=True).stdout.strip()
        assert out == app_specific(mid, app)


def test_an_upgraded_node_replaces_its_raw_id_record(fresh_cluster):
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    old_record(c, n)
    n.start()
    c.wait_ready([n])
    wait_until(lambda: c.etcd.get(MACHINES + n.machine_id) is None, 20, "the raw-ID record to go")
    wait_until(lambda: "Removed our record from before the upgrade" in n.log(), 10, "the journal line")
    machines = c.etcd.get_prefix(MACHINES)
    assert list(machines) == [MACHINES + n.node_id]
    assert json.loads(machines[MACHINES + n.node_id]["value"])["id"] == n.node_id
    kvs = everything(c)
    assert kvs and not [kv for kv in kvs if n.machine_id in kv[0] or n.machine_id in kv[1]], kvs
    # status finds the node by the same ID.
    p = n.cli("status", "--wait=20s")
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_a_raw_id_record_of_another_name_is_left(fresh_cluster):
    """A record under our raw ID with another name (a clone of this
    machine's image) is not ours: it stays, and the agent says so."""
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    old_record(c, n, name="someone-else")
    n.start()
    c.wait_ready([n])
    wait_until(lambda: f"{MACHINES}{n.machine_id} is not ours" in n.log(), 20, "the journal line")
    assert c.etcd.get(MACHINES + n.machine_id) is not None
    assert n.record() is not None

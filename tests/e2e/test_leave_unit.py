# SPDX-License-Identifier: Apache-2.0
"""Issue 12 point 5 in a node with real systemd (tests/bed/bed.sh): one
node whose agent runs as the real corekube-agent.service, enabled, against
a real etcd. `corekube-agent leave` alone, without a systemctl before it,
stops the unit (through systemd's D-Bus API), disables it, and releases the
node's record, subnet lease and flannel.1. An agent started by hand in a
unit of another name is refused, the PID named.

The node is a master that runs no role units and does not restart Docker
(its configuration says so; a minion would wait for a master): what is
tested is the agent's own unit. Needs root. The bed is named after our PID
and removed by `bed.sh down` on every exit path."""

import base64
import json
import os

import pytest

import corekube_test.bed
from corekube_test.poll import wait_until

ETCD = "http://192.168.3.2:2379"
AGENT = "corekube-agent.service"
NODE = "solo"
IP = "192.168.3.21"
LOCK = "/run/corekube/agent.lock"
CONF = f"""\
[node]
role = master
name = {NODE}
interface = eth2

[etcd]
endpoints = {ETCD}
ttl = 10s

[runtime]
restart = no

[role.master]
units =
artifacts =
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


class Bed(corekube_test.bed.Bed):
    def show(self, prop, unit=AGENT):
        return self.out(NODE, f"systemctl show -p {prop} --value {unit}")

    def etcd(self, prefix):
        out = self.run("fabric", "etcdctl", f"--endpoints={ETCD}", "get", prefix, "--prefix", "-w", "json").stdout
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
                for kv in json.loads(out).get("kvs", [])}

    def record(self):
        for k, v in self.etcd("/corekube/machines/").items():
            if json.loads(v).get("name") == NODE:
                return k, json.loads(v)
        return None

    def subnet_keys(self):
        return [k for k, v in self.etcd("/coreos.com/network/subnets/").items() if json.loads(v)["PublicIP"] == IP]

    def agent_log(self):
        return self.run("exec", NODE, "journalctl", "-q", "--no-pager", "-o", "cat", check=False).stdout[-6000:]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    b = Bed("leave")
    try:
        b.run("up")
        conf = tmp_path_factory.mktemp("conf") / "agent.conf"
        conf.write_text(CONF)
        b.run("node-add", NODE, "master", IP, "--agent", "--no-standins", "--conf", str(conf))
        yield b
    finally:
        r = b.down()
        assert r.returncode == 0, r.stderr


def wait_ready(bed):
    wait_until(lambda: bed.show("StatusText").startswith("master: ready"), 120, "the agent to be ready",
               bed.agent_log)


def test_leave_refuses_an_agent_that_is_not_the_unit(bed):
    """The unit is stopped by hand and an agent started under another name:
    leave asks systemd, learns that this PID is not the unit's, and refuses."""
    wait_ready(bed)
    bed.sh(NODE, f"systemctl stop {AGENT}")
    bed.sh(NODE, "systemd-run --unit=ck-by-hand --property=Type=notify /usr/sbin/corekube-agent run")
    pid = int(bed.show("MainPID", "ck-by-hand.service"))
    assert pid > 0
    assert bed.out(NODE, f"cat {LOCK}") == str(pid)
    r = bed.sh(NODE, "corekube-agent leave", check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"runs as PID {pid} (it holds {LOCK})" in r.stderr, r.stderr
    assert bed.record() is not None and bed.subnet_keys()
    assert bed.show("ActiveState", "ck-by-hand.service") == "active"
    # A second agent, as the unit, refuses to run beside it.
    bed.sh(NODE, f"systemctl start {AGENT} || true")
    refused = f"Another corekube-agent (PID {pid}) holds {LOCK}"
    wait_until(lambda: refused in bed.out(NODE, f"journalctl -q --no-pager -o cat -u {AGENT}"), 30,
               "the unit's agent to refuse", bed.agent_log)
    assert bed.show("ActiveState", "ck-by-hand.service") == "active"
    bed.sh(NODE, f"systemctl stop ck-by-hand.service {AGENT}; systemctl reset-failed {AGENT}")


def test_leave_stops_and_disables_the_unit_then_releases(bed):
    bed.sh(NODE, f"systemctl start {AGENT}")
    wait_ready(bed)
    assert bed.out(NODE, f"systemctl is-enabled {AGENT}") == "enabled"
    assert bed.record() is not None and bed.subnet_keys()
    assert bed.sh(NODE, "ip link show flannel.1", check=False).returncode == 0
    pid = int(bed.show("MainPID"))

    r = bed.sh(NODE, "corekube-agent leave", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{LOCK} is held by PID {pid}, {AGENT}'s main process" in r.stderr, r.stderr
    assert f"Stopped {AGENT}." in r.stderr and f"Disabled {AGENT}." in r.stderr, r.stderr
    assert "Released the machine record" in r.stdout and "Removed flannel.1" in r.stdout, r.stdout

    assert bed.sh(NODE, f"systemctl is-active {AGENT}", check=False).stdout.strip() == "inactive"
    assert bed.sh(NODE, f"systemctl is-enabled {AGENT}", check=False).stdout.strip() == "disabled"
    assert bed.record() is None and bed.subnet_keys() == []
    assert bed.sh(NODE, "ip link show flannel.1", check=False).returncode != 0
    # Stopped for good: nothing registers again.
    assert bed.sh(NODE, f"flock -n {LOCK} true", check=False).returncode == 0
    r = bed.sh(NODE, "corekube-agent leave", check=False)
    assert r.returncode == 0 and "Nothing to do" in r.stdout, r.stdout + r.stderr

# SPDX-License-Identifier: Apache-2.0
"""The package and the cloud-init user-data on real nodes (tests/bed/bed.sh:
systemd-nspawn nodes with real systemd and Docker; the Kubernetes binaries
are the bed's STAND-INS, not Kubernetes).

  pkg        the .deb installed with dpkg -i, no configuration: the service
             is enabled but does not start until a configuration exists;
             purging removes what the package installed and nothing else.
  disc       the Heat stack's discovery server: cloud-init-discovery.yaml
             configures and starts etcd on its eth2 address.
  master,    provisioned by cloud-init from cloud-config/cloud-init-*.yaml
  minion-1   (NoCloud seed) with disc as their etcd: cloud-init writes the
             config, installs the package from the bed's apt repository, the
             agent starts and the node is ready.

Needs root. One bed named after our PID, removed on every exit path."""
import json
import os
import shutil

import pytest

import corekube_test.bed
from conftest import SRCDIR
from corekube_test.machineid import app_specific
from corekube_test.poll import wait_until

ETCD = "http://127.0.0.1:2379"
DISCOVERY = "http://192.168.3.5:2379"
CI_NODES = {"master": ("master", "192.168.3.11"), "minion-1": ("minion", "192.168.3.12")}
READY_TIMEOUT = 180

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


class Bed(corekube_test.bed.Bed):
    def __init__(self):
        super().__init__("dp", timeout=600)

    def etcdctl(self, endpoint, *args):
        return self.run("fabric", "env", "ETCDCTL_API=3", "etcdctl", f"--endpoints={endpoint}", *args,
                        check=False)

    def record(self, node, etcd=ETCD):
        mid = app_specific(self.out(node, "cat /etc/machine-id"))
        r = self.run("fabric", "env", "ETCDCTL_API=3", "etcdctl", f"--endpoints={etcd}", "get",
                     "--print-value-only", f"/corekube/machines/{mid}", check=False)
        return json.loads(r.stdout) if r.stdout.strip() else {}


@pytest.fixture(scope="module")
def bed():
    b = Bed()
    try:
        b.run("up")
        b.run("node-add", "disc", "discovery", "192.168.3.5", "--cloud-init")
        b.run("node-add", "pkg", "minion", "192.168.3.20", "--agent", "--no-conf")
        for name, (role, ip) in CI_NODES.items():
            b.run("node-add", name, role, ip, "--cloud-init", "--etcd", DISCOVERY)
        yield b
    finally:
        r = b.down()
        assert r.returncode == 0, r.stderr


def test_package_installed_with_dpkg(bed):
    assert bed.out("pkg", "dpkg-query -W -f '${Status} ${Version}' corekube-agent") == "install ok installed 0.1.0"
    bed.sh("pkg", "test -x /usr/sbin/corekube-agent && test -f /usr/share/man/man5/corekube-agent.conf.5.gz")


def test_no_start_without_config(bed):
    assert bed.out("pkg", "systemctl is-enabled corekube-agent.service") == "enabled"
    assert not bed.out("pkg", "ls /etc/corekube/agent.conf 2>/dev/null || true")
    bed.sh("pkg", "systemctl start corekube-agent.service")
    show = bed.out("pkg", "systemctl show -p ActiveState,ConditionResult,NRestarts corekube-agent.service")
    assert sorted(show.split()) == ["ActiveState=inactive", "ConditionResult=no", "NRestarts=0"], show


def test_starts_once_configured(bed):
    # A minion waits for a master: the cloud-init master's, on the discovery etcd.
    bed.sh("pkg", f"printf '[node]\\nrole = minion\\n[etcd]\\nendpoints = {DISCOVERY}\\n'"
                  " >/etc/corekube/agent.conf; systemctl start corekube-agent.service")
    assert bed.out("pkg", "systemctl is-active corekube-agent.service") == "active"
    wait_until(lambda: bed.record("pkg", DISCOVERY).get("state") == "ready", READY_TIMEOUT, "pkg to be ready")


def snapshot(bed, node):
    """Every path under the system directories, but for dpkg's own records
    and logs, which a purge rightly keeps (dpkg.log, status history)."""
    return set(bed.out(node, "find /etc /usr /opt /var/lib -xdev "
                             "-not -path '/var/lib/dpkg/*' -not -path '/var/lib/systemd/catalog*' "
                             "-not -path '/var/lib/systemd/timers*' -not -path '/var/lib/apt/*' "
                             "-not -path '/var/lib/docker*' -not -path '/var/lib/kube-standin*' "
                             "| sort").splitlines())


def test_purge_removes_only_its_own(bed):
    owned = [p for p in bed.out("pkg", "dpkg -L corekube-agent").splitlines() if p not in ("/.",)]
    bed.sh("pkg", "mkdir -p /etc/corekube/agent.conf.d && echo '# mine' >/etc/corekube/agent.conf.d/50-local.conf")
    keep = ["/etc/corekube/agent.conf", "/etc/corekube/agent.conf.d/50-local.conf", "/opt/bin/kubelet",
            "/run/flannel/subnet.env", "/lib/systemd/system/docker.service"]
    bed.sh("pkg", "dpkg --purge corekube-agent")
    assert bed.out("pkg", "systemctl is-active corekube-agent.service || true") in ("inactive", "unknown")
    gone = bed.out("pkg", "for p in " + " ".join(f"'{p}'" for p in owned) +
                   "; do [ -f \"$p\" ] && echo \"$p\"; done; true")
    assert gone == "", f"left after purge: {gone}"
    assert bed.out("pkg", "ls /etc/systemd/system/multi-user.target.wants/") .find("corekube") < 0
    for p in keep:
        assert bed.sh("pkg", f"test -e {p}", check=False).returncode == 0, f"purge removed {p}"
    # Install and purge again: the system is back where it was.
    before = snapshot(bed, "pkg")
    root = os.path.join(bed.data, "nodes", "pkg", "root")
    debs = sorted(os.listdir(os.path.join(bed.data, "artifacts", "apt")))
    shutil.copy(os.path.join(bed.data, "artifacts", "apt", [d for d in debs if d.endswith(".deb")][0]),
                os.path.join(root, "var", "tmp", "ck.deb"))
    bed.sh("pkg", "dpkg -i /var/tmp/ck.deb && rm /var/tmp/ck.deb")
    assert bed.out("pkg", "systemctl is-active corekube-agent.service") == "active"
    bed.sh("pkg", "dpkg --purge corekube-agent")
    after = snapshot(bed, "pkg")
    assert after == before, f"added: {sorted(after - before)}, removed: {sorted(before - after)}"


@pytest.mark.parametrize("node", list(CI_NODES) + ["disc"])
def test_cloud_init_done(bed, node):
    status = bed.out(node, "cloud-init status --long")
    assert "status: done" in status and "DataSourceNoCloud" in status, status
    if node != "disc":
        assert bed.out(node, "dpkg-query -W -f '${Status}' corekube-agent") == "install ok installed"


def test_discovery_serves_etcd_on_the_private_network(bed):
    assert bed.out("disc", "systemctl is-active etcd.service") == "active"
    members = bed.etcdctl(DISCOVERY, "member", "list").stdout
    assert f", {DISCOVERY}," in members, members


@pytest.mark.parametrize("node", list(CI_NODES))
def test_cloud_init_wrote_the_shipped_config(bed, node):
    role = CI_NODES[node][0]
    seed = bed.out(node, "cat /var/lib/cloud/seed/nocloud/user-data")
    with open(os.path.join(SRCDIR, "cloud-config", f"cloud-init-{role}.yaml")) as f:
        shipped = f.read()
    # The seed is the shipped file with the placeholders filled, nothing else.
    assert len(seed.splitlines()) == len(shipped.rstrip("\n").splitlines())
    assert "%" not in "".join(l for l in seed.splitlines() if "sha256" in l or "endpoints" in l)
    conf = bed.out(node, "cat /etc/corekube/agent.conf")
    assert f"role = {role}" in conf and f"endpoints = {DISCOVERY}" in conf
    assert bed.sh(node, "corekube-agent check-config >/dev/null", check=False).returncode == 0


def test_cloud_init_nodes_ready(bed):
    for node in CI_NODES:
        wait_until(lambda: bed.record(node, DISCOVERY).get("state") == "ready", READY_TIMEOUT,
                   f"{node} to be ready")
        assert bed.out(node, "systemctl is-active corekube-agent.service") == "active"
    # Their records are in the discovery node's etcd, not the fabric's.
    assert bed.record("master") == {}
    units = bed.record("minion-1", DISCOVERY)["units"]
    assert units == {"kubelet.service": "active", "kube-proxy.service": "active"}

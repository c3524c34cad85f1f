# SPDX-License-Identifier: Apache-2.0
"""Issue 14: containerd nodes take pod networking from the CNI network
configuration the agent writes, from the same subnet lease as Docker nodes.

Its own bed (tests/bed/bed.sh, named "cd<pid>"): etcd in a fabric namespace,
a master (Docker) and two minions booted with `node-add --runtime containerd`
(`[runtime] kind = containerd`, docker.service masked, Debian's containerd
and containernetworking-plugins), all real systemd in systemd-nspawn. The
Kubernetes binaries are STAND-INS (tests/standins). Containers are started
with `ctr run --cni` in the foreground under a transient unit, so that ctr
itself runs CNI DEL when the task ends (ctr 1.6 has no other way), and with
--cpu-shares 0: the node's cgroup has no cpu controller delegated, and ctr
would set cpu.weight (Docker does not). The tests
run in file order and each leaves the cluster converged.

Needs root; the rootfs is built once and cached (tests/bed/rootfs.sh)."""

import ipaddress
import json
import os

import pytest

from clusterbed import running_cluster, wait_until

NODES = [("master", "master", "192.168.3.11"), ("minion-1", "minion", "192.168.3.12"),
         ("minion-2", "minion", "192.168.3.13")]
MINIONS = ["minion-1", "minion-2"]
CNI_FILE = "/etc/cni/net.d/10-corekube.conflist"
CNI_STATE = "/var/lib/cni/networks/corekube"       # host-local's leases, one file per address
IMAGE = "docker.io/corekube/busybox:bed"           # rootfs.sh's OCI archive
ETCD = "http://127.0.0.1:2379"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


@pytest.fixture(scope="module")
def cluster():
    nodes = [(name, role, ip, *(["--runtime", "containerd"] if role == "minion" else [])) for name, role, ip in NODES]
    with running_cluster("cd", nodes, wait="converged", timings="containerd") as c:
        yield c


# ------------------------------------------------------------ helpers ----

def agent_log(c, node):
    return lambda: c.sh(node, "journalctl -q -u corekube-agent --no-pager | tail -n 30", check=False).stdout


def start(c, node, name):
    """`ctr run --cni` of busybox as NAME in node, in the foreground under the
    transient unit ctr-NAME; its eth0 address once it has one."""
    c.sh(node, f"ctr image inspect {IMAGE} >/dev/null 2>&1 || "
               f"ctr image import --snapshotter native /usr/share/corekube-bed/busybox-oci.tar >/dev/null; "
               f"systemd-run --quiet --unit=ctr-{name} ctr run --rm --cni --snapshotter native --cpu-shares 0 {IMAGE} {name} "
               f"sh -c 'trap \"exit 0\" TERM; sleep 86400 & wait'")

    def addr():
        r = c.sh(node, f"ctr task exec --exec-id a$$ {name} ip -4 -o addr show dev eth0", check=False)
        assert r.returncode == 0 and " inet " in r.stdout, (r.stdout + r.stderr).strip()[-200:]
        return ipaddress.ip_interface(r.stdout.split()[3])
    return wait_until(addr, 60, f"container {name} on {node} with an address",
                      lambda: c.sh(node, f"journalctl -q -u ctr-{name} --no-pager | tail", check=False).stdout)


def stop(c, node, name):
    """Ends NAME's task: ctr, in the foreground, runs CNI DEL, --rm removes it."""
    c.sh(node, f"ctr task kill -s KILL {name} || true")
    wait_until(lambda: c.sh(node, f"systemctl is-active ctr-{name}.service", check=False).returncode != 0,
               30, f"ctr run of {name} to end")


def ping(c, node, name, ip):
    def once():
        r = c.sh(node, f"ctr task exec --exec-id p$$ {name} ping -c 1 -W 1 {ip}", check=False)
        assert r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:]
        return True
    wait_until(once, 20, f"a ping from {node}'s {name} to {ip}")


def cni_conf(c, node):
    return json.loads(c.sh(node, f"cat {CNI_FILE}"))


def addrs(c, node, dev):
    r = c.sh(node, f"ip -j -4 addr show dev {dev}", check=False)
    if r.returncode != 0:
        return None
    return [f"{a['local']}/{a['prefixlen']}" for e in json.loads(r.stdout) for a in e["addr_info"]]


def ifindex(c, node, dev):
    return json.loads(c.sh(node, f"ip -j link show dev {dev}"))[0]["ifindex"]


def gateway(net):
    return f"{net.network_address + 1}/{net.prefixlen}"


# ------------------------------------------------------------ tests ----

def test_containerd_nodes_get_the_cni_file_and_no_docker_options(cluster):
    c = cluster
    leases = c.node_leases()
    for n in MINIONS:
        conf = cni_conf(c, n)
        mtu = json.loads(c.sh(n, "ip -j link show dev flannel.1"))[0]["mtu"]
        assert conf["cniVersion"] == "0.4.0" and conf["name"] == "corekube", conf
        bridge, portmap = conf["plugins"]
        assert bridge["type"] == "bridge" and bridge["bridge"] == "cni0" and bridge["mtu"] == mtu, bridge
        # ip-masq = no (the bed's default): the plugin masquerades, as Docker does.
        assert bridge["isGateway"] and bridge["isDefaultGateway"] and bridge["ipMasq"] is True, bridge
        rng = bridge["ipam"]["ranges"][0][0]
        assert bridge["ipam"]["type"] == "host-local"
        assert rng == {"subnet": str(leases[n]), "gateway": str(leases[n].network_address + 1)}, rng
        assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}, portmap
        # Nothing for Docker, which is masked and never started.
        assert c.sh(n, "test -e /run/flannel/docker_opts.env", check=False).returncode != 0
        assert c.sh(n, "systemctl is-active docker.service", check=False).stdout.strip() == "inactive"
        assert c.sh(n, "systemctl is-active containerd.service") == "active"
    # The Docker master beside them is served as before.
    assert "DOCKER_OPTS" in c.sh("master", "cat /run/flannel/docker_opts.env")
    assert c.sh("master", f"test -e {CNI_FILE}", check=False).returncode != 0


def test_containerd_down_is_waiting_not_failed(cluster):
    c, n = cluster, "minion-2"
    c.sh(n, "systemctl stop containerd.service; systemctl restart corekube-agent.service")

    def waiting():
        rec = c.records()[n]
        assert rec["state"] == "waiting" and rec.get("reason") == "unit:containerd.service", rec
        return rec
    rec = wait_until(waiting, 60, f"{n} waiting for containerd", agent_log(c, n))
    assert "containerd.service is inactive" in rec["message"], rec
    mark = c.mark()
    c.sh(n, "systemctl start containerd.service")
    c.wait_ready([n], since=mark, restarted=[n])


def test_ctr_containers_ping_across_flannel(cluster):
    c = cluster
    leases = c.node_leases()
    ips = {}
    for n in MINIONS:
        ip = start(c, n, "a")
        assert ip.ip in leases[n] and ip.network == leases[n], (n, ip, leases[n])
        assert addrs(c, n, "cni0") == [gateway(leases[n])]
        ips[n] = ip.ip
    ping(c, "minion-1", "a", ips["minion-2"])
    ping(c, "minion-2", "a", ips["minion-1"])


def test_cni_del_releases_the_address(cluster):
    c, n = cluster, "minion-1"
    ip = start(c, n, "b")
    assert c.sh(n, f"test -e {CNI_STATE}/{ip.ip}", check=False).returncode == 0
    stop(c, n, "b")
    wait_until(lambda: c.sh(n, f"test -e {CNI_STATE}/{ip.ip}", check=False).returncode != 0, 30,
               f"host-local to release {ip.ip}")
    assert c.sh(n, "ctr container ls -q") == "a"


def test_agent_restart_keeps_cni0_and_its_containers(cluster):
    c, n = cluster, "minion-2"
    before = ifindex(c, n, "cni0")
    mark = c.mark()
    c.sh(n, "systemctl restart corekube-agent.service")
    c.wait_ready([n], since=mark, restarted=[n])
    assert ifindex(c, n, "cni0") == before
    assert not [e for e in c.journal(n, since=mark) if "Deleted cni0" in str(e.get("MESSAGE"))]
    ip = c.sh(n, "ctr task exec --exec-id q a ip -4 -o addr show dev eth0").split()[3].split("/")[0]
    ping(c, "minion-1", "a", ip)


def test_subnet_move_rebuilds_cni0_for_new_containers(cluster):
    """The lease moves with a container running: the CNI file is rewritten,
    cni0 (on the old gateway) deleted, and a new container gets an address
    in the new subnet, reachable across flannel.1."""
    c, n = cluster, "minion-1"
    old = c.node_leases()[n]
    squat = {"PublicIP": "192.168.3.98", "BackendType": "vxlan",
             "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fe:01"}}
    key = f"/coreos.com/network/subnets/{old.network_address}-{old.prefixlen}"
    mark = c.mark()
    c.put(key, json.dumps(squat))
    try:
        def moved():
            rec = c.records()[n]
            net = ipaddress.ip_network(rec["subnet"])
            assert net != old and rec["state"] == "ready", rec
            return net
        new = wait_until(moved, 120, f"{n} ready on a new subnet", agent_log(c, n))
        rng = cni_conf(c, n)["plugins"][0]["ipam"]["ranges"][0][0]
        assert rng == {"subnet": str(new), "gateway": str(new.network_address + 1)}, rng
        said = [e["MESSAGE"] for e in c.journal(n, since=mark) if "Deleted cni0" in str(e.get("MESSAGE"))]
        assert len(said) == 1 and str(old.network_address + 1) in said[0], said
        ip = start(c, n, "c")
        assert ip.network == new, (ip, new)
        assert addrs(c, n, "cni0") == [gateway(new)]
        ping(c, "minion-2", "a", ip.ip)
    finally:
        c.delete(key)

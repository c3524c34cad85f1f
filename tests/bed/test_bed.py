# SPDX-License-Identifier: Apache-2.0
"""The node test bed itself (tests/bed/bed.sh): two systemd-nspawn nodes with
real systemd and a real Docker engine on a fabric bridge with etcd, the
project's units installed, and the Kubernetes STAND-INS (tests/standins: not
Kubernetes, which cannot be had here) behind the role units.  The agent's
`run` is not exercised here; this proves the ground it will run on.

Needs root.  Everything is made under a bed named after our PID, in
namespaces of its own, and removed by `bed.sh down` on every exit path."""

import ipaddress
import json
import os
import re
import subprocess
import time

import pytest

import corekube_test.bed
from corekube_test.poll import wait_until

NODES = {"master": ("master", "192.168.3.11", 11), "minion-1": ("minion", "192.168.3.12", 12)}
OUR_UNITS = ["corekube-agent.service", "docker.service"]
ROLE_UNITS = {
    "master": ["kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service"],
    "minion": ["kubelet.service", "kube-proxy.service"],
}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


class Bed(corekube_test.bed.Bed):
    def __init__(self):
        super().__init__("pt")

    def fabric_http(self, method, url, body=None):
        """An HTTP request from the fabric namespace (the host's python3)."""
        code = ("import sys, urllib.request, urllib.error\n"
                "req = urllib.request.Request(sys.argv[2], method=sys.argv[1],"
                " data=sys.argv[3].encode() if len(sys.argv) > 3 else None)\n"
                "try:\n"
                "    r = urllib.request.urlopen(req, timeout=5); print(r.status); print(r.read().decode())\n"
                "except urllib.error.HTTPError as e:\n"
                "    print(e.code); print(e.read().decode())\n")
        args = ["fabric", "/usr/bin/python3", "-c", code, method, url] + ([body] if body else [])
        r = self.run(*args, check=False)
        if r.returncode != 0:
            return None, r.stderr
        status, _, text = r.stdout.partition("\n")
        return int(status), text.strip()


def host_links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(": ")[1].split("@")[0] for line in out.splitlines())


@pytest.fixture(scope="module")
def bed():
    b = Bed()
    b.links_before = host_links()
    try:
        b.timed("up", "up")
        for name, (role, ip, _) in NODES.items():
            b.timed(f"node-add {name}", "node-add", name, role, ip)
        yield b
    finally:
        r = b.down()
        print("\nbed timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in b.timings.items()))
        assert r.returncode == 0, r.stderr


def test_systemd_running_in_each_node(bed):
    for name in NODES:
        state = bed.run("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        failed = bed.out(name, "systemctl --failed --no-legend")
        assert state == "running", f"{name}: {state}; failed units: {failed}"
        assert bed.out(name, "hostname") == name
    ids = {bed.out(n, "cat /etc/machine-id") for n in NODES}
    assert len(ids) == len(NODES), "machine ids must differ"


def test_nodes_reach_each_other_and_etcd(bed):
    assert "1 received" in bed.out("master", "ping -c1 -W2 192.168.3.12")
    r = bed.run("fabric", "etcdctl", "--endpoints=http://192.168.3.2:2379", "put", "/ckb-probe", "x")
    assert r.stdout.strip() == "OK"


def test_units_installed_and_verify_clean(bed):
    for name, (role, _, _) in NODES.items():
        units = OUR_UNITS + ROLE_UNITS[role]
        r = bed.run("exec", name, "systemd-analyze", "verify", *units, check=False)
        assert r.returncode == 0 and r.stdout + r.stderr == "", f"{name}: {r.stdout}{r.stderr}"
        drop_ins = bed.out(name, "systemctl show -p DropInPaths docker.service")
        assert "docker.service.d/40-flannel.conf" in drop_ins
        assert bed.out(name, "stat -c %a /opt/bin") == "755"


def test_agent_unit_sandbox_allows_what_the_agent_needs(bed):
    """corekube-agent.service's sandbox, exercised by a probe in its place:
    writable paths, /etc read-only, CAP_NET_ADMIN (a VXLAN link) and D-Bus
    calls to systemd from inside it."""
    probe = r"""
mkdir -p /run/systemd/system/corekube-agent.service.d
cat >/run/systemd/system/ckb-probe-target.service <<'EOF'
[Service]
Type=oneshot
ExecStart=/bin/true
EOF
cat >/run/systemd/system/corekube-agent.service.d/probe.conf <<'EOF'
[Service]
Type=oneshot
RemainAfterExit=yes
WatchdogSec=0
Restart=no
ExecStart=
ExecStart=/bin/sh -ec "\
echo x >/run/flannel/probe; echo x >/run/corekube/probe; echo x >/opt/bin/probe; rm /opt/bin/probe; \
cat /etc/machine-id /etc/corekube/agent.conf >/dev/null; \
if echo x >/etc/probe; then echo /etc is writable; exit 1; fi; \
ip link add flannel.99 type vxlan id 99 dstport 8472 dev eth2 nolearning; \
ip addr add 10.244.99.0/32 dev flannel.99; ip link set flannel.99 up; ip link del flannel.99; \
busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager \
        RestartUnit ss ckb-probe-target.service replace; \
echo SANDBOX-PROBE-OK"
EOF
systemctl daemon-reload
systemctl start corekube-agent.service || true
systemctl show -p Result --value corekube-agent.service
journalctl -q -u corekube-agent.service -o cat | grep -c SANDBOX-PROBE-OK || true
systemctl stop corekube-agent.service
rm -r /run/systemd/system/corekube-agent.service.d /run/systemd/system/ckb-probe-target.service
systemctl daemon-reload
"""
    result, ok = bed.out("master", probe).splitlines()
    log = bed.out("master", "journalctl -q -u corekube-agent.service -o cat")
    assert result == "success" and ok == "1", log


def test_agent_unit_exposure_at_most_3(bed):
    """systemd-analyze security on the installed unit inside a node (issue 9):
    the sandbox above must keep the exposure at 3.0 or below."""
    out = bed.out("master", "systemd-analyze security --no-pager corekube-agent.service")
    m = re.search(r"exposure level for corekube-agent\.service: ([0-9.]+)", out)
    assert m and float(m.group(1)) <= 3.0, out
    print(f"\ncorekube-agent.service exposure: {m.group(1)}")


def write_docker_opts(bed, node, n):
    """What the agent will write (SPEC 6: the persisted copy, which Docker's
    drop-in reads), here by hand; flannel.1 is left to the agent."""
    bed.sh(node, f"""
mkdir -p /var/lib/corekube
cat >/var/lib/corekube/docker_opts.env <<'EOF'
DOCKER_OPT_BIP="--bip=10.244.{n}.1/24"
DOCKER_OPT_MTU="--mtu=1450"
DOCKER_OPT_IPMASQ="--ip-masq=true"
DOCKER_OPTS="--bip=10.244.{n}.1/24 --mtu=1450 --ip-masq=true"
EOF
""")


def test_docker_runs_with_flannel_options(bed):
    for name, (_, _, n) in NODES.items():
        write_docker_opts(bed, name, n)
        bed.run("exec", name, "systemctl", "start", "docker.service")
        assert bed.out(name, "systemctl is-active docker.service") == "active"
        pid = bed.out(name, "systemctl show -p MainPID --value docker.service")
        cmdline = bed.out(name, f"tr '\\0' ' ' </proc/{pid}/cmdline")
        assert f"--bip=10.244.{n}.1/24" in cmdline and "--mtu=1450" in cmdline, cmdline
        addr = json.loads(bed.out(name, "ip -j -4 addr show dev docker0"))[0]
        assert [(a["local"], a["prefixlen"]) for a in addr["addr_info"]] == [(f"10.244.{n}.1", 24)]


def test_docker_run_gets_address_in_node_subnet(bed):
    for name, (_, _, n) in NODES.items():
        bed.run("exec", name, "docker", "import", "/usr/share/corekube-bed/busybox.tar", "ckb-busybox")
        out = bed.out(name, "docker run --rm ckb-busybox ip -4 -o addr show dev eth0")
        ip = ipaddress.ip_interface(out.split()[3])
        assert ip in ipaddress.ip_network(f"10.244.{n}.0/24"), out
        assert ip.ip != ipaddress.ip_address(f"10.244.{n}.1")
        mtu = bed.out(name, "docker run --rm ckb-busybox cat /sys/class/net/eth0/mtu")
        assert mtu == "1450"


def write_cluster_env(bed, node, ip):
    bed.sh(node, f"""
mkdir -p /run/corekube
cat >/run/corekube/cluster.env <<'EOF'
COREKUBE_ROLE={NODES[node][0]}
COREKUBE_NODE_NAME={node}
COREKUBE_NODE_IP={ip}
COREKUBE_MASTER_IP=192.168.3.11
COREKUBE_MASTER_IPS=192.168.3.11
COREKUBE_ETCD_ENDPOINTS=http://192.168.3.2:2379
FLANNEL_SUBNET=10.244.{NODES[node][2]}.1/24
EOF
""")


def test_role_units_run_the_standins(bed):
    """The role units start the STAND-INS (not Kubernetes) with issue 5's
    command lines, read from cluster.env."""
    for name, (role, ip, _) in NODES.items():
        write_cluster_env(bed, name, ip)
        bed.run("exec", name, "systemctl", "start", *ROLE_UNITS[role])
        for u in ROLE_UNITS[role]:
            assert bed.out(name, f"systemctl is-active {u}") == "active", u
    log = bed.out("master", "journalctl -q -u kube-apiserver.service -o cat")
    assert "--etcd_servers=http://192.168.3.2:2379" in log and "stand-in" in log
    log = bed.out("minion-1", "journalctl -q -u kubelet.service -o cat")
    assert "--hostname_override=192.168.3.12" in log


def test_apiserver_standin_accepts_registration_then_409(bed):
    url = "http://192.168.3.11:8080/api/v1beta1/minions"
    body = json.dumps({"kind": "Minion", "id": "192.168.3.12", "hostIP": "192.168.3.12",
                       "apiVersion": "v1beta1"})
    wait_until(lambda: bed.fabric_http("GET", url)[0] == 200, 20, "the apiserver stand-in")
    assert bed.fabric_http("POST", url, body)[0] == 201
    code, text = bed.fabric_http("POST", url, body)
    assert code == 409, text
    listed = json.loads(bed.out("master", "/opt/bin/kubectl get minions"))
    assert [m["id"] for m in listed["items"]] == ["192.168.3.12"]


def test_standin_failure_switch_fails_the_unit_and_recovers(bed):
    node = "minion-1"
    # The restart job itself may end "done" or "failed": the stand-in exits at
    # once, racing systemd's exec notification (Type=exec). The unit's Result
    # tells in either case.
    bed.sh(node, "touch /etc/kube-standin/fail-kubelet; systemctl restart kubelet.service || true")
    wait_until(lambda: bed.out(node, "systemctl show -p Result --value kubelet.service") == "exit-code",
               30, "kubelet to fail")
    bed.sh(node, "rm /etc/kube-standin/fail-kubelet")
    wait_until(lambda: bed.out(node, "systemctl show -p Result,ActiveState --value kubelet.service")
               .split() == ["success", "active"], 30, "kubelet to recover by itself")


def test_second_bed_coexists(bed):
    """Another bed with the same addresses runs beside this one, and its
    removal leaves this one alone."""
    other = Bed()
    other.name = bed.name + "b"
    try:
        other.run("up")
        other.run("node-add", "master", "master", "192.168.3.11")
        assert "1 received" in other.out("master", "ping -c1 -W2 192.168.3.2")
        r = other.run("fabric", "etcdctl", "--endpoints=http://192.168.3.2:2379", "get", "/ckb-probe")
        assert r.stdout == "", "the second bed must have its own etcd"
    finally:
        other.down()
    assert bed_processes(other) == []
    assert bed.out("master", "systemctl is-system-running") == "running"
    assert "1 received" in bed.out("minion-1", "ping -c1 -W2 192.168.3.11")


def bed_processes(bed):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"ckb-{bed.name}-" in cmd or bed.tmp in cmd:
            found.append((pid, cmd))
    return found


def test_down_leaves_nothing_behind(bed):
    start = time.monotonic()
    bed.run("down")
    bed.timings["down"] = time.monotonic() - start
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert [n for n in netns if n.startswith(f"ckb-{bed.name}-")] == []
    assert bed_processes(bed) == []
    with open("/proc/mounts") as f:
        mounts = [line for line in f if f"ckb-{bed.name}-" in line or bed.tmp in line]
    assert mounts == []
    assert host_links() == bed.links_before
    assert not os.path.exists(bed.state) and not os.path.exists(bed.data)
    # A second down finds nothing to do and still succeeds.
    assert "nothing to remove" in bed.run("down").stderr

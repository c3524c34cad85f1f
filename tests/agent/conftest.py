# SPDX-License-Identifier: Apache-2.0
"""A cluster of real corekube-agent processes without systemd, each node in
its own network namespace, on a fabric namespace holding a bridge
(192.168.3.0/24) and a real etcd on the bridge address.

Each agent runs `ip netns exec NODE unshare -m` with a private /run (tmpfs)
and its own /etc/machine-id bind-mounted, so several agents share this host.
Everything is created under names holding the pid and removed on every exit
path: agents and etcd are killed by PID, namespaces deleted (their veths go
with them), the temporary directory removed. Nothing touches the host
namespace's links, addresses or routes, and no traffic leaves the
namespaces (etcdctl runs inside the fabric namespace).

meson passes AGENT_BIN, the built corekube-agent."""

import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid

import pytest

from corekube_test import poll
from corekube_test.etcd import Etcd
from corekube_test.machineid import app_specific
from corekube_test.netns import Netns
from corekube_test.proc import run, stop

AGENT = os.environ.get("AGENT_BIN", "")
FABRIC_IP = "192.168.3.1"
ETCD_PORT = 2379          # free: the fabric namespace is new
NET_PREFIX = "/coreos.com/network"
CK_PREFIX = "/corekube"

_seq = [0]


# A probe may fail (AssertionError) while things settle.
wait_until = functools.partial(poll.wait_until, retry_on=(AssertionError,))


def fabric_etcd(fabric, workdir):
    """etcd inside the fabric namespace, on the bridge address and loopback."""
    return Etcd(workdir, name="fabric", netns=fabric.name, host=FABRIC_IP, client_port=ETCD_PORT,
                data_dir=os.path.join(workdir, "etcd-data"), log_path=os.path.join(workdir, "etcd.log"),
                token=f"ck-agent-{os.getpid()}")


class Node:
    def __init__(self, cluster, index, role):
        self.cluster = cluster
        self.index = index
        self.name = f"n{index}"
        self.role = role
        self.ip = f"192.168.3.{10 + index}"
        self.machine_id = uuid.uuid4().hex
        self.node_id = app_specific(self.machine_id)    # what names it in etcd
        self.dir = os.path.join(cluster.workdir, self.name)
        os.makedirs(self.dir)
        self.machine_id_file = os.path.join(self.dir, "machine-id")
        with open(self.machine_id_file, "w") as f:
            f.write(self.machine_id + "\n")
        self.conf = os.path.join(self.dir, "agent.conf")
        self.subnet_file = os.path.join(self.dir, "subnet.env")
        with open(self.conf, "w") as f:
            f.write(node_config(self.name, role, f"{self.ip}/24", cluster.etcd.url, self.dir))
        # Bound on /run/corekube in every command of this node, so that the
        # agent and a later `leave` or `run` see the same agent.lock.
        self.run_dir = os.path.join(self.dir, "run-corekube")
        os.makedirs(self.run_dir)
        self.log_path = os.path.join(self.dir, "agent.log")
        self.state_dir = os.path.join(self.dir, "state")
        self.proc = None
        self.starts = 0
        self.extra_env = {}         # e.g. NOTIFY_SOCKET, DBUS_SYSTEM_BUS_ADDRESS
        self.ns = Netns(f"{cluster.tag}{self.name}")
        veth = f"v{index}"          # inside the fabric namespace: no clash possible
        cluster.fabric.ip("link", "add", veth, "type", "veth", "peer", "name", "eth2", "netns", self.ns.name)
        cluster.fabric.ip("link", "set", veth, "master", "br0", "up")

    def argv(self, *agent_args, machine_id_file=None, run_dir=None):
        """The agent in this node's namespaces: private /run, the node's
        /run/corekube (or run_dir), our machine-id."""
        script = ('mount -t tmpfs none /run && mkdir -p /run/corekube && mount --bind "$1" /run/corekube && '
                  'mount --bind "$2" /etc/machine-id && shift 2 && exec "$@"')
        return ["ip", "netns", "exec", self.ns.name, "unshare", "-m", "--propagation", "private",
                "sh", "-c", script, "sh", run_dir or self.run_dir, machine_id_file or self.machine_id_file,
                # Its persistent state (/var/lib/corekube under systemd) in the node's directory.
                "env", f"STATE_DIRECTORY={self.state_dir}", AGENT, *agent_args]

    def start(self):
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {self.starts} ====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv("run", "-c", self.conf), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.alive():
            stop(self.proc, sig, 10)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def cli(self, *args, conf=None, machine_id_file=None, timeout=60, env=None, run_dir=None):
        """A one-shot agent command (status, leave) in this node; env: extra
        environment variables; run_dir: another /run/corekube (one without
        the running agent's lock)."""
        argv = self.argv(*args, "-c", conf or self.conf, machine_id_file=machine_id_file, run_dir=run_dir)
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        return run(*argv, check=False, timeout=timeout)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_since_start(self):
        """The log of the current (last) run only."""
        return self.log().rsplit(f"==== start {self.starts} ====", 1)[-1]

    def record(self):
        v = self.cluster.etcd.get_prefix(f"{CK_PREFIX}/machines/{self.node_id}")
        return v.get(f"{CK_PREFIX}/machines/{self.node_id}")

    def state(self):
        r = self.record()
        return json.loads(r["value"]).get("state") if r else None

    def subnet_record(self):
        """(key, value dict, lease) of the subnet lease whose PublicIP is ours."""
        for k, v in self.cluster.etcd.get_prefix(f"{NET_PREFIX}/subnets/").items():
            try:
                d = json.loads(v["value"])
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("PublicIP") == self.ip:
                return k, d, v["lease"]
        return None

    def subnet(self):
        r = self.subnet_record()
        return r[0].rsplit("/", 1)[1].replace("-", "/") if r else None

    def vtep_mac(self):
        return self.ns.ipj("link", "show", "dev", "flannel.1")[0]["address"]

    def kernel_state(self, dev="flannel.1"):
        neigh = {(n["dst"], n.get("lladdr"), tuple(n.get("state", []))) for n in self.ns.ipj("neigh", "show", "dev", dev)
                 if "lladdr" in n}
        fdb = {(f["mac"], f["dst"]) for f in self.ns.bridgej("fdb", "show", "dev", dev) if "dst" in f}
        routes = {(r["dst"], r.get("gateway")) for r in self.ns.ipj("route", "show", "dev", dev)
                  if r["dst"].startswith("10.")}
        return neigh, fdb, routes


def etcd_auth_network_only(etcd):
    """Auth on in the real etcd: user root (rootpw) may do anything, user
    agent (agentpw) only the network prefix, not yet the machine records;
    the test's own etcdctl calls go as root from now on."""
    etcd.ctl("user", "add", "root", "--new-user-password=rootpw")
    etcd.ctl("user", "add", "agent", "--new-user-password=agentpw")
    etcd.ctl("role", "add", "ck")
    etcd.ctl("role", "grant-permission", "ck", "--prefix=true", "readwrite", "/coreos.com/network/")
    etcd.ctl("user", "grant-role", "agent", "ck")
    etcd.ctl("auth", "enable")
    etcd.ctl_extra = ["--user", "root:rootpw"]


def node_config(name, role, address, endpoint, d):
    return f"""\
[node]
role = {role}
name = {name}
interface = eth2
address = {address}

[etcd]
endpoints = {endpoint}
ttl = 10s

[network]
subnet-file = {d}/subnet.env
docker-opts-file = {d}/docker_opts.env

[runtime]
restart = no

[role.master]
units =
artifacts =

[role.minion]
units =
artifacts =
"""


def expected_state(peers):
    """peers: [(subnet "a.b.c.d/len", public ip, mac)]"""
    neigh = {(s.split("/")[0], mac, ("PERMANENT",)) for s, ip, mac in peers}
    fdb = {(mac, ip) for s, ip, mac in peers}
    routes = {(s, s.split("/")[0]) for s, ip, mac in peers}
    return neigh, fdb, routes


class Cluster:
    def __init__(self, workdir):
        _seq[0] += 1
        self.tag = f"ck{os.getpid()}c{_seq[0]}"
        self.workdir = workdir
        self.nodes = []
        self.fabric = Netns(f"{self.tag}f")
        self.fabric.ip("link", "add", "br0", "type", "bridge")
        self.fabric.ip("link", "set", "br0", "up")
        self.fabric.ip("addr", "add", f"{FABRIC_IP}/24", "dev", "br0")
        self.etcd = fabric_etcd(self.fabric, workdir)

    def add_node(self, role="minion"):
        n = Node(self, len(self.nodes) + 1, role)
        self.nodes.append(n)
        return n

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def wait_ready(self, nodes=None, timeout=60):
        nodes = nodes or self.live()

        def ready():
            for n in nodes:
                if not n.alive():
                    raise RuntimeError(f"agent {n.name} exited ({n.proc.returncode if n.proc else '?'})")
                if n.state() != "ready":
                    return False
            return True
        wait_until(ready, timeout, f"{[n.name for n in nodes]} ready", interval=0.2)

    def peers_of(self, node, members):
        return [(m.subnet(), m.ip, m.vtep_mac()) for m in members if m is not node]

    def expected(self, members=None):
        """{node name: the entries its flannel.1 should hold} (reads etcd)."""
        members = members or self.live()
        return {n.name: expected_state(self.peers_of(n, members)) for n in members}

    def converged(self, members=None, expected=None):
        """Every member's flannel.1 holds exactly the other members' entries."""
        members = members or self.live()
        expected = expected or self.expected(members)
        for n in members:
            if not n.ns.has_link("flannel.1"):
                raise AssertionError(f"{n.name}: no flannel.1")
            want = expected[n.name]
            got = n.kernel_state()
            if got != want:
                raise AssertionError(f"{n.name}: kernel {got} != expected {want}")
        return True

    def wait_converged(self, members=None, timeout=30):
        wait_until(lambda: self.converged(members), timeout, "peers converged", interval=0.1)

    def logs(self):
        parts = []
        for n in self.nodes:
            parts.append(f"----- {n.name} ({n.ns.name}) {n.log_path} -----\n{n.log()[-6000:]}")
        try:
            with open(self.etcd.log_path, errors="replace") as f:
                parts.append(f"----- etcd -----\n{f.read()[-2000:]}")
        except OSError:
            pass
        return "\n".join(parts)

    def destroy(self):
        for n in self.nodes:
            try:
                n.stop(signal.SIGKILL)
            except Exception:
                pass
        self.etcd.stop()
        for n in self.nodes:
            n.ns.delete()
        self.fabric.delete()


_live_clusters = []


def make_cluster(n_nodes, start=True):
    """A generator: builds the fabric, etcd and n_nodes agents (the first a
    master), yields the cluster, and removes everything afterwards."""
    workdir = tempfile.mkdtemp(prefix=f"corekube-agent-{os.getpid()}-")
    c = None
    try:
        c = Cluster(workdir)
        _live_clusters.append(c)
        c.etcd.start(timeout=20)
        for i in range(n_nodes):
            c.add_node("master" if i == 0 else "minion")
        if start:
            for n in c.nodes:
                n.start()
            try:
                c.wait_ready()
            except Exception as e:
                raise AssertionError(f"{e}\n{c.logs()}") from e
        yield c
    finally:
        if c:
            _live_clusters.remove(c)
            c.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster3():
    yield from make_cluster(3)


@pytest.fixture
def fresh_cluster():
    """make(n, start) -> a cluster of its own, removed after the test."""
    gens = []

    def make(n, start=True):
        g = make_cluster(n, start)
        gens.append(g)
        return next(g)
    yield make
    for g in gens:
        g.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        # The agents' logs of every cluster alive at the failure.
        for c in _live_clusters:
            rep.sections.append((f"agent logs {c.tag}", c.logs()))


def pytest_configure(config):
    if not AGENT or not os.access(AGENT, os.X_OK):
        raise pytest.UsageError("AGENT_BIN must point to the built corekube-agent")
    if os.geteuid() != 0:
        raise pytest.UsageError("the agent tests need root (network namespaces)")

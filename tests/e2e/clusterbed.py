# SPDX-License-Identifier: Apache-2.0
"""A cluster on the nspawn test bed (tests/bed/bed.sh) for the end-to-end
suite: nodes, etcd as seen from the fabric, each node's flannel.1 as the
kernel holds it, Docker containers, and polls with deadlines."""

import base64
import contextlib
import functools
import ipaddress
import json
import os
import shutil
import signal
import time

import corekube_test.bed
from corekube_test import poll
from corekube_test.bed import BED_SH

__all__ = ["BED_SH", "Cluster", "running_cluster", "wait_until"]

ETCD = "http://127.0.0.1:2379"          # etcd's loopback inside the fabric netns
MACHINES = "/corekube/machines/"
SUBNETS = "/coreos.com/network/subnets/"
IMAGE = "ckb-busybox"
CONTAINER = "e2e"
MID_READY = "55bbe08da66a1b049c31d9b0d47824dd"


# Conditions may explain themselves: an AssertionError means "not yet".
wait_until = functools.partial(poll.wait_until, retry_on=(AssertionError,), interval=0.2)


def b64(s):
    return base64.b64decode(s).decode(errors="replace")


def _sigterm(signum, frame):
    # meson's timeout sends SIGTERM: an exception lets the teardown run.
    raise KeyboardInterrupt("SIGTERM")


@contextlib.contextmanager
def running_cluster(prefix, nodes, wait="ready", deadline=180, timings=None):
    """The body of every e2e module's `cluster` fixture: a bed named after
    prefix, the nodes [(name, role, ip, *node-add options), ...] booted
    with their agents,
    then waited for: "ready" (every record ready) or "converged" (and every
    flannel.1 exact). The bed is removed on the way out, also when meson's
    timeout sends SIGTERM; timings, if given, names the line printed then."""
    old = signal.signal(signal.SIGTERM, _sigterm)
    c = Cluster(prefix)
    try:
        c.up()
        for name, role, ip, *opts in nodes:
            c.add_node(name, role, ip, *opts)
        if wait == "converged":
            c.wait_converged(deadline=deadline)
        else:
            _, took = c.wait_ready(deadline=deadline)
            c.timings["all ready after boot"] = took
        c.initial = {n: r["subnet"] for n, r in c.records().items()}
        yield c
    finally:
        r = c.down()
        signal.signal(signal.SIGTERM, old)
        if timings:
            print(f"\n{timings} timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in c.timings.items()))
        assert r.returncode == 0, r.stderr


class Node:
    def __init__(self, name, role, ip):
        self.name, self.role, self.ip = name, role, ip


class Cluster(corekube_test.bed.Bed):
    def __init__(self, prefix="ec"):
        super().__init__(prefix)
        self.nodes = {}
        self.removed = False

    # ---- bed.sh ----

    def up(self):
        self.timed("up", "up")

    def add_node(self, name, role, ip, *opts):
        self.timed(f"boot {name}", "node-add", name, role, ip, "--agent", "--no-standins", *opts)
        self.nodes[name] = Node(name, role, ip)

    def sh(self, node, script, check=True, timeout=120):
        """A shell script inside a node (all its namespaces); its stdout."""
        r = self.run("exec", node, "/bin/sh", "-ec", script, check=False, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{node}: `{script}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r.stdout.strip() if check else r

    def netns(self, node):
        """The node's network namespace (bed.sh: ckb-BED-NODE), for tools run
        from the host by PID (ip -n NS monitor ...)."""
        return f"ckb-{self.name}-{node}"

    def deb_path(self):
        """The suite's .deb, as the bed installed it on every node."""
        with open(os.path.join(self.state, "deb.env")) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line)["CKB_DEB"]

    def install_deb(self, node, deb, timeout=180):
        """dpkg -i of DEB inside the running node (its maintainer scripts
        run there, as on a real host: an upgrade's postinst restarts the
        agent); the output of dpkg."""
        root = os.path.join(self.data, "nodes", node, "root")
        dest = "/var/tmp/" + os.path.basename(deb)
        shutil.copyfile(deb, root + dest)
        try:
            return self.sh(node, f"DEBIAN_FRONTEND=noninteractive dpkg -i {dest}", timeout=timeout)
        finally:
            self.sh(node, f"rm -f {dest}", check=False)

    def fabric(self, *args, check=True):
        return self.run("fabric", *args, check=check)

    # ---- etcd ----

    def etcdctl(self, *args, check=True):
        return self.fabric("env", "ETCDCTL_API=3", "etcdctl", f"--endpoints={ETCD}",
                           "--command-timeout=5s", *args, check=check)

    def kvs(self, prefix):
        """[(key, value, lease)] under prefix, in key order."""
        out = self.etcdctl("get", "--prefix", prefix, "-w", "json").stdout
        return [(b64(kv["key"]), b64(kv["value"]), kv.get("lease", 0))
                for kv in json.loads(out).get("kvs", [])]

    def put(self, key, value):
        self.etcdctl("put", key, value)

    def delete(self, key):
        self.etcdctl("del", key)

    def records(self):
        """Machine records by name; a name twice is an error."""
        recs = {}
        for key, value, lease in self.kvs(MACHINES):
            r = json.loads(value)
            assert r["name"] not in recs, f"two machine records for {r['name']}"
            assert key == MACHINES + r["id"], f"record {key} says id {r['id']}"
            r["_lease"] = lease
            recs[r["name"]] = r
        return recs

    def leases(self):
        """Subnet leases: {network: record} (a record that does not parse: None)."""
        out = {}
        for key, value, _ in self.kvs(SUBNETS):
            a, _, n = key[len(SUBNETS):].partition("-")
            try:
                net = ipaddress.ip_network(f"{a}/{n}")
            except ValueError:
                continue
            try:
                out[net] = json.loads(value)
            except ValueError:
                out[net] = None
        return out

    def node_leases(self):
        """The leases of our nodes: {node name: network}; one lease per node."""
        by_ip = {n.ip: name for name, n in self.nodes.items()}
        out = {}
        for net, rec in self.leases().items():
            name = by_ip.get((rec or {}).get("PublicIP"))
            if name is None:
                continue
            assert name not in out, f"{name} holds two subnet leases: {out[name]} and {net}"
            out[name] = net
        return out

    def ready(self, names=None, since=None, restarted=None):
        """Every named node's record says ready; with since (a mark()), the
        agents of the restarted nodes (default: all) have also logged their
        ready milestone after it: a record left by an agent that is gone
        says ready too."""
        recs = self.records()
        for n in names or self.nodes:
            st = recs.get(n, {}).get("state")
            assert st == "ready", f"{n} is {st or 'without a record'}"
            if since is not None and (restarted is None or n in restarted):
                assert any(e.get("MESSAGE_ID") == MID_READY for e in self.journal(n, since=since)), \
                    f"{n}'s agent has not said ready since the fault"
        return recs

    def wait_ready(self, names=None, deadline=120, since=None, restarted=None):
        start = time.monotonic()
        recs = wait_until(lambda: self.ready(names, since, restarted), deadline, "every node to be ready")
        return recs, time.monotonic() - start

    # ---- systemd inside a node ----

    def agent_show(self, node, props="MainPID,NRestarts,ActiveState"):
        out = self.sh(node, f"systemctl show -p {props} corekube-agent.service")
        return dict(line.split("=", 1) for line in out.splitlines())

    def journal(self, node, unit="corekube-agent.service", since=None):
        """The unit's journal entries as dicts; since: a mark() of the node."""
        entries = [json.loads(line) for line in
                   self.sh(node, f"journalctl -q -u {unit} -o json --no-pager").splitlines() if line]
        return [e for e in entries if since is None or int(e["__REALTIME_TIMESTAMP"]) > since]

    @staticmethod
    def mark():
        """Now, in microseconds of the realtime clock the nodes share with
        the host (for journal(since=) and ready(since=))."""
        return int(time.time() * 1e6)

    # ---- the kernel's view of flannel.1 ----

    def overlay(self, node):
        """flannel.1 in a node: (routes, neighbours, fdb) as sets, or None."""
        r = self.sh(node, "ip -j -d link show flannel.1", check=False)
        if r.returncode != 0:
            return None
        routes = {(e["dst"], e.get("gateway"), "onlink" in e.get("flags", []))
                  for e in json.loads(self.sh(node, "ip -j -4 route show dev flannel.1") or "[]")}
        neigh = {(e["dst"], e.get("lladdr"), tuple(e.get("state", [])))
                 for e in json.loads(self.sh(node, "ip -j -4 neigh show dev flannel.1") or "[]")}
        fdb = {(e["mac"], e.get("dst"), e.get("state"))
               for e in json.loads(self.sh(node, "bridge -j fdb show dev flannel.1") or "[]")}
        return routes, neigh, fdb

    def expected_overlay(self, node, leases=None):
        """What SPEC 6 says flannel.1 in node holds: one route, ARP and FDB
        entry per peer lease of ours, nothing else."""
        leases = leases if leases is not None else self.leases()
        by_net = self.node_leases()
        routes, neigh, fdb = set(), set(), set()
        for name, net in by_net.items():
            if name == node:
                continue
            rec = leases[net]
            gw = str(net.network_address)
            mac = rec["BackendData"]["VtepMAC"]
            routes.add((str(net), gw, True))
            neigh.add((gw, mac, ("PERMANENT",)))
            fdb.add((mac, rec["PublicIP"], "permanent"))
        return routes, neigh, fdb

    def overlay_exact(self, node):
        got, want = self.overlay(node), self.expected_overlay(node)
        assert got is not None, f"{node}: no flannel.1"
        for what, g, w in zip(("routes", "ARP", "FDB"), got, want):
            assert g == w, f"{node}: {what} missing {sorted(w - g)}, extra {sorted(g - w)}"
        return got

    def wait_converged(self, deadline=120, since=None, restarted=None):
        """Every node ready and every flannel.1 holding exactly its peers."""
        recs, took = self.wait_ready(deadline=deadline, since=since, restarted=restarted)
        wait_until(lambda: all(self.overlay_exact(n) for n in self.nodes), 30,
                   "every flannel.1 to hold exactly its peers")
        return recs, took

    # ---- Docker ----

    def container_ip(self, node):
        """A busybox container named e2e running in node (made if missing); its IP."""
        running = self.sh(node, f"docker inspect -f '{{{{.State.Running}}}}' {CONTAINER} 2>/dev/null || true")
        if running != "true":
            self.sh(node, f"docker image inspect {IMAGE} >/dev/null 2>&1 || "
                          f"docker import /usr/share/corekube-bed/busybox.tar {IMAGE} >/dev/null; "
                          f"docker rm -f {CONTAINER} >/dev/null 2>&1 || true; "
                          f"docker run -d --name {CONTAINER} {IMAGE} sh -c "
                          f"'trap \"exit 0\" TERM; sleep 86400 & wait' >/dev/null")
        return self.sh(node, f"docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {CONTAINER}")

    def ping(self, src, dst_ip, deadline=15):
        """Ping from src's container until an answer comes back."""
        def once():
            r = self.sh(src, f"docker exec {CONTAINER} ping -c 1 -W 1 {dst_ip}", check=False)
            assert r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:]
            return True
        wait_until(once, deadline, f"a ping from {src}'s container to {dst_ip}")

    def ping_all(self, names=None):
        names = list(names or self.nodes)
        ips = {n: self.container_ip(n) for n in names}
        for n, ip in ips.items():
            assert ipaddress.ip_address(ip) in self.node_leases()[n], f"{n}'s container {ip}"
        for a in names:
            for b in names:
                if a != b:
                    self.ping(a, ips[b])
        return ips

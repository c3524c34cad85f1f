# SPDX-License-Identifier: Apache-2.0
"""Lifecycle without disruption (issue 12), with real agents in network
namespaces around a real etcd (conftest.py): restarts, SIGKILLs, SIGHUP and
an etcd outage take no traffic away, and entries removed by someone else
come back.

Traffic is a real ping between two nodes' flannel.1 addresses at 50
packets a second; a netlink monitor (`ip monitor`, `bridge monitor`) in
every node records each deletion on flannel.1, so a removal that a lost
packet would not show (a hole shorter than 20 ms) still fails the test."""

import json
import os
import re
import signal
import subprocess

import pytest

from conftest import wait_until


def overlay_ip(node):
    return node.ns.ipj("-4", "addr", "show", "dev", "flannel.1")[0]["addr_info"][0]["local"]


class Monitor:
    """`ip monitor route neigh` and `bridge monitor fdb` in a node's netns."""

    def __init__(self, node):
        self.node = node
        self.procs = [subprocess.Popen(["ip", "-n", node.ns.name, "-ts", *cmd], stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True)
                      for cmd in (["monitor", "route", "neigh"],)] + \
            [subprocess.Popen(["bridge", "-n", node.ns.name, "-ts", "monitor", "fdb"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)]

    def deletions(self):
        """Stops the monitors; the 'Deleted' lines about flannel.1."""
        out = []
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
            try:
                text, _ = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                text, _ = p.communicate()
            out += [line for line in text.splitlines() if "Deleted" in line and "flannel.1" in line]
        return out


class Ping:
    """ping -i 0.02 from one node to another's flannel.1 address."""

    def __init__(self, src, dst_ip):
        self.proc = subprocess.Popen(["ip", "netns", "exec", src.ns.name, "ping", "-n", "-i", "0.02", dst_ip],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self):
        """(transmitted, received) from ping's summary after SIGINT."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=20)
        m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
        assert m, out[-2000:]
        return int(m.group(1)), int(m.group(2))


def ready_since_start(n):
    """The current process of n logged its ready milestone."""
    if not n.alive():
        raise AssertionError(f"{n.name} is not running")
    return f"Node {n.name} is ready." in n.log_since_start()


def restart(c, n, sig):
    """Ends n's agent with sig, starts it again, waits until it is ready
    and its flannel.1 holds every peer."""
    if sig == signal.SIGKILL:
        assert n.stop(signal.SIGKILL) == -signal.SIGKILL
    else:
        assert n.stop(sig) == 0
    n.start()
    wait_until(lambda: ready_since_start(n), 30, f"{n.name} ready again")
    c.wait_converged()


@pytest.fixture
def cluster(fresh_cluster):
    c = fresh_cluster(3)
    c.wait_converged()
    return c


def test_restarts_kills_and_an_etcd_outage_take_no_traffic(cluster):
    c = cluster
    n2, n3 = c.nodes[1], c.nodes[2]
    # The traffic must flow before it is measured.
    wait_until(lambda: n2.ns.exec("ping", "-c", "1", "-W", "1", overlay_ip(n3), check=False).returncode == 0, 10,
               "n2 -> n3 over flannel.1")
    monitors = [Monitor(n) for n in c.nodes]
    pings = [Ping(n2, overlay_ip(n3)), Ping(n3, overlay_ip(n2))]
    try:
        for _ in range(5):
            restart(c, n2, signal.SIGTERM)
            restart(c, n3, signal.SIGKILL)
        # SIGHUP: a re-list, the same process.
        for n in (n2, n3):
            pid = n.proc.pid
            n.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "Reloading" in n.log_since_start(), 10, f"{n.name} reloads")
            assert n.alive() and n.proc.pid == pid
        # etcd away for 15 s (the scenario, not a wait for something), then back with its data.
        c.etcd.stop()
        subprocess.run(["sleep", "15"], check=True)
        c.etcd.start(timeout=20)
        c.wait_ready(timeout=60)
        assert all(n.alive() for n in c.nodes), c.logs()
    finally:
        counts = [p.finish() for p in pings]
        deleted = [line for m in monitors for line in m.deletions()]
    assert deleted == [], "live peers' entries were deleted:\n" + "\n".join(deleted)
    for sent, got in counts:
        assert sent > 500 and got == sent, f"{sent - got} of {sent} packets lost"
    c.wait_converged()


def test_sighup_relists_and_keeps_running(cluster):
    c = cluster
    n = c.nodes[1]
    pid = n.proc.pid
    n.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "Reloading: listing the peers in etcd again" in n.log_since_start(), 10, "the reload")
    assert n.alive() and n.proc.pid == pid
    c.wait_converged()


@pytest.mark.parametrize("what", ["route", "neigh", "fdb"])
def test_entries_removed_by_hand_come_back(cluster, what):
    c = cluster
    n2, n3 = c.nodes[1], c.nodes[2]
    subnet, mac = n3.subnet(), n3.vtep_mac()
    net = subnet.split("/")[0]
    if what == "route":
        n2.ns.ip("route", "del", subnet, "dev", "flannel.1")
    elif what == "neigh":
        n2.ns.ip("neigh", "del", net, "dev", "flannel.1")
    else:
        subprocess.run(["bridge", "-n", n2.ns.name, "fdb", "del", mac, "dev", "flannel.1", "dst", n3.ip],
                       check=True)
    # The promise is "within a second"; the test polls with room to spare.
    c.wait_converged(timeout=10)
    assert "Entries on flannel.1 were changed by someone else" in n2.log_since_start()


def test_a_foreign_entry_is_removed_once_the_peer_list_is_read(cluster):
    c = cluster
    n2 = c.nodes[1]
    n2.ns.ip("route", "add", "10.244.250.0/24", "via", "10.244.250.0", "dev", "flannel.1", "onlink")
    c.wait_converged(timeout=10)


# ---- after a reboot (issue 16): the persisted state ----


def snapshot_of(n):
    try:
        with open(os.path.join(n.state_dir, "peers.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait_snapshot(c, n):
    """peers.json of n (written within a second of a change) lists every other node."""
    want = sorted((m.subnet(), m.ip, m.vtep_mac()) for m in c.nodes if m is not n)

    def check():
        snap = snapshot_of(n)
        assert snap, "no peers.json yet"
        got = sorted((p["subnet"], p["public_ip"], p["vtep_mac"]) for p in snap["peers"])
        assert got == want, f"peers.json lists {got}, want {want}"
        return snap
    return wait_until(check, 10, f"{n.name}'s peers.json")


def test_persisted_copies_and_snapshot(cluster):
    c = cluster
    n = c.nodes[1]
    snap = wait_snapshot(c, n)
    assert snap["subnet"] == n.subnet() and snap["public_ip"] == n.ip
    with open(os.path.join(n.state_dir, "docker_opts.env")) as f:
        assert f"--bip={n.subnet().replace('.0/', '.1/')}" in f.read()
    with open(os.path.join(n.state_dir, "subnet.env")) as f:
        assert f"FLANNEL_SUBNET={n.subnet().replace('.0/', '.1/')}" in f.read()


def test_overlay_works_at_boot_before_etcd_answers(cluster):
    """A reboot while etcd is away: the node's flannel.1 is gone (and its
    /run, which every start here gets new); the agent programs it from the
    persisted snapshot, so traffic flows before etcd answers."""
    c = cluster
    n2, n3 = c.nodes[1], c.nodes[2]
    subnet = n2.subnet()
    want = c.expected()[n2.name]
    wait_snapshot(c, n2)
    assert n2.stop(signal.SIGKILL) == -signal.SIGKILL
    n2.ns.ip("link", "del", "flannel.1")
    c.etcd.stop()
    n2.start()
    wait_until(lambda: "Restored flannel.1" in n2.log_since_start(), 20, "the overlay restored")
    wait_until(lambda: n2.kernel_state() == want, 10, "the persisted peers programmed")
    assert n2.ns.exec("ping", "-c", "3", "-i", "0.2", "-W", "2", overlay_ip(n3), check=False).returncode == 0
    assert n2.alive()
    c.etcd.start(timeout=20)
    c.wait_ready(timeout=60)
    assert n2.subnet() == subnet
    c.wait_converged()


def test_a_bad_snapshot_is_ignored_with_its_name(cluster):
    c = cluster
    n = c.nodes[1]
    n.stop()
    path = os.path.join(n.state_dir, "peers.json")
    with open(path, "w") as f:
        f.write('{"network": "10.244.0.0/15", "vni": 1, "port": 8472, "subnet": "10.244.9.0/24", '
                '"public_ip": "192.168.3.12", "peers": [{"subnet": "10.244.7.0/24", "public_ip": "x"}]}')
    n.start()
    wait_until(lambda: f"Ignoring {path}: peers[0]: not a valid address." in n.log_since_start(), 20,
               "the bad snapshot named")
    wait_until(lambda: ready_since_start(n), 30, f"{n.name} ready again")
    assert "Restored flannel.1" not in n.log_since_start()
    c.wait_converged()

# SPDX-License-Identifier: Apache-2.0
"""Issue 12: the agent's lifecycle takes no traffic away (SPEC 8).

One bed for the module (tests/bed/bed.sh, named "lc<pid>"): etcd in a
fabric namespace, a master and two minions booted as systemd-nspawn
containers with real systemd and a real Docker engine, corekube-agent
installed from the suite's .deb and enabled. Kubernetes binaries are
STAND-INS (tests/standins). The scenario machinery (netlink monitors,
container pings, waiting for READY through systemd) is
tests/pylib/corekube_test/disruption.py.

test_lifecycle_takes_no_traffic_away: the busybox containers of the two
minions ping each other at 50 packets a second through flannel.1 while, on
each minion in turn, the agent is restarted (5 times), SIGKILLed (3; the
unit's Restart=on-failure brings it back), sent SIGHUP (1: it must stay,
same MainPID, and log a re-list) and upgraded (1: dpkg -i of the suite's
.deb repacked at a higher version, whose postinst restarts it); then etcd is
stopped for 20 s (minion-2's agent restarted meanwhile) and started again
with its data. Every action waits for the new agent's READY=1 (systemd's
view of the Type=notify unit), never a sleep. Asserted: 0 packets lost and
0 deletions of a live peer's route, ARP or FDB entry (or of flannel.1) seen
by a netlink monitor in any node; a failure prints which, when, during what,
and the node's agent journal around it.

The counts can be lowered for a quick run (defaults are the issue's):
CKB_LC_RESTARTS=5 CKB_LC_KILLS=3 CKB_LC_SIGHUPS=1 CKB_LC_UPGRADES=1
CKB_LC_ETCD_OUTAGE=20 (seconds; 0: none).

test_peer_entries_deleted_by_hand_come_back: in minion-1, a peer's route,
ARP and FDB entry are deleted by hand one at a time (a netlink monitor
confirms each deletion: the agent may put it back before anyone looks); each
must come back (SPEC 8 says within a second; the test polls with a deadline
of a few seconds and asserts no timing), with the same agent process.

Needs root; the rootfs is built once and cached (tests/bed/rootfs.sh)."""

import os

import pytest

from clusterbed import running_cluster, wait_until
from corekube_test.disruption import Disruption, NetlinkMonitor, agent_show, deletions, peer_entries, totals

NODES = [("master", "master", "192.168.3.11"), ("minion-1", "minion", "192.168.3.12"),
         ("minion-2", "minion", "192.168.3.13")]
MINIONS = ["minion-1", "minion-2"]
DRIFT_DEADLINE = 5

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


def count(name, default):
    return int(os.environ.get(f"CKB_LC_{name}", default))


@pytest.fixture(scope="module")
def cluster():
    with running_cluster("lc", NODES, wait="converged", timings="bed") as c:
        for n in MINIONS:
            c.container_ip(n)
        yield c


def schedule(restarts, kills, sighups, upgrades):
    """The events of one minion, the kinds interleaved: R K H U R K R K R R
    for the issue's counts."""
    kinds = [("restart", restarts), ("kill", kills), ("sighup", sighups), ("upgrade", upgrades)]
    out = []
    for j in range(max(n for _, n in kinds)):
        out += [k for k, n in kinds if j < n]
    return out


def test_lifecycle_takes_no_traffic_away(cluster):
    per_minion = schedule(count("RESTARTS", 5), count("KILLS", 3), count("SIGHUPS", 1), count("UPGRADES", 1))
    outage = count("ETCD_OUTAGE", 20)
    d = Disruption(cluster, MINIONS)
    try:
        d.start()
        for kind in per_minion:
            for n in MINIONS:               # both minions, interleaved
                getattr(d, kind)(n)
        if outage:
            d.etcd_outage(outage, restart=["minion-2"])
        report = d.finish()
    finally:
        d.close()
    lost, dels = totals(report)
    sent = sum(p["transmitted"] for p in report["pings"])
    print(f"\nlifecycle: {len(report['actions'])} events, {sent} packets sent, {lost} lost; deletions of "
          f"live peers' entries: {dels['route']} route, {dels['ARP']} ARP, {dels['FDB']} FDB, "
          f"{dels['link']} flannel.1")
    bad = lost or report["deletions"] or report["problems"]
    assert not bad, (f"{lost} packets lost, {len(report['deletions'])} deletions of live peers' entries, "
                     f"{len(report['problems'])} other problems:\n" + d.summary(report))


def test_peer_entries_deleted_by_hand_come_back(cluster):
    node, peer = "minion-1", "minion-2"
    cluster.wait_converged()
    net = cluster.node_leases()[peer]
    rec = cluster.leases()[net]
    gw, mac, ip = str(net.network_address), rec["BackendData"]["VtepMAC"], rec["PublicIP"]
    cases = [
        ("route", f"ip route del {net} dev flannel.1", 0, (str(net), gw, True)),
        ("ARP", f"ip neigh del {gw} dev flannel.1", 1, (gw, mac, ("PERMANENT",))),
        ("FDB", f"bridge fdb del {mac} dev flannel.1 dst {ip} self", 2, (mac, ip, "permanent")),
    ]
    entries = peer_entries(cluster, node)
    pid = agent_show(cluster, node)["MainPID"]
    failed = []
    # The agent may put an entry back before we could look: the monitor's
    # "Deleted" line is the proof that the deletion took place.
    mon = NetlinkMonitor(cluster.netns(node), node)
    try:
        mon.wait_listening()
        for what, cmd, i, entry in cases:
            assert entry in cluster.overlay(node)[i], f"{node} has no {what} entry {entry} to delete"
            cluster.sh(node, cmd)          # fails if there was nothing to delete

            def seen_deleted():
                return [d for d in deletions(list(mon.events), entries) if d[1] == what and d[2] == peer]
            wait_until(seen_deleted, 10, f"the monitor to see `{cmd}`")

            def back():
                got = cluster.overlay(node)[i]
                assert entry in got, f"{what} entry {entry} not back; flannel.1 has {sorted(got)}"
                return True
            try:
                wait_until(back, DRIFT_DEADLINE, f"{node}'s {what} entry for {peer} to come back")
            except AssertionError as e:
                failed.append(str(e))
        assert agent_show(cluster, node)["MainPID"] == pid, "the agent restarted instead of repairing"
        if failed:
            pytest.fail("\n".join(failed))
    finally:
        mon.stop()
        if failed:
            # Leave the cluster as found for whatever runs after us.
            cluster.sh(node, "systemctl restart corekube-agent.service", check=False)
            cluster.wait_converged()

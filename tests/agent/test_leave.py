# SPDX-License-Identifier: Apache-2.0
"""`corekube-agent leave` against the agent's lock, and `leave --node`
(issue 12 point 5), with real agents in network namespaces around a real etcd
(conftest.py). There is no systemd here: the D-Bus cases use a real
dbus-daemon of the test's own, on which no service manager runs (what
`leave` sees of it: the lock's holder is no unit's main process), or a bus
address that does not exist. Stopping the real unit is tested in the nspawn
bed (tests/bed/test_leave_unit.py).

The tests share one cluster and run in file order: n1 (master) stays, n2 and
n3 leave, n4 joins and dies."""

import json
import os
import signal
import subprocess

import pytest

from conftest import CK_PREFIX, NET_PREFIX, make_cluster, wait_until
from corekube_test.proc import run, stop

LOCK = "/run/corekube/agent.lock"


@pytest.fixture(scope="module")
def cluster():
    yield from make_cluster(3)


@pytest.fixture(scope="module")
def private_bus(tmp_path_factory):
    """A real dbus-daemon listening on a socket of ours; nothing owns
    org.freedesktop.systemd1 on it. Stopped by PID."""
    d = tmp_path_factory.mktemp("bus")
    conf = d / "bus.conf"
    conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={d}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
""")
    p = subprocess.Popen(["dbus-daemon", "--nofork", f"--config-file={conf}", "--print-address"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        # Printed once it listens.
        address = p.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        stop(p)
        p.stdout.close()


def keys_of(c, n):
    """(machine record, subnet lease key) of node n, as etcd has them now."""
    sub = n.subnet_record()
    return n.record(), sub[0] if sub else None


def routes(n):
    return {r["dst"] for r in n.ns.ipj("route", "show", "dev", "flannel.1")}


def test_second_agent_on_a_node_exits_1(cluster):
    n = cluster.nodes[0]
    p = run(*n.argv("run", "-c", n.conf), check=False, timeout=30)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"Another corekube-agent (PID {n.proc.pid}) holds {LOCK}" in p.stderr, p.stderr
    assert n.alive()
    with open(f"{n.run_dir}/agent.lock") as f:
        assert f.read() == f"{n.proc.pid}\n"


def test_leave_refused_while_the_agent_runs(cluster, private_bus):
    c, n = cluster, cluster.nodes[2]
    record, subnet_key = keys_of(c, n)
    assert record and subnet_key
    p = n.cli("leave", env={"DBUS_SYSTEM_BUS_ADDRESS": private_bus})
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"runs as PID {n.proc.pid} (it holds {LOCK})" in p.stderr, p.stderr
    assert "Nothing was changed" in p.stderr
    assert n.alive() and n.ns.has_link("flannel.1")
    assert n.record() is not None and c.etcd.get(subnet_key) is not None


def test_leave_exits_69_when_dbus_cannot_say_who_holds_the_lock(cluster):
    c, n = cluster, cluster.nodes[2]
    _, subnet_key = keys_of(c, n)
    p = n.cli("leave", env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent"})
    assert p.returncode == 69, (p.stdout, p.stderr)
    assert f"{LOCK} is held by PID {n.proc.pid}" in p.stderr and "corekube-agent.service" in p.stderr, p.stderr
    assert n.alive() and n.ns.has_link("flannel.1")
    assert n.record() is not None and c.etcd.get(subnet_key) is not None


def test_leave_releases_once_the_agent_is_stopped(cluster):
    c, n = cluster, cluster.nodes[2]
    subnet = n.subnet()
    _, subnet_key = keys_of(c, n)
    assert n.stop() == 0
    # No D-Bus is needed when nobody holds the lock.
    p = n.cli("leave", env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent"})
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert f"Released subnet {subnet}" in p.stdout and "Released the machine record" in p.stdout
    assert "Removed flannel.1" in p.stdout
    assert n.record() is None and c.etcd.get(subnet_key) is None
    assert not n.ns.has_link("flannel.1")
    wait_until(lambda: subnet not in routes(c.nodes[0]), 10, "n1 drops n3's route")


# ---- leave --node ----

def test_leave_node_unknown_name(cluster):
    p = cluster.nodes[0].cli("leave", "--node", "no-such-node")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Unknown node no-such-node" in p.stderr, p.stderr


def test_leave_node_refuses_a_live_record_unless_forced(cluster):
    """A record on an etcd lease with time left is alive. n2's agent is
    stopped, and its record put back on a long lease of the test's, so that
    it stays alive as long as the test needs (the agent's TTL is 10 s)."""
    c, n1, n2 = cluster, cluster.nodes[0], cluster.nodes[1]
    subnet = n2.subnet()
    record, subnet_key = keys_of(c, n2)
    assert n2.stop() == 0
    lease = c.etcd.ctl("lease", "grant", "600").stdout.split()[1]
    c.etcd.ctl("put", f"--lease={lease}", f"{CK_PREFIX}/machines/{n2.node_id}", "--", record["value"])

    p = n1.cli("leave", "--node", "n2")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"Node n2 ({n2.node_id}) is alive" in p.stderr and "--force" in p.stderr, p.stderr
    assert n2.record() is not None and c.etcd.get(subnet_key) is not None

    p = n1.cli("leave", "--node", "n2", "--force")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert f"Released subnet {subnet}" in p.stdout and "Released the machine record" in p.stdout, p.stdout
    assert f"Removed node n2 ({n2.node_id})" in p.stdout
    assert n2.record() is None and c.etcd.get(subnet_key) is None
    # The local node is not touched; its peer drops the route at once.
    assert n1.alive() and n1.ns.has_link("flannel.1") and n1.record() is not None
    wait_until(lambda: subnet not in routes(n1), 10, "n1 drops n2's route")


def test_leave_node_removes_a_dead_node_without_force(cluster):
    """n4 dies (SIGKILL) and its record's lease is revoked, as its expiry
    would: the record is gone, the subnet lease is left behind. It is found
    by its raw machine ID (the lease's VTEP MAC is made from it), which etcd
    never holds."""
    c, n1 = cluster, cluster.nodes[0]
    n4 = c.add_node("minion").start()
    c.wait_ready([n4])
    subnet = n4.subnet()
    _, subnet_key = keys_of(c, n4)
    wait_until(lambda: subnet in routes(n1), 10, "n1 routes to n4")
    lease = n4.record()["lease"]
    n4.stop(signal.SIGKILL)
    c.etcd.ctl("lease", "revoke", format(lease, "x"))
    assert n4.record() is None and c.etcd.get(subnet_key) is not None

    p = n1.cli("leave", "--node", "n4")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Unknown node n4" in p.stderr and "machine ID" in p.stderr, p.stderr

    p = n1.cli("leave", "--node", n4.machine_id)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert f"Released subnet {subnet}" in p.stdout, p.stdout
    assert c.etcd.get(subnet_key) is None
    wait_until(lambda: subnet not in routes(n1), 10, "n1 drops n4's route")


def test_leave_node_with_two_records_of_that_name_asks_for_the_id(cluster):
    """Two records named twin, on no lease (not alive): refused by name,
    removed by ID without --force."""
    c, n1 = cluster, cluster.nodes[0]
    ids = ["0123456789abcdef0123456789abcd01", "0123456789abcdef0123456789abcd02"]
    for i, mid in enumerate(ids):
        c.etcd.put(f"{CK_PREFIX}/machines/{mid}",
                   json.dumps({"id": mid, "name": "twin", "role": "minion", "ip": f"192.168.3.{200 + i}",
                               "state": "ready"}))
    p = n1.cli("leave", "--node", "twin")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "2 machine records are named twin" in p.stderr and all(i in p.stderr for i in ids), p.stderr
    assert all(c.etcd.get(f"{CK_PREFIX}/machines/{i}") for i in ids)

    p = n1.cli("leave", "--node", ids[0])
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert c.etcd.get(f"{CK_PREFIX}/machines/{ids[0]}") is None
    assert c.etcd.get(f"{CK_PREFIX}/machines/{ids[1]}") is not None
    c.etcd.delete(f"{CK_PREFIX}/machines/{ids[1]}")
    # Nobody else's keys went with them.
    assert n1.record() is not None and n1.subnet_record() is not None


# ---- leave with the agent stopped (moved from test_agent.py) ----


def test_leave_with_the_agent_stopped(cluster3):
    c = cluster3
    n = c.nodes[2]
    subnet, key = n.subnet(), n.subnet_record()[0]
    # The service is stopped first (documented): SIGTERM keeps network and leases.
    assert n.stop() == 0
    assert n.ns.has_link("flannel.1") and n.subnet_record() is not None

    p = n.cli("leave")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert f"Released subnet {subnet} ({key})." in p.stdout, p.stdout
    assert "Released the machine record" in p.stdout and "Removed flannel.1" in p.stdout
    assert "Removed the saved subnet and peer list" in p.stdout
    assert not os.listdir(n.state_dir)
    assert not n.ns.has_link("flannel.1")
    assert c.etcd.get_prefix(key) == {}
    assert n.record() is None
    # Every peer drops its routes to the node that left.
    rest = c.live()
    c.wait_converged(rest, timeout=10)
    for m in rest:
        assert subnet not in {r["dst"] for r in m.ns.ipj("route", "show", "dev", "flannel.1")}

    p = n.cli("leave")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "Nothing to do" in p.stdout

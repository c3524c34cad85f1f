# SPDX-License-Identifier: Apache-2.0
"""[network] ip-masq (issue 14): the agent's nftables table `ip corekube`,
with a real agent in a network namespace around a real etcd (conftest.py),
looked at with nft in the node's namespace. Installed for the node's subnet,
replaced when the subnet moves, put back on SIGHUP, left by SIGTERM, removed
with ip-masq = no and by `leave`; a table the agent cannot replace is a wait
(reason masq), retried until it can. That the rules masquerade real traffic
is tests/e2e/test_masq.py's.

The tests share one single-node cluster and run in file order."""

import json
import subprocess

import pytest

from conftest import NET_PREFIX, make_cluster, wait_until
from corekube_test.proc import stop

MASQ = {"COREKUBE_NETWORK_IP_MASQ": "yes"}


@pytest.fixture(scope="module")
def node():
    for c in make_cluster(1, start=False):
        n = c.nodes[0]
        n.extra_env = dict(MASQ)
        n.start()
        c.wait_ready([n])
        yield n


def table(n):
    """`nft list table ip corekube` in n's namespace, or None."""
    p = n.ns.exec("nft", "list", "table", "ip", "corekube", check=False)
    return p.stdout if p.returncode == 0 else None


def tables(n):
    out = json.loads(n.ns.exec("nft", "-j", "list", "tables").stdout)["nftables"]
    return [(t["table"]["family"], t["table"]["name"]) for t in out if "table" in t]


def network(n):
    with open(n.subnet_file) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)["FLANNEL_NETWORK"]


def expected(net, subnet):
    return (f"table ip corekube {{\n"
            f"\tchain postrouting {{\n"
            f"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
            f"\t\tip saddr {net} ip daddr {net} return\n"
            f"\t\tip saddr {net} ip daddr != 224.0.0.0/4 masquerade fully-random\n"
            f"\t\tip saddr != {net} ip daddr {subnet} return\n"
            f"\t\tip saddr != {net} ip daddr {net} masquerade fully-random\n"
            f"\t}}\n"
            f"}}\n")


def record(n):
    r = n.record()
    return json.loads(r["value"]) if r else {}


def ready_since_start(n):
    """The current process of n logged its ready milestone (the record may
    still say ready from the last one)."""
    if not n.alive():
        raise AssertionError(f"{n.name} is not running")
    return f"Node {n.name} is ready." in n.log_since_start()


def start(n, env):
    n.extra_env = dict(env)
    n.start()
    wait_until(lambda: ready_since_start(n), 60, f"{n.name} ready")


def restart(n, env):
    assert n.stop() == 0
    start(n, env)


def test_installed_for_the_nodes_subnet(node):
    n = node
    assert table(n) == expected(network(n), n.subnet())
    log = n.log_since_start()
    assert "Installed the nftables table ip corekube" in log, log
    assert log.count("nftables table ip corekube") == 1, log


def test_replaced_in_one_piece_when_the_subnet_moves(node):
    n = node
    c = n.cluster
    key, _, _ = n.subnet_record()
    before = n.subnet()
    # Someone takes our subnet over: the lease moves to another one.
    c.etcd.put(key, json.dumps({"PublicIP": "192.168.3.98", "BackendType": "vxlan",
                                "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fd:03"}}))
    try:
        wait_until(lambda: n.subnet() not in (None, before), 30, "a new subnet")
        wait_until(lambda: table(n) == expected(network(n), n.subnet()), 10, "the table for the new subnet")
        assert "Replaced the nftables table ip corekube" in n.log_since_start()
        # Replaced, not added beside: one table, one chain.
        assert tables(n).count(("ip", "corekube")) == 1
        wait_until(lambda: n.state() == "ready", 30, "ready on the new subnet")
    finally:
        c.etcd.delete(key)


def test_sighup_puts_back_a_removed_table(node):
    n = node
    n.ns.exec("nft", "delete", "table", "ip", "corekube")
    n.proc.send_signal(1)
    wait_until(lambda: table(n) == expected(network(n), n.subnet()), 10, "the table back after SIGHUP")


def test_sigterm_leaves_it(node):
    n = node
    want = expected(network(n), n.subnet())
    assert n.stop() == 0
    assert table(n) == want
    start(n, MASQ)
    # Found as wanted: replaced in one transaction, never missing.
    assert table(n) == want


def test_ip_masq_no_removes_a_table_it_finds(node):
    n = node
    restart(n, {})
    assert table(n) is None
    assert "Removed the nftables table ip corekube: [network] ip-masq is off." in n.log_since_start()


def test_ip_masq_no_installs_nothing(node):
    n = node
    restart(n, {})
    assert ("ip", "corekube") not in tables(n)
    assert "nftables" not in n.log_since_start()


def test_a_table_that_cannot_be_replaced_is_a_wait_then_retried(node):
    """A table of another program's (nft's `owner` flag: only the netlink
    socket that made it may touch it) stands for nftables refusing: the node
    waits with reason masq, and installs ours once that one is gone."""
    n = node
    assert n.stop() == 0
    holder = subprocess.Popen(["ip", "netns", "exec", n.ns.name, "nft", "-i"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        holder.stdin.write("add table ip corekube { flags owner; }\n")
        holder.stdin.flush()
        wait_until(lambda: table(n) is not None, 10, "the owned table")
        n.extra_env = dict(MASQ)
        n.start()
        wait_until(lambda: record(n).get("reason") == "masq", 30, "the node waiting for the table")
        rec = record(n)
        assert rec["state"] == "waiting", rec
        assert "cannot install the nftables table ip corekube: Could not process rule: Operation not permitted" \
            == rec["message"], rec
        assert n.alive()
    finally:
        holder.stdin.close()
        stop(holder)
    # The owner gone, its table goes with it; the retry installs ours.
    wait_until(lambda: ready_since_start(n), 90, f"{n.name} ready")
    assert table(n) == expected(network(n), n.subnet())


def test_leave_removes_it(node):
    n = node
    assert table(n) is not None
    assert n.stop() == 0
    p = n.cli("leave")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "Removed the nftables table ip corekube (the overlay's masquerading)." in p.stdout, p.stdout
    assert table(n) is None
    p = n.cli("leave")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "Nothing to do" in p.stdout, p.stdout
    assert n.cluster.etcd.get_prefix(f"{NET_PREFIX}/subnets/") == {}

# SPDX-License-Identifier: Apache-2.0
"""Issue 12 point 6: a node boots and its agent is restarted within a second
(`node-start`, then `rm` of a config drop-in and `systemctl restart
--no-block corekube-agent`, as test_cluster.py's power-off test brings its
node back). The node must end with a machine record written by the agent
that runs now, on a live lease, `ready`, and keep it once the first
instance's lease has expired.

Its own bed (etcd, a master, one minion; tests/bed/bed.sh), named `race<pid>`:
no other suite's prefix ends in `race`, and the pid keeps two runs apart.
The Kubernetes binaries are stand-ins (tests/standins). Needs root."""

import json
import os
import re

import pytest

from clusterbed import b64, running_cluster, wait_until

NODES = [("master", "master", "192.168.3.11"), ("minion-1", "minion", "192.168.3.12")]
NODE = "minion-1"
DROPIN = "/etc/corekube/agent.conf.d/50-e2e-ttl.conf"
SHORT_TTL = 4
DEFAULT_TTL = 30        # [etcd] ttl when the drop-in is gone (SPEC 4)
MID_READY = "55bbe08da66a1b049c31d9b0d47824dd"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


@pytest.fixture(scope="module")
def cluster():
    with running_cluster("race", NODES) as c:
        yield c


def lease_ttl(c, lease):
    """(granted TTL, remaining TTL) of an etcd lease; remaining -1: gone."""
    out = c.etcdctl("lease", "timetolive", f"{lease:x}").stdout
    if "already expired" in out:
        return None, -1
    m = re.search(r"granted with TTL\((\d+)s\), remaining\((-?\d+)s\)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def leases_with_ttl(c, granted):
    """The live etcd leases granted with that TTL."""
    ids = re.findall(r"^\s*id\((\d+)\)", c.etcdctl("lease", "list").stdout, re.M)
    out = []
    for i in ids:
        g, left = lease_ttl(c, int(i))
        if g == granted and left >= 0:
            out.append(int(i))
    return out


def record_kv(c, node):
    """Our node's machine record as etcd holds it: (record, create_revision, lease)."""
    for kv in json.loads(c.etcdctl("get", "--prefix", "/corekube/machines/", "-w", "json").stdout).get("kvs", []):
        rec = json.loads(b64(kv["value"]))
        if rec.get("name") == node:
            return rec, int(kv["create_revision"]), int(kv.get("lease", 0))
    return None, 0, 0


def diagnosis(c, node):
    """What the failure message carries: systemd's view, the agent's journal
    since boot, the records and leases in etcd."""
    parts = []
    for what, script in [
            ("systemctl show", "systemctl show corekube-agent.service "
                               "-p NRestarts,Result,ExecMainStatus,ActiveState,SubState,MainPID"),
            ("journal", "journalctl -b -q -u corekube-agent.service -o short-monotonic --no-pager | tail -n 80"),
            ("systemd's jobs for the agent", "journalctl -b -q _PID=1 -o short-monotonic --no-pager "
                                             "| grep -i corekube | tail -n 30")]:
        r = c.sh(node, script, check=False)
        parts.append(f"--- {node}: {what}\n{r.stdout}{r.stderr}")
    recs = c.etcdctl("get", "--prefix", "/corekube/machines/", "-w", "json", check=False).stdout
    leases = c.etcdctl("lease", "list", check=False).stdout
    parts.append(f"--- etcd records\n{recs}\n--- etcd leases\n{leases}")
    # Every write to the machine records, in revision order: who put what on
    # which lease. A watch from revision 1 replays the history and then
    # waits; `timeout` ends it (diagnosis only, nothing waits on it).
    hist = c.fabric("timeout", "3", "env", "ETCDCTL_API=3", "etcdctl", "--endpoints=http://127.0.0.1:2379",
                    "watch", "--prefix", "/corekube/machines/", "--rev=1", "-w", "json", check=False).stdout
    parts.append(f"--- etcd history of the records\n{hist[-20000:]}")
    return "\n".join(parts)


def current_agent_ready(c, node, since):
    """The agent that runs now (its MainPID) said ready after `since`, and
    its record is in etcd: state ready, on a live lease of the default TTL.
    Returns (record, create_revision, lease)."""
    show = c.agent_show(node, "MainPID,ActiveState")
    assert show["ActiveState"] == "active", f"{node}'s agent is {show['ActiveState']}"
    pid = show["MainPID"]
    said = [e for e in c.journal(node, since=since)
            if e.get("MESSAGE_ID") == MID_READY and e.get("_PID") == pid]
    assert said, f"{node}'s agent (pid {pid}) has not said ready"
    rec, created, lease = record_kv(c, node)
    assert rec is not None, f"{node} has no machine record"
    assert rec["state"] == "ready", f"{node}'s record says {rec['state']}"
    assert lease != 0, f"{node}'s record is on no lease"
    granted, left = lease_ttl(c, lease)
    assert left > 0, f"{node}'s record is on lease {lease:x}, which has expired"
    assert granted == DEFAULT_TTL, f"{node}'s record is on a {granted} s lease, not the running agent's"
    return rec, created, lease


def test_agent_restarted_right_after_boot_keeps_its_record(cluster):
    c = cluster
    # A short record TTL, as test_cluster.py's power-off test sets it.
    c.sh(NODE, f"mkdir -p {os.path.dirname(DROPIN)}; printf '[etcd]\\nttl = {SHORT_TTL}s\\n' >{DROPIN}; "
               "systemctl restart --no-block corekube-agent.service")
    wait_until(lambda: lease_ttl(c, record_kv(c, NODE)[2])[0] == SHORT_TTL, 30,
               f"{NODE}'s record on a {SHORT_TTL} s lease")
    c.wait_ready()
    c.run("node-stop", NODE)
    wait_until(lambda: record_kv(c, NODE)[0] is None, 3 * SHORT_TTL, f"{NODE}'s record to expire")

    # The race: the boot's agent (short TTL) is restarted, without the
    # drop-in, as soon as bed.sh has seen the node booted.
    mark = c.mark()
    c.run("node-start", NODE)
    c.sh(NODE, f"rm {DROPIN}; systemctl restart --no-block corekube-agent.service")

    try:
        rec, created, lease = wait_until(lambda: current_agent_ready(c, NODE, mark), 90,
                                         f"{NODE}'s running agent to be ready and registered")
        assert rec["subnet"] == c.initial[NODE]
        # It stays: the first instance's short lease expires (what took the
        # record away), and the record's own lease is renewed twice after that.
        wait_until(lambda: not leases_with_ttl(c, SHORT_TTL), 3 * SHORT_TTL,
                   f"the first instance's {SHORT_TTL} s lease to expire")
        seen = {"left": None, "renewals": 0}

        def renewed_twice():
            _, left = lease_ttl(c, lease)
            assert left > 0, f"lease {lease:x} expired"
            if seen["left"] is not None and left > seen["left"]:
                seen["renewals"] += 1
            seen["left"] = left
            return seen["renewals"] >= 2
        wait_until(renewed_twice, 3 * DEFAULT_TTL, f"{NODE}'s record lease to be renewed twice")
        again, created_again, lease_again = current_agent_ready(c, NODE, mark)
        assert (created_again, lease_again) == (created, lease), \
            f"{NODE}'s record was written anew (revision {created} -> {created_again}, " \
            f"lease {lease:x} -> {lease_again:x})"
    except AssertionError as e:
        raise AssertionError(f"{e}\n{diagnosis(c, NODE)}") from None

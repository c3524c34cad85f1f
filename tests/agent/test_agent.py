# SPDX-License-Identifier: Apache-2.0
"""corekube-agent end to end without systemd: real agents in network
namespaces around a real etcd (conftest.py builds the bed). Checks the
records, the overlay each node programs, traffic across it, the `status`
and `leave` commands, and the fault promises of SPEC section 8.

The module's tests share one 3-node cluster (n1 master, n2 and n3 minions)
and each leaves it converged; `leave` runs last. Faults that need a cluster
of their own (etcd away during bring-up) build one."""

import json
import os
import re
import signal
import subprocess

import pytest

from conftest import CK_PREFIX, NET_PREFIX, wait_until
from corekube_test.machineid import app_specific

SUBNETS = f"{NET_PREFIX}/subnets/"
MACHINES = f"{CK_PREFIX}/machines/"


def overlay_ip(node):
    """The address of node's flannel.1 (<subnet>.0), from its device."""
    return node.ns.ipj("-4", "addr", "show", "dev", "flannel.1")[0]["addr_info"][0]["local"]


def ping(src, dst_ip):
    return src.ns.exec("ping", "-c", "1", "-W", "1", dst_ip, check=False).returncode == 0


# ---- bring-up ----


def test_records_subnets_and_peer_entries(cluster3):
    c = cluster3
    machines = c.etcd.get_prefix(MACHINES)
    assert sorted(machines) == sorted(MACHINES + n.node_id for n in c.nodes)
    for n in c.nodes:
        rec = json.loads(machines[MACHINES + n.node_id]["value"])
        assert rec["name"] == n.name and rec["role"] == n.role and rec["ip"] == n.ip
        assert rec["state"] == "ready" and rec["id"] == n.node_id
        assert machines[MACHINES + n.node_id]["lease"] != 0
    subnets = [n.subnet() for n in c.nodes]
    assert None not in subnets and len(set(subnets)) == 3, subnets
    assert len(c.etcd.get_prefix(SUBNETS)) == 3
    for n in c.nodes:
        assert json.loads(c.etcd.get_prefix(MACHINES + n.node_id)[MACHINES + n.node_id]["value"])["subnet"] \
            == n.subnet()
        key, rec, lease = n.subnet_record()
        assert rec["BackendType"] == "vxlan" and rec["BackendData"]["VtepMAC"] == n.vtep_mac()
        assert lease != 0
        with open(n.subnet_file) as f:
            assert f"FLANNEL_SUBNET={n.subnet().replace('.0/', '.1/')}" in f.read()
    # Exactly the peers' routes, ARP and FDB entries, nothing else.
    c.wait_converged(timeout=10)


def test_ping_across_the_overlay_both_ways(cluster3):
    c = cluster3
    for a in c.nodes:
        for b in c.nodes:
            if a is not b:
                wait_until(lambda: ping(a, overlay_ip(b)), 10, f"{a.name} -> {b.name} over flannel.1")


# ---- status ----


def status_rows(out):
    lines = out.strip().splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "IP", "SUBNET", "STATE", "UNITS", "SEEN"], out
    rows = {}
    for line in lines[1:]:
        f = line.split()
        if len(f) < 7 or f[0] == "lease-only:":
            continue
        rows[(f[0], f[3])] = f
    return rows


def test_status_table_and_json(cluster3):
    c = cluster3
    for viewer in (c.nodes[0], c.nodes[2]):
        p = viewer.cli("status")
        assert p.returncode == 0, p.stderr
        rows = status_rows(p.stdout)
        assert len(rows) == 3, p.stdout
        for n in c.nodes:
            f = rows[(n.name, n.subnet())]
            assert f[1] == n.role and f[2] == n.ip and f[4] == "ready" and f[5] == "0/0", f
            assert re.fullmatch(r"\d+[smh]", f[6]) and f[7] == "ago", f

    p = c.nodes[1].cli("status", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["leases_without_record"] == []
    by_name = {m["name"]: m for m in doc["machines"]}
    assert sorted(by_name) == ["n1", "n2", "n3"]
    for n in c.nodes:
        m = by_name[n.name]
        assert (m["id"], m["role"], m["ip"], m["subnet"], m["state"]) == \
            (n.node_id, n.role, n.ip, n.subnet(), "ready")
        # "Seen" is the last keepalive of the record's lease (ttl 10s, kept
        # alive every ttl/3), not the last time the record changed.
        assert m["units"] == {} and m["units_total"] == 0 and 0 <= m["seen_seconds_ago"] <= 10
        assert m["self"] is (n is c.nodes[1])


def test_status_shows_a_lease_without_record(cluster3):
    """A real flanneld node has a lease and no machine record: listed as
    such (and, being valid, programmed by every agent)."""
    c = cluster3
    key = SUBNETS + "10.244.250.0-24"
    c.etcd.put(key, json.dumps({"PublicIP": "192.168.3.99", "BackendType": "vxlan",
                                "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fa:01"}}))
    try:
        p = c.nodes[0].cli("status")
        assert p.returncode == 0, p.stderr
        rows = status_rows(p.stdout)
        assert rows[("-", "10.244.250.0/24")][:5] == ["-", "-", "192.168.3.99", "10.244.250.0/24", "lease-only"]
        assert "lease-only: a subnet lease without a machine record" in p.stdout
        doc = json.loads(c.nodes[0].cli("status", "--json").stdout)
        assert doc["leases_without_record"] == [
            {"subnet": "10.244.250.0/24", "public_ip": "192.168.3.99", "vtep_mac": "02:00:00:00:fa:01"}]
    finally:
        c.etcd.delete(key)
    c.wait_converged()


def test_status_wait(cluster3, tmp_path):
    c = cluster3
    n = c.nodes[1]
    # Ready already: exit 0 at once, with the table.
    p = n.cli("status", "--wait=20s")
    assert p.returncode == 0, p.stderr
    assert len(status_rows(p.stdout)) == 3

    # A machine etcd has no record of: exit 1 when the timeout passes.
    stranger = tmp_path / "machine-id"
    stranger_id = "0123456789abcdef0123456789abcdef"
    stranger.write_text(stranger_id + "\n")
    p = n.cli("status", "--wait=1s", machine_id_file=str(stranger))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Timed out after 1s" in p.stderr and "no record" in p.stderr, p.stderr
    # A bare number is seconds, as for timeout(1).
    p = n.cli("status", "--wait=1", machine_id_file=str(stranger))
    assert p.returncode == 1 and "Timed out after 1s" in p.stderr, (p.stdout, p.stderr)
    assert p.stdout == ""

    # A record that says failed: exit 1 with its error.
    # Named in etcd by its app-specific ID.
    key = MACHINES + app_specific(stranger_id)
    rec = {"id": app_specific(stranger_id), "name": "ghost", "role": "minion", "ip": "192.168.3.90", "subnet": "",
           "state": "failed", "error": "kubelet.service: start job failed (exit-code)", "units": {},
           "version": "0", "updated": "2026-01-01T00:00:00Z"}
    c.etcd.put(key, json.dumps(rec))
    try:
        p = n.cli("status", "--wait=20s", machine_id_file=str(stranger))
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "ghost failed: kubelet.service: start job failed (exit-code)" in p.stderr, p.stderr

        # Not ready yet when the wait starts, ready later: the watch sees it.
        rec.update(state="network", error=None)
        del rec["error"]
        c.etcd.put(key, json.dumps(rec))
        w = subprocess.Popen(n.argv("status", "--wait", "-c", n.conf, machine_id_file=str(stranger)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # It says so once it has read the record; from there on its
            # watch sees every change.
            line = w.stderr.readline()
            assert "Waiting for node" in line and "state: network" in line, line
            rec["state"] = "ready"
            c.etcd.put(key, json.dumps(rec))
            out, err = w.communicate(timeout=30)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
        assert w.returncode == 0, err
        assert "ghost" in out
    finally:
        c.etcd.delete(key)


def test_status_etcd_unreachable_exits_69(cluster3, tmp_path):
    n = cluster3.nodes[0]
    conf = tmp_path / "other.conf"
    # Nothing listens on this port of the fabric address: refused at once.
    conf.write_text(open(n.conf).read().replace(":2379", ":2999"))
    p = n.cli("status", conf=str(conf))
    assert p.returncode == 69, (p.stdout, p.stderr)
    assert "http://192.168.3.1:2999" in p.stderr, p.stderr
    # As if the agent were stopped: a /run/corekube without its lock.
    (tmp_path / "run").mkdir()
    p = n.cli("leave", conf=str(conf), run_dir=str(tmp_path / "run"))
    assert p.returncode == 69, (p.stdout, p.stderr)
    assert "etcd is unreachable" in p.stderr and "nothing was changed" in p.stderr
    assert n.ns.has_link("flannel.1")
    # Waiting, it keeps trying until the timeout, then says why.
    p = n.cli("status", "--wait=1500ms", conf=str(conf))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Timed out after 1s500ms waiting for node n1 to be ready: no answer from etcd at " \
        "http://192.168.3.1:2999." in p.stderr, p.stderr


def test_status_usage_errors(cluster3):
    n = cluster3.nodes[0]
    for args in (["status", "--wait=soon"], ["leave", "--json"], ["run", "--wait"]):
        p = n.cli(*args)
        assert p.returncode == 64, (args, p.stdout, p.stderr)
        assert "try 'corekube-agent --help'" in p.stderr


# ---- faults ----


def test_overlay_deleted_by_hand_is_restored(cluster3):
    c = cluster3
    n = c.nodes[1]
    before = n.ns.ipj("link", "show", "dev", "flannel.1")[0]["ifindex"]
    n.ns.ip("link", "del", "flannel.1")
    wait_until(lambda: n.ns.has_link("flannel.1") and
               n.ns.ipj("link", "show", "dev", "flannel.1")[0]["ifindex"] != before, 15, "flannel.1 recreated")
    c.wait_converged()
    for m in c.nodes:
        if m is not n:
            wait_until(lambda: ping(n, overlay_ip(m)), 10, f"{n.name} -> {m.name} after the re-creation")
            wait_until(lambda: ping(m, overlay_ip(n)), 10, f"{m.name} -> {n.name} after the re-creation")


def hostile_records(c):
    mac_n1 = c.nodes[0].vtep_mac()
    good = {"BackendType": "vxlan"}
    # Under keys no node holds: a node's real lease would be overwritten.
    held = {n.subnet() for n in c.nodes}
    b = next(b for b in range(200, 250, 6)
             if not any(f"10.244.{b + i}.0/24" in held or f"10.244.{b + i}.0/25" in held for i in range(6)))
    return {
        # outside the network 10.244.0.0/15
        SUBNETS + "10.99.1.0-24": json.dumps(dict(good, PublicIP="192.168.3.50",
                                                  BackendData={"VNI": 1, "VtepMAC": "02:00:00:00:00:50"})),
        # wrong length
        SUBNETS + f"10.244.{b + 0}.0-25": json.dumps(dict(good, PublicIP="192.168.3.51",
                                                     BackendData={"VNI": 1, "VtepMAC": "02:00:00:00:00:51"})),
        # bad MAC, then a multicast MAC
        SUBNETS + f"10.244.{b + 1}.0-24": json.dumps(dict(good, PublicIP="192.168.3.52",
                                                     BackendData={"VNI": 1, "VtepMAC": "zz:00:00:00:00:52"})),
        SUBNETS + f"10.244.{b + 2}.0-24": json.dumps(dict(good, PublicIP="192.168.3.53",
                                                     BackendData={"VNI": 1, "VtepMAC": "01:00:5e:00:00:53"})),
        # multicast PublicIP
        SUBNETS + f"10.244.{b + 3}.0-24": json.dumps(dict(good, PublicIP="224.0.0.5",
                                                     BackendData={"VNI": 1, "VtepMAC": "02:00:00:00:00:54"})),
        # not JSON
        SUBNETS + f"10.244.{b + 4}.0-24": '{"PublicIP": "192.168.3.55", ',
        # n1's VTEP MAC for another address: would send n1's traffic elsewhere
        SUBNETS + f"10.244.{b + 5}.0-24": json.dumps(dict(good, PublicIP="192.168.3.56",
                                                     BackendData={"VNI": 1, "VtepMAC": mac_n1})),
    }


def test_hostile_subnet_records_are_never_programmed(cluster3):
    c = cluster3
    records = hostile_records(c)
    for k, v in records.items():
        c.etcd.put(k, v)
    try:
        # Each agent says once that it ignores each of them.
        plain = list(records)
        for n in c.nodes:
            wait_until(lambda: all(f"Ignoring peer record {k} " in n.log() for k in plain), 15,
                       f"{n.name} to reject the hostile records")
        # The kernel holds the real peers only, and keeps them in step.
        c.wait_converged(timeout=10)
        for n in c.nodes:
            assert n.alive(), n.name
            routes = {r["dst"] for r in n.ns.ipj("route", "show", "table", "all")}
            for bad in (k[len(SUBNETS):].replace("-", "/") for k in records):
                assert bad not in routes, (n.name, bad)
        for a in c.nodes:
            for b in c.nodes:
                if a is not b:
                    wait_until(lambda: ping(a, overlay_ip(b)), 10, f"{a.name} -> {b.name} with hostile records")
        for n in c.nodes:
            for k in plain:
                assert n.log().count(f"Ignoring peer record {k} ") == 1, (n.name, k)
    finally:
        for k in records:
            c.etcd.delete(k)
    c.wait_converged()
    assert all(n.alive() for n in c.nodes)


def test_own_subnet_lease_deleted_is_reacquired(cluster3):
    c = cluster3
    n = c.nodes[2]
    key, _, lease = n.subnet_record()
    c.etcd.delete(key)
    wait_until(lambda: n.subnet_record() is not None, 20, f"{n.name} to re-acquire a subnet")
    c.wait_converged(timeout=20)
    assert len(c.etcd.get_prefix(SUBNETS)) == 3
    # Its record and subnet.env follow the subnet it holds now.
    wait_until(lambda: json.loads(n.record()["value"]).get("subnet") == n.subnet(), 10, "record updated")
    c.wait_ready()
    for m in c.nodes:
        if m is not n:
            wait_until(lambda: ping(m, overlay_ip(n)), 10, f"{m.name} -> {n.name} after re-acquisition")


def test_machine_record_deleted_or_put_on_another_lease_is_written_again(cluster3):
    c = cluster3
    n = c.nodes[0]
    key = f"{MACHINES}{n.node_id}"
    own = n.record()["lease"]
    c.etcd.delete(key)
    wait_until(lambda: n.record() is not None, 10, f"{n.name}'s record to be written again")
    assert n.record()["lease"] == own

    # As a stopping instance of the agent whose last put lands after ours
    # would: the record on a short lease that then expires.
    out = c.etcd.ctl("lease", "grant", "2").stdout
    other = re.search(r"lease ([0-9a-f]+) granted", out).group(1)
    c.etcd.ctl("put", key, "--lease", other, "--", n.record()["value"])
    wait_until(lambda: (n.record() or {}).get("lease") == own, 10,
               f"{n.name}'s record back on its own lease")
    # Still there once the other lease has expired.
    wait_until(lambda: "not granted" in c.etcd.ctl("lease", "timetolive", other).stdout or
               "expired" in c.etcd.ctl("lease", "timetolive", other).stdout, 10, "the other lease to expire")
    assert n.record() is not None and n.record()["lease"] == own
    assert "writing it again" in n.log_since_start()


def test_sigkill_and_restart_converges(cluster3):
    c = cluster3
    n = c.nodes[1]
    subnet = n.subnet()
    old_lease = n.record()["lease"]
    # A flanneld-style peer every node programs, which goes away while n2
    # is dead: its entries on n2 are stale when n2 comes back.
    gone = SUBNETS + "10.244.251.0-24"
    c.etcd.put(gone, json.dumps({"PublicIP": "192.168.3.98", "BackendType": "vxlan",
                                 "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fb:01"}}))
    wait_until(lambda: ("10.244.251.0/24", "10.244.251.0") in n.kernel_state()[2], 10, "the extra peer programmed")
    assert n.stop(signal.SIGKILL) == -signal.SIGKILL
    c.etcd.delete(gone)
    n.start()
    # Registered anew (a new etcd lease on the same key), then ready.
    wait_until(lambda: n.record() and n.record()["lease"] != old_lease and n.state() == "ready", 30,
               f"{n.name} registered again and ready")
    assert n.subnet() == subnet
    assert len(c.etcd.get_prefix(MACHINES)) == 3
    assert len(c.etcd.get_prefix(SUBNETS)) == 3
    c.wait_converged()


@pytest.mark.parametrize("milestone", ["Registered as", "Acquired subnet lease", "Overlay flannel.1 is up"])
def test_sigkill_during_bringup_converges(cluster3, milestone):
    c = cluster3
    n = c.nodes[1]
    subnet = n.subnet()
    n.stop(signal.SIGKILL)
    n.start()
    wait_until(lambda: milestone in n.log_since_start(), 20, f"{n.name}: {milestone}", interval=0.01)
    assert n.stop(signal.SIGKILL) == -signal.SIGKILL
    old_lease = n.record()["lease"]
    n.start()
    wait_until(lambda: n.record() and n.record()["lease"] != old_lease and n.state() == "ready", 30,
               f"{n.name} ready again")
    assert n.subnet() == subnet
    assert len(c.etcd.get_prefix(MACHINES)) == 3 and len(c.etcd.get_prefix(SUBNETS)) == 3
    c.wait_converged()


def test_new_minion_joins_the_running_cluster(cluster3):
    c = cluster3
    n = c.add_node("minion").start()
    c.wait_ready()
    assert len({m.subnet() for m in c.nodes}) == 4
    c.wait_converged()
    for m in c.nodes[:3]:
        wait_until(lambda: ping(m, overlay_ip(n)), 10, f"{m.name} -> the new {n.name}")
        wait_until(lambda: ping(n, overlay_ip(m)), 10, f"the new {n.name} -> {m.name}")


# ---- faults that need a cluster of their own ----


def test_etcd_away_during_bringup_and_after(fresh_cluster):
    c = fresh_cluster(3, start=False)
    c.etcd.stop()
    for n in c.nodes:
        n.start()
    # Every agent has tried and failed to reach etcd before it returns.
    for n in c.nodes:
        wait_until(lambda: "connection refused" in n.log(), 20, f"{n.name} to meet the missing etcd")
    assert all(n.alive() for n in c.nodes)
    c.etcd.start()
    c.wait_ready(timeout=60)
    c.wait_converged()
    assert len(c.etcd.get_prefix(SUBNETS)) == 3
    assert len({n.subnet() for n in c.nodes}) == 3

    # A `status --wait` for a machine that is not ready yet, watching.
    ghost_id = "fedcba9876543210fedcba9876543210"
    ghost_file = os.path.join(c.workdir, "ghost-machine-id")
    with open(ghost_file, "w") as f:
        f.write(ghost_id + "\n")
    ghost = {"id": app_specific(ghost_id), "name": "ghost", "role": "minion", "ip": "192.168.3.91", "state": "network"}
    c.etcd.put(MACHINES + app_specific(ghost_id), json.dumps(ghost))
    n1 = c.nodes[0]
    waiter = subprocess.Popen(n1.argv("status", "--wait=120s", "-c", n1.conf, machine_id_file=ghost_file),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Waiting for node" in waiter.stderr.readline()

        # Then etcd goes away in steady state: the data path stays as it is.
        # (The etcd client warns once when an endpoint starts failing.)
        failures = {n.name: n.log().count("warning: etcd http://") for n in c.nodes}
        before = c.expected()
        c.etcd.stop()
        for n in c.nodes:
            wait_until(lambda: n.log().count("warning: etcd http://") > failures[n.name], 20,
                       f"{n.name} to notice etcd is gone")
        c.converged(expected=before)
        for a, b in ((c.nodes[0], c.nodes[1]), (c.nodes[2], c.nodes[0])):
            assert ping(a, overlay_ip(b)), (a.name, b.name)
        assert all(n.alive() for n in c.nodes)
        # Back: the watches resume and follow changes again.
        c.etcd.start()
        extra = SUBNETS + "10.244.252.0-24"
        c.etcd.put(extra, json.dumps({"PublicIP": "192.168.3.97", "BackendType": "vxlan",
                                      "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fc:01"}}))
        for n in c.nodes:
            wait_until(lambda: ("10.244.252.0/24", "10.244.252.0") in n.kernel_state()[2], 30,
                       f"{n.name} to follow etcd again")
        c.etcd.delete(extra)
        c.wait_converged()
        c.wait_ready()
        # The waiter lost its watch with etcd and picked it up again.
        assert waiter.poll() is None, waiter.communicate()
        ghost["state"] = "ready"
        c.etcd.put(MACHINES + app_specific(ghost_id), json.dumps(ghost))
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        assert "ghost" in out
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()


def test_lease_failure_after_ready_clears_when_the_lease_is_back(fresh_cluster):
    """A node at ready whose subnet lease cannot be re-acquired for a while
    (no free subnet) shows waiting (network), and ready again once it holds its subnet
    again, also when that is the same subnet."""
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    with open(n.conf) as f:
        conf = f.read()
    with open(n.conf, "w") as f:      # two subnets: 10.244.0.0/24 and 10.244.1.0/24
        f.write(conf.replace("[network]\n", "[network]\nnetwork = 10.244.0.0/23\n"))
    n.start()
    c.wait_ready([n], timeout=60)
    key, _, _ = n.subnet_record()
    mine = n.subnet()
    other = "10.244.1.0-24" if mine == "10.244.0.0/24" else "10.244.0.0-24"
    rec = {"BackendType": "vxlan", "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fd:01"}}
    c.etcd.put(SUBNETS + other, json.dumps(dict(rec, PublicIP="192.168.3.97")))
    # Someone takes our subnet over: none is left for us.
    c.etcd.put(key, json.dumps(dict(rec, PublicIP="192.168.3.98")))
    # Transient (a subnet may come free): waiting, not failed.
    wait_until(lambda: n.state() == "waiting", 20, f"{n.name} to show waiting")
    rec = json.loads(n.record()["value"])
    assert rec.get("reason") == "network" and "no free subnet" in rec.get("message", ""), rec
    # The squatter leaves: the lease takes its subnet back, and the node is ready.
    c.etcd.delete(key)
    wait_until(lambda: n.subnet() == mine, 30, f"{n.name} to hold {mine} again")
    wait_until(lambda: n.state() == "ready", 20, f"{n.name} to be ready again")
    assert not {"error", "reason", "message"} & set(json.loads(n.record()["value"]))
    c.etcd.delete(SUBNETS + other)


HOLDING_SERVER = r'''
import hashlib, os, select, socket, sys, threading
addr, port, release, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = b"corekube artifact\n"
conns, lock = [], threading.Lock()
def log(line):
    with open(log_path, "a") as f:
        f.write(line + "\n")
def still_open(c):
    r, _, _ = select.select([c], [], [], 0)
    if not r:
        return True
    try:
        return c.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False
def serve(c, i):
    c.recv(65536)
    while not os.path.exists(release):
        if not still_open(c):
            log(f"closed {i}")
            return
        select.select([c], [], [], 0.05)
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(8)
log("listening")
i = 0
while True:
    c, _ = s.accept()
    i += 1
    with lock:
        others = [o for o in conns if still_open(o)]
        conns[:] = others + [c]
    log(f"open {i} concurrent {len(others) + 1}")
    threading.Thread(target=serve, args=(c, i), daemon=True).start()
'''


def test_subnet_moved_during_a_download_drops_it(fresh_cluster):
    """The lease moves to another subnet while an artifact downloads: the
    daemon goes back to the Docker step and downloads again, and the first
    download must not carry on beside the second (two callbacks into one
    step)."""
    import hashlib
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    body = b"corekube artifact\n"
    release = os.path.join(c.workdir, "release")
    slog = os.path.join(c.workdir, "server.log")
    script = os.path.join(c.workdir, "server.py")
    with open(script, "w") as f:
        f.write(HOLDING_SERVER)
    with open(n.conf) as f:
        conf = f.read()
    conf = conf.replace("[role.master]\nunits =\nartifacts =\n", "[role.master]\nunits =\nartifacts = blob\n")
    conf += (f"\n[artifact.blob]\nurl = http://192.168.3.1:8089/blob\n"
             f"sha256 = {hashlib.sha256(body).hexdigest()}\npath = {n.dir}/bin/blob\n")
    with open(n.conf, "w") as f:
        f.write(conf)
    server = subprocess.Popen(["ip", "netns", "exec", c.fabric.name, "/usr/bin/python3", script,
                               "192.168.3.1", "8089", release, slog], stdin=subprocess.DEVNULL)

    def server_log():
        try:
            with open(slog) as f:
                return f.read()
        except OSError:
            return ""
    key = None
    try:
        wait_until(lambda: "listening" in server_log(), 10, "the artifact server")
        n.start()
        wait_until(lambda: "open 1 " in server_log(), 30, "the first download")
        wait_until(lambda: n.state() == "artifacts", 10, "state artifacts")
        key, _, _ = n.subnet_record()
        before = n.subnet()
        # Someone takes our subnet over: the lease moves to another one.
        c.etcd.put(key, json.dumps({"PublicIP": "192.168.3.98", "BackendType": "vxlan",
                                    "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fd:02"}}))
        wait_until(lambda: n.subnet() not in (None, before), 30, "a new subnet")
        wait_until(lambda: "open 2 " in server_log(), 30, "the second download")
        open(release, "w").close()
        c.wait_ready([n], timeout=30)
        with open(os.path.join(n.dir, "bin", "blob"), "rb") as f:
            assert f.read() == body
        assert "concurrent 2" not in server_log(), server_log()
        assert "open 3 " not in server_log(), server_log()
        assert n.alive()
    finally:
        server.kill()
        server.wait()
        if key:
            c.etcd.delete(key)

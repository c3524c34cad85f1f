# SPDX-License-Identifier: Apache-2.0
"""The machine record: JSON, lease TTL, keepalive, loss and return."""

import json
import re
import time

from conftest import run_tool, wait_until

MID = "0123456789abcdef0123456789abcdef"
KEY = f"/corekube/machines/{MID}"


def start_register(tool, etcd, ttl, *extra):
    t = tool(etcd.url, "--machine-id", MID, "--name", "minion-1", "--role", "minion",
             "--ip", "192.168.3.12", "--subnet", "10.244.94.0/24", "--ttl", str(ttl), *extra,
             "register")
    t.wait_event("registered")
    return t


def lease_ttls(etcd, lease):
    r = etcd.ctl("lease", "timetolive", format(lease, "x"), "-w", "json")
    j = json.loads(r.stdout)
    return int(j.get("granted-ttl", j.get("grantedTTL", 0))), int(j.get("ttl", j.get("TTL", -1)))


def test_record_json_and_ttl(etcd, tool):
    t = start_register(tool, etcd, 6)
    kv = etcd.get(KEY)
    assert kv is not None
    rec = json.loads(kv["value"])
    assert set(rec) == {"id", "name", "role", "ip", "subnet", "state", "units", "version", "updated"}
    assert rec["id"] == MID and rec["name"] == "minion-1" and rec["role"] == "minion"
    assert rec["ip"] == "192.168.3.12" and rec["subnet"] == "10.244.94.0/24"
    assert rec["state"] == "registering" and rec["units"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["updated"])
    assert kv["lease"] != 0
    granted, left = lease_ttls(etcd, kv["lease"])
    assert granted == 6 and 0 < left <= 6

    # The tool's own timetolive call agrees.
    rc, events, _ = run_tool(etcd.url, "ttl", KEY)
    assert rc == 0 and events[-1]["granted_ttl"] == 6

    # Kept alive: still there well after the TTL.
    deadline = time.monotonic() + 9
    while time.monotonic() < deadline:
        assert etcd.get(KEY) is not None
        time.sleep(0.5)
    t.stop()


def test_updates_coalesced(etcd, tool):
    t = start_register(tool, etcd, 30)
    n = len(t.events)
    # One write of several changes: one put.
    t.send("state network\nunit kubelet.service active\nunit kube-proxy.service activating\nstate docker")
    t.wait_event("written", start=n)
    rec = json.loads(etcd.get(KEY)["value"])
    assert rec["state"] == "docker"
    assert rec["units"] == {"kubelet.service": "active", "kube-proxy.service": "activating"}
    t.send("stats")
    t.wait_event("stats", start=n)
    assert t.count("written") == 1

    t.send("state failed unit kubelet.service failed to start")
    wait_until(lambda: json.loads(etcd.get(KEY)["value"])["state"] == "failed", 10, "failed state")
    rec = json.loads(etcd.get(KEY)["value"])
    assert rec["error"] == "unit kubelet.service failed to start"


def test_disappears_when_keepalive_stops(etcd, tool):
    t = start_register(tool, etcd, 3)
    assert etcd.get(KEY) is not None
    t.kill()
    wait_until(lambda: etcd.get(KEY) is None, 15, "record expiry")


def test_lease_revoked_comes_back(etcd, tool):
    t = start_register(tool, etcd, 3)
    lease = etcd.get(KEY)["lease"]
    n = len(t.events)
    etcd.ctl("lease", "revoke", format(lease, "x"))
    t.wait_event("lost", start=n)
    t.wait_event("registered", start=n)
    kv = wait_until(lambda: etcd.get(KEY), 10, "record back")
    assert kv["lease"] != lease


def test_back_after_etcd_outage_longer_than_ttl(etcd, tool):
    t = start_register(tool, etcd, 3, "--backoff-max", "1000")
    etcd.stop()
    time.sleep(5)   # the outage itself: longer than the TTL
    etcd.start()
    wait_until(lambda: etcd.get(KEY), 20, "record after the outage")
    # Alive on its lease again, not a leftover: still there after another TTL.
    time.sleep(4)
    kv = etcd.get(KEY)
    assert kv is not None
    granted, left = lease_ttls(etcd, kv["lease"])
    assert granted == 3 and left > 0


def test_leave_removes_record(etcd, tool):
    t = start_register(tool, etcd, 30)
    t.send("leave")
    t.wait_event("left")
    assert t.wait_exit() == 0
    assert etcd.get(KEY) is None

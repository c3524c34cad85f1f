# SPDX-License-Identifier: Apache-2.0
"""Network config and subnet leases: creation, races, reuse, renewal,
re-acquisition, flannel's record form."""

import json
import os
import re
import subprocess
import time

from conftest import TOOL, run_tool, wait_until

NET = "/coreos.com/network"


def subnet_key(subnet):
    return f"{NET}/subnets/" + subnet.replace("/", "-")


def lease_once(etcd, ip, *extra):
    rc, events, err = run_tool(etcd.url, "--ip", ip, "--once", *extra, "lease")
    assert rc == 0, err
    acq = [e for e in events if e["event"] == "acquired"]
    assert len(acq) == 1, events
    return acq[0]


def test_config_created_once_and_validated(etcd):
    rc, events, _ = run_tool(etcd.url, "--network", "10.100.0.0/16", "config")
    assert rc == 0 and events[0]["created"] is True
    cfg = json.loads(etcd.get(f"{NET}/config")["value"])
    assert cfg == {"Network": "10.100.0.0/16", "SubnetLen": 24, "SubnetMin": "10.100.1.0",
                   "SubnetMax": "10.100.255.0", "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472}}
    # Another node with other settings uses the existing config.
    rc, events, _ = run_tool(etcd.url, "--network", "10.200.0.0/16", "config")
    assert rc == 0 and events[0]["created"] is False
    assert json.loads(events[0]["config"])["Network"] == "10.100.0.0/16"


def test_bad_config_names_the_key(etcd):
    cases = {
        '{"Network":"10.0.0.0/33","Backend":{"Type":"vxlan"}}': "Network",
        '{"Network":"10.0.0.0/16","SubnetLen":8,"Backend":{"Type":"vxlan"}}': "SubnetLen",
        '{"Network":"10.0.0.0/16","SubnetMin":"10.0.0.5","Backend":{"Type":"vxlan"}}': "SubnetMin",
        '{"Network":"10.0.0.0/16","SubnetMax":"10.1.0.0","Backend":{"Type":"vxlan"}}': "SubnetMax",
        '{"Network":"10.0.0.0/16","Backend":{"Type":"udp"}}': "Backend.Type",
        '{"Network":"10.0.0.0/16"}': "Backend",
        'not json': "not a JSON object",
    }
    for value, key in cases.items():
        etcd.ctl("put", f"{NET}/config", value)
        rc, events, _ = run_tool(etcd.url, "config")
        assert rc == 1, value
        assert events[-1]["event"] == "error"
        assert f"{NET}/config: {key}" in events[-1]["message"], (value, events[-1])


def test_twenty_at_once_distinct(etcd, workdir):
    # 31 subnets for 20 clients: many lost races, all must still succeed.
    procs = []
    for i in range(20):
        procs.append(subprocess.Popen(
            [TOOL, f"--endpoints={etcd.url}", "--network", "10.50.0.0/25", "--subnet-len", "30",
             "--ip", f"192.168.3.{10 + i}", f"--mac=02:00:00:00:01:{i:02x}", "--once", "lease"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, ETCD_TOOL_DEBUG="1")))
    subnets, races = [], 0
    try:
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert "error" not in [json.loads(l)["event"] for l in out.splitlines()], out
            acq = [json.loads(l) for l in out.splitlines() if '"acquired"' in l]
            assert len(acq) == 1
            subnets.append(acq[0]["subnet"])
            races += err.count("lost the race")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert len(set(subnets)) == 20, subnets
    keys = etcd.keys(f"{NET}/subnets/")
    assert sorted(keys) == sorted(subnet_key(s) for s in subnets)
    print(f"20 clients: {races} lost races retried")


def test_record_in_flannel_form(etcd):
    acq = lease_once(etcd, "192.168.3.12", "--mac", "0a:58:0a:f4:5e:01")
    raw = etcd.ctl("get", acq["key"], "--print-value-only").stdout.strip()
    assert raw == '{"PublicIP":"192.168.3.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:5e:01"}}'
    rec = json.loads(raw)
    assert list(rec) == ["PublicIP", "BackendType", "BackendData"]
    assert list(rec["BackendData"]) == ["VNI", "VtepMAC"]
    assert re.fullmatch(r"10\.24[45]\.\d+\.0/24", acq["subnet"])
    # On its own 24 h etcd lease.
    r = etcd.ctl("lease", "timetolive", format(acq["lease"], "x"), "-w", "json")
    assert json.loads(r.stdout)["granted-ttl"] == 86400


def test_reuse_order(etcd, workdir):
    first = lease_once(etcd, "192.168.3.12")
    # 1. A restart finds the record with our PublicIP.
    again = lease_once(etcd, "192.168.3.12")
    assert again["subnet"] == first["subnet"]
    assert etcd.keys(f"{NET}/subnets/") == [first["key"]]

    # 2. Lease gone, subnet file present: the same subnet.
    etcd.ctl("del", first["key"])
    net = first["subnet"].split("/")[0].rsplit(".", 1)[0]
    sf = os.path.join(workdir, "subnet.env")
    with open(sf, "w") as f:
        f.write(f"FLANNEL_NETWORK=10.244.0.0/15\nFLANNEL_SUBNET={net}.1/24\nFLANNEL_MTU=1450\n")
    fromfile = lease_once(etcd, "192.168.3.12", "--subnet-file", sf)
    assert fromfile["subnet"] == first["subnet"]

    # 3. The subnet taken by another PublicIP: a new one.
    etcd.ctl("del", first["key"])
    etcd.ctl("put", first["key"], '{"PublicIP":"192.168.3.99","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}}')
    other = lease_once(etcd, "192.168.3.12", "--subnet-file", sf)
    assert other["subnet"] != first["subnet"]
    assert json.loads(etcd.get(first["key"])["value"])["PublicIP"] == "192.168.3.99"


def test_renewed_before_expiry(etcd, tool):
    t = tool(etcd.url, "--ip", "192.168.3.12", "--ttl", "4", "--margin", "2", "lease")
    acq = t.wait_event("acquired")
    deadline = time.monotonic() + 10    # well past the 4 s TTL
    while time.monotonic() < deadline:
        kv = etcd.get(acq["key"])
        assert kv is not None and kv["lease"] == acq["lease"]
        time.sleep(0.5)
    assert t.count("acquired") == 1


def test_deleted_reacquired_same_subnet(etcd, tool):
    t = tool(etcd.url, "--ip", "192.168.3.12", "lease")
    acq = t.wait_event("acquired")
    n = len(t.events)
    etcd.ctl("del", acq["key"])
    again = t.wait_event("acquired", start=n)
    assert again["subnet"] == acq["subnet"] and again["changed"] is False
    assert wait_until(lambda: etcd.get(acq["key"]), 5, "record back")


def test_expired_lease_reacquired(etcd, tool):
    t = tool(etcd.url, "--ip", "192.168.3.12", "lease")
    acq = t.wait_event("acquired")
    n = len(t.events)
    etcd.ctl("lease", "revoke", format(acq["lease"], "x"))
    again = t.wait_event("acquired", start=n)
    assert again["subnet"] == acq["subnet"] and again["lease"] != acq["lease"]


def test_taken_over_new_subnet(etcd, tool):
    t = tool(etcd.url, "--ip", "192.168.3.12", "lease")
    acq = t.wait_event("acquired")
    n = len(t.events)
    etcd.ctl("put", acq["key"], '{"PublicIP":"192.168.3.77","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:77"}}')
    again = t.wait_event("acquired", start=n)
    assert again["subnet"] != acq["subnet"] and again["changed"] is True
    assert again["previous"] == acq["subnet"].split("/")[0]


def test_release(etcd, tool):
    t = tool(etcd.url, "--ip", "192.168.3.12", "lease")
    acq = t.wait_event("acquired")
    t.send("release")
    t.wait_event("left")
    assert t.wait_exit() == 0
    assert etcd.get(acq["key"]) is None


def test_overwritten_with_our_ip_not_taken_back(etcd, tool):
    # Someone else claims our record with our own PublicIP (two nodes, one IP):
    # we move on instead of taking it back, which would never end.
    t = tool(etcd.url, "--ip", "192.168.3.12", "lease")
    acq = t.wait_event("acquired")
    n = len(t.events)
    etcd.ctl("put", acq["key"], '{"PublicIP":"192.168.3.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:77"}}')
    again = t.wait_event("acquired", start=n)
    assert again["subnet"] != acq["subnet"]
    time.sleep(1)
    assert t.count("acquired") == 2
    assert "02:00:00:00:00:77" in etcd.get(acq["key"])["value"]


def test_vtep_mac_update_keeps_lease(etcd, tool):
    # flannel.1 recreated with a new MAC: the record follows, the lease stays.
    t = tool(etcd.url, "--ip", "192.168.3.12", "--mac", "02:00:00:00:00:01", "lease")
    acq = t.wait_event("acquired")
    t.send("mac 02:00:00:00:00:02")
    wait_until(lambda: "02:00:00:00:00:02" in etcd.get(acq["key"])["value"], 10, "new MAC in the record")
    kv = etcd.get(acq["key"])
    assert kv["lease"] == acq["lease"]
    time.sleep(1)
    assert t.count("acquired") == 1 and t.count("error") == 0

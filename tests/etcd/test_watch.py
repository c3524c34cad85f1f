# SPDX-License-Identifier: Apache-2.0
"""Peer watch: snapshot + watch, batches, compaction recovery, hostile records."""

import json
import time

from conftest import Proxy, wait_until

NET = "/coreos.com/network"
OWN = "10.244.94.0/24"
OWN_IP = "192.168.3.12"


def rec(ip, mac, vni=1):
    return json.dumps({"PublicIP": ip, "BackendType": "vxlan", "BackendData": {"VNI": vni, "VtepMAC": mac}},
                      separators=(",", ":"))


def key(n):
    return f"{NET}/subnets/10.244.{n}.0-24"


def peers_of(e):
    return sorted(p["subnet"] for p in e["peers"])


def start_watch(tool, url):
    t = tool(url, "--own-subnet", OWN, "--own-ip", OWN_IP, "watch")
    t.wait_event("peers")
    return t


def test_snapshot_then_changes(etcd, tool):
    etcd.ctl("put", key(1), rec("192.168.3.11", "02:00:00:00:00:01"))
    etcd.ctl("put", key(94), rec(OWN_IP, "02:00:00:00:00:94"))     # our own: not a peer
    t = start_watch(tool, etcd.url)
    assert peers_of(t.events[-1]) == ["10.244.1.0/24"]
    assert t.events[-1]["peers"][0] == {"subnet": "10.244.1.0/24", "ip": "192.168.3.11", "mac": "02:00:00:00:00:01"}

    n = len(t.events)
    etcd.ctl("put", key(2), rec("192.168.3.13", "02:00:00:00:00:02"))
    e = t.wait_event(lambda e: e["event"] == "peers" and peers_of(e) == ["10.244.1.0/24", "10.244.2.0/24"],
                     start=n, what="peer 2 added")
    n = len(t.events)
    etcd.ctl("del", key(1))
    t.wait_event(lambda e: e["event"] == "peers" and peers_of(e) == ["10.244.2.0/24"], start=n,
                 what="peer 1 removed")
    assert "Ignoring" not in t.stderr()


def test_burst_is_one_batch(etcd, tool):
    t = start_watch(tool, etcd.url)
    batches = t.events[-1]["batches"]
    n = len(t.events)
    etcd.put_many([(key(i), rec(f"192.168.3.{100 + i}", f"02:00:00:00:01:{i:02x}")) for i in range(1, 11)])
    e = t.wait_event("peers", start=n)
    assert len(e["peers"]) == 10 and e["batches"] == batches + 1
    # Nothing else follows for that burst.
    t.send("stats")
    t.wait_event("stats", start=n)
    assert t.count("peers") == 2


def test_compacted_watch_recovered_by_list(etcd, tool):
    proxy = Proxy(etcd.client_port)
    try:
        etcd.ctl("put", key(1), rec("192.168.3.11", "02:00:00:00:00:01"))
        t = tool(f"http://127.0.0.1:{proxy.port}", "--own-subnet", OWN, "--own-ip", OWN_IP, "watch", debug=True)
        t.wait_event("peers")
        assert peers_of(t.events[-1]) == ["10.244.1.0/24"] and t.events[-1]["lists"] == 1

        # Cut the agent off; meanwhile peers come and go and history is compacted.
        proxy.block()
        etcd.ctl("put", key(2), rec("192.168.3.13", "02:00:00:00:00:02"))
        etcd.ctl("del", key(1))
        etcd.ctl("put", key(3), rec("192.168.3.14", "02:00:00:00:00:03"))
        etcd.ctl("compaction", str(etcd.revision()))
        n = len(t.events)
        proxy.unblock()

        e = t.wait_event(lambda e: e["event"] == "peers" and peers_of(e) == ["10.244.2.0/24", "10.244.3.0/24"],
                         start=n, timeout=30, what="peers after compaction")
        assert e["lists"] == 2, t.stderr()     # recovered by a fresh list, the removal of peer 1 not missed
        assert "compacted" in t.stderr()
    finally:
        proxy.close()


def test_hostile_records_warned_once(etcd, tool):
    hostile = {
        key(10): "{not json",
        f"{NET}/subnets/10.9.0.0-24": rec("192.168.3.20", "02:00:00:00:00:20"),        # outside the network
        f"{NET}/subnets/10.244.12.0-25": rec("192.168.3.21", "02:00:00:00:00:21"),     # wrong length
        key(94): rec("192.168.3.22", "02:00:00:00:00:22"),                        # our own subnet
        key(13): rec("192.168.3.23", "01:00:5e:00:00:01"),                             # multicast MAC
        key(14): rec("224.0.0.5", "02:00:00:00:00:24"),                                # multicast IP
        key(15): rec("192.168.3.25", "zz:00:00:00:00:25"),                             # not a MAC
        key(16): json.dumps({"PublicIP": "192.168.3.26", "BackendType": "udp"}),       # not vxlan
    }
    good = (key(20), rec("192.168.3.30", "02:00:00:00:00:30"))
    for k, v in list(hostile.items())[:4]:
        etcd.ctl("put", k, v)
    t = start_watch(tool, etcd.url)
    n = len(t.events)
    for k, v in list(hostile.items())[4:] + [good]:
        etcd.ctl("put", k, v)
    t.wait_event(lambda e: e["event"] == "peers" and peers_of(e) == ["10.244.20.0/24"], start=n,
                 what="only the good peer")

    # A fresh list sees the same revisions: no new warnings.
    t.send("relist")
    wait_until(lambda: t.stats()["lists"] >= 2, 10, "second list")
    err = t.stderr()
    for k in hostile:
        assert err.count(f"Ignoring peer record {k} ") == 1, (k, err)
    assert err.count("Ignoring peer record") == len(hostile)
    assert t.proc.poll() is None    # still running

    # A new revision of a bad record is a new warning.
    etcd.ctl("put", key(13), rec("192.168.3.23", "ff:ff:ff:ff:ff:ff"))
    wait_until(lambda: t.stderr().count(f"Ignoring peer record {key(13)} ") == 2, 10, "warning for new revision")



def test_mac_owner_changes_by_delta(etcd, tool):
    """Watch events reach the handler as a delta (only the changed VTEP MACs'
    records judged again): it must say exactly how the set changed, also
    when a MAC's owner goes and a later record with that MAC takes over, and
    the set must be what a fresh list makes of the same records."""
    mac = "02:00:00:00:00:aa"
    t = start_watch(tool, etcd.url)

    def step(action, want, what):
        n = len(t.events)
        action()
        e = t.wait_event(lambda e: e["event"] == "peers" and peers_of(e) == want, start=n, what=what)
        assert "delta" in e and e["delta"]["consistent"], e
        return e

    step(lambda: etcd.ctl("put", key(1), rec("192.168.3.11", mac)), ["10.244.1.0/24"], "owner of the MAC")
    # A later record with that MAC and another IP is left out (the set does not change) ...
    etcd.ctl("put", key(2), rec("192.168.3.12", mac))
    step(lambda: etcd.ctl("put", key(3), rec("192.168.3.13", "02:00:00:00:00:03")),
         ["10.244.1.0/24", "10.244.3.0/24"], "an unrelated peer")
    # ... until the owner goes: then it holds the MAC.
    e = step(lambda: etcd.ctl("del", key(1)), ["10.244.2.0/24", "10.244.3.0/24"], "the MAC's new owner")
    assert e["delta"] == {"upsert": 1, "removed": 1, "consistent": True}
    # Another record moves to that MAC with the owner's IP: the same node, fine.
    e = step(lambda: etcd.ctl("put", key(3), rec("192.168.3.12", mac)), ["10.244.2.0/24", "10.244.3.0/24"],
             "a second record of the same node")
    assert {p["subnet"]: p["mac"] for p in e["peers"]}["10.244.3.0/24"] == mac
    # The owner's IP changes: the other record no longer matches and is left out.
    step(lambda: etcd.ctl("put", key(2), rec("192.168.3.99", mac)), ["10.244.2.0/24"], "owner with a new IP")
    last = t.events[-1]["peers"]

    fresh = start_watch(tool, etcd.url)
    assert "delta" not in fresh.events[-1]
    assert fresh.events[-1]["peers"] == last

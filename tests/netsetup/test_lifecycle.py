# SPDX-License-Identifier: Apache-2.0
"""Lifecycle without disruption (issue 12), against the real kernel in
namespaces the tests create and delete: the add-only reconcile, drift
notifications, and changing flannel.1 in place instead of replacing it."""

import os
import subprocess

import pytest

from test_netsetup import (  # noqa: F401  (fixtures are used by name)
    ADDR, PEERS3, SUBNET, TOOL, Lines, expected_state, kernel_state, monitored, netns, node, run, spawn, stats,
    write_peers,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not TOOL, reason="NS_TOOL not set (run through meson test)"),
]


def bridge(node, *args):
    run("bridge", "-n", node.name, *args)


def deleted(lines):
    return [s for s in lines if s.startswith("Deleted")]


# ---- add-only reconcile ----

def test_add_only_removes_nothing_and_replaces(node, tmp_path, spawn):
    peers3 = write_peers(tmp_path, PEERS3)
    # One peer left, with a new MAC.
    one = [("10.244.2.0/24", "192.168.3.13", "02:00:00:00:00:22")]
    out = {}

    def reconcile_one(*extra):
        return monitored(node, spawn, lambda: out.update(node.tool("reconcile", write_peers(tmp_path, one),
                                                                   extra=extra)))

    node.tool("reconcile", peers3)
    seen = reconcile_one("--no-remove")
    # ARP 10.244.2.0 replaced, FDB :22 added, route 10.244.2.0 kept; nothing else touched.
    assert stats(out) == dict(added=1, replaced=1, removed=0, unchanged=1, requests=2, dumps=3, failed=0)
    assert deleted(seen) == []
    neigh, fdb, routes = kernel_state(node)
    assert neigh == expected_state([PEERS3[0], PEERS3[2]] + one)[0]
    assert fdb == expected_state(PEERS3 + one)[1] and routes == expected_state(PEERS3)[2]

    # The same from the same start without the flag: two peers' ARP, FDB
    # and routes (and the old FDB :02) go.
    node.tool("reconcile", peers3)
    seen = reconcile_one()
    assert stats(out) == dict(added=1, replaced=1, removed=7, unchanged=1, requests=9, dumps=3, failed=0)
    assert len(deleted(seen)) == 7
    assert kernel_state(node) == expected_state(one)


def test_add_only_replaces_a_moved_peer_in_place(node, tmp_path, spawn):
    node.tool("reconcile", write_peers(tmp_path, PEERS3))
    moved = [PEERS3[0], ("10.244.2.0/24", "192.168.3.99", "02:00:00:00:00:02"), PEERS3[2]]
    out = {}
    seen = monitored(node, spawn, lambda: out.update(
        node.tool("reconcile", write_peers(tmp_path, moved), extra=("--no-remove",))))
    assert out["removed"] == "0" and out["failed"] == "0" and deleted(seen) == []
    # The kernel keeps one destination per unicast MAC: the new one replaced the old.
    assert kernel_state(node) == expected_state(moved)


def test_add_only_leaves_fdb_entry_with_own_port_alone(node, tmp_path, spawn):
    node.tool("setup")
    bridge(node, "fdb", "add", "02:00:00:00:00:09", "dev", "flannel.1", "dst", "192.168.3.9", "port", "4789",
           "self", "permanent")
    # A peer's MAC with a port of its own: the wanted plain entry must still be set.
    bridge(node, "fdb", "add", "02:00:00:00:00:01", "dev", "flannel.1", "dst", "192.168.3.12", "port", "4789",
           "self", "permanent")
    out = {}
    seen = monitored(node, spawn, lambda: out.update(
        node.tool("reconcile", write_peers(tmp_path, PEERS3), extra=("--no-remove",))))
    assert out["removed"] == "0" and out["failed"] == "0" and deleted(seen) == []
    fdb = node.bridgej("fdb", "show", "dev", "flannel.1")
    assert any(f["mac"] == "02:00:00:00:00:09" and f.get("port") == 4789 for f in fdb), fdb
    assert any(f["mac"] == "02:00:00:00:00:01" and f.get("dst") == "192.168.3.12" and "port" not in f
               for f in fdb), fdb
    neigh, fdbs, routes = kernel_state(node)
    assert (neigh, routes) == expected_state(PEERS3)[::2]
    assert fdbs >= expected_state(PEERS3)[1]


# ---- drift notifications ----

class Session:
    """ns-tool session: one command a line on stdin, answers up to "end"."""

    def __init__(self, node, extra=()):
        cmd = ["ip", "netns", "exec", node.name, TOOL, "--subnet", SUBNET, "--addr", ADDR, *extra, "session"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = Lines(self.proc)
        self.lines.wait_for(lambda s: s == "ready")

    def cmd(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        before, _ = self.lines.wait_for(lambda s: s == "end")
        out = dict(s.split("=", 1) for s in before if "=" in s and not s.startswith("event="))
        out["events"] = [s.split("=", 1)[1] for s in before if s.startswith("event=")]
        out["timeout"] = "timeout" in before
        return out

    def reconcile(self, path, no_remove=False):
        out = self.cmd(f"reconcile {path}" + (" no-remove" if no_remove else ""))
        assert out["rc"] == "0", out
        return out

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def session(node):
    made = []

    def start(extra=()):
        s = Session(node, extra)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


# What someone else might do to our entries; each must be reported.
HAND = {
    "route-deleted": lambda n: n.ip("route", "del", "10.244.2.0/24"),
    "arp-deleted": lambda n: n.ip("neigh", "del", "10.244.2.0", "dev", "flannel.1"),
    "fdb-deleted": lambda n: bridge(n, "fdb", "del", "02:00:00:00:00:02", "dev", "flannel.1", "dst",
                                    "192.168.3.13", "self"),
    "arp-other-mac": lambda n: n.ip("neigh", "replace", "10.244.2.0", "lladdr", "02:00:00:00:00:99", "dev",
                                    "flannel.1", "nud", "permanent"),
    "arp-not-permanent": lambda n: n.ip("neigh", "replace", "10.244.2.0", "lladdr", "02:00:00:00:00:02", "dev",
                                        "flannel.1", "nud", "reachable"),
    "fdb-other-dst": lambda n: bridge(n, "fdb", "replace", "02:00:00:00:00:02", "dev", "flannel.1", "dst",
                                      "192.168.3.99", "self", "permanent"),
    "route-other-gateway": lambda n: n.ip("route", "replace", "10.244.2.0/24", "via", "10.244.3.0", "dev",
                                          "flannel.1", "onlink"),
}


@pytest.mark.parametrize("no_remove", [False, True], ids=["remove", "no-remove"])
@pytest.mark.parametrize("hand", list(HAND), ids=list(HAND))
def test_drift_when_our_entry_is_removed_or_changed(node, tmp_path, session, hand, no_remove):
    s = session()
    peers = write_peers(tmp_path, PEERS3)
    assert s.reconcile(peers, no_remove)["events"] == []

    HAND[hand](node)
    # The notification is queued before `ip`/`bridge` returns; poll finds it at once.
    out = s.cmd("wait 10000")
    assert not out["timeout"] and out["events"] == ["peers-drift"]

    # The owner's answer: a reconcile, which repairs it and reports nothing itself.
    out = s.reconcile(peers, no_remove)
    assert int(out["added"]) + int(out["replaced"]) >= 1 and out["events"] == []
    assert kernel_state(node) == expected_state(PEERS3)
    assert s.cmd("process")["events"] == []


def test_own_reconciles_cause_no_drift(node, tmp_path, session):
    s = session()
    changed = [("10.244.1.0/24", "192.168.3.12", "02:00:00:00:00:11"),      # new MAC
               ("10.244.2.0/24", "192.168.3.99", "02:00:00:00:00:02"),      # moved
               ("10.244.4.0/24", "192.168.3.15", "02:00:00:00:00:04")]      # new peer
    steps = [(PEERS3, False), (PEERS3[:1], False), (PEERS3, False), (changed, False), (PEERS3, True),
             (changed, True), (PEERS3[1:], False), ([], False), (PEERS3, False)]
    for peers, no_remove in steps:
        out = s.reconcile(write_peers(tmp_path, peers), no_remove)
        assert out["events"] == [], (peers, no_remove, out)
    assert int(out["added"]) == 9
    assert s.cmd("process")["events"] == []
    # The check above can fail: a change by hand is seen.
    node.ip("route", "del", "10.244.1.0/24")
    assert s.cmd("process")["events"] == ["peers-drift"]


def test_delta_same_as_full_reconcile(node, tmp_path, session):
    """ns_overlay_apply_delta: only the changed peers' requests, no drift of
    its own, and afterwards the desired set a full reconcile of the same
    peers has (that reconcile finds nothing to do; drift is judged alike)."""
    s = session()
    assert s.cmd("delta -")["rc"] == str(-116)     # -ESTALE: nothing reconciled yet
    s.reconcile(write_peers(tmp_path, PEERS3))
    up = [("10.244.1.0/24", "192.168.3.12", "02:00:00:00:00:11"),      # new MAC
          ("10.244.4.0/24", "192.168.3.15", "02:00:00:00:00:04"),      # new peer
          ("10.244.5.0/24", "192.168.3.15", "02:00:00:00:00:04")]      # same node, same MAC
    final = up + [PEERS3[1]]
    out = s.cmd(f"delta {write_peers(tmp_path, up)} 10.244.3.0/24")
    assert out["rc"] == "0" and out["dumps"] == "0" and out["events"] == [], out
    # Removals: route, FDB (.3's MAC and .1's old one), ARP of .3; then ARP
    # (.1 replaced, .4, .5), FDB (two new MACs, .4 and .5 sharing one), routes (.4, .5).
    assert (out["added"], out["replaced"], out["removed"], out["requests"]) == ("6", "1", "4", "11"), out
    assert kernel_state(node) == expected_state(final)
    assert s.cmd("process")["events"] == []

    out = s.reconcile(write_peers(tmp_path, final))
    assert out["requests"] == "0" and out["events"] == [], out

    # Removing one of two peers that share a MAC keeps the FDB entry.
    out = s.cmd("delta - 10.244.5.0/24")
    assert out["rc"] == "0" and out["events"] == [] and out["requests"] == "2", out
    final = final[:2] + final[3:]
    assert kernel_state(node) == expected_state(final)

    # Judged against the new set: an added entry removed by hand is drift,
    # and then the kernel cannot be taken to hold the set.
    node.ip("route", "del", "10.244.4.0/24")
    assert s.cmd("process")["events"] == ["peers-drift"]
    node.ip("route", "del", "10.244.1.0/24")
    assert s.cmd(f"delta {write_peers(tmp_path, final[:1])}")["rc"] == str(-116)
    out = s.reconcile(write_peers(tmp_path, final))
    assert out["dumps"] == "3" and out["added"] == "2"
    assert kernel_state(node) == expected_state(final)


# Entries nobody wanted, added by hand: removed by a reconcile (so drift),
# unless the last one was add-only.
FOREIGN = {
    "route": lambda n: n.ip("route", "add", "10.244.60.0/24", "dev", "flannel.1"),
    "arp": lambda n: n.ip("neigh", "add", "10.244.60.0", "lladdr", "02:00:00:00:00:60", "dev", "flannel.1",
                          "nud", "permanent"),
    "fdb": lambda n: bridge(n, "fdb", "add", "02:00:00:00:00:60", "dev", "flannel.1", "dst", "192.168.3.60",
                            "self", "permanent"),
}


@pytest.mark.parametrize("no_remove", [False, True], ids=["remove", "no-remove"])
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_foreign_entry_is_drift_only_without_no_remove(node, tmp_path, session, kind, no_remove):
    s = session()
    peers = write_peers(tmp_path, PEERS3)
    s.reconcile(peers, no_remove)
    FOREIGN[kind](node)
    out = s.cmd("process")
    assert out["events"] == ([] if no_remove else ["peers-drift"])
    # Not ours in any case: a route outside the network, an entry on another device.
    node.ip("route", "add", "172.16.0.0/16", "dev", "flannel.1")
    node.ip("neigh", "add", "192.168.3.77", "lladdr", "02:00:00:00:00:77", "dev", "eth2", "nud", "permanent")
    assert s.cmd("process")["events"] == []
    if no_remove:
        # The add-only session still sees ours go.
        node.ip("route", "del", "10.244.3.0/24")
        assert s.cmd("process")["events"] == ["peers-drift"]
    else:
        out = s.reconcile(peers)
        assert out["removed"] == "1" and out["events"] == []


@pytest.mark.parametrize("small", [True, False], ids=["overrun", "room"])
def test_lost_notifications_are_drift(node, tmp_path, session, small):
    # Add-only: another program's peers are no drift by themselves, so an
    # event here comes from the overrun alone.
    s = session(("--monitor-rcvbuf", "1") if small else ())
    s.reconcile(write_peers(tmp_path, PEERS3), no_remove=True)
    many = PEERS3 + [(f"10.244.{100 + i}.0/24", f"192.168.4.{1 + i}", f"02:00:00:00:01:{i:02x}") for i in range(100)]
    out = node.tool("reconcile", write_peers(tmp_path, many))
    assert out["added"] == "300"
    assert s.cmd("process")["events"] == (["peers-drift"] if small else [])


def test_link_events_still_reported_with_peers(node, tmp_path, session):
    s = session()
    s.reconcile(write_peers(tmp_path, PEERS3))
    node.ip("link", "set", "flannel.1", "down")
    out = s.cmd("wait 10000")
    # Down also flushes the device's ARP entries and routes: drift as well.
    assert "overlay-down" in out["events"] and set(out["events"]) <= {"overlay-down", "peers-drift"}
    node.ip("link", "del", "flannel.1")
    assert s.cmd("wait 10000")["events"] == ["overlay-gone"]


# ---- change in place instead of replace ----

VXLAN = ["type", "vxlan", "id", "1", "dstport", "8472"]
IN_PLACE = {
    "local": (["local", "192.168.3.99", "dev", "eth2", "nolearning"], (), 1),
    "learning": (["local", "192.168.3.11", "dev", "eth2", "learning"], (), 1),
    "underlay": (["local", "192.168.3.11", "dev", "eth2p", "nolearning"], (), 1),
    "mac": (["local", "192.168.3.11", "dev", "eth2", "nolearning"], ("--mac", "02:aa:bb:cc:dd:01"), 1),
    "all": (["local", "192.168.3.99", "dev", "eth2p", "learning"], ("--mac", "02:aa:bb:cc:dd:01"), 4),
}


@pytest.mark.parametrize("variant", list(IN_PLACE))
def test_changed_in_place_keeps_peers(node, spawn, variant):
    args, extra, changes = IN_PLACE[variant]
    node.ip("link", "set", "eth2", "up")
    node.ip("addr", "add", "192.168.3.11/24", "dev", "eth2")
    node.ip("link", "add", "flannel.1", "address", "02:aa:bb:cc:dd:99", *VXLAN, *args)
    node.ip("link", "set", "flannel.1", "up")
    node.ip("addr", "add", "10.244.94.0/32", "dev", "flannel.1")
    for s, ip, mac in PEERS3:
        gw = s.split("/")[0]
        node.ip("neigh", "add", gw, "lladdr", mac, "dev", "flannel.1", "nud", "permanent")
        bridge(node, "fdb", "add", mac, "dev", "flannel.1", "dst", ip, "self", "permanent")
        node.ip("route", "add", s, "via", gw, "dev", "flannel.1", "onlink")
    before = node.ifindex("flannel.1")

    out = {}
    seen = monitored(node, spawn, lambda: out.update(node.tool("setup", extra=extra)))
    assert out["action"] == "changed" and out["changes"] == str(changes)
    assert int(out["ifindex"]) == before == node.ifindex("flannel.1")
    link = node.ipj("-d", "link", "show", "flannel.1")[0]
    data = link["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["local"], data["link"], data["learning"]) == \
        (1, 8472, "192.168.3.11", "eth2", False)
    assert link["address"] == (extra[1] if extra else "02:aa:bb:cc:dd:99")
    # Routes and FDB entries were never deleted; ARP entries are put back
    # after the kernel flushes them on a MAC change.
    assert kernel_state(node) == expected_state(PEERS3)
    gone = deleted(seen)
    assert not [d for d in gone if " via " in d or d.startswith("Deleted 192.168.3.")], gone
    if not extra:
        assert gone == []

    out = node.tool("setup", extra=extra)
    assert out["action"] == "adopted" and out["changes"] == "0"


def test_other_vni_still_replaced(node):
    node.ip("link", "set", "eth2", "up")
    node.ip("addr", "add", "192.168.3.11/24", "dev", "eth2")
    node.ip("link", "add", "flannel.1", "type", "vxlan", "id", "2", "dstport", "8472", "local", "192.168.3.99",
            "dev", "eth2", "learning")
    before = node.ifindex("flannel.1")
    out = node.tool("setup")
    assert out["action"] == "replaced" and int(out["ifindex"]) != before


def test_change_the_kernel_refuses_falls_back_to_replace(node):
    # The kernel will not change a VXLAN device's local address family in place.
    node.ip("link", "set", "eth2", "up")
    node.ip("addr", "add", "192.168.3.11/24", "dev", "eth2")
    node.ip("link", "add", "flannel.1", *VXLAN, "local", "fd00::1", "dev", "eth2", "nolearning")
    before = node.ifindex("flannel.1")
    out = node.tool("setup")
    assert out["action"] == "replaced" and int(out["ifindex"]) != before
    assert "refused" in out["_stderr"]
    data = node.ipj("-d", "link", "show", "flannel.1")[0]["linkinfo"]["info_data"]
    assert (data["local"], data["learning"]) == ("192.168.3.11", False)

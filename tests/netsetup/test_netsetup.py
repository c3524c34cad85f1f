# SPDX-License-Identifier: Apache-2.0
"""netsetup against the real kernel: every test builds its own network
namespaces (names carry the pid), drives the ns-tool driver inside them and
removes them on every exit path. Nothing touches the host namespace."""

import itertools
import json
import os
import select
import subprocess
import time

import pytest

TOOL = os.environ.get("NS_TOOL", "")
_counter = itertools.count()

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not TOOL, reason="NS_TOOL not set (run through meson test)"),
]

SUBNET = "10.244.94.0/24"
ADDR = "192.168.3.11/24"


def run(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


class Netns:
    def __init__(self, tag):
        self.name = f"nstest{os.getpid()}-{tag}{next(_counter)}"
        run("ip", "netns", "add", self.name)

    def delete(self):
        run("ip", "netns", "del", self.name, check=False)

    def ip(self, *args, check=True):
        return run("ip", "-n", self.name, *args, check=check)

    def sh(self, *cmd, check=True):
        return run("ip", "netns", "exec", self.name, *cmd, check=check)

    def ipj(self, *args):
        out = run("ip", "-n", self.name, "-j", *args).stdout.strip()
        return json.loads(out) if out else []

    def bridgej(self, *args):
        out = run("bridge", "-n", self.name, "-j", *args).stdout.strip()
        return json.loads(out) if out else []

    def ifindex(self, dev):
        return self.ipj("link", "show", dev)[0]["ifindex"]

    def has_link(self, dev):
        return self.ip("link", "show", dev, check=False).returncode == 0

    def tool(self, *args, subnet=SUBNET, addr=ADDR, check=True, extra=()):
        cmd = ["ip", "netns", "exec", self.name, TOOL, "--subnet", subnet]
        if addr:
            cmd += ["--addr", addr]
        p = run(*cmd, *extra, *args, check=check)
        out = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
        out["_rc"], out["_stderr"] = p.returncode, p.stderr
        return out


@pytest.fixture
def netns():
    """A factory of namespaces, all removed at the end."""
    made = []

    def make(tag="n"):
        ns = Netns(tag)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.delete()


@pytest.fixture
def node(netns):
    """A namespace whose eth2 is one end of a veth pair (the other end,
    eth2p, stays in the namespace)."""
    ns = netns("node")
    ns.ip("link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
    ns.ip("link", "set", "eth2p", "up")
    return ns


def write_peers(tmp_path, peers, name="peers"):
    f = tmp_path / f"{name}{next(_counter)}"
    f.write_text("".join(f"{s} {ip} {mac}\n" for s, ip, mac in peers))
    return str(f)


def kernel_state(ns, dev="flannel.1"):
    neigh = {(n["dst"], n["lladdr"], tuple(n["state"])) for n in ns.ipj("neigh", "show", "dev", dev)}
    fdb = {(f["mac"], f["dst"], tuple(f.get("flags", [])), f.get("state"))
           for f in ns.bridgej("fdb", "show", "dev", dev) if "dst" in f}
    routes = {(r["dst"], r.get("gateway"), tuple(r.get("flags", []))) for r in ns.ipj("route", "show", "dev", dev)
              if r["dst"].startswith("10.")}
    return neigh, fdb, routes


def expected_state(peers):
    neigh = {(s.split("/")[0], mac, ("PERMANENT",)) for s, ip, mac in peers}
    fdb = {(mac, ip, ("self",), "permanent") for s, ip, mac in peers}
    routes = {(s, s.split("/")[0], ("onlink",)) for s, ip, mac in peers}
    return neigh, fdb, routes


def stats(out):
    return {k: int(out[k]) for k in ("added", "replaced", "removed", "unchanged", "requests", "dumps", "failed")}


class Lines:
    """Lines from a child's stdout, read with a deadline (no sleeps)."""

    def __init__(self, proc):
        self.proc, self.buf, self.lines = proc, b"", []
        os.set_blocking(proc.stdout.fileno(), False)

    def wait_for(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines):
                if pred(line):
                    before = self.lines[:i]
                    self.lines = self.lines[i + 1:]
                    return before, line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line within {timeout}s; got {self.lines}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"process exited ({self.proc.returncode}); got {self.lines}")
                self.buf += chunk
                *done, self.buf = self.buf.split(b"\n")
                self.lines += [d.decode() for d in done]


@pytest.fixture
def spawn():
    """Starts children and kills them (by PID) at the end."""
    procs = []

    def start(*cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        return p, Lines(p)

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


PEERS3 = [
    ("10.244.1.0/24", "192.168.3.12", "02:00:00:00:00:01"),
    ("10.244.2.0/24", "192.168.3.13", "02:00:00:00:00:02"),
    ("10.244.3.0/24", "192.168.3.14", "02:00:00:00:00:03"),
]


# ---- the private interface and the device ----

@pytest.mark.parametrize("eth2_mtu,mtu_opt,want_mtu", [(1500, None, 1450), (9000, None, 8950), (1500, "1400", 1400)])
def test_overlay_device_attributes(node, eth2_mtu, mtu_opt, want_mtu):
    node.ip("link", "set", "eth2", "mtu", str(eth2_mtu))
    out = node.tool("setup", extra=("--mtu", mtu_opt) if mtu_opt else ())
    assert out["action"] == "created"

    eth2 = node.ipj("addr", "show", "eth2")[0]
    assert "UP" in eth2["flags"]
    assert [(a["local"], a["prefixlen"]) for a in eth2["addr_info"] if a["family"] == "inet"] == [("192.168.3.11", 24)]
    assert out["link_addr"] == "192.168.3.11/24"
    assert int(out["link_ifindex"]) == eth2["ifindex"] and int(out["link_mtu"]) == eth2_mtu

    link = node.ipj("-d", "link", "show", "flannel.1")[0]
    info = link["linkinfo"]
    assert info["info_kind"] == "vxlan"
    data = info["info_data"]
    assert (data["id"], data["port"], data["local"], data["link"], data["learning"]) == \
        (1, 8472, "192.168.3.11", "eth2", False)
    assert link["mtu"] == want_mtu and "UP" in link["flags"]
    assert int(out["ifindex"]) == link["ifindex"] and out["mac"] == link["address"] and int(out["mtu"]) == want_mtu

    addrs = node.ipj("addr", "show", "flannel.1")[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"] == [("10.244.94.0", 32)]


def test_other_vni_and_port(node):
    out = node.tool("setup", extra=("--vni", "7", "--port", "4789"))
    assert out["ifname"] == "flannel.7"
    data = node.ipj("-d", "link", "show", "flannel.7")[0]["linkinfo"]["info_data"]
    assert (data["id"], data["port"]) == (7, 4789)


def test_link_existing_address_is_reported_and_none_is_an_error(node):
    out = node.tool("setup", addr=None, check=False)
    assert out["_rc"] == 1 and "no IPv4 address" in out["_stderr"]
    assert not node.has_link("flannel.1")

    node.ip("addr", "add", "192.168.3.21/24", "dev", "eth2")
    node.ip("addr", "add", "192.168.3.22/24", "dev", "eth2")
    out = node.tool("setup", addr=None)
    assert out["link_addr"] == "192.168.3.21/24" and out["link_changes"] == "0"
    data = node.ipj("-d", "link", "show", "flannel.1")[0]["linkinfo"]["info_data"]
    assert data["local"] == "192.168.3.21"

    out = node.tool("setup", addr=None)
    assert out["link_changes"] == "0" and out["changes"] == "0" and out["action"] == "adopted"


def test_missing_interface(node):
    out = node.tool("setup", check=False, extra=("--underlay", "eth9"))
    assert out["_rc"] == 1 and "eth9" in out["_stderr"]


def test_compatible_device_adopted(node):
    node.ip("link", "set", "eth2", "up")
    node.ip("addr", "add", "192.168.3.11/24", "dev", "eth2")
    node.ip("link", "add", "flannel.1", "mtu", "1300", "type", "vxlan", "id", "1", "dstport", "8472",
            "local", "192.168.3.11", "dev", "eth2", "nolearning")
    node.ip("addr", "add", "10.244.7.0/32", "dev", "flannel.1")      # stale, inside the overlay
    node.ip("addr", "add", "172.16.5.1/32", "dev", "flannel.1")      # not ours to judge
    before = node.ifindex("flannel.1")

    out = node.tool("setup")
    assert out["action"] == "adopted" and int(out["ifindex"]) == before == node.ifindex("flannel.1")
    link = node.ipj("addr", "show", "flannel.1")[0]
    assert link["mtu"] == 1450 and "UP" in link["flags"]
    assert sorted(a["local"] for a in link["addr_info"] if a["family"] == "inet") == ["10.244.94.0", "172.16.5.1"]

    out = node.tool("setup")
    assert out["action"] == "adopted" and out["changes"] == "0"


# What the kernel cannot change in place; the rest is in test_lifecycle.py.
@pytest.mark.parametrize("variant", [
    ["type", "vxlan", "id", "2", "dstport", "8472", "local", "192.168.3.11", "dev", "eth2", "nolearning"],
    ["type", "vxlan", "id", "1", "dstport", "4789", "local", "192.168.3.11", "dev", "eth2", "nolearning"],
    ["type", "bridge"],
], ids=["vni", "port", "not-vxlan"])
def test_incompatible_device_replaced(node, variant):
    node.ip("link", "set", "eth2", "up")
    node.ip("addr", "add", "192.168.3.11/24", "dev", "eth2")
    node.ip("link", "add", "flannel.1", *variant)
    before = node.ifindex("flannel.1")

    out = node.tool("setup")
    assert out["action"] == "replaced"
    after = node.ifindex("flannel.1")
    assert after != before and int(out["ifindex"]) == after
    link = node.ipj("-d", "link", "show", "flannel.1")[0]
    data = link["linkinfo"]["info_data"]
    assert link["linkinfo"]["info_kind"] == "vxlan"
    assert (data["id"], data["port"], data["local"], data["link"], data["learning"]) == \
        (1, 8472, "192.168.3.11", "eth2", False)


def test_remove(node, tmp_path):
    node.tool("reconcile", write_peers(tmp_path, PEERS3))
    out = node.tool("remove")
    assert out["removed"] == "1"
    assert not node.has_link("flannel.1")
    assert not [r for r in node.ipj("route") if r["dst"].startswith("10.244.")]
    assert node.tool("remove")["removed"] == "0"


# ---- peers ----

def test_three_then_two_peers(node, tmp_path):
    out = node.tool("reconcile", write_peers(tmp_path, PEERS3))
    assert stats(out) == dict(added=9, replaced=0, removed=0, unchanged=0, requests=9, dumps=3, failed=0)
    assert kernel_state(node) == expected_state(PEERS3)

    # 10.244.1.0 removed, 10.244.2.0 with a new MAC, 10.244.3.0 kept.
    two = [("10.244.2.0/24", "192.168.3.13", "02:00:00:00:00:22"), PEERS3[2]]
    out = node.tool("reconcile", write_peers(tmp_path, two))
    # ARP 1.0, FDB :01, FDB :02, route 1.0 removed; FDB :22 added; ARP 2.0 replaced.
    assert stats(out) == dict(added=1, replaced=1, removed=4, unchanged=4, requests=6, dumps=3, failed=0)
    assert kernel_state(node) == expected_state(two)


def test_public_ip_change_leaves_nothing_behind(node, tmp_path):
    node.tool("reconcile", write_peers(tmp_path, PEERS3))
    moved = [PEERS3[0], ("10.244.2.0/24", "192.168.3.99", "02:00:00:00:00:02"), PEERS3[2]]
    out = node.tool("reconcile", write_peers(tmp_path, moved))
    assert out["removed"] == "1" and out["added"] == "1" and out["failed"] == "0"
    assert kernel_state(node) == expected_state(moved)


def test_same_entries_made_by_iproute2_are_adopted(node, tmp_path):
    node.tool("setup")
    for s, ip, mac in PEERS3:
        gw = s.split("/")[0]
        node.ip("neigh", "add", gw, "lladdr", mac, "dev", "flannel.1", "nud", "permanent")
        run("bridge", "-n", node.name, "fdb", "add", mac, "dev", "flannel.1", "dst", ip, "self", "permanent")
        node.ip("route", "add", s, "via", gw, "dev", "flannel.1", "onlink")
    out = node.tool("reconcile", write_peers(tmp_path, PEERS3))
    assert stats(out) == dict(added=0, replaced=0, removed=0, unchanged=9, requests=0, dumps=3, failed=0)


def static_neigh(node, dev):
    return [n for n in node.ipj("neigh", "show", "dev", dev) if "PERMANENT" in n.get("state", [])]


def test_stale_entries_removed_foreign_untouched(node, tmp_path):
    node.tool("setup")
    # Stale entries on flannel.1, as a crashed earlier run or a human might leave them.
    node.ip("neigh", "add", "10.244.50.0", "lladdr", "02:00:00:00:00:50", "dev", "flannel.1", "nud", "permanent")
    node.ip("neigh", "add", "10.244.51.0", "lladdr", "02:00:00:00:00:51", "dev", "flannel.1", "nud", "reachable")
    node.ip("neigh", "replace", "10.244.1.0", "lladdr", "02:00:00:00:00:99", "dev", "flannel.1", "nud", "permanent")
    run("bridge", "-n", node.name, "fdb", "add", "02:00:00:00:00:50", "dev", "flannel.1", "dst", "192.168.3.50",
        "self", "permanent")
    run("bridge", "-n", node.name, "fdb", "append", "00:00:00:00:00:00", "dev", "flannel.1", "dst",
        "192.168.3.98", "self", "permanent")
    run("bridge", "-n", node.name, "fdb", "append", "02:00:00:00:00:01", "dev", "flannel.1", "dst",
        "192.168.3.12", "port", "4789", "self", "permanent")
    node.ip("route", "add", "10.244.50.0/24", "via", "10.244.50.0", "dev", "flannel.1", "onlink")
    node.ip("route", "add", "10.244.60.0/24", "dev", "flannel.1")
    node.ip("route", "add", "10.244.2.0/24", "via", "10.244.9.0", "dev", "flannel.1", "onlink")
    node.ip("route", "add", "10.244.3.0/24", "via", "10.244.3.0", "dev", "flannel.1", "onlink", "metric", "50")
    # Not ours: outside the network, on another device, in another table.
    node.ip("route", "add", "172.16.0.0/16", "dev", "flannel.1")
    node.ip("route", "add", "10.244.70.0/24", "via", "192.168.3.70", "dev", "eth2")
    node.ip("route", "add", "10.244.80.0/24", "dev", "flannel.1", "table", "100")
    node.ip("neigh", "add", "192.168.3.77", "lladdr", "02:00:00:00:00:77", "dev", "eth2", "nud", "permanent")
    node.ip("link", "add", "vx9", "type", "vxlan", "id", "9", "dstport", "4789", "dev", "eth2", "nolearning")
    run("bridge", "-n", node.name, "fdb", "add", "02:00:00:00:00:09", "dev", "vx9", "dst", "192.168.3.9",
        "self", "permanent")
    node.ip("neigh", "add", "10.244.90.0", "lladdr", "02:00:00:00:00:09", "dev", "vx9", "nud", "permanent")
    # IPv4 only: the kernel adds IPv6 link-local routes on its own, whenever.
    # eth2's static entries only: the kernel makes and drops its own as
    # packets go out (an INCOMPLETE entry for a VTEP was seen).
    foreign_before = (node.ipj("-4", "route", "show", "table", "all"), static_neigh(node, "eth2"),
                      node.bridgej("fdb", "show", "dev", "vx9"), node.ipj("neigh", "show", "dev", "vx9"))

    out = node.tool("reconcile", write_peers(tmp_path, PEERS3))
    assert out["failed"] == "0" and out["_rc"] == 0
    assert kernel_state(node) == expected_state(PEERS3)

    routes = node.ipj("-4", "route", "show", "table", "all")
    assert {"dst": "172.16.0.0/16", "dev": "flannel.1", "scope": "link", "flags": []} in \
        [{k: r.get(k) for k in ("dst", "dev", "scope", "flags")} for r in routes]
    assert any(r["dst"] == "10.244.70.0/24" and r["dev"] == "eth2" for r in routes)
    assert any(r["dst"] == "10.244.80.0/24" and r.get("table") == "100" for r in routes)
    foreign_after = (None, static_neigh(node, "eth2"),
                     node.bridgej("fdb", "show", "dev", "vx9"), node.ipj("neigh", "show", "dev", "vx9"))
    assert foreign_after[1:] == foreign_before[1:]
    ours = lambda rs: [r for r in rs if r.get("dev") == "flannel.1" and r.get("table") is None and  # noqa: E731
                       r["dst"].startswith("10.244.")]
    non_ours = lambda rs: [r for r in rs if r not in ours(rs)]  # noqa: E731
    assert non_ours(routes) == non_ours(foreign_before[0])


def test_foreign_route_with_same_destination_left_alone(node, tmp_path):
    node.tool("setup")
    node.ip("route", "add", "10.244.2.0/24", "via", "192.168.3.70", "dev", "eth2")
    out = node.tool("reconcile", write_peers(tmp_path, PEERS3), check=False)
    assert out["_rc"] == 1 and out["failed"] == "1" and "another device" in out["_stderr"]
    routes = node.ipj("route")
    assert any(r["dst"] == "10.244.2.0/24" and r["dev"] == "eth2" for r in routes)
    neigh, fdb, rt = kernel_state(node)
    want = expected_state(PEERS3)
    assert neigh == want[0] and fdb == want[1]
    assert rt == want[2] - {("10.244.2.0/24", "10.244.2.0", ("onlink",))}


def kernel_ipv6_noise(line):
    """IPv6 link-local addresses and their routes appear on their own (DAD)
    whenever a link comes up; they are the kernel's doing, not ours."""
    return "inet6" in line or "fe80:" in line or "ff00::" in line or "valid_lft" in line


def significant(lines):
    """The monitor's records minus the markers and the kernel's IPv6 noise;
    an indented line continues the record above it."""
    records = []
    for line in lines:
        if line[:1].isspace() and records:
            records[-1] += "\n" + line
        else:
            records.append(line)
    return [r for r in records if "nsmark" not in r and not kernel_ipv6_noise(r)]


def start_marker(node, lines):
    """`ip monitor` gives no sign that it has subscribed: add the marker link
    until the monitor reports it, then start from a clean slate."""
    for _ in range(20):
        node.ip("link", "add", "nsmarka", "type", "veth", "peer", "name", "nsmarkb")
        try:
            lines.wait_for(lambda s: "nsmarka" in s, timeout=0.5)
            break
        except AssertionError:
            node.ip("link", "del", "nsmarka")
    else:
        raise AssertionError("ip monitor never reported the marker link")
    lines.lines.clear()


def test_second_apply_changes_nothing(node, tmp_path, spawn):
    peers = write_peers(tmp_path, PEERS3)
    node.tool("reconcile", peers)

    mon, lines = spawn("ip", "-n", node.name, "monitor", "all")
    # Sentinels (a veth pair appearing and going) bracket the second apply,
    # so everything the monitor saw in between is known to be complete.
    start_marker(node, lines)

    out = node.tool("reconcile", peers)
    assert stats(out) == dict(added=0, replaced=0, removed=0, unchanged=9, requests=0, dumps=3, failed=0)
    assert out["changes"] == "0" and out["link_changes"] == "0"

    node.ip("link", "del", "nsmarka")
    seen, _ = lines.wait_for(lambda s: "Deleted" in s and "nsmark" in s)
    assert significant(seen) == []

    # The monitor does see a real change (the check above can fail).
    node.tool("reconcile", write_peers(tmp_path, PEERS3[:2]))
    lines.wait_for(lambda s: "10.244.3.0" in s)


def monitored(node, spawn, action):
    """Runs action() while `ip monitor` watches; returns the lines it printed."""
    mon, lines = spawn("ip", "-n", node.name, "monitor", "neigh", "route", "link")
    start_marker(node, lines)
    action()
    node.ip("link", "del", "nsmarka")
    seen, _ = lines.wait_for(lambda s: "Deleted" in s and "nsmark" in s)
    return significant(seen)


def test_order_arp_fdb_route_and_reverse_on_removal(node, tmp_path, spawn):
    node.tool("setup")
    seen = monitored(node, spawn, lambda: node.tool("reconcile", write_peers(tmp_path, PEERS3)))

    def first(pred):
        return next(i for i, s in enumerate(seen) if pred(s))

    for s, ip, mac in PEERS3:
        gw = s.split("/")[0]
        # `ip monitor` prints an FDB entry as a neighbour whose address is the public IP.
        arp = first(lambda x: x.startswith(f"{gw} dev flannel.1 lladdr {mac}"))
        fdb = first(lambda x: x.startswith(f"{ip} dev flannel.1 lladdr {mac}"))
        route = first(lambda x: x.startswith(f"{s} via {gw} dev flannel.1"))
        assert arp < fdb < route, seen

    seen = monitored(node, spawn, lambda: node.tool("reconcile", write_peers(tmp_path, [])))
    for s, ip, mac in PEERS3:
        gw = s.split("/")[0]
        route = first(lambda x: x.startswith(f"Deleted {s} via {gw} dev flannel.1"))
        fdb = first(lambda x: x.startswith(f"Deleted {ip} dev flannel.1 lladdr {mac}"))
        arp = first(lambda x: x.startswith(f"Deleted {gw} dev flannel.1"))
        assert route < fdb < arp, seen
    assert kernel_state(node) == (set(), set(), set())


@pytest.mark.parametrize("bad,reason", [
    (("10.250.1.0/24", "192.168.3.20", "02:00:00:00:00:20"), "outside the overlay network"),
    (("10.244.1.0/25", "192.168.3.20", "02:00:00:00:00:20"), "length"),
    (("10.244.1.5/24", "192.168.3.20", "02:00:00:00:00:20"), "host bits"),
    (("10.244.94.0/24", "192.168.3.20", "02:00:00:00:00:20"), "our own subnet"),
    (("10.244.9.0/24", "0.0.0.0", "02:00:00:00:00:20"), "not a unicast"),
    (("10.244.9.0/24", "224.0.0.1", "02:00:00:00:00:20"), "not a unicast"),
    (("10.244.9.0/24", "255.255.255.255", "02:00:00:00:00:20"), "not a unicast"),
    (("10.244.9.0/24", "127.0.0.1", "02:00:00:00:00:20"), "not a unicast"),
    (("10.244.9.0/24", "192.168.3.20", "00:00:00:00:00:00"), "zero"),
    (("10.244.9.0/24", "192.168.3.20", "01:00:5e:00:00:01"), "multicast"),
    (("10.244.1.0/24", "192.168.3.20", "02:00:00:00:00:20"), "two peers for subnet"),
    (("10.244.9.0/24", "192.168.3.20", "02:00:00:00:00:01"), "two public IPs"),
], ids=["outside", "length", "hostbits", "own", "zero-ip", "multicast-ip", "broadcast-ip", "loopback-ip",
        "zero-mac", "multicast-mac", "dup-subnet", "dup-mac"])
def test_invalid_peer_refuses_everything(node, tmp_path, bad, reason):
    node.tool("reconcile", write_peers(tmp_path, PEERS3[:2]))
    before = kernel_state(node)

    out = node.tool("reconcile", write_peers(tmp_path, [PEERS3[2], bad, PEERS3[0]]), check=False)
    assert out["_rc"] == 1 and reason in out["_stderr"] and "nothing changed" in out["_stderr"]
    assert out["requests"] == "0" and out["dumps"] == "0"
    assert kernel_state(node) == before

    if not reason.startswith("two"):   # per-peer checks, without netlink
        p = run("ip", "netns", "exec", node.name, TOOL, "check", write_peers(tmp_path, [bad, PEERS3[0]]), check=False)
        assert p.returncode == 1 and p.stdout.splitlines()[1] == "valid"
        assert reason in p.stdout.splitlines()[0]


def test_many_peers_span_several_batches(node, tmp_path):
    # 1500 peers = 4500 requests: several datagrams of the pipeline.
    net = ("--network", "10.0.0.0/8")
    peers = [(f"10.{100 + (i >> 8)}.{i & 255}.0/24", f"192.168.{4 + i // 250}.{1 + i % 250}",
              f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}") for i in range(1500)]
    out = node.tool("reconcile", write_peers(tmp_path, peers), extra=net)
    n = len(peers)
    assert stats(out) == dict(added=3 * n, replaced=0, removed=0, unchanged=0, requests=3 * n, dumps=3, failed=0)
    assert kernel_state(node) == expected_state(peers)

    out = node.tool("reconcile", write_peers(tmp_path, peers), extra=net)
    assert out["requests"] == "0" and out["unchanged"] == str(3 * n)

    out = node.tool("reconcile", write_peers(tmp_path, peers[::2]), extra=net)
    assert out["removed"] == str(3 * (n // 2)) and out["failed"] == "0"
    assert kernel_state(node) == expected_state(peers[::2])


# ---- watching ----

# A deleted device first goes down (one notification), then disappears (a
# second one): the owner may see OVERLAY_DOWN before OVERLAY_GONE.
@pytest.mark.parametrize("action,event,allowed_before", [
    (("link", "del", "flannel.1"), "overlay-gone", {"event=overlay-down"}),
    (("link", "set", "flannel.1", "down"), "overlay-down", set()),
    (("link", "set", "eth2", "down"), "underlay-down", set()),
    (("link", "del", "eth2"), "overlay-gone", {"event=overlay-down", "event=underlay-down"}),
], ids=["delete", "down", "underlay-down", "underlay-delete"])
def test_watch_events(node, spawn, action, event, allowed_before):
    proc, lines = spawn("ip", "netns", "exec", node.name, TOOL, "--subnet", SUBNET, "--addr", ADDR, "watch")
    lines.wait_for(lambda s: s == "ready")
    node.ip(*action)
    seen, _ = lines.wait_for(lambda s: s == f"event={event}")
    assert set(seen) <= allowed_before


def test_watch_ignores_own_setup_and_unrelated_links(node, spawn):
    proc, lines = spawn("ip", "netns", "exec", node.name, TOOL, "--subnet", SUBNET, "--addr", ADDR, "watch")
    lines.wait_for(lambda s: s == "ready")
    node.ip("link", "set", "eth2p", "down")
    node.ip("link", "add", "othera", "type", "veth", "peer", "name", "otherb")
    node.ip("link", "del", "othera")
    node.ip("link", "del", "flannel.1")
    seen, _ = lines.wait_for(lambda s: s == "event=overlay-gone")
    assert set(seen) <= {"event=overlay-down"}


# ---- data path ----

def test_ping_between_two_nodes(netns, tmp_path):
    fabric = netns("fab")
    fabric.ip("link", "add", "br0", "type", "bridge")
    fabric.ip("link", "set", "br0", "up")
    nodes = []
    for i in (1, 2):
        n = netns(f"n{i}")
        fabric.ip("link", "add", f"v{i}", "type", "veth", "peer", "name", "eth2", "netns", n.name)
        fabric.ip("link", "set", f"v{i}", "master", "br0", "up")
        nodes.append(n)

    subnets = ["10.244.1.0/24", "10.244.2.0/24"]
    addrs = ["192.168.3.11/24", "192.168.3.12/24"]
    macs = [n.tool("setup", subnet=s, addr=a)["mac"] for n, s, a in zip(nodes, subnets, addrs)]
    for i, n in enumerate(nodes):
        j = 1 - i
        peer = [(subnets[j], addrs[j].split("/")[0], macs[j])]
        out = n.tool("reconcile", write_peers(tmp_path, peer), subnet=subnets[i], addr=addrs[i])
        assert out["added"] == "3"

    # ping waits (up to -w seconds) for the first reply: a deadline, not a sleep.
    p = nodes[0].sh("ping", "-c", "1", "-w", "10", "-I", "10.244.1.0", "10.244.2.0", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    p = nodes[1].sh("ping", "-c", "1", "-w", "10", "-I", "10.244.2.0", "10.244.1.0", check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_fixed_mac_is_used_and_a_different_one_changed_in_place(node):
    node.tool("setup", "--mac", "02:aa:bb:cc:dd:01")
    link = node.ipj("-d", "link", "show", "flannel.1")[0]
    assert link["address"] == "02:aa:bb:cc:dd:01"
    first = link["ifindex"]
    # Same MAC: adopted as it is.
    node.tool("setup", "--mac", "02:aa:bb:cc:dd:01")
    assert node.ipj("-d", "link", "show", "flannel.1")[0]["ifindex"] == first
    # Another MAC: set on the same device.
    out = node.tool("setup", "--mac", "02:aa:bb:cc:dd:02")
    link = node.ipj("-d", "link", "show", "flannel.1")[0]
    assert link["address"] == "02:aa:bb:cc:dd:02" and link["ifindex"] == first
    assert out["action"] == "changed" and out["changes"] == "1"

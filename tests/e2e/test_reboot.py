# SPDX-License-Identifier: Apache-2.0
"""Issue 16: after a reboot Docker starts once, already on the overlay, and
the overlay carries pod traffic before etcd answers.

Its own bed (tests/bed/bed.sh, named "rb<pid>"): etcd in a fabric namespace,
one master and two minions booted as systemd-nspawn containers with real
systemd and a real Docker engine, corekube-agent enabled at boot. The
Kubernetes binaries are STAND-INS (tests/standins). minion-1 is the node
rebooted; minion-2 is its peer for pings. The tests run in file order and
each leaves the cluster converged.

minion-1 gets Docker enabled at boot, as Debian's docker.io package has it
(the bed's rootfs disables it so that a first boot starts Docker only from
the agent). A reboot here is bed.sh node-stop (a power-off from inside), then node-start
of the same root: the node's overlay upper dir and /var/lib/docker survive,
/run (a tmpfs of nspawn's) does not. The node's network namespace is the
bed's and outlives the container, so while the node is off we delete every
link in it but lo and eth2 (flannel.1, docker0, veths): the kernel state a
real reboot loses, and that the agent must rebuild.

Needs root; the rootfs is built once and cached (tests/bed/rootfs.sh)."""

import ipaddress
import json
import os
import subprocess

import pytest

from clusterbed import BED_SH, IMAGE, SUBNETS, running_cluster, wait_until

NODES = [("master", "master", "192.168.3.11"), ("minion-1", "minion", "192.168.3.12"),
         ("minion-2", "minion", "192.168.3.13")]
NODE = "minion-1"
PEER = "minion-2"
APP = "rb"                      # NODE's container, docker run --restart=always
STATE_DIR = "/var/lib/corekube"
DEFAULT_BRIDGE = ipaddress.ip_network("172.17.0.0/16")
# agent/message-ids.h; the text is daemon-docker.c's.
MID_DOCKER_RESTARTED = "af1ff278bec7875d8c6f4475b81fb4ab"    # "Restarted docker.service with the flannel options."
# systemd's catalog: a unit's start job began / the unit started.
MID_UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
MID_UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"
# dockerd (daemon_unix.go) says this when it picks docker0's address itself,
# i.e. when it started without --bip.
DOCKER_DEFAULT_BRIDGE = "Default bridge (docker0) is assigned with an IP address"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


@pytest.fixture(scope="module")
def cluster():
    with running_cluster("rb", NODES, wait="converged", timings="reboot") as c:
        # The bed's rootfs leaves Docker disabled at boot (rootfs.sh: the
        # agent starts it on first boot); a Debian node has it enabled, and
        # a reboot is about what happens then.
        c.sh(NODE, "systemctl enable --quiet containerd.service docker.socket docker.service")
        yield c


# ------------------------------------------------------------ helpers ----

def boot_journal(c, node, *matches):
    """Journal entries of the node's current boot (journalctl -b: nspawn
    gives every boot of a container its own boot ID) matching MATCHES."""
    out = c.sh(node, "journalctl -b -q -o json --no-pager " + " ".join(matches))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def docker_starts(c, node):
    """(start jobs begun, starts finished) of docker.service in this boot,
    from systemd's own messages."""
    entries = boot_journal(c, node, "_PID=1", "UNIT=docker.service")
    ids = [e.get("MESSAGE_ID") for e in entries]
    return ids.count(MID_UNIT_STARTING), ids.count(MID_UNIT_STARTED)


def agent_docker_restarts(c, node):
    """The agent's "Restarted docker.service ..." entries in this boot."""
    return [e for e in boot_journal(c, node, "_SYSTEMD_UNIT=corekube-agent.service")
            if e.get("MESSAGE_ID") == MID_DOCKER_RESTARTED]


def dockerd_chose_default_bridge(c, node):
    return [e["MESSAGE"] for e in boot_journal(c, node, "_SYSTEMD_UNIT=docker.service")
            if DOCKER_DEFAULT_BRIDGE in str(e.get("MESSAGE", ""))]


def docker_show(c, node):
    out = c.sh(node, "systemctl show -p MainPID,ActiveState,ExecMainStartTimestampMonotonic docker.service")
    return dict(line.split("=", 1) for line in out.splitlines())


def docker_pid(c, node):
    st = docker_show(c, node)
    assert st["ActiveState"] == "active" and st["MainPID"] != "0", f"{node}: docker.service {st}"
    return st["MainPID"]


def ensure_app(c, node):
    """NODE's busybox container with --restart=always (made if missing)."""
    c.sh(node, f"docker image inspect {IMAGE} >/dev/null 2>&1 || "
               f"docker import /usr/share/corekube-bed/busybox.tar {IMAGE} >/dev/null; "
               f"docker inspect {APP} >/dev/null 2>&1 || "
               f"docker run -d --restart=always --name {APP} {IMAGE} sh -c "
               f"'trap \"exit 0\" TERM; sleep 86400 & wait' >/dev/null")


def app_ip(c, node):
    """The container's address once it runs (AssertionError until then)."""
    out = c.sh(node, f"docker inspect -f '{{{{.State.Running}}}} {{{{.NetworkSettings.IPAddress}}}}' {APP}",
               check=False)
    assert out.returncode == 0, f"{node}: no container {APP} yet: {out.stderr.strip()}"
    running, _, ip = out.stdout.strip().partition(" ")
    assert running == "true" and ip, f"{node}: {APP} running={running} ip={ip!r}"
    return ipaddress.ip_address(ip)


def app_starts(c, node):
    """Start events of the container since dockerd started (its events live
    as long as the daemon; dockerd started once in the boot when this is
    asked)."""
    out = c.sh(node, f"timeout 20 docker events --since 1 --until $(($(date +%s) + 1)) "
                     f"--filter container={APP} --filter event=start --format '{{{{.Status}}}}'")
    return len(out.split())


def ping(c, src, container, ip, deadline=30):
    def once():
        r = c.sh(src, f"docker exec {container} ping -c 1 -W 1 {ip}", check=False)
        assert r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:]
        return True
    wait_until(once, deadline, f"a ping from {src}'s {container} to {ip}")


def gw(net):
    return f"{net.network_address + 1}/{net.prefixlen}"


def env_file(c, node, path):
    return dict(line.split("=", 1) for line in c.sh(node, f"cat {path}").splitlines() if "=" in line)


def check_persisted(c, node, subnet):
    """The state directory holds what /run holds, for subnet."""
    for f in ("subnet.env", "docker_opts.env"):
        r = c.sh(node, f"cat {STATE_DIR}/{f}", check=False)
        assert r.returncode == 0, f"{node}: no {STATE_DIR}/{f}: {r.stderr.strip()}"
        assert env_file(c, node, f"{STATE_DIR}/{f}") == env_file(c, node, f"/run/flannel/{f}"), \
            f"{node}: {STATE_DIR}/{f} differs from /run/flannel/{f}"
    assert env_file(c, node, f"{STATE_DIR}/subnet.env")["FLANNEL_SUBNET"] == gw(subnet)
    assert f"--bip={gw(subnet)}" in env_file(c, node, f"{STATE_DIR}/docker_opts.env")["DOCKER_OPTS"]


def check_snapshot(c, node, subnet):
    """peers.json: our subnet and every other node's lease (the agent's
    format: agent/node-state.c)."""
    r = c.sh(node, f"cat {STATE_DIR}/peers.json", check=False)
    assert r.returncode == 0, f"{node}: no {STATE_DIR}/peers.json: {r.stderr.strip()}"
    snap = json.loads(r.stdout)
    assert snap["subnet"] == str(subnet) and snap["public_ip"] == c.nodes[node].ip, snap
    leases = c.leases()
    want = {(str(net), leases[net]["PublicIP"], leases[net]["BackendData"]["VtepMAC"])
            for name, net in c.node_leases().items() if name != node}
    got = {(p["subnet"], p["public_ip"], p["vtep_mac"]) for p in snap["peers"]}
    assert got == want, f"{node}: peers.json missing {sorted(want - got)}, extra {sorted(got - want)}"


def wipe_node_links(c, node):
    """What a real power-off takes with it and the bed's netns keeps."""
    ns = f"ckb-{c.name}-{node}"
    links = json.loads(subprocess.run(["ip", "-n", ns, "-j", "link", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    for link in links:
        if link["ifname"] not in ("lo", "eth2"):
            subprocess.run(["ip", "-n", ns, "link", "del", "dev", link["ifname"]], capture_output=True)
    left = json.loads(subprocess.run(["ip", "-n", ns, "-j", "link", "show"], check=True,
                                     capture_output=True, text=True).stdout)
    assert sorted(x["ifname"] for x in left) == ["eth2", "lo"], left


def power_off(c, node):
    c.timed(f"{node} power off", "node-stop", node)
    wipe_node_links(c, node)


def boot(c, node):
    """node-start; returns once the node's systemd is up (which waits for
    the agent's READY=1: it is a Type=notify unit of multi-user.target)."""
    mark = c.mark()
    c.timed(f"{node} boot", "node-start", node)
    return mark


def boot_story(c, node):
    """systemd's docker/containerd lines and the agent's in this boot, for
    a failure message."""
    out = c.sh(node, "journalctl -b -q --no-pager -o short-monotonic _PID=1 UNIT=docker.service + "
                     "_PID=1 UNIT=containerd.service + _SYSTEMD_UNIT=corekube-agent.service", check=False)
    return "\n".join(out.stdout.splitlines()[-60:])


def check_no_agent_restart(c, node):
    """The agent asked for no Docker restart in this boot (a RestartUnit
    that systemd merges into Docker's queued boot start starts no second
    dockerd, but is one all the same)."""
    restarts = agent_docker_restarts(c, node)
    assert not restarts, f"{node}: the agent restarted Docker:\n{boot_story(c, node)}"


def check_dockerd_once_on(c, node, subnet):
    """One dockerd in this boot, on subnet from its start."""
    assert docker_starts(c, node) == (1, 1), \
        f"{node}: docker.service (starting, started) in this boot\n{boot_story(c, node)}"
    assert not dockerd_chose_default_bridge(c, node), f"{node}: dockerd started without --bip"
    pid = docker_pid(c, node)
    cmdline = c.sh(node, f"tr '\\0' ' ' </proc/{pid}/cmdline").split()
    assert f"--bip={gw(subnet)}" in cmdline, cmdline
    assert c.sh(node, "ip -o -4 addr show dev docker0 | awk '{ print $4 }'") == gw(subnet)
    return pid


# -------------------------------------------------------------- tests ----

def test_reboot_docker_starts_once_on_the_overlay(cluster):
    c = cluster
    c.wait_converged()
    ensure_app(c, NODE)
    subnet = c.node_leases()[NODE]
    ip = wait_until(lambda: app_ip(c, NODE), 30, f"{APP} to run")
    assert ip in subnet, f"{APP} at {ip} before the reboot, not in {subnet}"
    peer_ip = c.container_ip(PEER)

    power_off(c, NODE)
    mark = boot(c, NODE)
    _, took = c.wait_ready([NODE], since=mark, restarted=[NODE])
    c.timings[f"{NODE} ready after boot"] = took
    pid = check_dockerd_once_on(c, NODE, subnet)

    ip = wait_until(lambda: app_ip(c, NODE), 30, f"{APP} to come back")
    assert ip not in DEFAULT_BRIDGE and ip in subnet, f"{APP} came back at {ip}, not in {subnet}"
    assert app_starts(c, NODE) == 1, f"{APP} started more than once in this boot"
    assert c.records()[NODE]["subnet"] == str(subnet)
    check_persisted(c, NODE, subnet)
    check_snapshot(c, NODE, subnet)
    ping(c, NODE, APP, peer_ip)
    c.wait_converged()
    assert docker_pid(c, NODE) == pid, "docker.service's MainPID changed after the agent was ready"
    assert docker_starts(c, NODE) == (1, 1)
    check_no_agent_restart(c, NODE)


def test_reboot_with_etcd_down_overlay_works_before_etcd(cluster):
    c = cluster
    c.wait_converged()
    ensure_app(c, NODE)
    subnet = c.node_leases()[NODE]
    want = c.expected_overlay(NODE)
    peer_ip = c.container_ip(PEER)

    power_off(c, NODE)
    c.run("etcd-stop")
    mark = c.mark()
    # With etcd away the agent does not say READY=1, so the boot does not
    # reach `running` and node-start waits: run it aside, read its result
    # once etcd is back.
    starter = subprocess.Popen([BED_SH, "-b", c.name, "node-start", NODE],
                               env=dict(c.env, CKB_BOOT_TIMEOUT="600"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Docker and the container, on the last subnet, etcd still away.
        ip = wait_until(lambda: app_ip(c, NODE), 90, f"{APP} to run while etcd is down")
        assert ip in subnet, f"{APP} came back at {ip}, not in the last subnet {subnet}"
        pid = docker_pid(c, NODE)

        def overlay():
            got = c.overlay(NODE)
            assert got is not None, "no flannel.1 yet"
            for what, g, w in zip(("routes", "ARP", "FDB"), got, want):
                assert g == w, f"{what} missing {sorted(w - g)}, extra {sorted(g - w)}"
            return True
        wait_until(overlay, 60, f"{NODE}'s flannel.1 to hold the persisted peers while etcd is down")
        addr = c.sh(NODE, "ip -o -4 addr show dev flannel.1 | awk '{ print $4 }'")
        assert addr == f"{subnet.network_address}/32", addr
        ping(c, NODE, APP, peer_ip)
    finally:
        c.run("etcd-start")
        try:
            out, _ = starter.communicate(timeout=660)
        finally:
            if starter.poll() is None:
                starter.kill()
                starter.wait()
    assert starter.returncode == 0, f"node-start failed:\n{out}"
    _, took = c.wait_ready([NODE], since=mark, restarted=[NODE])
    c.timings[f"{NODE} ready after etcd returned"] = took
    check_dockerd_once_on(c, NODE, subnet)
    check_no_agent_restart(c, NODE)
    assert docker_pid(c, NODE) == pid, "Docker was restarted once etcd answered"
    assert c.records()[NODE]["subnet"] == str(subnet)
    c.wait_converged()
    ping(c, NODE, APP, peer_ip)
    assert docker_pid(c, NODE) == pid


def test_reboot_subnet_taken_one_docker_restart(cluster):
    c = cluster
    c.wait_converged()
    ensure_app(c, NODE)
    old = c.node_leases()[NODE]
    key = SUBNETS + f"{old.network_address}-{old.prefixlen}"
    fake = ('{"PublicIP":"192.168.3.99","BackendType":"vxlan",'
            '"BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:16:99"}}')

    power_off(c, NODE)
    try:
        # Another node took the subnet while NODE was off.
        c.delete(key)
        c.put(key, fake)
        mark = boot(c, NODE)
        c.wait_ready([NODE], since=mark, restarted=[NODE])
        new = c.node_leases()[NODE]
        assert new != old, f"{NODE} kept {old}, which 192.168.3.99 holds"
        assert json.loads(c.kvs(key)[0][1])["PublicIP"] == "192.168.3.99", "the other node's lease was taken"
        restarts = agent_docker_restarts(c, NODE)
        assert len(restarts) == 1, f"{NODE}: {len(restarts)} Docker restarts by the agent"
        # Two dockerd at most: the boot's, on the old options, and the one
        # after the restart. A restart while the boot's was still starting
        # stops it before it says started: (2, 1).
        starting, started = docker_starts(c, NODE)
        assert 1 <= started <= starting <= 2, \
            f"docker.service (starting, started) = {(starting, started)}\n{boot_story(c, NODE)}"
        assert not dockerd_chose_default_bridge(c, NODE), "dockerd started without --bip"
        pid = docker_pid(c, NODE)
        cmdline = c.sh(NODE, f"tr '\\0' ' ' </proc/{pid}/cmdline").split()
        assert f"--bip={gw(new)}" in cmdline, cmdline
        ip = wait_until(lambda: app_ip(c, NODE), 30, f"{APP} to come back")
        assert ip in new, f"{APP} at {ip}, not in the new subnet {new}"
        check_persisted(c, NODE, new)
    finally:
        c.delete(key)
    c.wait_converged()
    assert len(agent_docker_restarts(c, NODE)) == 1
    ping(c, NODE, APP, c.container_ip(PEER))


def test_leave_removes_the_persisted_files(cluster):
    """A node that left must not boot into its old subnet and peers."""
    c = cluster
    c.wait_converged()
    files = ("subnet.env", "docker_opts.env", "peers.json")
    c.sh(NODE, " && ".join(f"test -s {STATE_DIR}/{f}" for f in files))
    c.sh(NODE, "systemctl stop corekube-agent.service; corekube-agent leave >&2")
    assert NODE not in c.node_leases()
    left = c.sh(NODE, f"cd {STATE_DIR} && ls -A").split()
    assert not [f for f in files if f in left], f"{STATE_DIR} after leave: {left}"
    mark = c.mark()
    c.sh(NODE, "systemctl start --no-block corekube-agent.service")
    c.wait_converged(since=mark, restarted=[NODE])
    check_persisted(c, NODE, c.node_leases()[NODE])


def test_purge_removes_the_state_directory(cluster):
    # Last: NODE is without the agent afterwards.
    c = cluster
    c.sh(NODE, f"test -d {STATE_DIR}")
    c.sh(NODE, "systemctl stop corekube-agent.service; "
               "DEBIAN_FRONTEND=noninteractive dpkg --purge corekube-agent >&2")
    assert c.sh(NODE, f"test -e {STATE_DIR} && echo present || echo gone") == "gone"

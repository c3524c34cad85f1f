# SPDX-License-Identifier: Apache-2.0
"""Issue 14: [network] ip-masq = yes masquerades the overlay's outbound
traffic with the agent's nftables table (ip corekube), on real nodes: the
nspawn bed (tests/bed/bed.sh, named "masq<pid>"), a master and two minions
booted with real systemd, corekube-agent from the suite's .deb, a real
container runtime, a real etcd. Kubernetes binaries are STAND-INS.

"The internet" is a network namespace of the test's own (<bed>-inet) on the
bed's fabric bridge, at 192.168.3.250: outside the overlay, on-link from
every node's eth2. It runs a small HTTP server that answers with the
address it sees the request come from. It also has a route back to the
overlay through minion-1, so that a request that is NOT masqueraded is
answered too and shows its pod address: that is how the test shows it can
fail (the table deleted by hand; Docker's own masquerading is off with
ip-masq = yes, --ip-masq=false).

Checked, for each runtime:
  - a container on minion-1 reaches the internet host with minion-1's eth2
    address as source;
  - a container on minion-1 reaches a container on minion-2 (busybox httpd,
    whose CGI prints REMOTE_ADDR) with its own pod address as source;
  - with minion-1's table deleted the internet host sees the pod address
    (nothing else masquerades); `systemctl reload` (SIGHUP) puts the table
    back and the node's address is seen again.

The containerd case runs once the agent knows [runtime] kind = containerd
and the bed has containerd nodes (node-add --runtime); until then it is
skipped, saying which is missing.

Needs root; the rootfs is built once and cached (tests/bed/rootfs.sh)."""

import ipaddress
import os
import re
import signal
import subprocess
import sys
import tempfile

import pytest

from clusterbed import BED_SH, Cluster, Node, wait_until
from corekube_test.proc import stop

NODES = [("master", "master", "192.168.3.11"), ("minion-1", "minion", "192.168.3.12"),
         ("minion-2", "minion", "192.168.3.13")]
INET_IP = "192.168.3.250"
PORT = 8080
DROPIN = "/etc/corekube/agent.conf.d/50-ip-masq.conf"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")

# The internet host's server: the body is the peer's address.
SERVER = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H)
print("listening", flush=True)
s.serve_forever()
'''

# busybox httpd in a container: its CGI prints the peer's address (run by
# the container's sh inside the single quotes of Runtime.start).
HTTPD = ("mkdir -p /www/cgi-bin && echo \"#!/bin/sh\" >/www/cgi-bin/peer && "
         "echo \"echo Content-Type: text/plain; echo; echo \\$REMOTE_ADDR\" >>/www/cgi-bin/peer && "
         f"chmod 755 /www/cgi-bin/peer && exec httpd -f -p 0.0.0.0:{PORT} -h /www")


def peer(text):
    """An address as a server printed it ("[::ffff:10.244.3.2]" from busybox)."""
    m = re.search(r"(\d+\.\d+\.\d+\.\d+)", text)
    assert m, f"no address in {text!r}"
    return m.group(1)


class Docker:
    name = "docker"

    def __init__(self, bed):
        self.bed = bed

    def start(self, node, name, script):
        self.bed.sh(node, f"docker image inspect ckb-busybox >/dev/null 2>&1 || "
                          f"docker import /usr/share/corekube-bed/busybox.tar ckb-busybox >/dev/null; "
                          f"docker rm -f {name} >/dev/null 2>&1 || true; "
                          f"docker run -d --name {name} ckb-busybox sh -c '{script}' >/dev/null")

    def exec(self, node, name, cmd):
        return self.bed.sh(node, f"timeout 10 docker exec {name} {cmd}", check=False)

    def ip(self, node, name):
        return self.bed.sh(node, f"docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {name}")


class Containerd:
    """ctr with its CNI (the agent's file); the image is the bed's busybox as
    an OCI archive (tests/bed, [runtime] kind = containerd nodes)."""
    name = "containerd"
    IMAGE = "docker.io/corekube/busybox:bed"

    def __init__(self, bed):
        self.bed = bed
        self.execs = 0

    def start(self, node, name, script):
        # In the foreground under a transient unit, as tests/e2e/test_containerd.py
        # does: ctr itself runs CNI ADD and, when the task ends, DEL.
        # --cpu-shares 0: no cpu controller is delegated to the node.
        self.bed.sh(node, f"ctr image inspect {self.IMAGE} >/dev/null 2>&1 || "
                          f"ctr image import --snapshotter native /usr/share/corekube-bed/busybox-oci.tar >/dev/null; "
                          f"systemctl stop ctr-{name}.service 2>/dev/null || true; "
                          f"systemctl reset-failed ctr-{name}.service 2>/dev/null || true; "
                          f"systemd-run --quiet --unit=ctr-{name} ctr run --rm --cni --snapshotter native "
                          f"--cpu-shares 0 {self.IMAGE} {name} sh -c '{script}'")
        wait_until(lambda: self.ip(node, name), 60, f"{name} on {node} with an address")

    def exec(self, node, name, cmd):
        self.execs += 1
        return self.bed.sh(node, f"timeout 10 ctr task exec --exec-id e{self.execs} {name} {cmd}", check=False)

    def ip(self, node, name):
        r = self.exec(node, name, "ip -4 -o addr show eth0")
        m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", r.stdout)
        assert m, (r.stdout, r.stderr)
        return m.group(1)


def containerd_missing():
    """Why the containerd case cannot run yet, or None."""
    exe = os.environ.get("COREKUBE_AGENT", "")
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write("[node]\nrole = minion\n[etcd]\nendpoints = http://192.168.3.2:2379\n"
                "[runtime]\nkind = containerd\n")
        f.flush()
        env = {k: v for k, v in os.environ.items() if k != "COREKUBE_AGENT"}     # not a config override
        r = subprocess.run([exe, "check-config", "-c", f.name], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return f"corekube-agent does not take [runtime] kind = containerd yet: {(r.stderr or r.stdout).strip()}"
    r = subprocess.run([BED_SH, "help"], capture_output=True, text=True)
    if "--runtime" not in r.stdout + r.stderr:
        return "the bed has no containerd nodes yet (bed.sh node-add --runtime)"
    return None


RUNTIMES = {"docker": Docker, "containerd": Containerd}


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")      # meson's timeout: let the fixture tear down


@pytest.fixture(scope="module", params=sorted(RUNTIMES, reverse=True))     # docker first
def bed(request):
    runtime = request.param
    if runtime != "docker":
        why = containerd_missing()
        if why:
            pytest.skip(why)
    old = signal.signal(signal.SIGTERM, _sigterm)
    c = Cluster(f"masq{runtime[0]}")
    c.rt = RUNTIMES[runtime](c)
    inet = f"ckb-{c.name}-inet"
    server = None
    try:
        c.up()
        for name, role, ip in NODES:
            opts = ["--runtime", runtime] if runtime != "docker" else []
            # Provisioned as an admin would: the config (with the drop-in),
            # then the service enabled and started.
            c.timed(f"boot {name}", "node-add", name, role, ip, "--no-standins", *opts)
            c.nodes[name] = Node(name, role, ip)
            c.sh(name, f"mkdir -p {os.path.dirname(DROPIN)} && "
                       f"printf '[network]\\nip-masq = yes\\n' >{DROPIN} && "
                       f"systemctl enable --now --no-block corekube-agent.service")
        c.wait_converged(deadline=240)

        # The internet: a namespace of ours on the fabric's bridge; both
        # veth ends are made inside namespaces.
        subprocess.run(["ip", "netns", "add", inet], check=True)
        fab = c.netns("fab")
        subprocess.run(["ip", "-n", fab, "link", "add", "v-inet", "type", "veth", "peer", "name", "eth0",
                        "netns", inet], check=True)
        subprocess.run(["ip", "-n", fab, "link", "set", "v-inet", "master", "br0", "up"], check=True)
        for args in (["link", "set", "lo", "up"], ["link", "set", "eth0", "up"],
                     ["addr", "add", f"{INET_IP}/24", "dev", "eth0"]):
            subprocess.run(["ip", "-n", inet, *args], check=True)
        net = c.sh("minion-1", ". /run/flannel/subnet.env && echo $FLANNEL_NETWORK")
        # Unmasqueraded requests are answered too, so that they show their source.
        subprocess.run(["ip", "-n", inet, "route", "add", net, "via", "192.168.3.12"], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", inet, sys.executable, "-c", SERVER, INET_IP, str(PORT)],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert server.stdout.readline().strip() == "listening"
        c.inet = inet
        yield c
    finally:
        if server:
            stop(server)
            server.stdout.close()
        subprocess.run(["ip", "netns", "del", inet], check=False, stderr=subprocess.DEVNULL)
        r = c.down()
        signal.signal(signal.SIGTERM, old)
        print("\nbed timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in c.timings.items()))
        assert r.returncode == 0, r.stderr


def table(bed, node):
    r = subprocess.run(["ip", "netns", "exec", bed.netns(node), "nft", "list", "table", "ip", "corekube"],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def seen_by(bed, node, name, url):
    """What the server at url saw as the source of a request from node's container."""
    r = bed.rt.exec(node, name, f"wget -q -O- {url}")
    assert r.returncode == 0, f"{node}: wget {url}: {(r.stdout + r.stderr).strip()}"
    return peer(r.stdout)


def test_table_and_docker_options(bed):
    for n in bed.nodes:
        t = table(bed, n)
        assert t and "masquerade fully-random" in t, f"{n}: {t}"
    if bed.rt.name == "docker":
        opts = bed.sh("minion-1", "cat /run/flannel/docker_opts.env")
        assert "--ip-masq=false" in opts, opts


def test_outbound_leaves_with_the_nodes_address(bed):
    bed.rt.start("minion-1", "client", "trap \"exit 0\" TERM; sleep 86400 & wait")
    pod = bed.rt.ip("minion-1", "client")
    assert ipaddress.ip_address(pod) in bed.node_leases()["minion-1"], pod
    assert seen_by(bed, "minion-1", "client", f"http://{INET_IP}:{PORT}/") == "192.168.3.12"


def test_within_the_overlay_keeps_the_pod_address(bed):
    bed.rt.start("minion-2", "server", HTTPD)
    srv = bed.rt.ip("minion-2", "server")
    assert ipaddress.ip_address(srv) in bed.node_leases()["minion-2"], srv
    pod = bed.rt.ip("minion-1", "client")
    url = f"http://{srv}:{PORT}/cgi-bin/peer"
    wait_until(lambda: bed.rt.exec("minion-1", "client", f"wget -q -O- {url}").returncode == 0, 30,
               "minion-2's httpd to answer")
    assert seen_by(bed, "minion-1", "client", url) == pod


def test_without_the_table_the_pod_address_leaks_until_reload(bed):
    """The test can fail: nothing but our table masquerades."""
    pod = bed.rt.ip("minion-1", "client")
    url = f"http://{INET_IP}:{PORT}/"
    subprocess.run(["ip", "netns", "exec", bed.netns("minion-1"), "nft", "delete", "table", "ip", "corekube"],
                   check=True)
    try:
        assert seen_by(bed, "minion-1", "client", url) == pod
    finally:
        bed.sh("minion-1", "systemctl reload corekube-agent.service")
    wait_until(lambda: table(bed, "minion-1") is not None, 30, "the table back after reload")
    assert seen_by(bed, "minion-1", "client", url) == "192.168.3.12"

# SPDX-License-Identifier: Apache-2.0
"""Issue 13, the fast path: the bring-up runs side by side what does not
need each other. The registration and the network; the runtime and the
downloads (up to three at a time); a minion waits for a master whose record
says ready (an etcd watch on the records), and only then announces itself.
Real agents and a real etcd (conftest.py); the artifact server, the
apiserver and systemd are stand-ins, said so where they are. No timing
assertions: each test shows an order or an overlap through what the
servers and etcd saw."""

import hashlib
import os
import signal
import subprocess

from conftest import etcd_auth_network_only, wait_until
from corekube_test.proc import kill
from test_states import History, SystemdStandin, edit_conf, record, with_standin


# ---- the registration and the network side by side ----

def test_network_does_not_wait_for_the_registration(fresh_cluster):
    """The minion may not write its machine record (real etcd auth denies
    the key): its registration cannot finish, yet its network config, its
    subnet lease, flannel.1 and the peers are set up and subnet.env is
    written. In a strict sequence nothing of the network happens before
    the registration is done."""
    c = fresh_cluster(2, start=False)
    master, minion = c.nodes
    etcd_auth_network_only(c.etcd)
    for n, user, pw in ((master, "root", "rootpw"), (minion, "agent", "agentpw")):
        path = os.path.join(n.dir, "password")
        with open(path, "w") as f:
            f.write(pw + "\n")
        os.chmod(path, 0o600)
        edit_conf(n, "ttl = 10s\n", f"ttl = 10s\nusername = {user}\npassword-file = {path}\n")
    master.start()
    c.wait_ready([master])
    minion.start()
    # The network comes while the registration is refused.
    wait_until(lambda: os.path.exists(minion.subnet_file), 30, "the minion's subnet.env")
    c.wait_converged([master, minion])
    wait_until(lambda: "Waiting (etcd): " in minion.log(), 10, "the refused registration in the journal")
    assert minion.record() is None
    with open(minion.subnet_file) as f:
        assert f"FLANNEL_SUBNET={minion.subnet().split('/')[0][:-1]}1/" in f.read()
    # Allowed now: the registration gets through, with the subnet in it.
    c.etcd.ctl("role", "grant-permission", "ck", "--prefix=true", "readwrite", "/corekube/")
    c.wait_ready([minion], timeout=60)
    assert record(minion)["subnet"] == minion.subnet()


# ---- a minion waits for a ready master ----

APISERVER = r'''
# A STAND-IN for the apiserver's minion registration: answers every POST
# 201 and notes it in a file.
import http.server, sys
listen, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log_path, "a") as f:
            f.write("POST " + self.path + "\n")
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
s = http.server.HTTPServer((listen, port), H)
print("listening", flush=True)
s.serve_forever()
'''


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def test_minion_announces_itself_only_to_a_ready_master(fresh_cluster):
    """The master is registered but held at its units (a role unit's start
    job does not finish: the systemd stand-in): the minion waits (master)
    and does not POST to the apiserver, which listens already. Once the
    master's record says ready, the minion POSTs and is ready; it never
    was failed."""
    c = fresh_cluster(2, start=False)
    master, minion = c.nodes
    edit_conf(minion, "[role.minion]\nunits =\n",
              "[role.minion]\nregister-url = http://${MASTER_IP}:8080/api/v1beta1/minions\nunits =\n")
    sd = SystemdStandin(c.workdir, {"hold": ["a.service"]})
    posts = os.path.join(c.workdir, "posts.log")
    script = os.path.join(c.workdir, "apiserver.py")
    with open(script, "w") as f:
        f.write(APISERVER)
    api = subprocess.Popen(["ip", "netns", "exec", master.ns.name, "/usr/bin/python3", script, "0.0.0.0", "8080",
                            posts], stdout=subprocess.PIPE, text=True)
    hist = History(c)
    try:
        assert api.stdout.readline().strip() == "listening"
        with_standin(master, sd, units="a.service", restart="no")
        master.start()
        wait_until(lambda: any(x.get("event") == "job-held" for x in sd.calls()), 30, "the master's held job")
        assert record(master)["state"] == "units"
        minion.start()
        wait_until(lambda: "not ready" in record(minion).get("message", ""), 30, "the minion to wait for the master")
        rec = record(minion)
        assert rec["state"] == "waiting" and rec["reason"] == "master", rec
        assert f"master {master.name} is units" in rec["message"], rec
        assert read(posts) == ""
        # The master's unit starts: its record says ready, and the
        # minion's watch on the records lets it go on.
        sd.set({})
        sd.poke()
        c.wait_ready([master, minion], timeout=60)
        assert read(posts) == "POST /api/v1beta1/minions\n"
        states = [r["state"] for r in hist.states(minion.name)]
        assert "failed" not in states, states
        # The minion's records before its POST: the master was ready when
        # the minion went on (it waited with reason master until then).
        waits = [r for r in hist.states(minion.name) if r["state"] == "waiting"]
        assert waits and all(r["reason"] == "master" for r in waits), waits
    finally:
        hist.close()
        kill(api)
        sd.stop()


# ---- the downloads side by side ----

ARTIFACT_SERVER = r'''
# A STAND-IN for the artifact server: every GET is held until SIGUSR1, then
# answered with the same body; notes each request with how many are open.
import http.server, signal, sys, threading
addr, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = b"corekube artifact\n"
lock, release = threading.Lock(), threading.Event()
count = {"seen": 0, "open": 0}
signal.signal(signal.SIGUSR1, lambda *a: release.set())
def log(line):
    with open(log_path, "a") as f:
        f.write(line + "\n")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        with lock:
            count["seen"] += 1
            count["open"] += 1
            log(f"open {count['seen']} {self.path} concurrent {count['open']}")
        try:
            release.wait()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        finally:
            with lock:
                count["open"] -= 1
http.server.ThreadingHTTPServer.daemon_threads = True
s = http.server.ThreadingHTTPServer((addr, port), H)
log("listening")
s.serve_forever()
'''

def test_artifacts_download_side_by_side(fresh_cluster):
    """Five artifacts: one in place with its sha256 (hashed, not fetched),
    one in place with other content (fetched), three missing. The artifact
    server (a STAND-IN) holds every download until the test releases them:
    three are open at once, never four. One at a time, as before, never
    gets there."""
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    body = b"corekube artifact\n"
    slog = os.path.join(c.workdir, "server.log")
    script = os.path.join(c.workdir, "server.py")
    with open(script, "w") as f:
        f.write(ARTIFACT_SERVER)
    names = ["a1", "a2", "a3", "a4", "a5"]
    bindir = os.path.join(n.dir, "bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "a1"), "wb") as f:
        f.write(body)
    with open(os.path.join(bindir, "a2"), "wb") as f:
        f.write(b"an older build\n")
    edit_conf(n, "[role.master]\nunits =\nartifacts =\n", f"[role.master]\nunits =\nartifacts = {' '.join(names)}\n")
    with open(n.conf, "a") as f:
        for a in names:
            f.write(f"\n[artifact.{a}]\nurl = http://192.168.3.1:8089/{a}\n"
                    f"sha256 = {hashlib.sha256(body).hexdigest()}\npath = {bindir}/{a}\n")
    server = subprocess.Popen(["ip", "netns", "exec", c.fabric.name, "/usr/bin/python3", script,
                               "192.168.3.1", "8089", slog], stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: "listening" in read(slog), 10, "the artifact server")
        n.start()
        wait_until(lambda: "concurrent 3" in read(slog), 30, "three downloads at once", diag=lambda: read(slog))
        assert n.state() == "artifacts"
        server.send_signal(signal.SIGUSR1)
        c.wait_ready([n], timeout=30)
        for a in names:
            with open(os.path.join(bindir, a), "rb") as f:
                assert f.read() == body, a
        log = read(slog)
        assert "open 4 " in log and "open 5 " not in log, log
        assert "concurrent 4" not in log, log
        assert "Artifact a1 is already in place with its sha256." in n.log()
    finally:
        server.kill()
        server.wait()

# SPDX-License-Identifier: Apache-2.0
"""Issue 12: the bring-up's waits and failures. A node that waits for
something that comes by itself (a master, a unit settling, a download
server, etcd) is `waiting` with a reason and retries; only what needs an
operator is `failed`. Real agents and a real etcd (conftest.py); systemd
is a STAND-IN (tests/standins/systemd-standin.py) on a private dbus-daemon,
only in the tests whose fault real systemd cannot be made to produce; the
apiserver and the etcd proxy are small stand-ins defined here, said so
where they are."""

import json
import os
import signal
import socket
import subprocess
import threading

from conftest import etcd_auth_network_only, wait_until
from corekube_test.etcd import ETCDCTL
from corekube_test.proc import kill

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "..", "standins", "systemd-standin.py")
MACHINES = "/corekube/machines/"


# ---- helpers ----

class Notify:
    """A NOTIFY_SOCKET for an agent run without systemd: collects STATUS=
    and counts WATCHDOG=1."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.statuses = []
        self.watchdog = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536).decode(errors="replace")
            except OSError:
                return
            with self.cond:
                for line in data.splitlines():
                    if line.startswith("STATUS="):
                        self.statuses.append(line[7:])
                    elif line == "WATCHDOG=1":
                        self.watchdog += 1
                self.cond.notify_all()

    def wait_for(self, pred, timeout, what):
        with self.cond:
            if not self.cond.wait_for(lambda: any(pred(s) for s in self.statuses), timeout):
                raise AssertionError(f"no STATUS= {what} in {self.statuses[-10:]}")
        return next(s for s in self.statuses if pred(s))

    def last(self):
        with self.cond:
            return self.statuses[-1] if self.statuses else None

    def close(self):
        self.sock.close()


class History:
    """Every version of every machine record from now on, through an etcd
    watch from the current revision (nothing is missed, however short)."""

    def __init__(self, c):
        rev = c.etcd.revision() + 1
        cmd = c.etcd._in_netns([ETCDCTL, "--endpoints", c.etcd.local_url, *c.etcd.ctl_extra, "watch", "--prefix",
                                MACHINES, f"--rev={rev}", "-w", "json"])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=dict(os.environ, ETCDCTL_API="3"))
        self.records = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        import base64
        for line in self.proc.stdout:
            try:
                resp = json.loads(line)
            except ValueError:
                continue
            for e in resp.get("Events") or []:
                v = e.get("kv", {}).get("value")
                if v:
                    with self.lock:
                        self.records.append(json.loads(base64.b64decode(v)))

    def states(self, name):
        with self.lock:
            return [r for r in self.records if r.get("name") == name]

    def close(self):
        kill(self.proc)


def edit_conf(n, old, new):
    with open(n.conf) as f:
        conf = f.read()
    assert old in conf, old
    with open(n.conf, "w") as f:
        f.write(conf.replace(old, new))


def append_conf(n, text):
    with open(n.conf, "a") as f:
        f.write(text)


def record(n):
    r = n.record()
    return json.loads(r["value"]) if r else {}


BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- A private bus for the systemd stand-in and one agent (test_states.py). -->
<busconfig>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="false"/>
  </policy>
</busconfig>
"""


class SystemdStandin:
    """A private dbus-daemon and the systemd stand-in on it; the agent finds
    them through DBUS_SYSTEM_BUS_ADDRESS."""

    def __init__(self, workdir, control):
        self.dir = os.path.join(workdir, "systemd-standin")
        os.makedirs(self.dir)
        self.control_path = os.path.join(self.dir, "control.json")
        self.log_path = os.path.join(self.dir, "calls.log")
        self.set(control)
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF.format(path=os.path.join(self.dir, "bus")))
        self.bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
                                     "--print-address=1"], stdout=subprocess.PIPE, text=True)
        self.address = self.bus.stdout.readline().strip()
        assert self.address.startswith("unix:"), self.address
        self.proc = subprocess.Popen(["/usr/bin/python3", STANDIN, self.control_path, self.log_path],
                                     stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address))
        assert self.proc.stdout.readline().strip() == "ready"

    def set(self, control):
        with open(self.control_path + ".new", "w") as f:
            json.dump(control, f)
        os.rename(self.control_path + ".new", self.control_path)

    def poke(self):
        """Runs held jobs again after set()."""
        self.proc.send_signal(signal.SIGUSR1)

    def calls(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def stop(self):
        kill(self.proc)
        kill(self.bus)


def with_standin(n, standin, units="", restart="yes"):
    edit_conf(n, "[runtime]\nrestart = no\n", f"[runtime]\nrestart = {restart}\n")
    edit_conf(n, f"[role.{n.role}]\nunits =\n", f"[role.{n.role}]\nunits = {units}\n")
    n.extra_env["DBUS_SYSTEM_BUS_ADDRESS"] = standin.address


def notify_for(c, n):
    path = os.path.join(c.workdir, f"{n.name}-notify")
    s = Notify(path)
    n.extra_env["NOTIFY_SOCKET"] = path
    return s


# ---- (a) a minion whose watch on the machines cannot be set up ----

ETCD_PROXY = r'''
# A STAND-IN in front of the real etcd: forwards every call of the JSON
# gateway but /v3/watch, which it holds open without an answer (a watch
# that cannot be set up). Everything else is the real etcd's answer.
import http.client, http.server, sys, threading
listen, port, upstream = sys.argv[1], int(sys.argv[2]), sys.argv[3]
never = threading.Event()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/watch"):
            never.wait()
            return
        h, p = upstream.split(":")
        c = http.client.HTTPConnection(h, int(p), timeout=30)
        c.request("POST", self.path, body, {k: v for k, v in self.headers.items()
                                            if k.lower() in ("content-type", "authorization")})
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        self.send_header("Content-Type", r.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
http.server.ThreadingHTTPServer.daemon_threads = True
s = http.server.ThreadingHTTPServer((listen, port), H)
print("listening", flush=True)
s.serve_forever()
'''


def test_minion_waits_for_a_master_without_a_watch(fresh_cluster):
    c = fresh_cluster(2, start=False)
    master, minion = c.nodes
    script = os.path.join(c.workdir, "etcd-proxy.py")
    with open(script, "w") as f:
        f.write(ETCD_PROXY)
    proxy = subprocess.Popen(["ip", "netns", "exec", c.fabric.name, "/usr/bin/python3", script, "192.168.3.1",
                              "2479", "127.0.0.1:2379"], stdout=subprocess.PIPE, text=True)
    hist = History(c)
    try:
        assert proxy.stdout.readline().strip() == "listening"
        edit_conf(minion, c.etcd.url, "http://192.168.3.1:2479")
        minion.start()
        # Past its network: looking for a master (its watch goes nowhere).
        wait_until(lambda: record(minion).get("state") in ("units", "waiting"), 30, "the minion to look for a master")
        # The master comes: the minion sees it by listing again.
        master.start()
        c.wait_ready([master, minion], timeout=90)
        assert "reason" not in record(minion)
        waits = [r for r in hist.states(minion.name) if r["state"] == "waiting"]
        assert waits and all(r["reason"] == "master" and "error" not in r for r in waits), waits
    finally:
        hist.close()
        kill(proxy)


# ---- (c) the machine record cannot be written ----

def test_registry_failure_says_waiting_etcd(fresh_cluster):
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    # Real etcd with auth: the agent may use the network prefix, not yet
    # the machine records.
    etcd_auth_network_only(c.etcd)
    pw = os.path.join(n.dir, "password")
    with open(pw, "w") as f:
        f.write("agentpw\n")
    os.chmod(pw, 0o600)
    edit_conf(n, "ttl = 10s\n", f"ttl = 10s\nusername = agent\npassword-file = {pw}\n")
    notify = notify_for(c, n)
    try:
        n.start()
        st = notify.wait_for(lambda s: s.startswith("master: waiting (etcd): "), 30, "waiting (etcd)")
        assert "permission denied" in st, st
        wait_until(lambda: "Waiting (etcd): " in n.log(), 10, "the journal line")
        assert n.record() is None
        # Allowed now: registry.c's retry gets through.
        c.etcd.ctl("role", "grant-permission", "ck", "--prefix=true", "readwrite", "/corekube/")
        c.wait_ready([n], timeout=60)
        notify.wait_for(lambda s: s.startswith("master: ready"), 30, "ready")
    finally:
        notify.close()


# ---- the service watchdog: sd-event pings it (issue 15) ----

def test_the_event_loop_pings_the_watchdog(fresh_cluster):
    """WATCHDOG_USEC as systemd sets it for WatchdogSec=: the loop itself
    (sd_event_set_watchdog) sends WATCHDOG=1, again and again."""
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    notify = notify_for(c, n)
    n.extra_env["WATCHDOG_USEC"] = "2000000"
    try:
        n.start()
        c.wait_ready([n])
        with notify.cond:
            assert notify.cond.wait_for(lambda: notify.watchdog >= 3, 30), notify.watchdog
    finally:
        notify.close()


# ---- (b) systemd cannot tell the runtime unit's state ----

def test_runtime_state_that_cannot_be_read_is_asked_again(fresh_cluster):
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    sd = SystemdStandin(c.workdir, {"get_failures": {"docker.service/ActiveState": 3},
                                    "env_file": os.path.join(n.dir, "docker_opts.env")})
    try:
        with_standin(n, sd)
        notify = notify_for(c, n)
        n.start()
        st = notify.wait_for(lambda s: s.startswith("master: waiting (unit:docker.service): "), 30,
                             "waiting for docker.service")
        assert "fails on purpose" in st, st
        c.wait_ready([n], timeout=60)
        # One GetAll of the Unit interface a try; the restart's changes come
        # with their values (PropertiesChanged), not read again.
        calls = [x for x in sd.calls() if x.get("unit") == "docker.service" and "Get" in x.get("method", "")]
        reads = [x for x in calls if x["method"] == "GetAll" and x["interface"] == "org.freedesktop.systemd1.Unit"]
        assert [g["failed"] for g in reads] == [True, True, True, False], calls
        assert not [x for x in calls if x["method"] == "Get" and x["property"] in ("ActiveState", "SubState")], calls
        assert [x["interface"] for x in calls if x["method"] == "GetAll"].count("org.freedesktop.systemd1.Service") == 1
        assert [x["unit"] for x in sd.calls() if x.get("method") == "RestartUnit"] == ["docker.service"]
        notify.close()
    finally:
        sd.stop()


# ---- start jobs: waiting while they may pass, failed after three ----

def test_start_jobs_waiting_then_failed_after_three(fresh_cluster, tmp_path):
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    sd = SystemdStandin(c.workdir, {"job_results": {"a.service": ["failed", "failed"],
                                                    "b.service": ["failed"] * 4}})
    hist = History(c)
    try:
        with_standin(n, sd, units="a.service b.service", restart="no")
        n.start()
        wait_until(lambda: record(n).get("state") == "failed", 60, "failed after three start jobs")
        rec = record(n)
        assert "b.service" in rec["error"] and "reason" not in rec, rec
        # --wait gives up on failed at once.
        p = n.cli("status", "--wait=60s")
        assert p.returncode == 1 and "b.service" in p.stderr, (p.stdout, p.stderr)
        # b's fourth job is done: ready.
        c.wait_ready([n], timeout=60)
        seen = [(r["state"], r.get("reason")) for r in hist.states(n.name)]
        assert ("waiting", "unit:a.service") in seen, seen
        assert ("waiting", "unit:b.service") in seen, seen
        # a failed twice: never failed for it.
        failed = [r for r in hist.states(n.name) if r["state"] == "failed"]
        assert failed and all("b.service" in r["error"] for r in failed), failed
        out = n.cli("status").stdout
        assert "ready" in out
    finally:
        hist.close()
        sd.stop()


def test_status_wait_keeps_waiting_through_waiting(fresh_cluster):
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    sd = SystemdStandin(c.workdir, {"job_results": {"a.service": ["failed"] * 2}, "hold": ["a.service"]})
    try:
        with_standin(n, sd, units="a.service", restart="no")
        n.start()
        # a's first job is held: the node is at units; then it fails twice.
        wait_until(lambda: any(x.get("event") == "job-held" for x in sd.calls()), 30, "the held job")
        waiter = subprocess.Popen(n.argv("status", "--wait=120s", "-c", n.conf), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert "Waiting for node" in waiter.stderr.readline()
            sd.set({"job_results": {"a.service": ["failed"] * 2}})
            sd.poke()
            wait_until(lambda: record(n).get("reason") == "unit:a.service", 30, "waiting for a.service")
            out = n.cli("status")
            row = [line for line in out.stdout.splitlines() if line.startswith(n.name + " ")]
            assert row and "waiting (unit:a.service)" in row[0], out.stdout
            js = json.loads(n.cli("status", "--json").stdout)
            assert js["machines"][0]["reason"] == "unit:a.service", js
            out, err = waiter.communicate(timeout=90)
            assert waiter.returncode == 0, err
        finally:
            kill(waiter)
        assert record(n)["state"] == "ready"
    finally:
        sd.stop()


# ---- (d) the subnet moves while the runtime's restart job runs ----

def test_subnet_moved_during_the_runtime_restart_restarts_it_again(fresh_cluster):
    c = fresh_cluster(1, start=False)
    n = c.nodes[0]
    env_file = os.path.join(n.dir, "docker_opts.env")
    sd = SystemdStandin(c.workdir, {"hold": ["docker.service"], "env_file": env_file})
    key = None
    try:
        with_standin(n, sd)
        n.start()
        wait_until(lambda: any(x.get("event") == "job-held" for x in sd.calls()), 30, "the restart job to run")
        first = [x for x in sd.calls() if x.get("event") == "job-run"][0]
        key, _, _ = n.subnet_record()
        before = n.subnet()
        assert f"--bip={before.split('/')[0][:-1]}1/" in first["env"], first
        # Someone takes our subnet over while Docker restarts.
        c.etcd.put(key, json.dumps({"PublicIP": "192.168.3.98", "BackendType": "vxlan",
                                    "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fd:03"}}))
        wait_until(lambda: n.subnet() not in (None, before), 30, "a new subnet")
        after = n.subnet()
        wait_until(lambda: len([x for x in sd.calls() if x.get("method") == "RestartUnit"]) == 2, 30,
                   "a second restart")
        sd.set({"env_file": env_file})
        sd.poke()
        c.wait_ready([n], timeout=30)
        runs = [x for x in sd.calls() if x.get("event") == "job-run"]
        # Docker's last start read the new subnet.
        assert f"--bip={after.split('/')[0][:-1]}1/" in runs[-1]["env"], runs
        assert record(n)["subnet"] == after
    finally:
        sd.stop()
        if key:
            c.etcd.delete(key)


# ---- the minion's POST to the apiserver ----

APISERVER = r'''
# A STAND-IN for the apiserver's minion registration: answers every POST
# with the status given (201, or 400 to play a request it rejects).
import http.server, sys
listen, port, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
s = http.server.HTTPServer((listen, port), H)
print("listening", flush=True)
s.serve_forever()
'''


def apiserver(c, status):
    script = os.path.join(c.workdir, "apiserver.py")
    with open(script, "w") as f:
        f.write(APISERVER)
    p = subprocess.Popen(["ip", "netns", "exec", c.nodes[0].ns.name, "/usr/bin/python3", script, "0.0.0.0",
                          "8080", str(status)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "listening"
    return p


def test_minion_before_the_apiserver_waits_never_fails(fresh_cluster):
    c = fresh_cluster(2, start=False)
    master, minion = c.nodes
    edit_conf(minion, "[role.minion]\nunits =\n",
              "[role.minion]\nregister-url = http://${MASTER_IP}:8080/api/v1beta1/minions\nunits =\n")
    hist = History(c)
    api = None
    try:
        master.start()
        c.wait_ready([master])
        minion.start()
        # Nothing listens on the master's 8080 yet: connection refused.
        wait_until(lambda: record(minion).get("reason") == "master", 30, "the minion to wait for the master")
        assert "8080" in record(minion)["message"]
        api = apiserver(c, 201)
        c.wait_ready([minion], timeout=90)
        states = [r["state"] for r in hist.states(minion.name)]
        assert "failed" not in states, states
        assert "waiting" in states, states
    finally:
        hist.close()
        if api:
            kill(api)


def test_apiserver_4xx_is_failed(fresh_cluster):
    c = fresh_cluster(2, start=False)
    master, minion = c.nodes
    edit_conf(minion, "[role.minion]\nunits =\n",
              "[role.minion]\nregister-url = http://${MASTER_IP}:8080/api/v1beta1/minions\nunits =\n")
    master.start()
    c.wait_ready([master])
    api = apiserver(c, 400)
    try:
        minion.start()
        wait_until(lambda: record(minion).get("state") == "failed", 30, "failed on HTTP 400")
        assert "HTTP 400" in record(minion)["error"], record(minion)
    finally:
        kill(api)


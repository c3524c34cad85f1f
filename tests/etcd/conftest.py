# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the etcd integration tests: a real etcd (Debian's etcd-server)
on free loopback ports with a fresh data dir, the etcd-tool test driver, a
counting/blocking TCP proxy and a few helpers. Everything started here is
stopped by PID and every temporary file removed, on every exit path."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

TOOL = os.environ.get("ETCD_TOOL", "")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def wait_until(pred, timeout, what="condition", interval=0.05):
    """Poll pred until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """One etcd member (or a whole single-member cluster)."""

    def __init__(self, workdir, name="m0", scheme="http", extra=None, cluster=None,
                 client_port=None, peer_port=None):
        self.name = name
        self.scheme = scheme
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.data_dir = os.path.join(workdir, f"etcd-{name}")
        self.log_path = os.path.join(workdir, f"etcd-{name}.log")
        self.extra = extra or []
        self.cluster = cluster
        self.proc = None
        self.ctl_extra = []

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, wait=True):
        cluster = self.cluster or f"{self.name}={self.peer_url}"
        args = [ETCD, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", f"t{os.getpid()}"] + self.extra
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd {self.name} exited: see {self.log_path}")
            try:
                r = self.ctl("endpoint", "health", check=False, timeout=5)
            except subprocess.TimeoutExpired:
                return False    # a loaded machine: ask again until the deadline
            return r.returncode == 0
        wait_until(ok, timeout, f"etcd {self.name} healthy", interval=0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def ctl(self, *args, check=True, timeout=15, input=None, endpoints=None):
        cmd = [ETCDCTL, "--endpoints", endpoints or self.url] + self.ctl_extra + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if check and r.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)} failed: {r.stderr}")
        return r

    def get(self, key):
        r = self.ctl("get", key, "-w", "json")
        kvs = json.loads(r.stdout).get("kvs", [])
        if not kvs:
            return None
        kv = kvs[0]
        return {"value": base64.b64decode(kv["value"]).decode() if "value" in kv else "",
                "lease": int(kv.get("lease", 0)), "version": int(kv.get("version", 0)),
                "mod_revision": int(kv.get("mod_revision", 0))}

    def keys(self, prefix):
        r = self.ctl("get", prefix, "--prefix", "--keys-only")
        return [k for k in r.stdout.split("\n") if k]

    def revision(self):
        r = self.ctl("get", "/", "-w", "json")
        return int(json.loads(r.stdout)["header"]["revision"])

    def api(self, path, body):
        """A raw call to the JSON gateway (for multi-op txns in one revision)."""
        req = urllib.request.Request(self.url + "/v3" + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def put_many(self, items):
        ops = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in items]
        return self.api("/kv/txn", {"success": ops})


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Tool:
    """etcd-tool running in the background; its JSON lines are collected."""

    def __init__(self, workdir, endpoints, *args, debug=False, stdin=True):
        if isinstance(endpoints, (list, tuple)):
            endpoints = ",".join(endpoints)
        self.args = [TOOL, f"--endpoints={endpoints}"] + list(args)
        self.events = []
        self.cond = threading.Condition()
        self.stderr_path = os.path.join(workdir, f"tool-{id(self)}.stderr")
        env = dict(os.environ)
        if debug:
            env["ETCD_TOOL_DEBUG"] = "1"
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env)
        err.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                e = {"event": "garbage", "line": line.decode(errors="replace")}
            with self.cond:
                self.events.append(e)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_event(self, pred, timeout=20, what="event", start=0):
        """The first event from index start on that satisfies pred."""
        if isinstance(pred, str):
            name = pred
            pred = lambda e: e.get("event") == name
            what = name
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events[start:]:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; events: {self.events[-10:]}; "
                                         f"stderr: {self.stderr()[-2000:]}")
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError(f"tool exited ({self.proc.returncode}) before {what}; "
                                         f"events: {self.events[-10:]}; stderr: {self.stderr()[-2000:]}")
                self.cond.wait(min(left, 0.5))

    def count(self, name):
        with self.cond:
            return sum(1 for e in self.events if e.get("event") == name)

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def stats(self):
        n = len(self.events)
        self.proc.send_signal(signal.SIGUSR1)
        return self.wait_event("stats", start=n)

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def wait_exit(self, timeout=30):
        rc = self.proc.wait(timeout)
        self.reader.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_tool(endpoints, *args, timeout=30, debug=False):
    """Runs a one-shot etcd-tool command; returns (rc, events, stderr)."""
    if isinstance(endpoints, (list, tuple)):
        endpoints = ",".join(endpoints)
    env = dict(os.environ)
    if debug:
        env["ETCD_TOOL_DEBUG"] = "1"
    r = subprocess.run([TOOL, f"--endpoints={endpoints}"] + list(args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    events = [json.loads(l) for l in r.stdout.split("\n") if l.strip()]
    return r.returncode, events, r.stderr


class Proxy:
    """A TCP proxy on a free loopback port: counts connections, can refuse
    new ones and cut existing ones, and has two hostile modes that lose a
    request's answer ('drop_response': forward, never answer) or the request
    itself ('drop_request': read, never forward), or just never answers
    ('hang')."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.connections = 0
        self.mode = "forward"
        self.lock = threading.Lock()
        self.socks = []
        self.listener = None
        self.stopping = False
        self.listen()

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.socks.append(c)
                mode = self.mode
            threading.Thread(target=self._serve, args=(c, mode), daemon=True).start()

    def _pipe(self, src, dst, forward=True):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if forward:
                    dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _read_request(c):
        """One whole HTTP request (headers and Content-Length body)."""
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                return data
            data += d
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            d = c.recv(65536)
            if not d:
                break
            body += d
        return data[:len(head) + 4] + body

    def _serve(self, c, mode):
        if mode == "hang":
            # Take the request, never answer, keep the connection open.
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass
            c.close()
            return
        if mode == "drop_request":
            try:
                self._read_request(c)
                time.sleep(0.5)
            except OSError:
                pass
            c.close()
            return
        try:
            u = socket.create_connection(self.target, timeout=5)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        with self.lock:
            self.socks.append(u)
        if mode == "drop_response":
            try:
                u.sendall(self._read_request(c))
                time.sleep(1.0)    # etcd applies it; the answer never comes back
            except OSError:
                pass
            c.close()
            u.close()
            return
        threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
        self._pipe(c, u)

    def block(self):
        """Refuse new connections and cut the open ones."""
        with self.lock:
            if self.listener:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                try:
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def unblock(self):
        with self.lock:
            if self.listener:
                return
        self.listen()

    def close(self):
        self.block()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix=f"corekube-etcd-{os.getpid()}-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cleanup():
    """Register things to stop; stopped in reverse order whatever happens."""
    items = []
    yield items.append
    for f in reversed(items):
        try:
            f()
        except Exception:
            pass


@pytest.fixture
def etcd(workdir, cleanup):
    e = Etcd(workdir)
    cleanup(e.kill)
    return e.start()


@pytest.fixture
def tool(workdir, cleanup):
    """tool(endpoints, *args) starts a background etcd-tool, stopped at the end."""
    def start(endpoints, *args, **kw):
        t = Tool(workdir, endpoints, *args, **kw)
        cleanup(t.kill)
        return t
    return start


def pytest_configure(config):
    if not TOOL or not os.access(TOOL, os.X_OK):
        raise pytest.UsageError("ETCD_TOOL must point to the built etcd-tool")

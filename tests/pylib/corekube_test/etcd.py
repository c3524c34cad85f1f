# SPDX-License-Identifier: Apache-2.0
"""A real etcd (Debian's etcd-server) for a test: on free loopback ports,
or inside a network namespace the test made (there the usual ports are
free), with its data dir and log under the test's directory. Stopped by
PID; etcdctl talks to it over loopback, from inside its namespace."""

import base64
import json
import os
import shutil
import signal
import subprocess
import urllib.request

from .poll import wait_until
from .proc import free_port, kill, stop

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Etcd:
    """One etcd member (or a whole single-member cluster).

    netns: the name of a namespace to run in; host: the client address
    to advertise (it listens there and on loopback)."""

    def __init__(self, workdir, name="m0", scheme="http", extra=None, cluster=None,
                 client_port=None, peer_port=None, netns=None, host="127.0.0.1",
                 data_dir=None, log_path=None, token=None):
        self.name = name
        self.scheme = scheme
        self.netns = netns
        self.host = host
        if netns:
            client_port = client_port or 2379
            peer_port = peer_port or client_port + 1
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.data_dir = data_dir or os.path.join(workdir, f"etcd-{name}")
        self.log_path = log_path or os.path.join(workdir, f"etcd-{name}.log")
        self.token = token or f"t{os.getpid()}"
        self.extra = extra or []
        self.cluster = cluster
        self.proc = None
        self.ctl_extra = []

    @property
    def url(self):
        return f"{self.scheme}://{self.host}:{self.client_port}"

    @property
    def local_url(self):
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    def _in_netns(self, cmd):
        return ["ip", "netns", "exec", self.netns, *cmd] if self.netns else cmd

    def start(self, wait=True, timeout=60):
        cluster = self.cluster or f"{self.name}={self.peer_url}"
        listen = self.url if self.url == self.local_url else f"{self.url},{self.local_url}"
        args = [ETCD, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", listen, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token] + self.extra
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._in_netns(args), stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready(timeout)
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
        if self.proc:
            stop(self.proc, signal.SIGTERM, 10)
        self.proc = None

    def kill(self):
        if self.proc:
            kill(self.proc)
        self.proc = None

    def ctl(self, *args, check=True, timeout=15, input=None, endpoints=None):
        cmd = [ETCDCTL, "--endpoints", endpoints or self.local_url] + self.ctl_extra + list(args)
        r = subprocess.run(self._in_netns(cmd), capture_output=True, text=True, timeout=timeout,
                           input=input, env=dict(os.environ, ETCDCTL_API="3"))
        if check and r.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)} failed: {r.stderr}")
        return r

    def get(self, key):
        """The key's value, lease, version and mod_revision; None if absent."""
        r = self.ctl("get", key, "-w", "json")
        kvs = json.loads(r.stdout).get("kvs", [])
        if not kvs:
            return None
        kv = kvs[0]
        return {"value": base64.b64decode(kv["value"]).decode() if "value" in kv else "",
                "lease": int(kv.get("lease", 0)), "version": int(kv.get("version", 0)),
                "mod_revision": int(kv.get("mod_revision", 0))}

    def get_prefix(self, prefix):
        """{key: {"value", "lease", "mod_revision"}} under prefix."""
        out = json.loads(self.ctl("get", prefix, "--prefix", "-w", "json").stdout)
        res = {}
        for kv in out.get("kvs", []):
            res[base64.b64decode(kv["key"]).decode()] = {
                "value": base64.b64decode(kv.get("value", "")).decode(errors="replace"),
                "lease": int(kv.get("lease", 0)),
                "mod_revision": int(kv.get("mod_revision", 0)),
            }
        return res

    def keys(self, prefix):
        r = self.ctl("get", prefix, "--prefix", "--keys-only")
        return [k for k in r.stdout.split("\n") if k]

    def revision(self):
        r = self.ctl("get", "/", "-w", "json")
        return int(json.loads(r.stdout)["header"]["revision"])

    def put(self, key, value):
        self.ctl("put", key, "--", value)

    def delete(self, key, prefix=False):
        self.ctl("del", key, *(["--prefix"] if prefix else []))

    def api(self, path, body):
        """A raw call to the JSON gateway (for multi-op txns in one
        revision); from this namespace, so not for an etcd in a netns."""
        req = urllib.request.Request(self.url + "/v3" + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def put_many(self, items):
        ops = [{"request_put": {"key": b64(k), "value": b64(v)}} for k, v in items]
        return self.api("/kv/txn", {"success": ops})

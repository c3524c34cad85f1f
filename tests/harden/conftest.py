# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the hardening tests: a node without systemd, as
TESTBED.md describes it. Each node is a network namespace (named with the
pid) holding eth2 and its own etcd on 127.0.0.1, and the agent runs there
in a private mount namespace whose /run and /etc/machine-id are bind mounts
of files under the test's temporary directory, so the test can look at
(and plant things in) what the agent writes without touching the host.
Everything is stopped by PID and removed on every exit path."""

import itertools
import json
import os
import signal
import subprocess

import pytest

from corekube_test.etcd import Etcd
from corekube_test.machineid import app_specific
from corekube_test.netns import Netns
from corekube_test.poll import wait_until
from corekube_test.proc import run, stop, temp_dir

__all__ = ["AGENT", "SANITIZED", "run", "stop", "wait_until"]

AGENT = os.environ.get("AGENT_BIN", "")
_counter = itertools.count()


def _sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# An ASan build (tools/sanitize.sh): valgrind cannot run it, and its shadow
# memory and quarantine make RSS meaningless.
SANITIZED = bool(AGENT) and _sanitized(AGENT)


# A master: a minion would wait for one to register first.
BASE_CONFIG = """[node]
role = master
name = harden-1
interface = eth2
[etcd]
endpoints = {endpoints}
ttl = 10s
[network]
network = 10.244.0.0/16
[runtime]
restart = no
[role.master]
units =
artifacts =
"""


class Node:
    def __init__(self, tmp):
        self.tmp = tmp
        self.ns = f"ckh{os.getpid()}-{next(_counter)}"
        self.run_dir = os.path.join(tmp, "run")
        self.machine_id = "%032x" % (0xc0ffee0000 + os.getpid())
        self.mid_file = os.path.join(tmp, "machine-id")
        self.conf = os.path.join(tmp, "agent.conf")
        self.etcd = None
        self.agent = None
        self.agent_log = os.path.join(tmp, "agent.log")
        os.makedirs(self.run_dir)
        with open(self.mid_file, "w") as f:
            f.write(self.machine_id + "\n")
        self.netns = Netns(self.ns)
        try:
            # eth2 with its peer in the same namespace (no dummy module here).
            self.ip("link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
            self.ip("addr", "add", "192.168.3.11/24", "dev", "eth2")
            self.ip("link", "set", "eth2p", "up")
            self.ip("link", "set", "eth2", "up")
        except BaseException:
            self.netns.delete()
            raise

    def ip(self, *args, check=True):
        return self.netns.ip(*args, check=check)

    def exec(self, *cmd, check=True, timeout=30, input=None):
        return self.netns.exec(*cmd, check=check, timeout=timeout, input=input)

    # ---- etcd inside the namespace ----

    def start_etcd(self):
        self.etcd = Etcd(self.tmp, name="h0", netns=self.ns, data_dir=os.path.join(self.tmp, "etcd"),
                         log_path=os.path.join(self.tmp, "etcd.log"))
        self.etcd.start(timeout=30)

    def etcdctl(self, *args, check=True, input=None):
        return self.etcd.ctl(*args, check=check, input=input, timeout=30)

    def get(self, key):
        r = self.etcdctl("get", key, "--print-value-only", check=False)
        return r.stdout.rstrip("\n") if r.returncode == 0 and r.stdout else None

    def machine(self):
        v = self.get(f"/corekube/machines/{app_specific(self.machine_id)}")
        try:
            return json.loads(v) if v else None
        except ValueError:
            return None

    # ---- the agent ----

    def write_config(self, text=None, **fmt):
        fmt.setdefault("endpoints", "http://127.0.0.1:2379")
        with open(self.conf, "w") as f:
            f.write((text or BASE_CONFIG).format(**fmt))

    def agent_cmd(self, *args, wrapper=()):
        # The private /run and machine-id; the agent's own /run/flannel and
        # /run/corekube land in self.run_dir.
        script = ('mount --bind "$0" /run && mount --bind "$1" /etc/machine-id && shift && exec "$@"')
        return ["ip", "netns", "exec", self.ns, "unshare", "-m", "--propagation", "private",
                "sh", "-c", script, self.run_dir, self.mid_file, *wrapper, AGENT, *args]

    def start_agent(self, *extra, wrapper=(), env=None, umask=0o022):
        log = open(self.agent_log, "ab")
        self.agent = subprocess.Popen(self.agent_cmd("-c", self.conf, *extra, "run", wrapper=wrapper),
                                      stdout=log, stderr=subprocess.STDOUT,
                                      env=dict(os.environ, STATE_DIRECTORY=os.path.join(self.tmp, "state"),
                                               **(env or {})),
                                      preexec_fn=lambda: os.umask(umask))
        log.close()
        return self.agent

    def log(self):
        with open(self.agent_log, errors="replace") as f:
            return f.read()

    def wait_state(self, state, timeout=60):
        def ok():
            if self.agent and self.agent.poll() is not None:
                raise AssertionError(f"agent exited ({self.agent.returncode}):\n{self.log()}")
            m = self.machine()
            return m if m and m.get("state") == state else None
        try:
            return wait_until(ok, timeout, f"machine state {state}", interval=0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}\nrecord: {self.machine()}\nlog:\n{self.log()}") from None

    def close(self):
        if self.agent:
            stop(self.agent, signal.SIGKILL)
        if self.etcd:
            self.etcd.stop()
        self.netns.delete()


@pytest.fixture
def tmpdir_ck():
    with temp_dir("corekube-harden.") as d:
        yield d


@pytest.fixture
def node(tmpdir_ck):
    n = Node(tmpdir_ck)
    try:
        yield n
    finally:
        n.close()

# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the etcd integration tests: a real etcd (Debian's etcd-server)
on free loopback ports with a fresh data dir, the etcd-tool test driver, the
TCP proxy of corekube_test.proxy and a few helpers. Everything started here
is stopped by PID and every temporary file removed, on every exit path."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from corekube_test.etcd import Etcd
from corekube_test.poll import wait_until
from corekube_test.proc import free_port, temp_dir
from corekube_test.proxy import Proxy

__all__ = ["Etcd", "Proxy", "Tool", "free_port", "run_tool", "wait_until"]

TOOL = os.environ.get("ETCD_TOOL", "")


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


@pytest.fixture
def workdir():
    with temp_dir(f"corekube-etcd-{os.getpid()}-") as d:
        yield d


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

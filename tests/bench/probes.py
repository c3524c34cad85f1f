"""Reference observers for the fast-path benchmarks (issue 13), beside cklab.py.

Each one timestamps what it sees on receipt (time.monotonic(), the clock of
cklab's other times) in a thread of its own:

  EtcdWatch      an etcd v3 watch of a key prefix through the JSON gateway
  EntryMonitor   routes, ARP and FDB entries appearing in one namespace (ip monitor)
  WaitSampler    where a process is (running, or the kernel function it sleeps in)
  start_stamped  an agent started with its stderr lines and sd_notify messages
                 timestamped (NOTIFY_SOCKET is a datagram socket of ours)
"""

import datetime
import json
import os
import re
import socket
import subprocess
import threading
import time

import cklab


def prefix_end(prefix):
        return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class EtcdWatch:
        """Events under PREFIX as (time, "PUT" | "DELETE", key, value).

        HTTP/1.0, so etcd's gateway streams the watch responses unchunked, one
        JSON object a line, until we close the socket."""

        def __init__(self, prefix, host=cklab.ETCD_IP, port=cklab.ETCD_PORT, timeout=10):
                self.events = []
                self.created = False
                self.error = None
                self.cond = threading.Condition()
                body = json.dumps({"create_request": {"key": cklab.b64(prefix),
                                                      "range_end": cklab.b64(prefix_end(prefix))}})
                self.s = socket.create_connection((host, port), timeout=timeout)
                self.s.settimeout(None)
                self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.s.sendall(("POST /v3/watch HTTP/1.0\r\nHost: etcd\r\nContent-Type: application/json\r\n"
                                "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
                self.thread = threading.Thread(target=self._loop, daemon=True)
                self.thread.start()
                if not self.wait(lambda w: w.created or w.error, timeout) or self.error:
                        raise RuntimeError("etcd watch of %s not created: %s" % (prefix, self.error))

        def _loop(self):
                buf, head = b"", True
                while True:
                        try:
                                data = self.s.recv(1 << 16)
                        except OSError:
                                data = b""
                        t = time.monotonic()
                        if not data:
                                with self.cond:
                                        self.error = self.error or "stream ended"
                                        self.cond.notify_all()
                                return
                        buf += data
                        if head:
                                if b"\r\n\r\n" not in buf:
                                        continue
                                status, buf = buf.split(b"\r\n\r\n", 1)
                                head = False
                                if b" 200 " not in status.split(b"\r\n")[0]:
                                        with self.cond:
                                                self.error = status.split(b"\r\n")[0].decode()
                                                self.cond.notify_all()
                                        return
                        new = []
                        while b"\n" in buf:
                                line, buf = buf.split(b"\n", 1)
                                if not line.strip():
                                        continue
                                result = json.loads(line).get("result", {})
                                if result.get("created"):
                                        self.created = True
                                for ev in result.get("events", []):
                                        kv = ev.get("kv", {})
                                        new.append((t, ev.get("type", "PUT"), cklab.unb64(kv.get("key", "")),
                                                    cklab.unb64(kv.get("value", "")) if kv.get("value") else ""))
                        with self.cond:
                                self.events.extend(new)
                                self.cond.notify_all()

        def wait(self, pred, timeout):
                return cklab.wait_cond(self.cond, lambda: pred(self), timeout)

        def first(self, pred):
                """Time of the first event (t, type, key, value) satisfying pred, or None."""
                with self.cond:
                        return next((e[0] for e in self.events if pred(*e)), None)

        def close(self):
                try:
                        self.s.shutdown(socket.SHUT_RDWR)
                except OSError:
                        pass
                self.thread.join(5)
                self.s.close()


# ---- routes, ARP and FDB entries of one namespace ----

# `ip -4 monitor route neigh` and `ip -f bridge monitor neigh` (FDB entries,
# printed as "<dst> dev D lladdr <mac> ...").
_IP4 = [("route", re.compile(r"^(\d+\.\d+\.\d+\.\d+/\d+) via ")),
        ("arp", re.compile(r"^(\d+\.\d+\.\d+\.\d+) dev \S+ lladdr "))]
_BRIDGE = [("fdb", re.compile(r"^\S+ dev \S+ lladdr ([0-9a-f:]{17})"))]


class EntryMonitor:
        """When each route, ARP entry and FDB entry first appeared in namespace
        NS: first[("route", "10.16.0.0/24")], first[("arp", "10.16.0.0")],
        first[("fdb", "02:42:...")] (time.monotonic()). The times are those of
        `ip -tshort monitor route neigh` (it shows FDB entries as neighbours),
        a C program stamping each message as it reads it: a Python parser of
        thousands of messages on a loaded machine lags them by up to seconds."""

        def __init__(self, ns):
                self.first = {}
                self.overruns = 0
                self.cond = threading.Condition()
                self.offset = time.time() - time.monotonic()
                self.procs, self.threads = [], []
                for args, rxs in ((["-4", "-tshort", "monitor", "route", "neigh"], _IP4),
                                  (["-f", "bridge", "-tshort", "monitor", "neigh"], _BRIDGE)):
                        p = subprocess.Popen(["ip", "-n", ns] + args, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)
                        t = threading.Thread(target=self._loop, args=(p, rxs), daemon=True)
                        t.start()
                        self.procs.append(p)
                        self.threads.append(t)
                self.ns = ns
                self.probe = "10.63.255.254"

        def _loop(self, proc, rxs):
                for line in proc.stdout:
                        if not line.startswith("[") or "] " not in line:
                                if "overrun" in line.lower() or "No buffer" in line:
                                        self.overruns += 1
                                continue
                        stamp, text = line[1:].split("] ", 1)
                        try:
                                t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp() - self.offset
                        except ValueError:
                                continue
                        for kind, rx in rxs:
                                m = rx.match(text)
                                if m:
                                        with self.cond:
                                                self.first.setdefault((kind, m.group(1)), t)
                                                self.cond.notify_all()
                                        break

        def ready(self, timeout=10):
                """An entry of ours, changed until the monitor shows it, says the
                first monitor has subscribed (the second starts with it; no FDB
                entry can be made on eth2 to check)."""
                deadline = time.monotonic() + timeout
                i = 0
                while time.monotonic() < deadline:
                        i += 1
                        cklab.run("ip", "-n", self.ns, "neigh", "replace", self.probe, "lladdr",
                                  "02:00:00:00:%02x:fe" % (i % 256), "dev", "eth2", "nud", "permanent")
                        if self.wait_all([("arp", self.probe)], 0.1) is not None:
                                return True
                return False

        def wait_all(self, keys, timeout):
                """Waits until every key has appeared; the time of the last one, or None."""
                deadline = time.monotonic() + timeout
                with self.cond:
                        while not all(k in self.first for k in keys):
                                left = deadline - time.monotonic()
                                if left <= 0:
                                        return None
                                self.cond.wait(left)
                        return max(self.first[k] for k in keys)

        def count(self, keys):
                with self.cond:
                        return sum(1 for k in keys if k in self.first)

        def close(self):
                for p in self.procs:
                        p.terminate()
                        p.wait(5)
                for t in self.threads:
                        t.join(5)


def peer_entries(subnet, lease_value):
        """The three entries an agent programs for a peer lease."""
        mac = json.loads(lease_value)["BackendData"]["VtepMAC"].lower()
        return [("route", subnet), ("arp", subnet.split("/")[0]), ("fdb", mac)]


# ---- an agent with timestamped output ----

class Stamped:
        """The agent's stderr lines and sd_notify datagrams, as (time, text);
        the lines also go to a.log, each after its time."""

        def __init__(self, lab, a):
                self.lines, self.notify = [], []
                self.cond = threading.Condition()
                r, w = os.pipe()
                path = os.path.join(a.dir, "notify")
                if os.path.exists(path):
                        os.unlink(path)
                self.ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.ns.bind(path)
                self.log = open(a.log, "w")
                lab.start(a, stderr=w, env={"NOTIFY_SOCKET": path})
                os.close(w)
                self.threads = [threading.Thread(target=self._read, args=(r,), daemon=True),
                                threading.Thread(target=self._notify, daemon=True)]
                for t in self.threads:
                        t.start()

        def _read(self, fd):
                buf = b""
                with os.fdopen(fd, "rb", buffering=0) as f:
                        while True:
                                data = f.read(1 << 16)
                                t = time.monotonic()
                                if not data:
                                        break
                                buf += data
                                lines = buf.split(b"\n")
                                buf = lines.pop()
                                with self.cond:
                                        for line in lines:
                                                text = line.decode(errors="replace")
                                                self.lines.append((t, text))
                                                self.log.write("%.4f %s\n" % (t, text))
                                        self.log.flush()
                                        self.cond.notify_all()
                self.log.close()

        def _notify(self):
                while True:
                        try:
                                data = self.ns.recv(4096)
                        except OSError:
                                return
                        t = time.monotonic()
                        with self.cond:
                                self.notify.extend((t, m) for m in data.decode(errors="replace").split("\n") if m)
                                self.cond.notify_all()

        def line(self, text):
                """Time of the first line containing TEXT, or None."""
                with self.cond:
                        return next((t for t, s in self.lines if text in s), None)

        def wait_line(self, text, timeout):
                """Waits for a line containing TEXT; its time, or None."""
                deadline = time.monotonic() + timeout
                with self.cond:
                        while True:
                                t = next((t for t, s in self.lines if text in s), None)
                                left = deadline - time.monotonic()
                                if t is not None or left <= 0:
                                        return t
                                self.cond.wait(left)

        def exec_schedstat(self):
                """The process's CPU and run-queue time (s) before the exec."""
                with self.cond:
                        v = next(s for t, s in self.lines if s.startswith("ckbench: exec")).split()[2:4]
                return int(v[0]) / 1e9, int(v[1]) / 1e9

        def notified(self, msg):
                with self.cond:
                        return next((t for t, m in self.notify if m == msg), None)

        def close(self):
                self.ns.close()


def schedstat_ns(pid, field=0):
        """Of every thread of PID, ns (/proc/PID/task/*/schedstat): field 0 the
        time on a CPU, 1 the time waiting for one on a run queue."""
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
                try:
                        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                                total += int(f.read().split()[field])
                except FileNotFoundError:
                        pass
        return total


def user_system_s(pid):
        """(user, system) CPU seconds of PID and its threads from /proc/PID/stat,
        at clock-tick resolution: where schedstat's total goes."""
        with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return int(v[11]) / tck, int(v[12]) / tck


class WaitSampler:
        """Samples what process PID is doing every INTERVAL s until stopped:
        'running' (state R) or, when asleep, its wchan (the kernel function it
        sleeps in). A picture of where wall time goes that CPU and run-queue
        times do not give (mutexes, replies)."""

        def __init__(self, pid, interval=0.001):
                self.pid, self.interval = pid, interval
                self.samples = {}
                self.stop = threading.Event()
                self.thread = threading.Thread(target=self._loop, daemon=True)
                self.thread.start()

        def _loop(self):
                while not self.stop.wait(self.interval):
                        try:
                                with open("/proc/%d/stat" % self.pid) as f:
                                        state = f.read().rsplit(")", 1)[1].split()[0]
                                what = "running"
                                if state != "R":
                                        with open("/proc/%d/wchan" % self.pid) as f:
                                                what = "%s %s" % (state, f.read().strip() or "?")
                        except OSError:
                                return
                        self.samples[what] = self.samples.get(what, 0) + 1

        def close(self):
                self.stop.set()
                self.thread.join(5)

        def top(self, n=5):
                total = sum(self.samples.values()) or 1
                return ", ".join("%s %.0f%%" % (k, v * 100 / total)
                                 for k, v in sorted(self.samples.items(), key=lambda kv: -kv[1])[:n])

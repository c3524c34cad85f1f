"""A lab of corekube agents without systemd, for the benchmarks.

One fabric network namespace (bridge br0 172.31.0.1/16, etcd on 172.31.0.2:2379)
and one network namespace per agent (eth2 = veth on br0), each agent in its own
mount namespace with a private /run and its own /etc/machine-id (TESTBED.md,
"Several agents without systemd"), [runtime] restart = no, no role units or
artifacts. Everything is made under names carrying our PID and removed by
Lab.close() (processes by PID, namespaces, the temporary directory).

The harness process itself moves into the fabric namespace once it exists:
etcd and the counting proxy are then plain loopback/bridge sockets, and any
stray command of ours lands in the fabric, never in the host namespace.
"""

import base64
import contextlib
import ctypes
import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from corekube_test.machineid import app_specific  # noqa: E402

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

ETCD_IP = "172.31.0.2"
ETCD_PORT = 2379


def setns(path):
        fd = os.open(path, os.O_RDONLY)
        try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
        finally:
                os.close(fd)


@contextlib.contextmanager
def in_netns(name):
        """Sockets made inside stay in that namespace after we leave it."""
        back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
                setns("/run/netns/" + name)
                yield
        finally:
                if _libc.setns(back, CLONE_NEWNET) != 0:
                        os.close(back)
                        raise OSError(ctypes.get_errno(), "cannot return to our network namespace")
                os.close(back)


def run(*cmd, check=True):
        return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def b64(s):
        return base64.b64encode(s.encode()).decode()


def unb64(s):
        return base64.b64decode(s).decode()


def percentile(values, p):
        """Nearest-rank percentile."""
        v = sorted(values)
        if not v:
                return float("nan")
        k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
        return v[k]


def median(values):
        v = sorted(values)
        n = len(v)
        return float("nan") if n == 0 else (v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def _numeric(c):
        return bool(c) and (c[0].isdigit() or c[0] in "-.") and not c.startswith("--")


def table(headers, rows):
        cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
        w = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        out = []
        for j, r in enumerate(cells):
                out.append("| " + " | ".join(c.rjust(w[i]) if j and i and _numeric(c) else c.ljust(w[i])
                                             for i, c in enumerate(r)) + " |")
                if j == 0:
                        out.append("|" + "|".join("-" * (x + 2) for x in w) + "|")
        return "\n".join(out)


def wait_cond(cond, pred, timeout):
        """Wait on a threading.Condition until pred() holds (called under
        its lock); False when timeout seconds passed first."""
        deadline = time.monotonic() + timeout
        with cond:
                while not pred():
                        left = deadline - time.monotonic()
                        if left <= 0:
                                return False
                        cond.wait(left)
                return True


class Etcd:
        """A small client of etcd's v3 JSON gateway (one keep-alive connection)."""

        def __init__(self, host=ETCD_IP, port=ETCD_PORT):
                self.host, self.port = host, port
                self.conn = None

        def call(self, path, body, timeout=10):
                for attempt in (0, 1):
                        try:
                                if self.conn is None:
                                        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                                self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                                r = self.conn.getresponse()
                                data = r.read()
                                if r.status != 200:
                                        raise RuntimeError("etcd %s: HTTP %d %s" % (path, r.status, data[:200]))
                                return json.loads(data)
                        except (OSError, http.client.HTTPException):
                                self.conn = None
                                if attempt:
                                        raise

        def put(self, key, value):
                return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

        def delete(self, key, prefix=False):
                body = {"key": b64(key)}
                if prefix:
                        body["range_end"] = b64(key[:-1] + chr(ord(key[-1]) + 1))
                return self.call("/v3/kv/deleterange", body)

        def get_prefix(self, prefix):
                r = self.call("/v3/kv/range", {"key": b64(prefix),
                                               "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))})
                return {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in r.get("kvs", [])}

        def healthy(self):
                try:
                        self.call("/v3/kv/range", {"key": b64("/")}, timeout=1)
                        return True
                except Exception:
                        return False


def poll_until(what, cond, timeout, interval=0.05):
        deadline = time.monotonic() + timeout
        while True:
                v = cond()
                if v:
                        return v
                if time.monotonic() > deadline:
                        raise TimeoutError("timed out after %.0f s waiting for %s" % (timeout, what))
                time.sleep(interval)


# ---- netlink route monitor ----

RTMGRP_IPV4_ROUTE = 0x40
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
NLMSG_ERROR, NLMSG_OVERRUN = 2, 4
RTA_DST, RTA_GATEWAY = 1, 5
SO_RCVBUFFORCE = 33


class RouteMonitor:
        """Kernel route events of several namespaces, timestamped on receipt.

        One netlink socket per namespace (made inside it), one reader thread.
        Only gatewayed IPv4 routes of the main table count: the agents' peer
        routes (`<subnet> via <subnet>.0 dev flannel.1 onlink`). For each
        namespace it keeps the current set and, per (dst, event), the time
        of the last such event (time.monotonic()).
        """

        def __init__(self):
                self.socks = {}
                self.routes = {}
                self.seen = {}
                self.overruns = 0
                self.cond = threading.Condition()
                self.stop_r, self.stop_w = os.pipe()
                self.thread = None

        def add(self, ns):
                with in_netns(ns):
                        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
                s.bind((0, RTMGRP_IPV4_ROUTE))
                s.setblocking(False)
                with self.cond:
                        self.socks[s.fileno()] = (ns, s)
                        self.routes[ns] = set()
                        self.seen[ns] = {}

        def start(self):
                self.thread = threading.Thread(target=self._loop, daemon=True)
                self.thread.start()

        def close(self):
                if self.thread:
                        os.write(self.stop_w, b"x")
                        self.thread.join(5)
                for _, s in self.socks.values():
                        s.close()
                os.close(self.stop_r)
                os.close(self.stop_w)

        def _loop(self):
                p = select.epoll()
                p.register(self.stop_r, select.EPOLLIN)
                for fd in list(self.socks):
                        p.register(fd, select.EPOLLIN)
                while True:
                        for fd, _ in p.poll():
                                if fd == self.stop_r:
                                        p.close()
                                        return
                                ns, s = self.socks[fd]
                                while True:
                                        try:
                                                data = s.recv(1 << 16)
                                        except BlockingIOError:
                                                break
                                        except OSError:      # ENOBUFS: we lost events
                                                self.overruns += 1
                                                continue
                                        self._parse(ns, data, time.monotonic())

        def _parse(self, ns, data, t):
                off = 0
                events = []
                while off + 16 <= len(data):
                        length, typ = struct.unpack_from("=IH", data, off)
                        if length < 16:
                                break
                        if typ in (RTM_NEWROUTE, RTM_DELROUTE) and length >= 28:
                                family, dst_len, _, _, table = struct.unpack_from("=BBBBB", data, off + 16)
                                a = off + 28
                                dst = gw = None
                                while a + 4 <= off + length:
                                        alen, atype = struct.unpack_from("=HH", data, a)
                                        if alen < 4:
                                                break
                                        if atype == RTA_DST and alen == 8:
                                                dst = socket.inet_ntoa(data[a + 4:a + 8])
                                        elif atype == RTA_GATEWAY and alen == 8:
                                                gw = socket.inet_ntoa(data[a + 4:a + 8])
                                        a += (alen + 3) & ~3
                                if family == socket.AF_INET and table == 254 and dst and gw:
                                        events.append((typ, "%s/%d" % (dst, dst_len)))
                        off += (length + 3) & ~3
                if not events:
                        return
                with self.cond:
                        for typ, dst in events:
                                if typ == RTM_NEWROUTE:
                                        self.routes[ns].add(dst)
                                        self.seen[ns][(dst, "add")] = t
                                else:
                                        self.routes[ns].discard(dst)
                                        self.seen[ns][(dst, "del")] = t
                        self.cond.notify_all()

        def wait(self, pred, timeout):
                """Wait until pred(self) holds (called under the lock)."""
                return wait_cond(self.cond, lambda: pred(self), timeout)


# ---- a counting TCP proxy ----

class CountingProxy:
        """Forwards LISTEN -> UPSTREAM and counts HTTP requests (request lines)
        going upstream, with the time of each."""

        METHODS = (b"POST /", b"GET /", b"PUT /", b"DELETE /")

        def __init__(self, listen, upstream):
                self.upstream = upstream
                self.requests = []          # (time, path)
                self.lock = threading.Lock()
                self.ls = socket.socket()
                self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.ls.bind(listen)
                self.ls.listen(64)
                self.closing = False
                threading.Thread(target=self._accept, daemon=True).start()

        def _accept(self):
                while not self.closing:
                        try:
                                c, _ = self.ls.accept()
                        except OSError:
                                return
                        u = socket.create_connection(self.upstream)
                        threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
                        threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

        def _pump(self, src, dst, count):
                try:
                        while True:
                                data = src.recv(65536)
                                if not data:
                                        break
                                if count:
                                        t = time.monotonic()
                                        for line in data.split(b"\r\n"):
                                                if line.startswith(self.METHODS):
                                                        with self.lock:
                                                                self.requests.append((t, line.split(b" ")[1].decode()))
                                dst.sendall(data)
                except OSError:
                        pass
                finally:
                        for s in (src, dst):
                                with contextlib.suppress(OSError):
                                        s.shutdown(socket.SHUT_RDWR)

        def since(self, t0, t1):
                with self.lock:
                        return [p for t, p in self.requests if t0 <= t < t1]

        def close(self):
                self.closing = True
                self.ls.close()


# ---- the lab ----

class Agent:
        def __init__(self, lab, i, role):
                self.lab, self.i, self.role = lab, i, role
                self.name = "n%d" % i
                self.ns = "%s-n%d" % (lab.prefix, i)
                self.ip = "172.31.%d.%d" % (1 + i // 250, 1 + i % 250)
                self.dir = os.path.join(lab.tmp, self.name)
                self.proc = None
                self.log = os.path.join(self.dir, "agent.log")
                self.machine_id = "%032x" % random.getrandbits(128)
                self.node_id = app_specific(self.machine_id)    # names it in etcd


class Lab:
        def __init__(self, agent_bin, network="10.244.0.0/15", quiet=False, etcd_tmpfs=False):
                self.agent_bin = os.path.realpath(agent_bin)
                # etcd's data on /dev/shm (tmpfs): no fsync cost in its request times.
                self.etcd_data = tempfile.mkdtemp(prefix="ckbench-etcd.", dir="/dev/shm") if etcd_tmpfs else None
                self.network = network
                self.prefix = "ckbn%d" % os.getpid()
                self.fab = self.prefix + "-f"
                self.tmp = tempfile.mkdtemp(prefix="ckbench.")
                self.agents = []
                self.namespaces = []
                self.etcd_proc = None
                self.quiet = quiet
                self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
                self.etcd = Etcd()
                self.etcd_url = "http://%s:%d" % (ETCD_IP, ETCD_PORT)

        def say(self, *a):
                if not self.quiet:
                        print("#", *a, flush=True)

        # -- set-up --

        def up(self):
                run("ip", "netns", "add", self.fab)
                self.namespaces.append(self.fab)
                for c in (["link", "set", "lo", "up"], ["link", "add", "br0", "type", "bridge"],
                          ["addr", "add", "172.31.0.1/16", "dev", "br0"],
                          ["addr", "add", ETCD_IP + "/16", "dev", "br0"], ["link", "set", "br0", "up"]):
                        run("ip", "-n", self.fab, *c)
                # From here on this process lives in the fabric (see the module comment).
                setns("/run/netns/" + self.fab)
                data = self.etcd_data or os.path.join(self.tmp, "etcd")
                self.etcd_proc = subprocess.Popen(
                        ["etcd", "--name", "bench", "--data-dir", data,
                         "--listen-client-urls", "%s,http://127.0.0.1:2379" % self.etcd_url,
                         "--advertise-client-urls", self.etcd_url,
                         "--listen-peer-urls", "http://127.0.0.1:2380",
                         "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                         "--initial-cluster", "bench=http://127.0.0.1:2380",
                         "--quota-backend-bytes", str(4 << 30)],
                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "etcd.log"), "w"))
                poll_until("etcd", self.etcd.healthy, 30, 0.1)

        def add_agents(self, n, endpoint=None, extra_conf=""):
                """Namespaces and configs for n more agents (the first is the master)."""
                new = []
                for _ in range(n):
                        i = len(self.agents)
                        a = Agent(self, i, "master" if i == 0 else "minion")
                        os.makedirs(a.dir)
                        run("ip", "netns", "add", a.ns)
                        self.namespaces.append(a.ns)
                        run("ip", "-n", a.ns, "link", "set", "lo", "up")
                        run("ip", "-n", self.fab, "link", "add", "vn%d" % i, "type", "veth",
                            "peer", "name", "eth2", "netns", a.ns)
                        run("ip", "-n", self.fab, "link", "set", "vn%d" % i, "master", "br0", "up")
                        run("ip", "-n", a.ns, "link", "set", "eth2", "up")
                        run("ip", "-n", a.ns, "addr", "add", a.ip + "/16", "dev", "eth2")
                        with open(os.path.join(a.dir, "machine-id"), "w") as f:
                                f.write(a.machine_id + "\n")
                        with open(os.path.join(a.dir, "agent.conf"), "w") as f:
                                f.write("[node]\nrole = %s\nname = %s\ninterface = eth2\n\n"
                                        "[etcd]\nendpoints = %s\n\n[network]\nnetwork = %s\n\n"
                                        "[runtime]\nrestart = no\n\n[role.%s]\nunits =\nartifacts =\n%s"
                                        % (a.role, a.name, endpoint or self.etcd_url, self.network,
                                           a.role, extra_conf))
                        self.agents.append(a)
                        new.append(a)
                return new

        def start(self, a, stderr=None, env=None):
                """STDERR (default: a.log) gets the agent's log, after a line
                'ckbench: exec' and the process's schedstat written just
                before the exec; ENV is added to the agent's environment."""
                a.t_start = time.monotonic()
                script = ("mount -t tmpfs none /run && mount --bind \"$0\" /etc/machine-id && "
                          "read s < /proc/$$/schedstat && echo \"ckbench: exec $s\" >&2 && exec \"$1\" run -c \"$2\"")
                a.proc = subprocess.Popen(
                        ["ip", "netns", "exec", a.ns, "unshare", "-m", "--propagation", "private",
                         "sh", "-c", script, os.path.join(a.dir, "machine-id"), self.agent_bin,
                         os.path.join(a.dir, "agent.conf")],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=stderr if stderr is not None else open(a.log, "w"),
                        env=dict(agent_env(), STATE_DIRECTORY=os.path.join(a.dir, "state"), **(env or {})))

        def stop(self, a, grace=5):
                if not a.proc or a.proc.poll() is not None:
                        return
                a.proc.send_signal(signal.SIGTERM)
                try:
                        a.proc.wait(grace)
                except subprocess.TimeoutExpired:
                        a.proc.kill()
                        a.proc.wait()

        def records(self):
                """node ID (the record key's) -> machine record (dict)."""
                out = {}
                for k, v in self.etcd.get_prefix("/corekube/machines/").items():
                        with contextlib.suppress(ValueError):
                                out[k.rsplit("/", 1)[1]] = json.loads(v)
                return out

        def leases(self):
                """subnet key (a.b.c.d-len) -> lease JSON."""
                out = {}
                for k, v in self.etcd.get_prefix("/coreos.com/network/subnets/").items():
                        with contextlib.suppress(ValueError):
                                out[k.rsplit("/", 1)[1]] = json.loads(v)
                return out

        def check_alive(self, agents=None):
                for a in agents or self.agents:
                        if a.proc and a.proc.poll() is not None:
                                with open(a.log) as f:
                                        tail = f.read()[-2000:]
                                raise RuntimeError("agent %s exited with %s:\n%s" % (a.name, a.proc.returncode, tail))

        def wait_ready(self, agents, timeout):
                """Polls etcd until every agent's record says ready; returns
                node ID -> time.monotonic() when first seen ready."""
                ids = {a.node_id for a in agents}
                seen = {}

                def ready():
                        self.check_alive(agents)
                        t = time.monotonic()
                        for i, rec in self.records().items():
                                if i in ids and i not in seen and rec.get("state") == "ready":
                                        seen[i] = t
                        return len(seen) == len(ids)
                poll_until("%d agents ready" % len(agents), ready, timeout, 0.05)
                return seen

        def rss_kib(self, a, field="VmRSS"):
                """VmRSS, RssAnon or RssFile of the agent, KiB."""
                with open("/proc/%d/status" % a.proc.pid) as f:
                        for line in f:
                                if line.startswith(field + ":"):
                                        return int(line.split()[1])
                return 0

        def smaps_kib(self, a, field):
                """A field of /proc/PID/smaps_rollup (Pss, Private_Dirty ...), KiB."""
                with open("/proc/%d/smaps_rollup" % a.proc.pid) as f:
                        for line in f:
                                if line.startswith(field + ":"):
                                        return int(line.split()[1])
                return 0

        def cpu_ticks(self, a):
                with open("/proc/%d/stat" % a.proc.pid) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])     # utime + stime

        # -- tear-down --

        def close(self):
                for a in self.agents:
                        with contextlib.suppress(Exception):
                                if a.proc and a.proc.poll() is None:
                                        a.proc.kill()
                                        a.proc.wait(10)
                if self.etcd_proc and self.etcd_proc.poll() is None:
                        self.etcd_proc.terminate()
                        try:
                                self.etcd_proc.wait(10)
                        except subprocess.TimeoutExpired:
                                self.etcd_proc.kill()
                                self.etcd_proc.wait()
                _libc.setns(self.home, CLONE_NEWNET)
                for ns in reversed(self.namespaces):
                        run("ip", "netns", "del", ns, check=False)
                if self.etcd_data:
                        shutil.rmtree(self.etcd_data, ignore_errors=True)
                if os.environ.get("CKBENCH_KEEP"):
                        print("# kept", self.tmp)
                else:
                        shutil.rmtree(self.tmp, ignore_errors=True)

        def __enter__(self):
                return self

        def __exit__(self, *exc):
                self.close()


def agent_env():
        """Our environment without what would make the agent talk to a systemd."""
        drop = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("COREKUBE_")}
        if os.environ.get("CKBENCH_AGENT_LOG_LEVEL"):
                env["COREKUBE_LOG_LEVEL"] = os.environ["CKBENCH_AGENT_LOG_LEVEL"]
        return env


def machine_ticks():
        """(busy, total) jiffies of the whole machine, from /proc/stat."""
        with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v) - idle, sum(v)


def fake_lease(i):
        """A peer lease value that no agent holds: PublicIP and VTEP MAC from i."""
        return json.dumps({"PublicIP": "172.30.%d.%d" % (i // 250, 1 + i % 250), "BackendType": "vxlan",
                           "BackendData": {"VNI": 1, "VtepMAC": "02:42:ac:1e:%02x:%02x" % (i // 256, i % 256)}})


def subnet_key(subnet):
        """'10.244.5.0/24' -> the lease key."""
        return "/coreos.com/network/subnets/" + subnet.replace("/", "-")


def install_signal_exit():
        """SIGTERM/SIGINT raise SystemExit, so `with Lab()` cleans up."""
        def h(sig, frame):
                raise SystemExit(128 + sig)
        signal.signal(signal.SIGTERM, h)
        signal.signal(signal.SIGINT, h)

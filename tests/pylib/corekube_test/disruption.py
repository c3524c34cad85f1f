# SPDX-License-Identifier: Apache-2.0
"""Lifecycle events of the agent under live traffic (issue 12, SPEC 8: "no
lifecycle event of the agent takes traffic away"), shared by
tests/e2e/test_lifecycle.py and tests/bench/bench-disruption.py.

On a clusterbed.Cluster (tests/e2e/clusterbed.py):

  - a netlink monitor in every node's network namespace, started from the
    host by PID (`ip -n NS monitor link route neigh`, `bridge -n NS monitor
    fdb`), each line stamped with the wall clock when read; it counts as
    listening once its netlink socket is bound to its multicast groups
    (/proc/PID/net/netlink), so no event of the scenario can be missed;
  - busybox `ping -i 0.02` (50 packets a second) from the Docker container
    of each minion to the other minion's container, through flannel.1;
  - the events themselves, each waited for by polling systemd (`systemctl
    show`), never by sleeping: `systemctl restart`, `systemctl kill -s
    SIGKILL` (Restart=on-failure brings the agent back), `systemctl kill -s
    SIGHUP` (the agent must stay, same MainPID, and log a re-list; the agent
    of 8265906 has no handler and systemd does not restart after a SIGHUP death,
    so the scenario starts it again and records the failure), an
    upgrade (`dpkg -i` of the suite's .deb repacked at a higher version; the
    postinst restarts the agent) and an etcd outage (bed.sh etcd-stop /
    etcd-start, etcd's data kept);
  - at the end: packets lost per ping, and every deletion ("Deleted ...")
    of a live peer's route, ARP or FDB entry on flannel.1 (or of flannel.1
    itself) that a monitor saw, with the journal of that node around it.

A new agent is READY when systemd says so: with Type=notify the unit turns
`active` when READY=1 arrives, so "MainPID is a new process, ActiveState
active, SubState running" is READY=1 of that process; exec-to-ready is
ActiveEnterTimestampMonotonic - ExecMainStartTimestampMonotonic of that same
state (see tests/bench/bench-disruption.py)."""

import os
import re
import signal
import subprocess
import threading
import time

from .deb import repack_deb
from .poll import wait_until

AGENT = "corekube-agent.service"
# Signals go to the main process only (--kill-whom=main): in the bed's nodes
# systemd cannot kill a whole cgroup (EIO), and the agent is the only
# process of its unit anyway.
OVERLAY = "flannel.1"
SHOW = ("MainPID", "ActiveState", "SubState", "NRestarts", "Result",
        "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")
# What the agent logs when SIGHUP makes it list the peers again: a message
# of the signalled process, after the signal, that mentions it.
RELIST = re.compile(r"(?i)\bre-?list|\bSIGHUP\b|\blist(?:ing|s|ed)?\b.*\bagain\b")
IN_FLIGHT = 5


def _stamp(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


# ------------------------------------------------------------ monitor ----

class NetlinkMonitor:
    """`ip monitor link route neigh` and `bridge monitor fdb` in a network
    namespace, as processes of ours (stopped by PID). events: [(wall time,
    tool, line)], in the order each tool printed them."""

    def __init__(self, netns, node):
        self.netns, self.node = netns, node
        self.events = []
        self.errors = []
        self.lock = threading.Lock()
        self.procs = {}
        self.threads = []
        self.stopped = False
        for tool, cmd in (("ip", ["ip", "-n", netns, "monitor", "link", "route", "neigh"]),
                          ("bridge", ["bridge", "-n", netns, "monitor", "fdb"])):
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL)
            self.procs[tool] = p
            for stream, sink in ((p.stdout, self.events), (p.stderr, self.errors)):
                t = threading.Thread(target=self._read, args=(tool, stream, sink), daemon=True)
                t.start()
                self.threads.append(t)

    def _read(self, tool, stream, sink):
        for line in stream:
            with self.lock:
                sink.append((time.time(), tool, line.rstrip("\n")))

    def _sockets(self, pid):
        """{inode: (groups, rmem)} of pid's netlink sockets (its netns)."""
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
        out = {}
        with open(f"/proc/{pid}/net/netlink") as f:
            next(f)
            for line in f:
                c = line.split()
                # sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
                if c[1] == "0" and c[9] in inodes:
                    out[c[9]] = (int(c[3], 16), int(c[4]), int(c[8]))
        return out

    def _subscribed(self):
        for tool, p in self.procs.items():
            assert p.poll() is None, f"{tool} monitor in {self.netns} exited: {self.errors}"
            assert any(g for g, _, _ in self._sockets(p.pid).values()), f"{tool} monitor not subscribed yet"
        return True

    def wait_listening(self, deadline=10):
        wait_until(self._subscribed, deadline, f"the monitors in {self.netns} to listen",
                   retry_on=(AssertionError, OSError), interval=0.02)

    def _drained(self):
        for p in self.procs.values():
            if any(rmem for _, rmem, _ in self._sockets(p.pid).values()):
                return False
        return True

    def stop(self):
        """Lets the tools read what the kernel queued for them, then stops
        them (SIGTERM by PID) and reads their output to the end. Returns the
        netlink drops counted on their sockets."""
        drops = 0
        if self.stopped:
            return 0
        self.stopped = True
        try:
            wait_until(self._drained, 5, "the monitors to read their queue", interval=0.05,
                       retry_on=(OSError, StopIteration))
            for p in self.procs.values():
                drops += sum(d for _, _, d in self._sockets(p.pid).values())
        except (AssertionError, OSError):
            pass
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in self.threads:
            t.join(10)
        return drops


def peer_entries(cluster, node):
    """What flannel.1 in node holds for each live peer (SPEC 6):
    {("route", "10.244.5.0/24"), ("ARP", "10.244.5.0"), ("FDB", mac)} -> peer."""
    leases = cluster.leases()
    out = {}
    for name, net in cluster.node_leases().items():
        if name == node:
            continue
        rec = leases[net]
        out[("route", str(net))] = name
        out[("ARP", str(net.network_address))] = name
        out[("FDB", rec["BackendData"]["VtepMAC"].lower())] = name
    return out


def deletions(events, entries):
    """The monitor lines that delete a live peer's entry on flannel.1, or
    flannel.1 itself: [(time, kind, peer, line)]."""
    out = []
    for t, _, line in events:
        if not line.startswith("Deleted "):
            continue
        rest = line[len("Deleted "):]
        m = re.match(r"\d+: ([^:@ ]+)[:@]", rest)
        if m:                                           # a link
            if m.group(1) == OVERLAY:
                out.append((t, "link", "every peer", line))
            continue
        tok = rest.split()
        if OVERLAY not in tok or tok.index(OVERLAY) < 1 or tok[tok.index(OVERLAY) - 1] != "dev":
            continue
        first = tok[0].lower()
        for kind in ("route", "ARP", "FDB"):
            peer = entries.get((kind, first))
            if peer:
                out.append((t, kind, peer, line))
                break
    return out


# --------------------------------------------------------------- ping ----

class ContainerPing:
    """busybox ping at 50 packets a second from the e2e container of src to
    dst_ip, running inside the container (its PID in /tmp/ping.pid there,
    its output in /tmp/ping.out); stop() sends it SIGINT and parses the
    summary and the per-reply lines."""

    def __init__(self, cluster, src, dst, dst_ip, interval="0.02", container="e2e"):
        self.c, self.src, self.dst, self.dst_ip = cluster, src, dst, dst_ip
        self.interval, self.container = interval, container
        self.started = None
        self.result = None

    def start(self):
        self.c.sh(self.src, f"docker exec {self.container} busybox rm -f /tmp/ping.pid /tmp/ping.out; "
                            f"docker exec -d {self.container} sh -c 'echo $$ >/tmp/ping.pid; "
                            f"exec ping -i {self.interval} {self.dst_ip} >/tmp/ping.out 2>&1'")
        self.started = time.time()

    def answered(self):
        out = self.c.sh(self.src, f"docker exec {self.container} cat /tmp/ping.out")
        assert re.search(r"seq=\d+", out), f"no reply yet from {self.dst_ip}: {out[-300:]!r}"
        return True

    def wait_answering(self, deadline=20):
        wait_until(self.answered, deadline, f"{self.src}'s ping to {self.dst_ip} to be answered",
                   retry_on=(AssertionError,), interval=0.1)

    def signal(self, sig="INT"):
        return self.c.sh(self.src, f"docker exec {self.container} sh -c "
                                   f"'p=$(cat /tmp/ping.pid 2>/dev/null) && kill -{sig} $p'", check=False)

    def stop(self):
        """SIGINT; waits for the summary; returns the result dict."""
        self.signal("INT")

        def summary():
            out = self.c.sh(self.src, f"docker exec {self.container} cat /tmp/ping.out")
            assert "packets transmitted" in out, out[-300:]
            return out
        try:
            out = wait_until(summary, 15, f"{self.src}'s ping summary", retry_on=(AssertionError,), interval=0.1)
        except AssertionError as e:
            # No summary: the container or the ping went away (a restart of
            # Docker stops the container). Traffic was lost; how much, unknown.
            self.result = {"src": self.src, "dst": self.dst, "transmitted": 0, "received": 0, "lost": 1,
                           "gaps": [], "in_flight_at_stop": 0, "interval": float(self.interval),
                           "started": self.started, "error": f"ping did not survive: {e}"}
            return self.result
        m = re.search(r"(\d+) packets transmitted, (\d+) packets received", out)
        tx, rx = int(m.group(1)), int(m.group(2))
        seqs = sorted({int(s) for s in re.findall(r"seq=(\d+)", out)})
        top = seqs[-1] if seqs else -1
        have = set(seqs)
        # Lost: every request sent before the last one answered that got no
        # answer (late answers count: busybox prints them too). ping is
        # stopped well after the last event, once every node has converged;
        # the requests after the last answer were in flight when SIGINT came:
        # up to IN_FLIGHT of them (100 ms at 50/s, room for a loaded machine
        # not scheduling ping) are reported as such, more count as lost.
        gaps = [s for s in range(top + 1) if s not in have]
        tail = max(0, tx - (top + 1))
        lost = len(gaps) + (tail if tail > IN_FLIGHT else 0)
        self.result = {"src": self.src, "dst": self.dst, "transmitted": tx, "received": rx,
                       "lost": lost, "gaps": _ranges(gaps), "in_flight_at_stop": tail,
                       "interval": float(self.interval), "started": self.started}
        return self.result


def _ranges(seqs):
    out = []
    for s in seqs:
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [tuple(r) for r in out]


# -------------------------------------------------------------- agent ----

def agent_show(cluster, node):
    out = cluster.sh(node, f"systemctl show -p {','.join(SHOW)} {AGENT}")
    return dict(line.split("=", 1) for line in out.splitlines())


def wait_agent_ready(cluster, node, old_pid, deadline=120):
    """Polls systemd until a process other than old_pid is the agent's
    MainPID and the unit is active/running, i.e. that process sent READY=1
    (Type=notify). Returns its `systemctl show`."""
    def ready():
        s = agent_show(cluster, node)
        assert s["MainPID"] not in ("0", str(old_pid)), f"MainPID {s['MainPID']} ({s['ActiveState']}/{s['SubState']})"
        assert (s["ActiveState"], s["SubState"]) == ("active", "running"), \
            f"{s['ActiveState']}/{s['SubState']} (MainPID {s['MainPID']})"
        return s
    return wait_until(ready, deadline, f"{node}'s new agent to be READY", retry_on=(AssertionError,), interval=0.05)


def ready_us(show):
    """exec -> READY=1 of the process in show, in microseconds (or None)."""
    a, e = int(show["ActiveEnterTimestampMonotonic"]), int(show["ExecMainStartTimestampMonotonic"])
    return a - e if a and e and a >= e else None


# ----------------------------------------------------------- scenario ----

class Disruption:
    """The traffic, the monitors, the events and what they did."""

    def __init__(self, cluster, minions, log=print):
        assert len(minions) == 2, "two minions ping each other"
        self.c, self.minions, self.log = cluster, list(minions), log
        self.monitors = {}
        self.pings = []
        self.actions = []       # dicts: node, action, t0, t1, old_pid, new_pid, ready_us, to_ready_s
        self.problems = []      # (time, node, text)
        self.entries = {}
        self.deb = None
        self.drops = 0

    # -- set-up and tear-down --

    def start(self):
        self.c.wait_converged()
        self.entries = {n: peer_entries(self.c, n) for n in self.c.nodes}
        for n in self.c.nodes:
            self.monitors[n] = NetlinkMonitor(self.c.netns(n), n)
        for m in self.monitors.values():
            m.wait_listening()
        a, b = self.minions
        ips = {n: self.c.container_ip(n) for n in self.minions}
        self.pings = [ContainerPing(self.c, a, b, ips[b]), ContainerPing(self.c, b, a, ips[a])]
        for p in self.pings:
            p.start()
        for p in self.pings:
            p.wait_answering()
        self.log(f"traffic: {a} {ips[a]} <-> {b} {ips[b]} at 50 packets/s each way; monitors in "
                 f"{', '.join(self.monitors)}")

    def close(self):
        """Every exit path: pings and monitors stopped by PID."""
        for p in self.pings:
            if p.result is None:
                try:
                    p.signal("KILL")
                except Exception:
                    pass
        for m in self.monitors.values():
            try:
                self.drops += m.stop()
            except Exception:
                pass

    def finish(self, deadline=180):
        """Waits for the cluster to converge, stops traffic and monitors;
        returns the report dict."""
        try:
            self.c.wait_converged(deadline=deadline)
        except AssertionError as e:
            self.problems.append((time.time(), "-", f"did not converge at the end: {e}"))
        results = [p.stop() for p in self.pings]
        for m in self.monitors.values():
            self.drops += m.stop()
        dels = []
        for n, m in self.monitors.items():
            for t, kind, peer, line in deletions(m.events, self.entries[n]):
                dels.append({"t": t, "node": n, "kind": kind, "peer": peer, "line": line})
            for t, tool, line in m.errors:
                self.problems.append((t, n, f"{tool} monitor said: {line}"))
        if self.drops:
            self.problems.append((time.time(), "-", f"the monitors' sockets dropped {self.drops} messages"))
        dels.sort(key=lambda d: d["t"])
        return {"pings": results, "deletions": dels, "actions": self.actions, "problems": self.problems}

    # -- events --

    def _record(self, node, action, t0, old, show, extra=""):
        new = show["MainPID"] if show else "-"
        r = {"node": node, "action": action, "t0": t0, "t1": time.time(), "old_pid": old, "new_pid": new,
             "ready_us": ready_us(show) if show and new != old else None}
        r["to_ready_s"] = r["t1"] - t0
        self.actions.append(r)
        if show is None:
            self.log(f"{_stamp(t0)} {node}: {action}{extra}")
        else:
            self.log(f"{_stamp(t0)} {node}: {action} (pid {old} -> {new}, "
                     f"{r['to_ready_s']:.2f} s until READY{extra})")
        return r

    def restart(self, node):
        old = agent_show(self.c, node)["MainPID"]
        t0 = time.time()
        self.c.sh(node, f"systemctl restart {AGENT}", timeout=180)
        return self._record(node, "restart", t0, old, wait_agent_ready(self.c, node, old))

    def kill(self, node):
        old = agent_show(self.c, node)["MainPID"]
        t0 = time.time()
        self.c.sh(node, f"systemctl kill --kill-whom=main -s SIGKILL {AGENT}")
        return self._record(node, "SIGKILL", t0, old, wait_agent_ready(self.c, node, old))

    def sighup(self, node, deadline=10):
        """The agent must stay (same MainPID, active) and log a re-list;
        if it does not, the problem is recorded and the agent started again
        so that the scenario goes on."""
        old = agent_show(self.c, node)["MainPID"]
        mark = self.c.mark()
        t0 = time.time()
        self.c.sh(node, f"systemctl kill --kill-whom=main -s SIGHUP {AGENT}")

        def relisted():
            s = agent_show(self.c, node)
            if s["MainPID"] != old or s["ActiveState"] != "active":
                return s                                # gone: no use waiting
            said = [e for e in self.c.journal(node, since=mark)
                    if e.get("_PID") == old and RELIST.search(str(e.get("MESSAGE", "")))]
            return s if said else None
        try:
            s = wait_until(relisted, deadline, "a re-list after SIGHUP", interval=0.1)
        except AssertionError:
            s = agent_show(self.c, node)
            self.problems.append((t0, node, f"SIGHUP: no re-list logged by pid {old} within {deadline} s"))
        if s["MainPID"] == old and s["ActiveState"] == "active":
            return self._record(node, "SIGHUP", t0, old, s)
        self.problems.append((t0, node, f"SIGHUP: the agent did not stay: pid {old} -> {s['MainPID']}, "
                                        f"{s['ActiveState']}/{s['SubState']}, Result={s['Result']}"))
        if s["MainPID"] == "0":
            self.c.sh(node, f"systemctl reset-failed {AGENT}; systemctl start {AGENT}", timeout=180)
        return self._record(node, "SIGHUP", t0, old, wait_agent_ready(self.c, node, old),
                            extra=", the agent died and was started again")

    def upgrade(self, node):
        """dpkg -i of the suite's .deb repacked at a higher version; its
        postinst restarts the agent."""
        if self.deb is None:
            self.deb = repack_deb(self.c.deb_path(), self.c.tmp)
        path, version = self.deb
        old = agent_show(self.c, node)["MainPID"]
        t0 = time.time()
        self.c.install_deb(node, path)
        got = self.c.sh(node, "dpkg-query -W -f '${Version}' corekube-agent")
        if got != version:
            self.problems.append((t0, node, f"upgrade: installed version {got}, not {version}"))
        s = agent_show(self.c, node)
        if s["MainPID"] == old:
            self.problems.append((t0, node, "upgrade: the postinst did not restart the agent"))
            return self._record(node, f"upgrade to {version}", t0, old, s)
        return self._record(node, f"upgrade to {version}", t0, old, wait_agent_ready(self.c, node, old))

    def etcd_outage(self, seconds, restart=()):
        """etcd stopped (its data kept) for a fixed time, then started
        again; the agents of RESTART are restarted while it is away (they
        cannot become READY before it is back)."""
        old = {n: agent_show(self.c, n)["MainPID"] for n in restart}
        t0 = time.time()
        self.c.run("etcd-stop")
        start = time.monotonic()
        try:
            for n in restart:
                self.c.sh(n, f"systemctl restart --no-block {AGENT}")
            for n in restart:
                wait_until(lambda: agent_show(self.c, n)["MainPID"] not in ("0", old[n]), 30,
                           f"{n}'s agent to be started again")
            # The outage itself: a fixed length is the scenario, not a wait.
            time.sleep(max(0.0, seconds - (time.monotonic() - start)))
        finally:
            self.c.run("etcd-start")
        self._record("etcd", f"outage {seconds:.0f} s", t0, "-", None)
        for n in restart:
            self._record(n, "restart during the outage", t0, old[n], wait_agent_ready(self.c, n, old[n]))

    # -- the report --

    def summary(self, report, context=3):
        """Text for a failure: lost packets, each deletion with the event
        under way and the node's agent journal around it, the problems."""
        lines = []
        for p in report["pings"]:
            if p.get("error"):
                lines.append(f"ping {p['src']} -> {p['dst']}: {p['error']}")
                continue
            lines.append(f"ping {p['src']} -> {p['dst']}: {p['transmitted']} sent, {p['received']} received, "
                         f"{p['lost']} lost, {p['in_flight_at_stop']} in flight at the stop")
            for a, b in p["gaps"][:20]:
                at = p["started"] + a * p["interval"]
                lines.append(f"   seq {a}-{b} lost ({b - a + 1} packets, sent at about {_stamp(at)})")
        for t, node, text in report["problems"]:
            lines.append(f"{_stamp(t)} {node}: {text}")
        dels = report["deletions"]
        groups = {}                         # (node, event under way) -> deletions, in time order
        for d in dels:
            act = [a for a in report["actions"] if a["t0"] <= d["t"]]
            under = f"{act[-1]['node']}: {act[-1]['action']} at {_stamp(act[-1]['t0'])}" if act else "before any event"
            groups.setdefault((d["node"], under), []).append(d)
        if dels:
            lines.append(f"{len(dels)} deletions of a live peer's entry, during {len(groups)} events:")
        for i, ((node, under), ds) in enumerate(groups.items()):
            if i == 12:
                lines.append(f"  ... and {len(groups) - 12} more events with deletions: "
                             + ", ".join(f"{n} during {u} ({len(g)})" for (n, u), g in list(groups.items())[12:]))
                break
            lines.append(f"  in {node} during {under}: {len(ds)} deletions, {_stamp(ds[0]['t'])} to {_stamp(ds[-1]['t'])}")
            for d in ds[:8]:
                lines.append(f"    {_stamp(d['t'])} {d['kind']} of {d['peer']}: {d['line'].strip()}")
            if len(ds) > 8:
                lines.append(f"    ... and {len(ds) - 8} more")
            j = self.c.sh(node, f"journalctl -q -u {AGENT} -o short-precise --no-pager "
                                f"--since=@{int(ds[0]['t']) - context} --until=@{int(ds[-1]['t']) + 1} | tail -n 20",
                          check=False)
            lines.append(f"    {node}'s journal (corekube-agent.service) around it:")
            for ln in (j.stdout or "").splitlines():
                lines.append(f"      | {ln}")
        return "\n".join(lines)


def totals(report):
    """(packets lost, {kind: deletions})."""
    kinds = {"route": 0, "ARP": 0, "FDB": 0, "link": 0}
    for d in report["deletions"]:
        kinds[d["kind"]] += 1
    return sum(p["lost"] for p in report["pings"]), kinds


__all__ = ["NetlinkMonitor", "ContainerPing", "Disruption", "agent_show", "wait_agent_ready", "ready_us",
           "peer_entries", "deletions", "totals"]

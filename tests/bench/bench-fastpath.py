#!/usr/bin/python3
"""Benchmark 7: the fast path (issue 13), four benchmarks, one command each.

Agents in network namespaces without systemd (cklab.py: [docker] restart = no,
no role units or artifacts), etcd's data on tmpfs (/dev/shm). Observers
(probes.py) timestamp on receipt: the agent's stderr lines and sd_notify
messages, an etcd watch of our own (the "reference watcher"), and a netlink
monitor in the agent's namespace.

  bench-fastpath.py BUILD start [--runs 10]
      A master's first start on an idle etcd (etcd emptied, the namespace's
      flannel.1 and the agent's state removed before each run): from the exec
      of the agent (a line our shell writes just before it) to READY=1, to its
      "is ready" line and to its machine record saying ready at the watcher;
      and the milestones of its stderr, each by its own line (no order assumed).
  bench-fastpath.py BUILD join [--peers 1000] [--runs 3]
      PEERS peer leases in etcd; from the exec to the last of their 3 x PEERS
      route/ARP/FDB entries in the kernel; then in a fresh namespace with a
      flannel.1 made by ip, `ip -batch` + `bridge -batch` of the same entries
      (process start-up included, until both exit). Median of RUNS, ratio.
  bench-fastpath.py BUILD propagation [--peers 1000] [--rates 20,200] [--changes 1000]
      One ready agent with PEERS peers; CHANGES lease changes (a new lease, the
      removal of the one added 20 before, ...) sent at each RATE per second without
      waiting for them (open loop). Own part: the route in (out of) the kernel
      minus the watcher's receipt of the event; end to end: minus the time the
      request was sent.
  bench-fastpath.py BUILD cpu [--sizes 100,1000,5000] [--changes 1000]
      For each size a fresh lab, one agent with that many peers; CHANGES lease
      changes one after another (each waited for in the kernel); the agent's
      CPU time (/proc/PID/task/*/schedstat) over them, per change.

Exit status 1 if an agent did not reach the state measured.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cklab  # noqa: E402
import probes  # noqa: E402

NETWORK = "10.0.0.0/10"     # 16384 subnets: peers from 10.16.0.0, changes from 10.48.0.0
MACHINES = "/corekube/machines/"
SUBNETS = "/coreos.com/network/subnets/"


def peer(i):
        return "10.%d.%d.0/24" % (16 + i // 256, i % 256)


def change_subnet(j):
        return "10.%d.%d.0/24" % (48 + j // 256, j % 256)


def ms(v):
        return "%.1f" % (v * 1000)


def stats_row(name, v):
        return [name, len(v)] + [ms(cklab.percentile(v, p)) for p in (50, 90, 99, 100)]


def put_peers(lab, n):
        """n fake peer leases; returns subnet -> lease value."""
        out = {}
        for i in range(n):
                out[peer(i)] = cklab.fake_lease(i)
                lab.etcd.put(cklab.subnet_key(peer(i)), out[peer(i)])
        return out


def own_subnets(lab, a):
        return {k.replace("-", "/") for k, v in lab.leases().items() if v.get("PublicIP") == a.ip}


def start_agent(lab, a, timeout=60):
        """Starts A with its output stamped and waits for its record to say ready."""
        w = probes.EtcdWatch(MACHINES + a.node_id)
        st = probes.Stamped(lab, a)
        try:
                ok = w.wait(lambda x: any('"ready"' in e[3] for e in x.events) or a.proc.poll() is not None,
                            timeout)
                lab.check_alive([a])
                if not ok:
                        raise RuntimeError("agent %s not ready in %d s" % (a.name, timeout))
                t_ready = w.first(lambda t, typ, k, v: '"ready"' in v)
                st.cpu_at_ready = probes.schedstat_ns(a.proc.pid) / 1e9
                st.wait_at_ready = probes.schedstat_ns(a.proc.pid, 1) / 1e9
        finally:
                w.close()
        return st, t_ready


# ---- start ----

START_MILESTONES = [("process up", "starting as"), ("link", "is up:"), ("registered", "Registered as"),
                    ("lease", "Acquired subnet lease"), ("overlay", "Overlay flannel"),
                    ("peers read", "Peer list read"), ("files", "Wrote /run/flannel"),
                    ("ready line", "is ready")]


def bench_start(o):
        with cklab.Lab(os.path.join(o.build, "agent/corekube-agent"), quiet=o.quiet, etcd_tmpfs=True) as lab:
                lab.up()
                (a,) = lab.add_agents(1)
                res = {"READY=1": [], "'is ready' line": [], "record ready (watcher)": [],
                       "(agent's CPU time to then)": [], "(agent's run-queue wait to then)": []}
                mile = {k: [] for k, _ in START_MILESTONES}
                for r in range(o.runs):
                        lab.etcd.delete("/corekube/", prefix=True)
                        lab.etcd.delete("/coreos.com/", prefix=True)
                        cklab.run("ip", "-n", a.ns, "link", "del", "flannel.1", check=False)
                        cklab.run("rm", "-rf", os.path.join(a.dir, "state"))
                        st, t_ready = start_agent(lab, a)
                        t0 = st.line("ckbench: exec")
                        res["READY=1"].append(st.notified("READY=1") - t0)
                        res["'is ready' line"].append(st.line("is ready") - t0)
                        res["record ready (watcher)"].append(t_ready - t0)
                        cpu0, wait0 = st.exec_schedstat()
                        res["(agent's CPU time to then)"].append(st.cpu_at_ready - cpu0)
                        res["(agent's run-queue wait to then)"].append(st.wait_at_ready - wait0)
                        for k, text in START_MILESTONES:
                                t = st.line(text)
                                if t is not None:
                                        mile[k].append(t - t0)
                        lab.say("run %d: record ready %.1f ms after the exec" % (r + 1, (t_ready - t0) * 1000))
                        lab.stop(a)
                        st.close()
                print("Start to ready: a master's first start, idle etcd (data on tmpfs), no systemd, %d runs; "
                      "ms from the exec of the agent" % o.runs)
                print(cklab.table(["signal", "runs", "median", "p90", "max"],
                                  [[k, len(v), ms(cklab.median(v)), ms(cklab.percentile(v, 90)), ms(max(v))]
                                   for k, v in res.items()]))
                print("Milestones (the agent's stderr lines, each on its own; ms from the exec, median of the runs)")
                print(cklab.table([k for k, _ in START_MILESTONES],
                                  [[ms(cklab.median(mile[k])) if mile[k] else "-" for k, _ in START_MILESTONES]]))
                med = cklab.median(res["record ready (watcher)"])
                print("Goal: exec to ready < 100 ms (median %.1f ms): %s" % (med * 1000, "met" if med < 0.1 else
                                                                              "not met"))
        return 0


# ---- join ----

JOIN_MILESTONES = [("process up", "starting as"), ("registered", "Registered as"),
                   ("lease", "Acquired subnet lease"), ("overlay", "Overlay flannel"),
                   ("peers read", "Peer list read"), ("ready line", "is ready"),
                   ("'Peers reconciled' line", "Peers reconciled")]

def iproute2_join(leases, runs):
        """ip -batch + bridge -batch of the entries of LEASES onto a flannel.1 made
        by ip in a fresh namespace, RUNS times; seconds each."""
        ns = "ckbench-join%d" % os.getpid()
        tmp = tempfile.mkdtemp(prefix="ckbench-join.")
        ipb, brb = os.path.join(tmp, "ip.batch"), os.path.join(tmp, "bridge.batch")
        with open(ipb, "w") as fi, open(brb, "w") as fb:
                for sub, v in leases.items():
                        lease = json.loads(v)
                        gw, mac = sub.split("/")[0], lease["BackendData"]["VtepMAC"]
                        fi.write("neigh replace %s lladdr %s dev flannel.1 nud permanent\n" % (gw, mac))
                        fi.write("route replace %s via %s dev flannel.1 onlink\n" % (sub, gw))
                        fb.write("fdb replace %s dev flannel.1 dst %s self permanent\n" % (mac, lease["PublicIP"]))
        out = []
        try:
                for _ in range(runs):
                        cklab.run("ip", "netns", "add", ns)
                        try:
                                for c in (["link", "add", "eth2", "type", "veth", "peer", "name", "eth2p"],
                                          ["addr", "add", "172.31.9.1/16", "dev", "eth2"],
                                          ["link", "set", "eth2", "up"], ["link", "set", "eth2p", "up"],
                                          ["link", "add", "flannel.1", "type", "vxlan", "id", "1", "local",
                                           "172.31.9.1", "dev", "eth2", "dstport", "8472", "nolearning"],
                                          ["addr", "add", "10.63.255.0/32", "dev", "flannel.1"],
                                          ["link", "set", "flannel.1", "up"]):
                                        cklab.run("ip", "-n", ns, *c)
                                t = time.monotonic()
                                cklab.run("ip", "-n", ns, "-batch", ipb)
                                cklab.run("bridge", "-n", ns, "-batch", brb)
                                out.append(time.monotonic() - t)
                                n = len(cklab.run("ip", "-n", ns, "route", "show", "dev", "flannel.1").stdout.splitlines())
                                if n != len(leases):
                                        raise RuntimeError("iproute2 made %d routes of %d" % (n, len(leases)))
                        finally:
                                cklab.run("ip", "netns", "del", ns, check=False)
        finally:
                cklab.run("rm", "-rf", tmp)
        return out


def bench_join(o):
        with cklab.Lab(os.path.join(o.build, "agent/corekube-agent"), network=NETWORK, quiet=o.quiet,
                       etcd_tmpfs=True) as lab:
                lab.up()
                leases = put_peers(lab, o.peers)
                keys = [k for s, v in leases.items() for k in probes.peer_entries(s, v)]
                (a,) = lab.add_agents(1)
                agent, cpu, rq = [], [], []
                mile = {k: [] for k, _ in JOIN_MILESTONES}
                for r in range(o.runs):
                        # The same master's first start each run: no overlay, no state, no record.
                        cklab.run("ip", "-n", a.ns, "link", "del", "flannel.1", check=False)
                        cklab.run("rm", "-rf", os.path.join(a.dir, "state"))
                        mon = probes.EntryMonitor(a.ns)
                        try:
                                if not mon.ready():
                                        raise RuntimeError("ip monitor did not start")
                                st = probes.Stamped(lab, a)
                                sampler = probes.WaitSampler(a.proc.pid) if o.sample else None
                                t_last = mon.wait_all(keys, 120)
                                lab.check_alive([a])
                                if sampler:
                                        sampler.close()
                                        lab.say("run %d: where the agent was, sampled every ms: %s"
                                                % (r + 1, sampler.top()))
                                if t_last is None:
                                        print("run %d: the agent programmed %d of %d entries (%s)"
                                              % (r + 1, mon.count(keys), len(keys), ", ".join(
                                                      "%s %d" % (k, mon.count([x for x in keys if x[0] == k]))
                                                      for k in ("route", "arp", "fdb"))))
                                        return 1
                                t0 = st.line("ckbench: exec")
                                agent.append(t_last - t0)
                                cpu0, wait0 = st.exec_schedstat()
                                cpu.append(probes.schedstat_ns(a.proc.pid) / 1e9 - cpu0)
                                rq.append(probes.schedstat_ns(a.proc.pid, 1) / 1e9 - wait0)
                                for k, text in JOIN_MILESTONES:
                                        t = st.line(text)
                                        if t is not None:
                                                mile[k].append(t - t0)
                                lab.say("run %d: %d entries %.1f ms after the exec" % (r + 1, len(keys),
                                                                                      (t_last - t0) * 1000))
                                if mon.overruns:
                                        lab.say("netlink monitor overruns: %d" % mon.overruns)
                        finally:
                                mon.close()
                        lab.stop(a)
                        st.close()
                        lab.etcd.delete(MACHINES, prefix=True)
                        for s in own_subnets(lab, a):
                                lab.etcd.delete(cklab.subnet_key(s))
                ip = iproute2_join(leases, o.runs)
        ratio = cklab.median(agent) / cklab.median(ip)
        print("Join: %d peer leases in etcd (%d entries: route, ARP, FDB each); ms, median of %d runs"
              % (o.peers, len(keys), o.runs))
        print(cklab.table(["what", "median ms", "min ms", "max ms"], [
                ["agent: exec to the last entry in the kernel", ms(cklab.median(agent)), ms(min(agent)),
                 ms(max(agent))],
                ["iproute2: ip -batch + bridge -batch, onto a ready flannel.1", ms(cklab.median(ip)), ms(min(ip)),
                 ms(max(ip))],
                ["ratio agent / iproute2", "%.2f x" % ratio, "", ""],
                ["(agent's CPU time to its last entry)", ms(cklab.median(cpu)), ms(min(cpu)), ms(max(cpu))],
                ["(agent's run-queue wait to its last entry)", ms(cklab.median(rq)), ms(min(rq)), ms(max(rq))]]))
        print("Milestones of the agent (its stderr lines, each on its own; ms from the exec, median)")
        print(cklab.table([k for k, _ in JOIN_MILESTONES] + ["last entry"],
                          [[ms(cklab.median(mile[k])) if mile[k] else "-" for k, _ in JOIN_MILESTONES] +
                           [ms(cklab.median(agent))]]))
        print("Goal: <= 1.5 x iproute2 (%.2f x): %s" % (ratio, "met" if ratio <= 1.5 else "not met"))
        return 0


# ---- propagation ----

KEEP = 20       # a lease is removed KEEP leases after it was added (alive 2 x KEEP changes)

def bench_propagation(o):
        with cklab.Lab(os.path.join(o.build, "agent/corekube-agent"), network=NETWORK, quiet=o.quiet,
                       etcd_tmpfs=True) as lab:
                lab.up()
                put_peers(lab, o.peers)
                (a,) = lab.add_agents(1)
                mon = cklab.RouteMonitor()
                mon.add(a.ns)
                mon.start()
                watch = None
                try:
                        st, _ = start_agent(lab, a)
                        mine = own_subnets(lab, a)
                        want = {peer(i) for i in range(o.peers)}
                        if not mon.wait(lambda m: want <= m.routes[a.ns], 60):
                                print("the agent programmed %d of %d peers" % (len(want & mon.routes[a.ns]),
                                                                            len(want)))
                                return 1
                        free = (change_subnet(j) for j in range(4096) if change_subnet(j) not in mine)
                        watch = probes.EtcdWatch(SUBNETS)
                        results = []
                        j = 0
                        for rate in o.rates:
                                sent = []           # (time sent, kind, subnet)
                                live = []
                                t0 = time.monotonic() + 0.2
                                for c in range(o.changes):
                                        t_at = t0 + c / rate
                                        d = t_at - time.monotonic()
                                        if d > 0:
                                                time.sleep(d)       # pacing, not synchronisation
                                        if c % 2 == 0 or len(live) <= KEEP:
                                                sub = next(free)
                                                j += 1
                                                t = time.monotonic()
                                                lab.etcd.put(cklab.subnet_key(sub), cklab.fake_lease(6000 + j))
                                                sent.append((t, "add", sub))
                                                live.append(sub)
                                        else:
                                                sub = live.pop(0)
                                                t = time.monotonic()
                                                lab.etcd.delete(cklab.subnet_key(sub))
                                                sent.append((t, "del", sub))
                                last = sent[-1][2]
                                mon.wait(lambda m: (last, sent[-1][1]) in m.seen[a.ns], 10)
                                for sub in live:        # not measured: back to back
                                        lab.etcd.delete(cklab.subnet_key(sub))
                                mon.wait(lambda m: not (set(live) & m.routes[a.ns]), 10)
                                own, e2e, etcd_lat, missed, merged = [], [], [], 0, 0
                                for t, kind, sub in sent:
                                        key = cklab.subnet_key(sub)
                                        typ = "PUT" if kind == "add" else "DELETE"
                                        tw = watch.first(lambda te, ty, k, v: k == key and ty == typ)
                                        with mon.cond:
                                                tk = mon.seen[a.ns].get((sub, kind))
                                                never = (sub, "add") not in mon.seen[a.ns]
                                        if tw is not None and tk is None and never:
                                                merged += 1     # removed before the agent applied its addition
                                                continue
                                        if tw is None or tk is None:
                                                missed += 1
                                                continue
                                        own.append(tk - tw)
                                        e2e.append(tk - t)
                                        etcd_lat.append(tw - t)
                                results.append((rate, own, e2e, etcd_lat, missed, merged))
                        lab.check_alive()
                finally:
                        if watch:
                                watch.close()
                        mon.close()
        print("Propagation: 1 agent with %d peers, lease changes (add, remove, ...) sent at a fixed rate "
              "without waiting; etcd data on tmpfs; ms" % o.peers)
        rows, missed_all, goal = [], 0, []
        for rate, own, e2e, et, missed, merged in results:
                missed_all += missed
                if merged:
                        print("%g/s: %d changes (an addition and its removal) never reached the kernel: the agent "
                              "read the removal before it applied the addition" % (rate, merged))
                rows.append(stats_row("%g/s: own part (watcher receipt to kernel)" % rate, own))
                rows.append(stats_row("%g/s: end to end (request sent to kernel)" % rate, e2e))
                rows.append(stats_row("%g/s: request sent to watcher receipt" % rate, et))
                p99 = cklab.percentile(own, 99)
                lim = 0.005 if rate <= 20 else 0.020
                goal.append("own part p99 at %g/s < %g ms (%.1f ms): %s" % (rate, lim * 1000, p99 * 1000,
                                                                           "met" if p99 < lim else "not met"))
                if rate <= 20:
                        p = cklab.percentile(e2e, 99)
                        goal.append("end to end p99 at %g/s < 15 ms (%.1f ms): %s" % (rate, p * 1000,
                                                                                     "met" if p < 0.015 else "not met"))
        print(cklab.table(["measure", "samples", "p50", "p90", "p99", "max"], rows))
        print("Goal: " + "; ".join(goal))
        if missed_all or mon.overruns:
                print("changes not seen by the watcher or the kernel: %d; monitor overruns %d"
                      % (missed_all, mon.overruns))
                return 1
        return 0


# ---- cpu ----

def bench_cpu(o):
        rows = []
        for n in o.sizes:
                with cklab.Lab(os.path.join(o.build, "agent/corekube-agent"), network=NETWORK, quiet=o.quiet,
                               etcd_tmpfs=True) as lab:
                        lab.up()
                        put_peers(lab, n)
                        (a,) = lab.add_agents(1)
                        mon = cklab.RouteMonitor()
                        mon.add(a.ns)
                        mon.start()
                        try:
                                st, _ = start_agent(lab, a)
                                mine = own_subnets(lab, a)
                                want = {peer(i) for i in range(n)}
                                if not mon.wait(lambda m: want <= m.routes[a.ns], 120):
                                        print("%d peers: the agent programmed %d" % (n, len(want & mon.routes[a.ns])))
                                        return 1
                                # The start-up's work ends with the first complete view of the peers.
                                if st.wait_line("Peer list read", 30) is None:
                                        print("%d peers: no 'Peer list read' line" % n)
                                        return 1
                                subs = [s for s in (change_subnet(j) for j in range(4096)) if s not in mine]
                                perf = None
                                if o.perf:
                                        perf = subprocess.Popen(["perf", "record", "-q", "-F", "1000", "--call-graph", "dwarf,16384", "-p",
                                                                 str(a.proc.pid), "-o", "%s.%d" % (o.perf, n)],
                                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                                c0, t0 = probes.schedstat_ns(a.proc.pid), time.monotonic()
                                us0 = probes.user_system_s(a.proc.pid)
                                for c in range(o.changes):
                                        sub = subs[(c // 2) % len(subs)]
                                        if c % 2 == 0:
                                                lab.etcd.put(cklab.subnet_key(sub), cklab.fake_lease(6000 + c // 2))
                                                ok = mon.wait(lambda m: sub in m.routes[a.ns], 10)
                                        else:
                                                lab.etcd.delete(cklab.subnet_key(sub))
                                                ok = mon.wait(lambda m: sub not in m.routes[a.ns], 10)
                                        if not ok:
                                                print("%d peers: change %d did not reach the kernel" % (n, c))
                                                return 1
                                c1, t1 = probes.schedstat_ns(a.proc.pid), time.monotonic()
                                us1 = probes.user_system_s(a.proc.pid)
                                if perf:
                                        perf.send_signal(signal.SIGINT)
                                        perf.wait(30)
                                lab.check_alive()
                        finally:
                                mon.close()
                        st.close()
                        rows.append((n, (c1 - c0) / o.changes / 1000, t1 - t0,
                                     (us1[0] - us0[0]) / o.changes * 1e6, (us1[1] - us0[1]) / o.changes * 1e6))
                        lab.say("%d peers: %.1f us per change" % (n, rows[-1][1]))
        base = rows[0][1]
        print("CPU per lease change: 1 agent, %d changes (add, remove, ...) one after another, each waited for "
              "in the kernel; CPU from /proc/PID/task/*/schedstat" % o.changes)
        # User and system time split the total (at clock-tick resolution):
        # the system part is the kernel's work for the agent's requests.
        print(cklab.table(["peers", "CPU us per change", "vs %d peers" % rows[0][0], "window s", "user us",
                           "system us"],
                          [[n, "%.1f" % us, "%.2f x" % (us / base), "%.1f" % w, "%.0f" % u, "%.0f" % k]
                           for n, us, w, u, k in rows]))
        if len(rows) > 1:
                r = rows[-1][1] / base
                print("Goal: %d peers < 2 x %d peers (%.2f x): %s" % (rows[-1][0], rows[0][0], r,
                                                                      "met" if r < 2 else "not met"))
        return 0


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("build")
        ap.add_argument("what", choices=["start", "join", "propagation", "cpu"])
        ap.add_argument("--runs", type=int)
        ap.add_argument("--peers", type=int, default=1000)
        ap.add_argument("--changes", type=int, default=1000)
        ap.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")], default=[20.0, 200.0])
        ap.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[100, 1000, 5000])
        ap.add_argument("--sample", action="store_true",
                        help="join: sample the agent's state every ms (a load of its own)")
        ap.add_argument("--perf", metavar="FILE", help="cpu: perf record the agent over the changes into FILE.N")
        ap.add_argument("--quiet", action="store_true")
        o = ap.parse_args()
        o.runs = o.runs or (10 if o.what == "start" else 3)
        cklab.install_signal_exit()
        return {"start": bench_start, "join": bench_join, "propagation": bench_propagation,
                "cpu": bench_cpu}[o.what](o)


if __name__ == "__main__":
        sys.exit(main())

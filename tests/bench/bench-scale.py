#!/usr/bin/python3
"""Benchmark 5: many agents started at once against one etcd (issue 8).

For each N: N agents, each in its own network namespace with a private /run
and machine-id (no systemd, units disabled, cklab.py), are started at once.
Measured from the start: every agent ready in etcd, and every node's kernel
holding the routes of all N-1 peers (a netlink monitor per namespace). Checks
that all subnets are distinct. Also etcd's and the agents' CPU time over the
run, to say who the machine was busy with.

  tests/bench/bench-scale.py BUILD_DIR [N ...]       (default: 100 250)

Exit status 1 if a size did not converge within its deadline or two agents
hold the same subnet.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cklab  # noqa: E402


def proc_ticks(pid):
        with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])


def one_size(build, n, quiet, timeout):
        hz = os.sysconf("SC_CLK_TCK")
        with cklab.Lab(os.path.join(build, "agent/corekube-agent"), quiet=quiet) as lab:
                lab.up()
                t = time.monotonic()
                agents = lab.add_agents(n)
                lab.say("N=%d: namespaces and configs made in %.1f s" % (n, time.monotonic() - t))
                mon = cklab.RouteMonitor()
                for a in agents:
                        mon.add(a.ns)
                mon.start()
                res = {"n": n, "ok": False}
                try:
                        etcd0 = proc_ticks(lab.etcd_proc.pid)
                        m0, me0 = cklab.machine_ticks(), os.times()
                        wall0 = time.monotonic()
                        for a in agents:
                                lab.start(a)
                        res["spawn"] = time.monotonic() - wall0
                        # Ready is read from etcd (polled), routes from the kernel (events).
                        seen = lab.wait_ready(agents, timeout)
                        res["ready"] = time.monotonic() - wall0
                        own = [seen[a.node_id] - a.t_start for a in agents]
                        res["own"] = (cklab.median(own), max(own))
                        k = n - 1
                        if not mon.wait(lambda m: all(len(m.routes[a.ns]) >= k for a in agents), timeout):
                                counts = sorted(len(mon.routes[a.ns]) for a in agents)
                                lab.say("N=%d: routes per node after %d s: min %d, max %d of %d"
                                        % (n, timeout, counts[0], counts[-1], k))
                                return res
                        with mon.cond:
                                last = max(t for a in agents for (_, kind), t in mon.seen[a.ns].items()
                                           if kind == "add")
                        res["peers"] = last - wall0
                        res["etcd_cpu"] = (proc_ticks(lab.etcd_proc.pid) - etcd0) / hz
                        m1, me1 = cklab.machine_ticks(), os.times()
                        res["machine_busy"] = (m1[0] - m0[0]) / hz
                        res["machine_total"] = (m1[1] - m0[1]) / hz
                        res["harness_cpu"] = me1.user + me1.system - me0.user - me0.system
                        res["agents_cpu"] = sum(lab.cpu_ticks(a) for a in agents) / hz
                        res["rss"] = cklab.median([lab.rss_kib(a, "RssAnon") for a in agents]) / 1024
                        leases = lab.leases()
                        mine = [v.get("PublicIP") for v in leases.values()]
                        res["distinct"] = len(leases) == n and len(set(mine)) == n and \
                                set(mine) == {a.ip for a in agents}
                        lab.check_alive()
                        res["overruns"] = mon.overruns
                        res["ok"] = res["distinct"] and not mon.overruns
                finally:
                        mon.close()
        return res


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("build")
        ap.add_argument("sizes", nargs="*", type=int, default=[100, 250])
        ap.add_argument("--timeout", type=float, default=120)
        ap.add_argument("--quiet", action="store_true")
        o = ap.parse_args()
        cklab.install_signal_exit()
        rows, cpu, ok = [], [], True
        for n in o.sizes:
                r = one_size(o.build, n, o.quiet, o.timeout)
                ok = ok and r["ok"]
                if "peers" not in r:
                        rows.append([n, "%.2f" % r.get("spawn", 0), "%.2f" % r["ready"] if "ready" in r else "-",
                                     "not reached", "-", "-", "-", "-", "-"])
                        continue
                rows.append([n, "%.2f" % r["spawn"], "%.2f" % r["ready"], "%.2f" % r["peers"],
                             "%.2f / %.2f" % r["own"], "yes" if r["distinct"] else "NO", "%.1f" % r["etcd_cpu"], "%.1f" % r["agents_cpu"],
                             "%.2f" % r["rss"]])
                other = r["machine_busy"] - r["etcd_cpu"] - r["agents_cpu"] - r["harness_cpu"]
                cpu.append([n, "%.1f of %.1f" % (r["machine_busy"], r["machine_total"]), "%.1f" % r["etcd_cpu"],
                            "%.1f" % r["agents_cpu"], "%.1f" % r["harness_cpu"], "%.1f" % other])
        print("Scale: N agents started at once against one etcd (%d cores); seconds from the start"
              % os.cpu_count())
        print(cklab.table(["N", "spawned", "all ready", "all N-1 peers in every kernel",
                           "own start to ready: median / max", "subnets distinct",
                           "etcd CPU s", "agents CPU s", "agent anon RSS MiB (median)"], rows))
        if cpu:
                print("CPU seconds from the start to the last peer route (the machine: busy of available)")
                print(cklab.table(["N", "machine", "etcd", "agents", "harness (spawn, monitor, polls)",
                                   "other (ip/unshare/sh, kernel)"], cpu))
        return 0 if ok else 1


if __name__ == "__main__":
        sys.exit(main())

#!/usr/bin/python3
"""Benchmark 2: propagation latency of a subnet lease change (issue 8).

K agents in network namespaces (no systemd, cklab.py) reach ready; then CHANGES
lease changes are written to etcd one after another: a new lease for a free
subnet (a fake peer), then its removal, and so on. For each change and each
node, the latency is the time from sending the etcd request to the route
appearing in (or leaving) that node's kernel, as seen by a netlink monitor in
that namespace. Prints p50/p90/p99/max for additions, removals and both.

  tests/bench/bench-propagation.py BUILD_DIR [--agents K] [--changes N] [--gaps MS,MS]

Each phase of --gaps (default 200,0) waits MS between one change being
everywhere and the next write (0: back to back, a burst of changes). Exit
status 1 if a change did not reach every node within 5 s.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cklab  # noqa: E402


def changes(lab, mon, agents, free, n, gap):
        """n changes (add, remove, add, ...); gap ms between one change being
        everywhere and the next write. Returns latencies (ms) and misses."""
        lat = {"add": [], "del": [], "etcd": []}
        missed = 0
        for c in range(n):
                sub = free[(c // 2) % len(free)]
                kind = "add" if c % 2 == 0 else "del"
                t0 = time.monotonic()
                if kind == "add":
                        lab.etcd.put(cklab.subnet_key(sub), cklab.fake_lease(c // 2))
                else:
                        lab.etcd.delete(cklab.subnet_key(sub))
                lat["etcd"].append((time.monotonic() - t0) * 1000)
                if kind == "add":
                        want = lambda m: all(sub in m.routes[a.ns] for a in agents)  # noqa: E731
                else:
                        want = lambda m: all(sub not in m.routes[a.ns] for a in agents)  # noqa: E731
                if not mon.wait(want, 5):
                        missed += 1
                        lab.say("change %d (%s %s) did not reach every node in 5 s" % (c, kind, sub))
                        continue
                with mon.cond:
                        for a in agents:
                                lat[kind].append((mon.seen[a.ns][(sub, kind)] - t0) * 1000)
                if gap:
                        time.sleep(gap / 1000)      # pacing, not synchronisation
        if n % 2:       # leave no fake lease behind for the next phase
                lab.etcd.delete(cklab.subnet_key(free[(n // 2) % len(free)]))
                mon.wait(lambda m: all(free[(n // 2) % len(free)] not in m.routes[a.ns] for a in agents), 5)
        return lat, missed


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("build")
        ap.add_argument("--agents", type=int, default=4)
        ap.add_argument("--changes", type=int, default=200)
        ap.add_argument("--gaps", type=lambda v: [float(x) for x in v.split(",")], default=[200.0, 0.0])
        ap.add_argument("--quiet", action="store_true")
        o = ap.parse_args()
        cklab.install_signal_exit()

        with cklab.Lab(os.path.join(o.build, "agent/corekube-agent"), quiet=o.quiet) as lab:
                lab.up()
                agents = lab.add_agents(o.agents)
                mon = cklab.RouteMonitor()
                for a in agents:
                        mon.add(a.ns)
                mon.start()
                try:
                        for a in agents:
                                lab.start(a)
                        lab.wait_ready(agents, 60)
                        # Every agent has the others' routes: the steady state to start from.
                        k = o.agents - 1
                        if not mon.wait(lambda m: all(len(m.routes[a.ns]) == k for a in agents), 20):
                                raise RuntimeError("agents did not program each other")
                        lab.say("%d agents ready, %d peers each" % (o.agents, k))
                        missed = 0
                        held = set(lab.leases())
                        # Free subnets from the top of 10.245.0.0/16, away from the agents' random ones.
                        free = ["10.245.%d.0/24" % x for x in range(255, 0, -1)
                                if "10.245.%d.0-24" % x not in held]
                        results = []
                        for gap in o.gaps:
                                lat, m = changes(lab, mon, agents, free, o.changes, gap)
                                results.append((gap, lat))
                                missed += m
                        lab.check_alive()
                finally:
                        mon.close()

                for gap, lat in results:
                        rows = []
                        for name, v in (("add", lat["add"]), ("remove", lat["del"]),
                                        ("all", lat["add"] + lat["del"]),
                                        ("(etcd request itself)", lat["etcd"])):
                                rows.append([name, len(v)] + ["%.1f" % cklab.percentile(v, p)
                                                              for p in (50, 90, 99, 100)])
                        print("Propagation: %d agents, %d changes %s; from the etcd request to the route in "
                              "(or out of) each node's kernel" % (o.agents, o.changes,
                                                                  "back to back" if not gap else
                                                                  "%g ms apart" % gap))
                        print(cklab.table(["change", "samples", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
                if mon.overruns:
                        print("netlink monitor overruns: %d" % mon.overruns)
                return 1 if missed or mon.overruns else 0


if __name__ == "__main__":
        sys.exit(main())

#!/usr/bin/python3
"""Benchmark 6: disruption by the agent's own lifecycle (issue 12).

The cluster in a box (tests/bed/bed.sh, bed "bd<pid>"): etcd, a master and
two minions as systemd-nspawn nodes with real systemd and Docker. The busybox
containers of the two minions ping each other at 50 packets a second through
flannel.1 while the agents of the minions go through COUNT lifecycle events,
alternating minion-1 and minion-2 and, per pair, `systemctl restart` then
`systemctl kill -s SIGKILL` (the unit's Restart=on-failure, RestartSec=2s,
brings it back); each event waits for the new agent's READY=1 before the
next. A netlink monitor in every node (`ip monitor link route neigh`,
`bridge monitor fdb`, started from the host in the node's namespace before
the first event) records every deletion. With --etcd-outage S, etcd is then
stopped for S seconds (minion-2's agent restarted meanwhile) and started
again. The scenario is tests/pylib/corekube_test/disruption.py, shared with
tests/e2e/test_lifecycle.py.

Printed: packets sent and lost (busybox ping's per-reply sequence numbers;
ping is stopped once every node has converged after the last event, and up
to 5 requests in flight at that moment are not counted as lost), the
deletions of a live peer's route, ARP and FDB entry (and of flannel.1), and
per kind of event the restart-to-ready time:

  exec -> READY = ActiveEnterTimestampMonotonic - ExecMainStartTimestampMonotonic,
  both from one `systemctl show` of the unit once its MainPID is the new
  process and it is active/running. ExecMainStartTimestampMonotonic is
  stamped by PID 1 when it forks the new main process (which then execs
  corekube-agent); ActiveEnterTimestampMonotonic is stamped when the unit
  enters "active", which for a Type=notify service is the moment PID 1
  handles that process's READY=1. systemd updates it on every entry into
  active, and a restart (or an auto-restart after SIGKILL) takes the unit
  out of active first, so the value read is the new process's; the pair is
  checked to be in order. Same clock (CLOCK_MONOTONIC of the machine, which
  the nodes share), microseconds, exact up to PID 1's event dispatch.

It leaves out the old process's stop and, after a SIGKILL, RestartSec; the
"command -> READY seen" column (the command issued until polling saw the new
process active, every 50 ms) has them, for information.

Goal: 0 packets lost, 0 deletions, exec -> READY p99 < 1 s.

  tests/bench/bench-disruption.py [--count 100] [--etcd-outage 0] [--keep]

Root; the first run builds the rootfs cache and the bed's build dir
(CKB_BUILD_DIR, default build-bed in the source tree). The bed is removed at
the end unless --keep.
"""

import argparse
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "pylib"), os.path.join(HERE, "..", "e2e")]
import cklab  # noqa: E402
from clusterbed import Cluster  # noqa: E402
from corekube_test.disruption import Disruption, totals  # noqa: E402

NODES = [("master", "master", "192.168.3.11"), ("minion-1", "minion", "192.168.3.12"),
         ("minion-2", "minion", "192.168.3.13")]
MINIONS = ["minion-1", "minion-2"]


def say(*a):
        print("#", *a, flush=True)


def ms(values, p=None):
        if not values:
                return "-"
        return "%.0f" % ((cklab.median(values) if p is None else cklab.percentile(values, p)) * 1e3)


def main():
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--count", type=int, default=100, help="restarts + SIGKILLs in all (default 100)")
        ap.add_argument("--etcd-outage", type=float, default=0, help="then etcd away for S seconds")
        ap.add_argument("--keep", action="store_true", help="leave the bed up")
        o = ap.parse_args()
        if os.geteuid() != 0:
                print("bench-disruption: must run as root", file=sys.stderr)
                return 1
        cklab.install_signal_exit()
        c = Cluster("bd")
        d = None
        try:
                t = time.monotonic()
                c.up()
                for name, role, ip in NODES:
                        c.add_node(name, role, ip)
                c.wait_converged(deadline=180)
                for n in MINIONS:
                        c.container_ip(n)
                say("bed %s up with %d nodes in %.1f s" % (c.name, len(NODES), time.monotonic() - t))
                d = Disruption(c, MINIONS, log=lambda s: None)
                d.start()
                t = time.monotonic()
                for i in range(o.count):
                        node = MINIONS[i % 2]
                        (d.restart if (i // 2) % 2 == 0 else d.kill)(node)
                        if (i + 1) % 10 == 0:
                                say("%d/%d events, %.0f s" % (i + 1, o.count, time.monotonic() - t))
                if o.etcd_outage > 0:
                        d.etcd_outage(o.etcd_outage, restart=["minion-2"])
                report = d.finish()
                lost, dels = totals(report)
                # The journals are in the nodes: read them before the bed goes.
                summary = d.summary(report, context=1) if lost or report["deletions"] else ""
        finally:
                if d is not None:
                        d.close()
                if not o.keep:
                        c.down()
                else:
                        say("kept bed %s (tests/bed/bed.sh -b %s down; CKB_STATE_DIR=%s CKB_DATA_DIR=%s)"
                            % (c.name, c.name, c.state, c.data))

        sent = sum(p["transmitted"] for p in report["pings"])
        ready = {}
        for a in report["actions"]:
                if a["ready_us"] is not None:
                        ready.setdefault(a["action"], []).append((a["ready_us"] / 1e6, a["to_ready_s"]))
        every = [v for vs in ready.values() for v in vs]
        print("Disruption: %d agent lifecycle events on 2 minions under 2 x 50 pings/s (nspawn nodes, real "
              "systemd, Docker, etcd)%s" % (o.count, ", then etcd away %.0f s" % o.etcd_outage if o.etcd_outage else ""))
        print(cklab.table(["packets sent", "packets lost", "route deletions", "ARP deletions", "FDB deletions",
                           "flannel.1 deletions"], [[sent, lost, dels["route"], dels["ARP"], dels["FDB"], dels["link"]]]))
        rows = []
        for kind, vs in sorted(ready.items()) + [("all", every)]:
                ex = [a for a, _ in vs]
                rows.append([kind, len(vs), ms(ex), ms(ex, 99), ms(ex, 100),
                             "%.2f" % cklab.median([b for _, b in vs]) if vs else "-"])
        print(cklab.table(["event", "n", "exec->READY p50 ms", "p99 ms", "max ms", "command->READY seen p50 s"],
                          rows))
        for t, node, text in report["problems"]:
                print("problem: %s %s" % (node, text))
        p99 = cklab.percentile([a for a, _ in every], 99) if every else float("nan")
        met = lost == 0 and not report["deletions"] and p99 < 1.0
        print("Goal: 0 packets lost, 0 deletions, exec->READY p99 < 1 s. Measured: %d lost, %d deletions, "
              "p99 %.3f s: %s" % (lost, len(report["deletions"]), p99, "met" if met else "NOT met"))
        if summary:
                print(summary[:4000])
        return 0


if __name__ == "__main__":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        sys.exit(main())

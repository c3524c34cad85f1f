#!/usr/bin/python3
"""Benchmark 1: provisioning time vs cluster size (issue 8).

The cluster in a box (tests/bed/bed.sh, bed "bench"): nspawn nodes with real
systemd and Docker, a master and N-1 minions, artifacts downloaded by the
agents from the bed's local HTTP server. For each N and each run: N fresh
nodes are booted (agent not enabled) and etcd is emptied, then
`systemctl start corekube-agent` is sent to all nodes at once; measured is
the time from then until every node's machine record says "ready" (etcd,
polled every 20 ms). Prints the median of RUNS per N, the machine's CPU use,
and, from the agents' journals in the last run of each N, when the master and
the last minion passed each milestone.

Then the second boot (issue 16): the N nodes of the last run, the agent and
Docker enabled at boot (as Debian's docker.io has it; the bed's rootfs
disables it), are powered off, the links of their network namespaces deleted (the bed's
namespaces outlive the containers; a real power-off does not keep flannel.1
or docker0) and their machine records deleted (a reboot longer than the
record's ttl; their subnet leases stay), then booted all at once (bed.sh
node-start). Measured is the time from then until every node's record says
ready, T(N), and the Docker restarts in that boot: the agent's "Restarted
docker.service" entries (MESSAGE_ID) and systemd's starts of docker.service
beyond the first. Goal: 0 restarts; T(8) <= 1.5 x T(1).

  tests/bench/bench-provision.py [--runs R] [--reboots B] [--keep] [N ...]
                                (default: 3 runs, 1 reboot, N = 1 4 8)

The bed is removed at the end unless --keep. Root; the first run builds the
rootfs cache (rootfs.sh) and the bed's build dir.
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cklab  # noqa: E402
import probes  # noqa: E402

BED = os.environ.get("CKB_BENCH_BED", "bench")
BEDSH = [os.path.join(HERE, "..", "bed", "bed.sh"), "-b", BED]

def bed(*args, check=True):
        r = subprocess.run(BEDSH + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and r.returncode != 0:
                raise RuntimeError("bed.sh %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr[-3000:]))
        return r.stdout


def node_names(n):
        return ["master"] + ["minion-%d" % i for i in range(1, n)]


class Nodes:
        """Fresh nodes for every run: a unit stopped and started again at once in
        these containers can fail to get its cgroup (status 219/CGROUP), which
        a real first start never meets."""

        def __init__(self):
                self.have = []
                self.pid1 = {}
                self.machine_id = {}

        def fresh(self, n):
                for name in self.have:
                        bed("node-rm", name)
                self.have = []
                for i, name in enumerate(node_names(n)):
                        bed("node-add", name, "master" if i == 0 else "minion", "192.168.3.%d" % (11 + i),
                            "--no-standins")
                        self.have.append(name)
                        self.pid1[name] = int(bed("pid", name).strip())
                        self.machine_id[name] = bed("exec", name, "cat", "/etc/machine-id").strip()

        def nsenter(self, name, *cmd):
                return subprocess.Popen(["nsenter", "-t", str(self.pid1[name]), "-a", "--"] + list(cmd),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# agent/message-ids.h; systemd's catalog (a unit started).
MID_DOCKER_RESTARTED = "af1ff278bec7875d8c6f4475b81fb4ab"
MID_UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"


def boot_journal(nodes, name, *matches):
        """The node's journal entries of its current boot matching MATCHES."""
        out = subprocess.run(["nsenter", "-t", str(nodes.pid1[name]), "-a", "--", "journalctl", "-b", "-q",
                              "-o", "json", "--no-pager"] + list(matches),
                             stdout=subprocess.PIPE, text=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def docker_restarts(nodes, name):
        """(the agent's Docker restarts, docker.service starts) in this boot."""
        agent = [e for e in boot_journal(nodes, name, "_SYSTEMD_UNIT=corekube-agent.service")
                 if e.get("MESSAGE_ID") == MID_DOCKER_RESTARTED]
        starts = [e for e in boot_journal(nodes, name, "_PID=1", "UNIT=docker.service")
                  if e.get("MESSAGE_ID") == MID_UNIT_STARTED]
        return len(agent), len(starts)


# systemd's catalog: a unit starting, stopping, started, stopped, failed.
MID_UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
MID_UNIT_STOPPING = "de5b426a63be47a7b6ac3eaac82e2f6f"
MID_UNIT_STOPPED = "9d1aaa27d60140bd96365438aad20286"
MID_UNIT_FAILED = "be02cf6855d2428ba40df7e9d022f03d"
# agent/message-ids.h
MID_READY = "55bbe08da66a1b049c31d9b0d47824dd"
MID_ARTIFACT_INSTALLED = "6713c51212c064e51748b8295f9cd150"


def union_length(intervals, lo, hi):
        """Seconds of [lo, hi] covered by the union of INTERVALS."""
        total, end = 0.0, lo
        for a, b in sorted((max(a, lo), min(b, hi)) for a, b in intervals):
                if b <= end:
                        continue
                total += b - max(a, end)
                end = b
        return total


def critical_path(nodes, name):
        """(own, in systemd jobs, in downloads, total) seconds of the agent's
        bring-up in this boot: total is its "starting as" entry to its first
        ready entry (MESSAGE_ID); jobs are systemd's jobs of any unit but the
        agent's own from "Starting"/"Stopping" to "Started"/"Stopped"/"Failed"
        (pid 1's entries); downloads are every installed artifact's file from
        its birth (the download's O_TMPFILE) to its last write (statx). Each
        is the union of its intervals within [start, ready], so steps running
        at the same time count once; own = total - the union of both."""
        agent = boot_journal(nodes, name, "_SYSTEMD_UNIT=corekube-agent.service")
        starts = [int(e["__REALTIME_TIMESTAMP"]) / 1e6 for e in agent if "starting as" in e.get("MESSAGE", "")]
        readies = [int(e["__REALTIME_TIMESTAMP"]) / 1e6 for e in agent if e.get("MESSAGE_ID") == MID_READY]
        if not starts or not readies:
                return None
        t0 = starts[-1]
        t1 = min((t for t in readies if t >= t0), default=None)
        if t1 is None:
                return None
        jobs, open_, stopped = [], {}, {}
        for e in boot_journal(nodes, name, "_PID=1"):
                unit, mid = e.get("UNIT"), e.get("MESSAGE_ID")
                t = int(e["__REALTIME_TIMESTAMP"]) / 1e6
                if not unit or unit == "corekube-agent.service" or t < t0:
                        continue
                if mid in (MID_UNIT_STARTING, MID_UNIT_STOPPING) and unit not in open_:
                        # A start right after a stop is a restart: one interval.
                        open_[unit] = stopped.pop(unit)[0] if unit in stopped else t
                elif mid in (MID_UNIT_STARTED, MID_UNIT_FAILED) and unit in open_:
                        jobs.append((open_.pop(unit), t))
                elif mid == MID_UNIT_STOPPED and unit in open_:
                        stopped[unit] = (open_.pop(unit), t)
        jobs += list(stopped.values()) + [(a, t1) for a in open_.values()]
        downloads = []
        paths = [re.search(r" at (\S+)\.$", e.get("MESSAGE", "")) for e in agent
                 if e.get("MESSAGE_ID") == MID_ARTIFACT_INSTALLED]
        for m in paths:
                if not m:
                        continue
                p = nodes.nsenter(name, "stat", "-c", "%.9W %.9Y", m.group(1))
                out, _ = p.communicate()
                with contextlib.suppress(ValueError):
                        born, written = (float(x) for x in out.split())
                        if born > 0:
                                downloads.append((born, written))
        j = union_length(jobs, t0, t1)
        d = union_length(downloads, t0, t1)
        return t1 - t0 - union_length(jobs + downloads, t0, t1), j, d, t1 - t0


def wipe_links(name):
        """What a real power-off takes with it and the bed's netns keeps."""
        ns = "ckb-%s-%s" % (BED, name)
        links = json.loads(subprocess.run(["ip", "-n", ns, "-j", "link", "show"], check=True,
                                          stdout=subprocess.PIPE, text=True).stdout)
        for link in links:
                if link["ifname"] not in ("lo", "eth2"):
                        subprocess.run(["ip", "-n", ns, "link", "del", "dev", link["ifname"]], check=True)


def bed_all(cmd, names):
        """bed.sh CMD NAME for every name at once; waits for them all."""
        procs = [(n, subprocess.Popen(BEDSH + [cmd, n], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)) for n in names]
        errors = []
        for n, p in procs:
                out, err = p.communicate()
                if p.returncode != 0:
                        errors.append("bed.sh %s %s failed:\n%s%s" % (cmd, n, out, err[-2000:]))
        if errors:
                raise RuntimeError("\n".join(errors))


def second_boot(nodes, names, etcd, timeout=180):
        """Power every node off, then boot them all at once with their leases
        in etcd; seconds until every record says ready, per node the ready
        time and (agent restarts of Docker, starts of docker.service), and
        the machine's CPU busy % meanwhile."""
        bed_all("node-stop", names)
        for n in names:
                wipe_links(n)
        with cklab.in_netns("ckb-%s-fab" % BED):
                etcd.delete("/corekube/machines/", prefix=True)
        ids = {cklab.app_specific(nodes.machine_id[n]): n for n in names}
        ready = {}
        m0 = cklab.machine_ticks()
        t0 = time.monotonic()
        procs = [subprocess.Popen(BEDSH + ["node-start", n], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for n in names]
        try:
                deadline = t0 + timeout
                while len(ready) < len(ids):
                        now = time.monotonic()
                        with cklab.in_netns("ckb-%s-fab" % BED):
                                recs = etcd.get_prefix("/corekube/machines/")
                        for k, v in recs.items():
                                mid = k.rsplit("/", 1)[1]
                                if mid in ids and mid not in ready and '"state":"ready"' in v.replace(" ", ""):
                                        ready[mid] = now - t0
                        if now > deadline:
                                raise RuntimeError("second boot: not every node ready after %d s: %s"
                                                   % (timeout, sorted(ready.values())))
                        time.sleep(0.02)        # polling granularity of the measurement
                m1 = cklab.machine_ticks()
        finally:
                for p in procs:
                        p.communicate()
        for p, n in zip(procs, names):
                if p.returncode != 0:
                        raise RuntimeError("bed.sh node-start %s failed" % n)
        for n in names:
                nodes.pid1[n] = int(bed("pid", n).strip())
        busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100
        return max(ready.values()), {ids[m]: t for m, t in ready.items()}, \
                {n: docker_restarts(nodes, n) for n in names}, busy


def clear_etcd(etcd):
        etcd.delete("/corekube/", prefix=True)
        etcd.delete("/coreos.com/network/", prefix=True)


def one_run(nodes, names, etcd, timeout=120):
        clear_etcd(etcd)
        ids = {cklab.app_specific(nodes.machine_id[n]): n for n in names}
        # Every state a record passes through, also one that lasts less than a poll.
        watch = probes.EtcdWatch("/corekube/machines/", host=etcd.host, port=etcd.port)
        m0 = cklab.machine_ticks()
        t0 = time.monotonic()
        procs = [nodes.nsenter(n, "systemctl", "start", "--no-block", "corekube-agent") for n in names]
        ready = {}
        failed = set()
        deadline = t0 + timeout
        while len(ready) < len(ids):
                now = time.monotonic()
                for k, v in etcd.get_prefix("/corekube/machines/").items():
                        mid = k.rsplit("/", 1)[1]
                        if mid in ids and mid not in ready and '"state":"ready"' in v.replace(" ", ""):
                                ready[mid] = now - t0
                        elif mid in ids and '"state":"failed"' in v.replace(" ", ""):
                                failed.add(mid)         # a step failed; the agent retries it
                if now > deadline:
                        raise RuntimeError("not every node ready after %d s: %s" % (timeout, sorted(ready.values())))
                time.sleep(0.02)        # polling granularity of the measurement
        m1 = cklab.machine_ticks()
        for p in procs:
                p.communicate()
        watch.close()
        for _, typ, k, v in watch.events:
                with contextlib.suppress(ValueError, AttributeError):
                        if typ == "PUT" and json.loads(v).get("state") == "failed":
                                failed.add(k.rsplit("/", 1)[1])
        busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100
        return max(ready.values()), {ids[m]: t for m, t in ready.items()}, len(failed & set(ids)), busy


MILESTONES = [("registered", "Registered as"), ("lease", "Acquired subnet lease"),
              ("overlay", "Overlay flannel"), ("docker", "Restarted docker"),
              ("artifacts", "Installed artifact"), ("units", "Started kube"),
              ("apiserver reg.", "Registered with the apiserver"), ("ready", "is ready")]


def milestones(nodes, name):
        """Seconds from the agent's start to the last line of each milestone
        in its journal ('-' if absent)."""
        out = subprocess.run(["nsenter", "-t", str(nodes.pid1[name]), "-a", "--", "journalctl", "-u",
                              "corekube-agent", "-o", "short-unix", "--no-pager", "-q"],
                             stdout=subprocess.PIPE, text=True).stdout.splitlines()
        t0, last = None, {}
        for line in out:
                m = re.match(r"([0-9.]+) \S+ corekube-agent\[\d+\]: (.*)", line)
                if not m:
                        continue
                t = float(m.group(1))
                if "starting as" in m.group(2):
                        t0, last = t, {}
                for key, text in MILESTONES:
                        if text in m.group(2):
                                last[key] = t
        return ["%.2f" % (last[k] - t0) if t0 is not None and k in last else "-" for k, _ in MILESTONES]


def print_critical_path(crit):
        """The agents' own critical path (critical_path()) per N: of each run
        the node with the longest, the median of the runs."""
        rows, base = [], None
        for n, own, paths in crit:
                if not own:
                        rows.append([n, "-", "-", "-", "-", "-", "-"])
                        continue
                mid = sorted(paths)[(len(paths) - 1) // 2]
                base = base or cklab.median(own)
                rows.append([n, "%.3f" % cklab.median(own), "%.3f" % min(own), "%.3f" % max(own),
                             "%.2f x" % (cklab.median(own) / base), "%.3f" % mid[1], "%.3f" % mid[2],
                             "%.3f" % mid[3]])
        print("The agent's own critical path: start to ready minus the time inside systemd jobs and downloads "
              "(journal, artifact files' birth to last write); the node with the longest of each run; seconds")
        print(cklab.table(["N", "own median", "own min", "own max", "vs N=%d" % crit[0][0],
                           "in systemd jobs", "in downloads", "start to ready"], rows))
        t = {n: cklab.median(own) for n, own, _ in crit if own}
        if 1 in t and 8 in t:
                print("Goal: own path T(8) <= 1.5 x T(1) (%.2f x): %s" % (t[8] / t[1],
                                                                         "met" if t[8] <= 1.5 * t[1] else "not met"))


def main():
        ap = argparse.ArgumentParser()
        ap.add_argument("sizes", nargs="*", type=int, default=[1, 4, 8])
        ap.add_argument("--runs", type=int, default=3)
        ap.add_argument("--reboots", type=int, default=1, help="second boots per N (0: none)")
        ap.add_argument("--keep", action="store_true")
        o = ap.parse_args()
        cklab.install_signal_exit()
        if os.geteuid() != 0:
                print("bench-provision: must run as root", file=sys.stderr)
                return 1
        rows = []
        reboots, reboot_steps = [], []
        try:
                bed("down", check=False)
                t = time.monotonic()
                bed("up")
                print("# bed up in %.1f s" % (time.monotonic() - t), flush=True)
                nodes = Nodes()
                etcd = cklab.Etcd("127.0.0.1", 2379)
                # The etcd client's socket is made in the fabric namespace, once.
                with cklab.in_netns("ckb-%s-fab" % BED):
                        etcd.get_prefix("/corekube/")
                steps, crit = [], []
                for n in sorted(o.sizes):
                        names = node_names(n)
                        times, busy, failures, own, paths = [], [], 0, [], []
                        for r in range(o.runs):
                                t = time.monotonic()
                                nodes.fresh(n)
                                print("# N=%d run %d: %d fresh nodes booted in %.1f s"
                                      % (n, r + 1, n, time.monotonic() - t), flush=True)
                                with cklab.in_netns("ckb-%s-fab" % BED):
                                        total, per, nfailed, b = one_run(nodes, names, etcd)
                                times.append(total)
                                busy.append(b)
                                failures += nfailed
                                cp = [c for c in (critical_path(nodes, name) for name in names) if c]
                                if len(cp) == n:
                                        worst = max(cp)
                                        own.append(worst[0])
                                        paths.append(worst)
                                print("# N=%d run %d: %.2f s (first node %.2f s, %d went through 'failed'); "
                                      "own critical path %s" % (n, r + 1, total, min(per.values()), nfailed,
                                                                ", ".join("%.3f s" % c[0] for c in cp)), flush=True)
                        rows.append((n, times, failures, cklab.median(busy)))
                        crit.append((n, own, paths))
                        steps.append([n, "master"] + milestones(nodes, "master"))
                        if n > 1:
                                steps.append([n, names[-1]] + milestones(nodes, names[-1]))
                        if o.reboots > 0:
                                for name in names:
                                        bed("exec", name, "systemctl", "enable", "--quiet", "corekube-agent.service",
                                            "containerd.service", "docker.socket", "docker.service")
                                times, agent_restarts, extra_starts, busy = [], 0, 0, []
                                for r in range(o.reboots):
                                        total, per, dock, b = second_boot(nodes, names, etcd)
                                        times.append(total)
                                        busy.append(b)
                                        agent_restarts += sum(a for a, _ in dock.values())
                                        extra_starts += sum(max(0, s - 1) for _, s in dock.values())
                                        print("# N=%d second boot %d: %.2f s (first node %.2f s), Docker restarts: "
                                              "agent %d, docker.service starts %s"
                                              % (n, r + 1, total, min(per.values()),
                                                 sum(a for a, _ in dock.values()),
                                                 ",".join(str(s) for _, s in dock.values())), flush=True)
                                reboots.append((n, times, agent_restarts, extra_starts, cklab.median(busy)))
                                reboot_steps.append([n, "master"] + milestones(nodes, "master"))
                                if n > 1:
                                        reboot_steps.append([n, names[-1]] + milestones(nodes, names[-1]))
                base = cklab.median(rows[0][1]) if rows else 0
                print("Provisioning: agents started at once on N nodes (systemd-nspawn, real Docker, artifacts "
                      "from a local server); seconds until every node is ready, %d runs" % o.runs)
                print(cklab.table(["N", "median s", "min s", "max s", "vs N=%d" % rows[0][0],
                                   "nodes through 'failed' (all runs)", "machine CPU busy % (median)"],
                                  [[n, "%.2f" % cklab.median(t), "%.2f" % min(t), "%.2f" % max(t),
                                    "%.2f x" % (cklab.median(t) / base), f, "%.0f" % b] for n, t, f, b in rows]))
                print("Goal: 0 nodes through 'failed' (%d, every state the records passed through, from an etcd "
                      "watch)" % sum(f for _, _, f, _ in rows))
                print_critical_path(crit)
                print("Milestones in the last run of each N (journal; seconds from the agent's start to the "
                      "last line of each)")
                print(cklab.table(["N", "node"] + [k for k, _ in MILESTONES], steps))
                if reboots:
                        base = cklab.median(reboots[0][1])
                        print("Second boot: the N nodes powered off and booted at once with their subnet leases "
                              "in etcd (records deleted); seconds from the boot until every node is ready, "
                              "%d reboots" % o.reboots)
                        print(cklab.table(["N", "median s", "min s", "max s", "vs N=%d" % reboots[0][0],
                                           "Docker restarts by the agent (all boots)",
                                           "extra docker.service starts (all boots)",
                                           "machine CPU busy % (median)"],
                                          [[n, "%.2f" % cklab.median(t), "%.2f" % min(t), "%.2f" % max(t),
                                            "%.2f x" % (cklab.median(t) / base), a, x, "%.0f" % b]
                                           for n, t, a, x, b in reboots]))
                        t = {n: cklab.median(ts) for n, ts, _, _, _ in reboots}
                        restarts = sum(a + x for _, _, a, x, _ in reboots)
                        line = "Goal: 0 Docker restarts (%d)" % restarts
                        if 1 in t and 8 in t:
                                line += "; T(8) <= 1.5 x T(1) (%.2f x)" % (t[8] / t[1])
                        print(line)
                        print("Milestones in the last second boot of each N (journal; seconds from the agent's "
                              "start to the last line of each)")
                        print(cklab.table(["N", "node"] + [k for k, _ in MILESTONES], reboot_steps))
        finally:
                if not o.keep:
                        bed("down", check=False)
        return 0


if __name__ == "__main__":
        sys.exit(main())

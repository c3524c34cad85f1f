# SPDX-License-Identifier: Apache-2.0
"""The liveness check of established watches (issue 12): a watch stream that
stays open but carries nothing any more (here: a proxy that silently stops
relaying etcd's bytes on the watch's connection) is found by the client's
probes, ended like a broken stream, and its owner (the peer watch, the
registry) resumes and gets what it missed. A live watch, or one whose
probes fail because etcd does not answer, is left alone."""

import json
import re
import signal

from conftest import Proxy, wait_until

NET = "/coreos.com/network"
DIR = f"{NET}/subnets/"
OWN = "10.244.94.0/24"
OWN_IP = "192.168.3.12"
STALLED = re.compile(r"etcd watch on (\S+) stalled \(no event for revision (\d+)\); reconnecting")
RANGE = "/v3/kv/range"
WATCH = "/v3/watch"


def rec(ip, mac):
    return json.dumps({"PublicIP": ip, "BackendType": "vxlan", "BackendData": {"VNI": 1, "VtepMAC": mac}},
                      separators=(",", ":"))


def key(n):
    return f"{DIR}10.244.{n}.0-24"


def put_peer(etcd, n):
    etcd.put(key(n), rec(f"192.168.3.{100 + n}", f"02:00:00:00:01:{n:02x}"))
    return etcd.get(key(n))["mod_revision"]


def subnets(e):
    return sorted(p["subnet"] for p in e["peers"])


def sub(*ns):
    return sorted(f"10.244.{n}.0/24" for n in ns)


def wait_peers(t, want, start, timeout=30):
    return t.wait_event(lambda e: e["event"] == "peers" and subnets(e) == want, start=start, timeout=timeout,
                        what=f"peers {want}")


def start_watch(tool, proxy, *extra):
    """The peer watch through the proxy, probing every second; returns once
    etcd has answered its watch."""
    t = tool(f"http://127.0.0.1:{proxy.port}", "--own-subnet", OWN, "--own-ip", OWN_IP, "--watch-check=1000",
             *extra, "watch", debug=True)
    t.wait_event("peers")
    proxy.wait_stream(WATCH)
    return t


def wait_probes(proxy, n):
    """Until n more probes have been sent. Probes go one at a time, each
    after the previous one's answer was dealt with, so n >= 2 means at
    least one was answered and checked."""
    proxy.wait_requests(RANGE, proxy.count(RANGE) + n)


def stalls(t):
    return STALLED.findall(t.stderr())


def test_frozen_watch_put_found_and_resumed(etcd, tool):
    put_peer(etcd, 1)
    with Proxy(etcd.client_port) as proxy:
        t = start_watch(tool, proxy)
        assert subnets(t.events[-1]) == sub(1)

        assert proxy.freeze(WATCH) == 1
        n = len(t.events)
        rev = put_peer(etcd, 2)
        wait_peers(t, sub(1, 2), n)

        assert stalls(t) == [(DIR, str(rev))], t.stderr()
        assert proxy.count(WATCH) == 2      # the peer watch resumed on a new stream


def test_frozen_watch_delete_found_by_count(etcd, tool):
    # A delete leaves no newer mod_revision in the range: only the count shows it.
    put_peer(etcd, 1)
    put_peer(etcd, 2)
    with Proxy(etcd.client_port) as proxy:
        t = start_watch(tool, proxy)
        wait_probes(proxy, 2)          # the count of a checked probe is the base

        assert proxy.freeze(WATCH) == 1
        n = len(t.events)
        etcd.delete(key(1))
        wait_peers(t, sub(2), n)

        found = stalls(t)
        assert len(found) == 1 and found[0][0] == DIR, t.stderr()
        assert proxy.count(WATCH) == 2


def test_resumed_watch_frozen_after_created_delete_found(etcd, tool):
    # The resumed watch stops right after etcd created it, with the delete it
    # resumed for still to come: the delete is older than its first probe, so
    # only the count at the revision it started from shows it.
    put_peer(etcd, 1)
    put_peer(etcd, 2)
    with Proxy(etcd.client_port) as proxy:
        t = start_watch(tool, proxy)
        proxy.freeze_next(WATCH)
        assert proxy.freeze(WATCH) == 1
        n = len(t.events)
        etcd.delete(key(1))
        wait_peers(t, sub(2), n)

        assert [k for k, _ in stalls(t)] == [DIR, DIR], t.stderr()
        assert proxy.count(WATCH) == 3


def test_live_watch_left_alone(etcd, tool):
    # Puts, deletes and a burst in one revision, each followed by probes: the
    # watch keeps up, so no stall, no second stream.
    with Proxy(etcd.client_port) as proxy:
        t = start_watch(tool, proxy)
        have = []
        for i in range(1, 4):
            n = len(t.events)
            put_peer(etcd, i)
            have.append(i)
            if i == 3:
                etcd.delete(key(1))
                have.remove(1)
            wait_peers(t, sub(*have), n)
            wait_probes(proxy, 2)
        n = len(t.events)
        etcd.put_many([(key(i), rec(f"192.168.3.{100 + i}", f"02:00:00:00:01:{i:02x}")) for i in range(10, 20)])
        wait_peers(t, sub(*have, *range(10, 20)), n)
        wait_probes(proxy, 3)

        assert stalls(t) == [], t.stderr()
        assert proxy.count(WATCH) == 1
        assert "watch stream" not in t.stderr()


def test_probe_failing_is_no_stall(etcd, tool):
    # etcd does not answer (stopped with SIGSTOP): probes time out, which says
    # nothing about the watch; it is kept, and works once etcd is back.
    put_peer(etcd, 1)
    with Proxy(etcd.client_port) as proxy:
        t = start_watch(tool, proxy, "--timeout=500")
        wait_probes(proxy, 2)
        etcd.proc.send_signal(signal.SIGSTOP)
        try:
            wait_probes(proxy, 3)
            wait_until(lambda: t.stderr().count("probe failed") >= 2, 30, "probes failing")
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        n = len(t.events)
        put_peer(etcd, 2)
        wait_peers(t, sub(1, 2), n)
        wait_probes(proxy, 2)

        assert stalls(t) == [], t.stderr()
        assert proxy.count(WATCH) == 1      # the same stream throughout


def test_etcd_restart_resumes_without_stall(etcd, tool):
    # etcd stopped: the stream breaks and its owner resumes (the stream's own
    # error path, not a stall); nothing is probed while there is no stream.
    put_peer(etcd, 1)
    with Proxy(etcd.client_port) as proxy:
        t = start_watch(tool, proxy, "--timeout=500")
        etcd.stop()
        wait_until(lambda: "watch stream ended" in t.stderr(), 30, "the stream to break")
        etcd.start()
        n = len(t.events)
        put_peer(etcd, 2)
        wait_peers(t, sub(1, 2), n)

        assert stalls(t) == [], t.stderr()
        assert "watch stream ended" in t.stderr()


MID = "0123456789abcdef0123456789abcdef"
RECORD = f"/corekube/machines/{MID}"


def test_registry_rewrites_record_deleted_behind_frozen_watch(etcd, tool):
    # The registry watches its own record to write it again when it goes; a
    # stalled watch must not leave it without one.
    with Proxy(etcd.client_port) as proxy:
        t = tool(f"http://127.0.0.1:{proxy.port}", "--machine-id", MID, "--name", "minion-1", "--role", "minion",
                 "--ip", "192.168.3.12", "--subnet", OWN, "--ttl", "30", "--watch-check=1000", "register",
                 debug=True)
        t.wait_event("registered")
        proxy.wait_stream(WATCH)
        wait_probes(proxy, 2)

        assert proxy.freeze(WATCH) == 1
        etcd.delete(RECORD)
        wait_until(lambda: etcd.get(RECORD), 30, "the record written again", diag=t.stderr)

        found = stalls(t)
        assert len(found) == 1 and found[0][0] == RECORD, t.stderr()
        assert "was deleted; writing it again" in t.stderr()


def test_registry_resumes_before_a_delete_it_missed(etcd, tool):
    # As above for the registry: its resumed watch stalls after etcd's
    # "created" answer, whose revision is past the delete still to come; the
    # next watch must resume from before the delete, not from that revision.
    with Proxy(etcd.client_port) as proxy:
        t = tool(f"http://127.0.0.1:{proxy.port}", "--machine-id", MID, "--name", "minion-1", "--role", "minion",
                 "--ip", "192.168.3.12", "--subnet", OWN, "--ttl", "30", "--watch-check=1000", "register",
                 debug=True)
        t.wait_event("registered")
        proxy.wait_stream(WATCH)

        proxy.freeze_next(WATCH)
        assert proxy.freeze(WATCH) == 1
        etcd.delete(RECORD)
        wait_until(lambda: etcd.get(RECORD), 30, "the record written again", diag=t.stderr)

        assert [k for k, _ in stalls(t)] == [RECORD, RECORD], t.stderr()
        assert proxy.count(WATCH) == 3

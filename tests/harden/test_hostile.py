# SPDX-License-Identifier: Apache-2.0
"""Hostile and broken input end to end (issue 9): bogus records in etcd
(oversized, deeply nested, wrong types, unicode, key tricks, thousands of
bogus leases) and an etcd endpoint that misbehaves. The agent stays up,
stays bounded in memory, programs only the valid peer, warns once per
record, and recovers through a good endpoint."""

import contextlib
import json
import os
import signal
import subprocess

import pytest

from conftest import AGENT, SANITIZED, stop, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not AGENT, reason="AGENT_BIN not set (run through meson test)"),
]

HERE = os.path.dirname(os.path.abspath(__file__))
SUBNETS = "/coreos.com/network/subnets/"
GOOD = {"PublicIP": "192.168.3.12", "BackendType": "vxlan",
        "BackendData": {"VtepMAC": "02:42:c0:a8:03:0c", "VNI": 1}}

# Puts many keys through the v3 JSON gateway from inside the namespace.
BULK_PUT = r"""
import base64, json, sys, urllib.request
for line in sys.stdin:
    k, v = json.loads(line)
    body = json.dumps({"key": base64.b64encode(k.encode()).decode(),
                       "value": base64.b64encode(v.encode()).decode()}).encode()
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:2379/v3/kv/put", data=body), timeout=10).read()
"""


def bulk_put(node, pairs):
    text = "".join(json.dumps([k, v]) + "\n" for k, v in pairs)
    node.exec("/usr/bin/python3", "-c", BULK_PUT, input=text, timeout=300)


def hostile_records():
    good = json.dumps(GOOD)
    recs = [
        (SUBNETS + "10.244.50.0-24", '{"PublicIP":"192.168.3.50","x":"' + "A" * (1024 * 1024) + '"}'),
        (SUBNETS + "10.244.51.0-24", "[" * 100000 + "]" * 100000),
        (SUBNETS + "10.244.52.0-24", json.dumps(dict(GOOD, PublicIP=12))),
        (SUBNETS + "10.244.53.0-24", json.dumps(dict(GOOD, BackendData="x"))),
        (SUBNETS + "10.244.54.0-24", json.dumps(dict(GOOD, BackendData={"VtepMAC": "ff:ff:ff:ff:ff:ff"}))),
        (SUBNETS + "10.244.55.0-24", json.dumps(dict(GOOD, PublicIP="127.0.0.1"))),
        (SUBNETS + "10.244.56.0-24", json.dumps(dict(GOOD, PublicIP="224.0.0.5"))),
        (SUBNETS + "10.244.57.0-24", json.dumps(dict(GOOD, BackendData={"VtepMAC": "02:00:00:00:00:57",
                                                                         "VNI": 99}))),
        (SUBNETS + "10.244.58.0-24", "null"),
        (SUBNETS + "10.244.59.0-24", ""),
        (SUBNETS + "ünïcødé-24", good),
        (SUBNETS + "../config", good),
        (SUBNETS + "10.244.60.0-24/../../x", good),
        (SUBNETS + "10.244.61.0/24", good),
        (SUBNETS + "10.99.0.0-24", good),            # outside the network
        (SUBNETS + "10.244.62.0-25", good),          # wrong length
        (SUBNETS + "10.244.63.7-24", good),          # host bits
        (SUBNETS + "10.244.64.0-24", json.dumps(dict(GOOD, PublicIP="192.168.3.11"))),  # our address
        ("/corekube/machines/" + "x" * 300, '{"name":"../../etc","role":"master","ip":"1.2.3.4.5"}'),
    ]
    # Thousands of bogus leases: well-formed keys, values that fail validation.
    recs += [(SUBNETS + f"10.244.{200 + i // 256 % 50}.{i % 256}-24", '{"PublicIP":"0.0.0.0"}')
             for i in range(2000)]
    return recs


def rss_kb(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def fdb(node):
    return node.exec("bridge", "fdb", "show", "dev", "flannel.1").stdout


def test_hostile_records_program_nothing_bogus(node):
    node.start_etcd()
    node.write_config()
    recs = hostile_records()
    # Half before the agent starts (the listing), half while it runs (the watch).
    bulk_put(node, recs[: len(recs) // 2])
    node.start_agent()
    node.wait_state("ready")
    bulk_put(node, recs[len(recs) // 2:] + [(SUBNETS + "10.244.99.0-24", json.dumps(GOOD))])

    wait_until(lambda: "02:42:c0:a8:03:0c dst 192.168.3.12" in fdb(node), 60, "the valid peer")
    # The watch has seen everything once the marker put after it arrives.
    node.etcdctl("put", SUBNETS + "10.244.98.0-24",
                 json.dumps(dict(GOOD, PublicIP="192.168.3.13", BackendData={"VtepMAC": "02:42:c0:a8:03:0d"})))
    wait_until(lambda: "192.168.3.13" in fdb(node), 60, "the marker peer")

    entries = [line for line in fdb(node).splitlines() if " dst " in line]
    assert len(entries) == 2, fdb(node)
    routes = node.ip("route", "show", "dev", "flannel.1").stdout
    assert sorted(line.split()[0] for line in routes.splitlines()) == ["10.244.98.0/24", "10.244.99.0/24"], routes
    assert node.agent.poll() is None
    assert node.machine()["state"] == "ready"

    log = node.log()
    # Warned once per record (listing and watch do not repeat themselves).
    for key in (SUBNETS + "10.244.51.0-24", SUBNETS + "10.244.57.0-24", SUBNETS + "10.244.200.5-24"):
        assert log.count(f"Ignoring peer record {key} ") == 1, (key, log[-3000:])
    # A 1 MiB value is not echoed into the journal.
    assert max(len(line) for line in log.splitlines()) < 4096
    hwm = rss_kb(node.agent.pid)
    print(f"agent peak RSS with {len(recs)} hostile records: {hwm} kB")
    if not SANITIZED:
        assert hwm < 128 * 1024, f"peak RSS {hwm} kB"
    assert stop(node.agent) == 0


def test_invalid_network_config_fails_then_recovers(node):
    node.start_etcd()
    node.write_config()
    node.etcdctl("put", "/coreos.com/network/config", '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}')
    node.start_agent()
    m = node.wait_state("failed")
    assert "Backend.Type" in m.get("error", ""), m
    assert node.ip("link", "show", "flannel.1", check=False).returncode != 0
    node.etcdctl("put", "/coreos.com/network/config",
                 '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    node.wait_state("ready", timeout=120)
    assert stop(node.agent) == 0


@contextlib.contextmanager
def fake_then_good(node, mode):
    """fake_etcd.py in MODE on 127.0.0.1:2391, then the real etcd, and the
    agent started with both endpoints, the fake first."""
    fake = subprocess.Popen(["ip", "netns", "exec", node.ns, "/usr/bin/python3", os.path.join(HERE, "fake_etcd.py"),
                             mode, "2391"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert fake.stdout.readline().strip() == "listening"
        node.start_etcd()
        node.write_config(endpoints="http://127.0.0.1:2391,http://127.0.0.1:2379")
        node.start_agent()
        node.wait_state("ready", timeout=120)
        yield
    finally:
        stop(fake, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["slow", "garbage", "truncate", "close", "error500", "deep", "huge", "nulls"])
def test_misbehaving_endpoint_then_good_one(node, mode):
    with fake_then_good(node, mode):
        assert node.agent.poll() is None
        assert "127.0.0.1:2391" in node.log()
        assert stop(node.agent) == 0, node.log()


def test_silent_watch_moves_to_the_next_endpoint(node):
    """An endpoint that serves requests but never answers a watch: the peer
    watch must move to the next endpoint and see a new peer."""
    with fake_then_good(node, "stallwatch"):
        node.etcdctl("put", SUBNETS + "10.244.99.0-24", json.dumps(GOOD))
        wait_until(lambda: "02:42:c0:a8:03:0c dst 192.168.3.12" in fdb(node), 60, "the peer through the good endpoint")
        assert "127.0.0.1:2391: watch not answered" in node.log(), node.log()
        assert stop(node.agent) == 0, node.log()

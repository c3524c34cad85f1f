# SPDX-License-Identifier: Apache-2.0
"""The agent through a whole bring-up (registration, network config, lease,
overlay, a peer, env files, the ip-masq table through libnftables,
cluster.env) and SIGTERM under valgrind: no invalid reads or writes, no
definite or indirect leaks."""

import os
import re
import shutil
import signal

import pytest

from conftest import AGENT, SANITIZED, stop, wait_until

VALGRIND = shutil.which("valgrind")
SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not AGENT, reason="AGENT_BIN not set (run through meson test)"),
    pytest.mark.skipif(not VALGRIND, reason="valgrind is not installed"),
    pytest.mark.skipif(SANITIZED, reason="an ASan build does not run under valgrind"),
]

PEER = ('{"PublicIP":"192.168.3.12","BackendType":"vxlan",'
        '"BackendData":{"VtepMAC":"02:42:c0:a8:03:0c","VNI":1}}')


def test_bringup_and_sigterm_under_valgrind(node):
    vlog = os.path.join(node.tmp, "valgrind.log")
    node.start_etcd()
    node.write_config()
    node.etcdctl("put", "/coreos.com/network/subnets/10.244.99.0-24", PEER)
    node.start_agent(wrapper=(VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect",
                              "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
                              "--num-callers=40", f"--log-file={vlog}", f"--suppressions={SUPP}"),
                      env={"COREKUBE_NETWORK_IP_MASQ": "yes"})
    node.wait_state("ready", timeout=180)
    assert "masquerade" in node.exec("nft", "list", "table", "ip", "corekube").stdout

    # The peer is programmed: its FDB entry on flannel.1 (peers may follow
    # the ready state).
    def fdb():
        return node.exec("bridge", "fdb", "show", "dev", "flannel.1").stdout
    wait_until(lambda: "02:42:c0:a8:03:0c dst 192.168.3.12" in fdb(), 60, "the peer's FDB entry")
    # A peer arriving while running goes through the watch path too.
    node.etcdctl("put", "/coreos.com/network/subnets/10.244.98.0-24",
                 PEER.replace("192.168.3.12", "192.168.3.13").replace(":0c", ":0d"))
    node.etcdctl("del", "/coreos.com/network/subnets/10.244.99.0-24")
    wait_until(lambda: "192.168.3.13" in fdb() and "192.168.3.12" not in fdb(), 60, "the watched peer change")

    rc = stop(node.agent, signal.SIGTERM, timeout=120)
    with open(vlog) as f:
        report = f.read()
    assert rc == 0, f"exit {rc}\n{report}\n{node.log()}"
    m = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    assert m and m.group(1) == "0", report
    assert re.search(r"definitely lost: 0 bytes|All heap blocks were freed", report), report
    assert "Memcheck" in report and "Stopping" in node.log()

# SPDX-License-Identifier: Apache-2.0
"""ns_bridge_remove_stale() against the real kernel (ns-tool bridge-stale):
cni0 goes only when it carries addresses and none is the current gateway."""

from test_netsetup import netns  # noqa: F401 (the fixture)
from test_netsetup import TOOL  # noqa: F401
import pytest

pytestmark = pytest.mark.skipif(not TOOL, reason="NS_TOOL not set (run through meson test)")


def stale(ns, subnet):
    return ns.tool("bridge-stale", "cni0", subnet=subnet, addr=None)


def test_bridge_with_the_old_gateway_is_deleted(netns):
    ns = netns("cnibr")
    ns.ip("link", "add", "cni0", "type", "bridge")
    ns.ip("addr", "add", "10.244.94.1/24", "dev", "cni0")
    assert stale(ns, "10.244.95.0/24")["deleted"] == "1"
    assert not ns.has_link("cni0")
    # Gone: nothing to do.
    assert stale(ns, "10.244.95.0/24")["deleted"] == "0"


def test_bridge_on_the_current_gateway_is_kept(netns):
    ns = netns("cnibr")
    ns.ip("link", "add", "cni0", "type", "bridge")
    ns.ip("addr", "add", "10.244.94.1/24", "dev", "cni0")
    before = ns.ifindex("cni0")
    assert stale(ns, "10.244.94.0/24")["deleted"] == "0"
    assert ns.ifindex("cni0") == before
    # Beside an old address the current one still keeps it: the plugin
    # added ours, the rest is not netsetup's to judge.
    ns.ip("addr", "add", "10.244.93.1/24", "dev", "cni0")
    assert stale(ns, "10.244.93.0/24")["deleted"] == "0"


def test_bridge_without_address_or_not_a_bridge_is_kept(netns):
    ns = netns("cnibr")
    ns.ip("link", "add", "cni0", "type", "bridge")
    assert stale(ns, "10.244.95.0/24")["deleted"] == "0"
    assert ns.has_link("cni0")
    ns.ip("link", "del", "cni0")
    ns.ip("link", "add", "cni0", "type", "veth", "peer", "name", "cni0p")
    ns.ip("addr", "add", "10.244.94.1/24", "dev", "cni0")
    assert stale(ns, "10.244.95.0/24")["deleted"] == "0"
    assert ns.has_link("cni0")

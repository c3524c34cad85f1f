# SPDX-License-Identifier: Apache-2.0
"""The Debian package, built as a packager would (packaging/build-deb.sh: a
copy of the tree, `dpkg-buildpackage -us -uc -b`): lintian reports no error
or warning, it holds exactly the files it should, and the service is gated on
a configuration existing."""
import os
import pathlib
import re
import shutil
import tempfile

import pytest

from conftest import SRCDIR, run

EXPECTED = {
    "etc/corekube/", "etc/corekube/agent.conf.d/", "etc/corekube/agent.conf.example",
    "lib/", "lib/systemd/", "lib/systemd/system/",
    "lib/systemd/system/corekube-agent.service",
    "lib/systemd/system/docker.service.d/", "lib/systemd/system/docker.service.d/40-flannel.conf",
    "lib/systemd/system/kube-apiserver.service", "lib/systemd/system/kube-controller-manager.service",
    "lib/systemd/system/kube-scheduler.service", "lib/systemd/system/kubelet.service",
    "lib/systemd/system/kube-proxy.service",
    "usr/", "usr/lib/", "usr/lib/tmpfiles.d/", "usr/lib/tmpfiles.d/corekube-agent.conf",
    "usr/sbin/", "usr/sbin/corekube-agent",
    "usr/share/", "usr/share/doc/", "usr/share/doc/corekube-agent/",
    "usr/share/doc/corekube-agent/README.md", "usr/share/doc/corekube-agent/changelog.gz",
    "usr/share/doc/corekube-agent/copyright",
    "usr/share/man/", "usr/share/man/man5/", "usr/share/man/man5/corekube-agent.conf.5.gz",
    "usr/share/man/man8/", "usr/share/man/man8/corekube-agent.8.gz",
    "etc/",
}


@pytest.fixture(scope="module")
def deb():
    out = tempfile.mkdtemp(prefix="ckb-deploy-deb-")
    try:
        r = run(os.path.join(SRCDIR, "packaging", "build-deb.sh"), out)
        assert r.returncode == 0, r.stderr
        path = r.stdout.strip()
        assert re.fullmatch(r".*/corekube-agent_0\.1\.0_[a-z0-9]+\.deb", path), path
        yield path
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_lintian_clean(deb):
    changes = [f for f in os.listdir(os.path.dirname(deb)) if f.endswith(".changes")]
    assert len(changes) == 1
    r = run("lintian", "--fail-on", "error,warning", os.path.join(os.path.dirname(deb), changes[0]))
    tags = [l for l in r.stdout.splitlines() if re.match(r"[EW]: ", l)]
    assert r.returncode == 0 and tags == [], r.stdout + r.stderr


def test_file_list(deb):
    listing = run("dpkg-deb", "-c", deb).stdout
    paths = {l.split()[5].removeprefix("./") for l in listing.splitlines()} - {""}
    # dh_compress compresses documentation over 4 kB: either form is right.
    paths = {p.removesuffix(".gz") if p.endswith("README.md.gz") else p for p in paths}
    assert paths == EXPECTED
    mode = {l.split()[5]: l.split()[0] for l in listing.splitlines()}
    assert mode["./usr/sbin/corekube-agent"] == "-rwxr-xr-x"


def test_conffiles_and_no_live_config(deb, tmpdir_clean):
    tmp = pathlib.Path(tmpdir_clean)
    run("dpkg-deb", "-e", deb, str(tmp / "ctl"))
    with open(tmp / "ctl" / "conffiles") as f:
        assert f.read().split() == ["/etc/corekube/agent.conf.example"]
    assert "etc/corekube/agent.conf" not in EXPECTED


def test_service_gated_on_config(deb, tmpdir_clean):
    tmp = pathlib.Path(tmpdir_clean)
    assert run("dpkg-deb", "-x", deb, str(tmp / "x")).returncode == 0
    with open(tmp / "x" / "lib/systemd/system/corekube-agent.service") as f:
        unit = f.read()
    assert "\nConditionPathExists=/etc/corekube/agent.conf\n" in unit
    run("dpkg-deb", "-e", deb, str(tmp / "ctl"))
    with open(tmp / "ctl" / "postinst") as f:
        postinst = f.read()
    # Enabled and started only as corekube-agent.service; the role units
    # are the agent's to start.
    assert "deb-systemd-helper enable 'corekube-agent.service'" in postinst
    assert "kubelet" not in postinst


def test_control_fields(deb):
    info = run("dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Recommends").stdout
    assert "Package: corekube-agent" in info and "Version: 0.1.0" in info
    for lib in ("libcurl4", "libjson-c5", "libnl-3-200", "libnl-route-3-200", "libnftables1", "libsystemd0"):
        assert lib in info
    assert "Recommends: docker.io" in info

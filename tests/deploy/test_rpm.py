# SPDX-License-Identifier: Apache-2.0
"""packaging/corekube-agent.spec: rpmspec parses it, and rpmbuild (Debian's
rpm, build dependencies not checked) builds a package with the same files
as the .deb."""
import glob
import os
import subprocess

from conftest import SRCDIR, run

SPEC = os.path.join(SRCDIR, "packaging", "corekube-agent.spec")
EXPECTED = {
    "/etc/corekube/agent.conf.d", "/etc/corekube/agent.conf.example",
    "/usr/lib/systemd/system/corekube-agent.service", "/usr/lib/systemd/system/docker.service.d",
    "/usr/lib/systemd/system/docker.service.d/40-flannel.conf",
    "/usr/lib/systemd/system/kube-apiserver.service", "/usr/lib/systemd/system/kube-controller-manager.service",
    "/usr/lib/systemd/system/kube-scheduler.service", "/usr/lib/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kube-proxy.service", "/usr/lib/tmpfiles.d/corekube-agent.conf",
    "/usr/sbin/corekube-agent", "/usr/share/man/man5/corekube-agent.conf.5", "/usr/share/man/man8/corekube-agent.8",
}


def test_rpmspec_parses():
    r = run("rpmspec", "-P", SPEC)
    assert r.returncode == 0, r.stderr
    assert "Version:        0.1.0" in r.stdout
    assert "%config(noreplace) /etc/corekube/agent.conf.example" in r.stdout


def test_spec_version_is_the_project_version():
    with open(os.path.join(SRCDIR, "meson.build")) as f:
        meson = f.read()
    assert "version : '0.1.0'" in meson


def test_rpmbuild(tmpdir_clean):
    top = os.path.join(tmpdir_clean, "rpmbuild")
    os.makedirs(os.path.join(top, "SOURCES"))
    files = subprocess.run(["git", "-C", SRCDIR, "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split()
    files = [f for f in files if os.path.isfile(os.path.join(SRCDIR, f))]
    tarball = os.path.join(top, "SOURCES", "corekube-agent-0.1.0.tar.gz")
    r = run("tar", "-C", SRCDIR, "-czf", tarball, "--transform", "s,^,corekube-agent-0.1.0/,", *files)
    assert r.returncode == 0, r.stderr
    r = run("rpmbuild", "--define", f"_topdir {top}", "--nodeps", "-bb", SPEC)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rpms = glob.glob(os.path.join(top, "RPMS", "*", "corekube-agent-0.1.0-1.*.rpm"))
    assert len(rpms) == 1, rpms
    rpm = rpms[0]
    listed = set(run("rpm", "-qlp", rpm).stdout.split())
    listed = {p for p in listed if not p.startswith(("/usr/lib/.build-id", "/usr/share/doc", "/usr/share/licenses"))}
    listed.discard("/etc/corekube")
    assert {p.removesuffix(".gz") for p in listed} == EXPECTED

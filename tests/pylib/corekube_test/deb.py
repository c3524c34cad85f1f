# SPDX-License-Identifier: Apache-2.0
"""Debian packages for upgrade tests: the suite's own .deb repacked
unchanged at a higher version, so that `dpkg -i` of it on a node is an
upgrade (prerm/postinst of an upgrade run, the postinst restarts the agent)
of exactly the code under test."""

import os
import re
import shutil
import subprocess
import tempfile

from .proc import run


def deb_field(deb, field):
    """A control field of a .deb (dpkg-deb -f)."""
    return run("dpkg-deb", "-f", deb, field).stdout.strip()


def version_gt(a, b):
    """Debian version a > b (dpkg --compare-versions)."""
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


def repack_deb(deb, out_dir, version=None, suffix="+repack1"):
    """Repacks DEB into OUT_DIR with Version set to VERSION (default: its
    own version + SUFFIX), every file and maintainer script unchanged.
    Returns (path, version). VERSION must sort after the package's own."""
    old = deb_field(deb, "Version")
    new = version or old + suffix
    if not version_gt(new, old):
        raise ValueError(f"{new} does not sort after {old}")
    work = tempfile.mkdtemp(prefix="repack-", dir=out_dir)
    try:
        root = os.path.join(work, "root")
        run("dpkg-deb", "-R", deb, root, timeout=120)
        control = os.path.join(root, "DEBIAN", "control")
        with open(control) as f:
            text = f.read()
        text, n = re.subn(r"^Version: .*$", f"Version: {new}", text, count=1, flags=re.M)
        assert n == 1, f"no Version field in {deb}'s control"
        with open(control, "w") as f:
            f.write(text)
        name, arch = deb_field(deb, "Package"), deb_field(deb, "Architecture")
        out = os.path.join(out_dir, f"{name}_{new}_{arch}.deb")
        run("dpkg-deb", "--root-owner-group", "-Zgzip", "-b", root, out, timeout=120)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert deb_field(out, "Version") == new
    return out, new

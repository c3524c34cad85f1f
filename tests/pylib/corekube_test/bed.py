# SPDX-License-Identifier: Apache-2.0
"""The nspawn test bed (tests/bed/bed.sh, tests/bed/README.md) from Python:
one bed named after a prefix and our pid, its state and data under a
temporary directory in /var/tmp, removed by down()."""

import os
import shutil
import subprocess
import tempfile
import time

BED_SH = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "..", "..", "bed", "bed.sh"))


class Bed:
    def __init__(self, prefix, timeout=300):
        self.name = f"{prefix}{os.getpid()}"[:16]
        self.tmp = tempfile.mkdtemp(prefix=f"ckb-{self.name}-", dir="/var/tmp")
        self.state = os.path.join(self.tmp, "state")
        self.data = os.path.join(self.tmp, "data")
        self.env = dict(os.environ, CKB_STATE_DIR=self.state, CKB_DATA_DIR=self.data)
        self.timeout = timeout
        self.timings = {}

    def run(self, *args, check=True, timeout=None):
        """bed.sh ARGS for this bed; raises AssertionError if check and it failed."""
        r = subprocess.run([BED_SH, "-b", self.name, *args], env=self.env, capture_output=True,
                           text=True, timeout=timeout or self.timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"bed.sh {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def timed(self, label, *args, **kw):
        """run(), its wall time kept in self.timings[label] (printed, not asserted)."""
        start = time.monotonic()
        r = self.run(*args, **kw)
        self.timings[label] = time.monotonic() - start
        return r

    def sh(self, node, script, check=True):
        """A shell script inside a node (all its namespaces)."""
        return self.run("exec", node, "/bin/sh", "-ec", script, check=check)

    def out(self, node, script):
        return self.sh(node, script).stdout.strip()

    def down(self):
        """Removes the bed and our directory; bed.sh's result."""
        r = self.run("down", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return r

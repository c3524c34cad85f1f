# SPDX-License-Identifier: Apache-2.0
import os
import shutil
import subprocess
import tempfile

import pytest

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


@pytest.fixture
def tmpdir_clean():
    d = tempfile.mkdtemp(prefix="ckb-deploy-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def agent_bin():
    path = os.environ.get("AGENT_BIN")
    assert path and os.access(path, os.X_OK), "AGENT_BIN must name the built corekube-agent"
    return path

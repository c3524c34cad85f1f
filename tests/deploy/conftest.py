# SPDX-License-Identifier: Apache-2.0
import os
import subprocess

import pytest

from corekube_test.proc import temp_dir

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


@pytest.fixture
def tmpdir_clean():
    with temp_dir("ckb-deploy-") as d:
        yield d


@pytest.fixture(scope="session")
def agent_bin():
    path = os.environ.get("AGENT_BIN")
    assert path and os.access(path, os.X_OK), "AGENT_BIN must name the built corekube-agent"
    return path

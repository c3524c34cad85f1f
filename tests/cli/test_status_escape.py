# SPDX-License-Identifier: Apache-2.0
"""`status` against a real etcd holding a hostile machine record (issue 15):
ESC, BEL, DEL, a C1 control and invalid UTF-8 in its name and error never
reach the terminal. The table writes them as \\xHH, --json as \\u00XX (and
stays valid JSON), --wait's failure message escapes them too."""

import base64
import json
import os
import re
import subprocess

import pytest

from corekube_test.etcd import Etcd
from corekube_test.machineid import app_specific
from corekube_test.proc import temp_dir

AGENT = os.environ.get("AGENT_BIN", "")

# The record's JSON text: C0 and C1 as JSON escapes (json-c decodes them to
# the raw bytes), invalid UTF-8 and DEL as raw bytes (json-c takes them as
# they are). "n\u00f6de": valid UTF-8 that must pass through.
NAME = b"evil\\u001b]0;pwned\\u0007\\u009b31m\xff\xc0\x80-n\\u00f6de"
ERROR = b"boom\\u001b[2J\x7f\xc2\x85end"
# What the table shows for them ...
NAME_TEXT = "evil\\x1b]0;pwned\\x07\\xc2\\x9b31m\\xff\\xc0\\x80-n\u00f6de"
ERROR_TEXT = "boom\\x1b[2J\\x7f\\xc2\\x85end"
# ... and what --json decodes to (an invalid byte 0xHH as U+00HH).
NAME_JSON = "evil\x1b]0;pwned\x07\x9b31m\xff\xc0\x80-n\u00f6de"
ERROR_JSON = "boom\x1b[2J\x7f\x85end"


@pytest.fixture(scope="module")
def etcd():
    with temp_dir("test-cli-status-") as d:
        e = Etcd(d)
        e.start()
        try:
            yield e, d
        finally:
            e.stop()


def put_raw(e, key, value):
    e.api("/kv/put", {"key": base64.b64encode(key.encode()).decode(),
                      "value": base64.b64encode(value).decode()})


def host_machine_id():
    """--wait reads our record, named by /etc/machine-id; without one, any ID."""
    try:
        with open("/etc/machine-id") as f:
            mid = f.read().strip()
    except OSError:
        mid = ""
    return mid if re.fullmatch(r"[0-9a-f]{32}", mid) else None


def status(e, d, *args):
    conf = os.path.join(d, "agent.conf")
    with open(conf, "w") as f:
        f.write(f"[node]\nrole = minion\nname = viewer\ninterface = lo\naddress = 192.168.3.2/24\n\n"
                f"[etcd]\nendpoints = {e.local_url}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREKUBE_") and k != "JOURNAL_STREAM"}
    return subprocess.run([AGENT, "status", "-c", conf, *args], capture_output=True, timeout=60, env=env)


def assert_terminal_safe(out):
    """No control but newline, no DEL, no C1, valid UTF-8."""
    text = out.decode("utf-8")          # raises on invalid UTF-8
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    assert not bad, (bad, out)


@pytest.fixture(scope="module")
def hostile(etcd):
    e, d = etcd
    mid = app_specific(host_machine_id() or "0123456789abcdef0123456789abcdef")
    record = (b'{"id": "' + mid.encode() + b'", "name": "' + NAME +
              b'", "role": "minion", "ip": "192.168.3.7", "subnet": "10.244.7.0/24", '
              b'"state": "failed", "error": "' + ERROR + b'"}')
    put_raw(e, f"/corekube/machines/{mid}", record)
    return e, d


def test_table_escapes(hostile):
    p = status(*hostile)
    assert p.returncode == 0, p.stderr
    assert_terminal_safe(p.stdout)
    out = p.stdout.decode()
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "ROLE", "IP", "SUBNET", "STATE", "UNITS", "SEEN"], out
    assert rows[1][:5] == [NAME_TEXT, "minion", "192.168.3.7", "10.244.7.0/24", "failed"], out
    assert f"{NAME_TEXT}: {ERROR_TEXT}\n" in out


def test_json_escapes(hostile):
    p = status(*hostile, "--json")
    assert p.returncode == 0, p.stderr
    assert_terminal_safe(p.stdout)
    assert b"\\u001b" in p.stdout and b"\\u009b" in p.stdout and b"\\u00ff" in p.stdout
    doc = json.loads(p.stdout)
    [m] = doc["machines"]
    assert (m["name"], m["error"], m["state"]) == (NAME_JSON, ERROR_JSON, "failed")


@pytest.mark.skipif(host_machine_id() is None, reason="no /etc/machine-id for --wait")
def test_wait_failure_escapes(hostile):
    p = status(*hostile, "--wait=30s")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert_terminal_safe(p.stderr)
    assert f"Node {NAME_TEXT} failed: {ERROR_TEXT}" in p.stderr.decode(), p.stderr

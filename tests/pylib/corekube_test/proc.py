# SPDX-License-Identifier: Apache-2.0
"""Commands and the processes a test started (stopped by PID only)."""

import shutil
import signal
import socket
import subprocess
import tempfile
from contextlib import contextmanager


def run(*cmd, check=True, timeout=30, input=None):
    """Runs cmd with its output captured as text; raises AssertionError if
    check and it failed."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr.strip()}")
    return r


def stop(proc, sig=signal.SIGTERM, timeout=30):
    """Stops a process we started (sig, then SIGKILL after timeout);
    returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def kill(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@contextmanager
def temp_dir(prefix, dir=None):
    """A temporary directory removed on every exit path."""
    d = tempfile.mkdtemp(prefix=prefix, dir=dir)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_port():
    """A loopback TCP port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


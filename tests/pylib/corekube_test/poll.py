# SPDX-License-Identifier: Apache-2.0
"""Poll until a condition holds or a deadline passes: the one way the suites
wait for something that has no event to wait on."""

import time


def wait_until(cond, timeout, what="condition", diag=None, interval=0.1, retry_on=()):
    """Calls cond() until it returns a true value and returns that value.

    diag: called at the deadline for text to add (a log). retry_on:
    exception types that mean "not yet" (a probe that explains itself by
    raising while things settle); the last one is quoted at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
        except retry_on as e:
            v, last = None, e
        if v:
            return v
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout} s waiting for {what}"
            if last is not None:
                msg += f" (last: {last!r})"
            if diag:
                msg += f"\n{diag()}"
            raise AssertionError(msg)
        time.sleep(interval)

# SPDX-License-Identifier: Apache-2.0
"""A network namespace the test creates (name holding the pid) and deletes."""

import json

from .proc import run


class Netns:
    def __init__(self, name):
        self.name = name
        run("ip", "netns", "add", name)
        try:
            run("ip", "-n", name, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def ip(self, *args, check=True):
        return run("ip", "-n", self.name, *args, check=check)

    def ipj(self, *args):
        out = run("ip", "-j", "-n", self.name, *args).stdout
        return json.loads(out) if out.strip() else []

    def bridgej(self, *args):
        out = run("bridge", "-j", "-n", self.name, *args).stdout
        return json.loads(out) if out.strip() else []

    def exec(self, *cmd, check=True, timeout=30, input=None):
        return run("ip", "netns", "exec", self.name, *cmd, check=check, timeout=timeout, input=input)

    def has_link(self, dev):
        return self.ip("link", "show", "dev", dev, check=False).returncode == 0

    def delete(self):
        run("ip", "netns", "del", self.name, check=False)

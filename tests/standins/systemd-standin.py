#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A STAND-IN FOR SYSTEMD, not systemd: it owns org.freedesktop.systemd1 on a
private bus (a dbus-daemon the test starts) and answers the few Manager and
Unit calls corekube-agent makes (unit-control.c), so that a test can make
them fail in ways real systemd cannot be made to on demand: a property read
that errors, a start job that ends "failed", a restart job held open.

What it does answer, it answers as systemd does: Get and GetAll per
interface (the Service interface only on services), and on every state
change PropertiesChanged for the unit's type interface first, then for Unit
(src/core/dbus-unit.c), each carrying its EMITS_CHANGE properties.

It is used only where the real systemd (tests/bed) cannot produce the fault.
Nothing runs: a "started" unit is a state in this process.

  systemd-standin.py CONTROL LOG

CONTROL (JSON, read again on every call, so a test can change it):
  "get_failures": {"docker.service/ActiveState": 3}   fail the first 3 calls
                               that read it (Get of it, GetAll of its interface)
  "job_results": {"kubelet.service": ["failed", ...]}  results of the first
                                                       jobs, then "done"
  "hold": ["docker.service"]   jobs of these units stay running until the
                               unit leaves the list (the test rewrites
                               CONTROL and sends SIGUSR1)
  "env_file": PATH             read when a job of docker.service runs, as
                               dockerd reads docker_opts.env when it starts
LOG: one JSON object a line per call and per job run ("ready" first)."""

import json
import os
import signal
import sys
import time

import dbus
import dbus.lowlevel
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

PATH = "/org/freedesktop/systemd1"
MGR = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
PROPS = "org.freedesktop.DBus.Properties"

control_path, log_path = sys.argv[1], sys.argv[2]


def control():
    try:
        with open(control_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def log(**kw):
    with open(log_path, "a") as f:
        f.write(json.dumps(kw) + "\n")


def unit_path(name):
    """sd_bus_path_encode(): every byte but [A-Za-z0-9] as _xx."""
    return PATH + "/unit/" + "".join(c if c.isalnum() else "_%02x" % ord(c) for c in name)


def unit_name(rel):
    out, i = "", 0
    while i < len(rel):
        if rel[i] == "_":
            out += chr(int(rel[i + 1:i + 3], 16))
            i += 3
        else:
            out += rel[i]
            i += 1
    return out


class Unit:
    def __init__(self):
        self.active, self.sub, self.result, self.started = "inactive", "dead", "success", 0
        self.jobs = 0           # jobs run so far (for job_results)


units = {}
gets = {}
queue = []                      # [(job id, path, unit)] in order
next_job = [1]


def unit(name):
    return units.setdefault(name, Unit())


def signal_msg(path, iface, member, sig, *args):
    m = dbus.lowlevel.SignalMessage(path, iface, member)
    m.append(*args, signature=sig)
    bus.send_message(m)


def properties(name, iface):
    """The interface's properties of the unit, as GetAll returns them; None
    when the unit has no such interface."""
    u = unit(name)
    if iface == UNIT:
        return {"Id": dbus.String(name), "ActiveState": dbus.String(u.active), "SubState": dbus.String(u.sub)}
    if iface == SERVICE and name.endswith(".service"):
        return {"Result": dbus.String(u.result), "ExecMainStartTimestamp": dbus.UInt64(u.started)}
    return None


EMITS_CHANGE = {UNIT: ("ActiveState", "SubState"), SERVICE: ("Result",)}


def set_state(name, active, sub, result):
    u = unit(name)
    u.active, u.sub, u.result = active, sub, result
    # The type's interface first, then Unit, as systemd does.
    for iface in (SERVICE, UNIT):
        props = properties(name, iface)
        if props is not None:
            signal_msg(unit_path(name), PROPS, "PropertiesChanged", "sa{sv}as", iface,
                       {k: props[k] for k in EMITS_CHANGE[iface]}, dbus.Array([], "s"))


def run_queue():
    """Runs the jobs in order, the first one held while its unit is in "hold"."""
    held = control().get("hold", [])
    while queue:
        jid, path, name = queue[0]
        u = unit(name)
        if not getattr(u, "running", None) == jid:
            # The job starts: the unit's process reads its environment now.
            u.running = jid
            env = None
            if name == "docker.service" and control().get("env_file"):
                try:
                    with open(control()["env_file"]) as f:
                        env = f.read()
                except OSError:
                    pass
            log(event="job-run", job=jid, unit=name, env=env)
            set_state(name, "activating", "start", "success")
        if name in held:
            log(event="job-held", job=jid, unit=name)
            return
        queue.pop(0)
        results = control().get("job_results", {}).get(name, [])
        result = results[u.jobs] if u.jobs < len(results) else "done"
        u.jobs += 1
        if result == "done":
            u.started = int(time.time() * 1e6)
            set_state(name, "active", "running", "success")
        else:
            set_state(name, "failed", "failed", "exit-code")
        log(event="job-removed", job=jid, unit=name, result=result)
        signal_msg(PATH, MGR, "JobRemoved", "uoss", dbus.UInt32(jid), dbus.ObjectPath(path), name, result)


class Manager(dbus.service.Object):
    @dbus.service.method(MGR, in_signature="", out_signature="")
    def Subscribe(self):
        log(event="call", method="Subscribe")

    def _job(self, method, name, mode):
        jid = next_job[0]
        next_job[0] += 1
        path = f"{PATH}/job/{jid}"
        log(event="call", method=method, unit=name, mode=mode, job=jid)
        queue.append((jid, path, name))
        # systemd answers the call before it sends JobRemoved.
        GLib.idle_add(lambda: run_queue() and False)
        return dbus.ObjectPath(path)

    @dbus.service.method(MGR, in_signature="ss", out_signature="o")
    def StartUnit(self, name, mode):
        return self._job("StartUnit", name, mode)

    @dbus.service.method(MGR, in_signature="ss", out_signature="o")
    def RestartUnit(self, name, mode):
        return self._job("RestartUnit", name, mode)

    @dbus.service.method(MGR, in_signature="s", out_signature="")
    def ResetFailedUnit(self, name):
        log(event="call", method="ResetFailedUnit", unit=name)


def failing(name, props):
    """Counts a read of each of props; true while one of them is to fail."""
    fail = False
    for p in props:
        key = f"{name}/{p}"
        gets[key] = gets.get(key, 0) + 1
        fail = fail or gets[key] <= control().get("get_failures", {}).get(key, 0)
    return fail


def no_interface(iface):
    return dbus.exceptions.DBusException(f"stand-in: no interface {iface}",
                                         name="org.freedesktop.DBus.Error.UnknownInterface")


class Units(dbus.service.FallbackObject):
    @dbus.service.method(PROPS, in_signature="ss", out_signature="v", rel_path_keyword="rel")
    def Get(self, iface, prop, rel=None):
        name = unit_name(rel.lstrip("/"))
        fail = failing(name, [prop])
        log(event="call", method="Get", unit=name, interface=iface, property=prop, failed=fail)
        if fail:
            raise dbus.exceptions.DBusException("stand-in: this Get fails on purpose",
                                                name="org.freedesktop.DBus.Error.Failed")
        props = properties(name, iface)
        if props is None:
            raise no_interface(iface)
        if prop not in props:
            raise dbus.exceptions.DBusException(f"stand-in: no property {prop}",
                                                name="org.freedesktop.DBus.Error.UnknownProperty")
        return props[prop]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}", rel_path_keyword="rel")
    def GetAll(self, iface, rel=None):
        name = unit_name(rel.lstrip("/"))
        props = properties(name, iface)
        fail = failing(name, props or [])
        log(event="call", method="GetAll", unit=name, interface=iface, failed=fail)
        if fail:
            raise dbus.exceptions.DBusException("stand-in: this GetAll fails on purpose",
                                                name="org.freedesktop.DBus.Error.Failed")
        if props is None:
            raise no_interface(iface)
        return dbus.Dictionary(props, signature="sv")


DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
name = dbus.service.BusName("org.freedesktop.systemd1", bus)
Manager(bus, PATH)
Units(bus, PATH + "/unit")
loop = GLib.MainLoop()
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, lambda: run_queue() or True)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
log(event="ready")
print("ready", flush=True)
loop.run()

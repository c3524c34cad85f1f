# SPDX-License-Identifier: Apache-2.0
"""kube-standin on the host's loopback: these are STAND-INS for the Kubernetes
binaries (which cannot be had here), not Kubernetes.  Checks the apiserver
stand-in's registration rules, the idle modes and the failure switch."""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from corekube_test.poll import wait_until
from corekube_test.proc import free_port, temp_dir

STANDIN = os.environ["KUBE_STANDIN"]


@pytest.fixture
def tmp():
    with temp_dir("ckb-standin-") as d:
        yield d


def link(tmp, name):
    """The stand-in picks its mode from argv[0], as when installed as /opt/bin/NAME."""
    p = os.path.join(tmp, name)
    os.symlink(STANDIN, p)
    return p


def env_for(tmp, **extra):
    env = dict(os.environ, KUBE_STANDIN_DIR=os.path.join(tmp, "state"),
               KUBE_STANDIN_ETC=os.path.join(tmp, "etc"))
    env.pop("KUBE_STANDIN_FAIL", None)
    env.update(extra)
    return env


class Apiserver:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.exe = link(tmp, "kube-apiserver")

    def start(self):
        self.proc = subprocess.Popen(
            [self.exe, "--address=127.0.0.1", f"--port={self.port}", "--portal_net=10.1.0.0/16",
             "--logtostderr=true"],
            env=env_for(self.tmp), stderr=subprocess.PIPE, text=True)
        wait_until(self.healthy, 10, "apiserver stand-in to listen")

    def healthy(self):
        assert self.proc.poll() is None, self.proc.stderr.read()
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=10)
            assert rc == 0
        return self.proc.stderr.read() if self.proc else ""

    def post(self, body):
        req = urllib.request.Request(self.base + "/api/v1beta1/minions", data=body.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def minions(self):
        with urllib.request.urlopen(self.base + "/api/v1beta1/minions", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture
def apiserver(tmp):
    a = Apiserver(tmp)
    yield a
    a.stop()


def minion(ip):
    return json.dumps({"kind": "Minion", "id": ip, "hostIP": ip, "apiVersion": "v1beta1"})


def test_apiserver_registration_201_then_409(apiserver):
    apiserver.start()
    assert apiserver.post(minion("192.168.3.12"))[0] == 201
    code, body = apiserver.post(minion("192.168.3.12"))
    assert code == 409
    assert json.loads(body)["reason"] == "AlreadyExists"
    assert apiserver.post(minion("192.168.3.13"))[0] == 201
    items = apiserver.minions()["items"]
    assert [m["id"] for m in items] == ["192.168.3.12", "192.168.3.13"]
    assert items[0]["hostIP"] == "192.168.3.12"


def test_apiserver_rejects_bad_bodies(apiserver):
    apiserver.start()
    assert apiserver.post("not json")[0] == 400
    assert apiserver.post(json.dumps({"kind": "Minion"}))[0] == 400
    assert apiserver.post(json.dumps({"id": ""}))[0] == 400
    assert apiserver.minions()["items"] == []
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(apiserver.base + "/api/v1beta1/pods", timeout=5)
    assert e.value.code == 404


def test_apiserver_records_survive_restart(apiserver):
    apiserver.start()
    assert apiserver.post(minion("192.168.3.12"))[0] == 201
    apiserver.stop()
    with open(os.path.join(apiserver.tmp, "state", "minions.jsonl")) as f:
        assert [json.loads(line)["id"] for line in f] == ["192.168.3.12"]
    apiserver.start()
    assert apiserver.post(minion("192.168.3.12"))[0] == 409


def test_kubectl_get_minions(apiserver):
    apiserver.start()
    assert apiserver.post(minion("192.168.3.12"))[0] == 201
    out = subprocess.run([link(apiserver.tmp, "kubectl"), "-s", apiserver.base, "get", "minions"],
                         env=env_for(apiserver.tmp), capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["items"][0]["id"] == "192.168.3.12"


@pytest.mark.parametrize("name", ["kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager"])
def test_idle_modes_stay_up_and_log_arguments(tmp, name):
    p = subprocess.Popen([link(tmp, name), "--master=192.168.3.11:8080"], env=env_for(tmp),
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "stand-in" in line and "--master=192.168.3.11:8080" in line
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_failure_switch_file_and_env(tmp):
    kubelet = link(tmp, "kubelet")
    os.makedirs(os.path.join(tmp, "etc"))
    flag = os.path.join(tmp, "etc", "fail-kubelet")
    open(flag, "w").close()
    r = subprocess.run([kubelet], env=env_for(tmp), capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "failing on purpose" in r.stderr
    os.unlink(flag)
    r = subprocess.run([kubelet], env=env_for(tmp, KUBE_STANDIN_FAIL="1"), capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1 and "KUBE_STANDIN_FAIL" in r.stderr

# SPDX-License-Identifier: Apache-2.0
"""Issue 5 end to end: `corekube-agent run` as the systemd service of nodes
booted with real systemd in systemd-nspawn (tests/bed/bed.sh), against a real
etcd, a real Docker engine and an HTTP artifact server.  Everything is checked
from outside the agent: systemctl, journalctl, ip, docker, etcdctl.

The Kubernetes binaries are STAND-INS (tests/standins/kube-standin.c), not
Kubernetes, which cannot be had here; the agent downloads them from the
artifact server under the real names and checks their sha256.

Nodes (each boots with corekube-agent.service enabled and /opt/bin empty):
  master    192.168.3.11  the normal case, then restarts, SIGKILL, status, leave
  minion-1  192.168.3.12  its kubelet stand-in's fail switch is on at boot
  minion-2  192.168.3.13  kube-proxy's configured sha256 is wrong

Needs root.  The bed is named after our PID, lives in namespaces of its own
and is removed by `bed.sh down` on every exit path."""

import base64
import hashlib
import ipaddress
import json
import os
import re
import subprocess

import pytest

import corekube_test.bed
from corekube_test.machineid import app_specific
from corekube_test.poll import wait_until

ETCD = "http://192.168.3.2:2379"
AGENT = "corekube-agent.service"
MASTER_UNITS = ["kube-apiserver.service", "kube-controller-manager.service", "kube-scheduler.service"]
MASTER_ARTIFACTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]

# agent/message-ids.h
MID = {
    "registered": "b8cf6553c38a4cc09e7029404bc5ccd2",
    "lease": "2a155d7a46de4e18884ea39c2571bd13",
    "overlay": "be5a490530fbfe7fa6341dc3b3aec06c",
    "files": "f803505a4177f7c652872ec323d4e32a",
    "docker": "af1ff278bec7875d8c6f4475b81fb4ab",
    "artifact": "6713c51212c064e51748b8295f9cd150",
    "unit_started": "932fb70e53c2da8bff6c4692d848c0ff",
    "unit_failed": "7de28bb782a89f9a5609103753afd500",
    "ready": "55bbe08da66a1b049c31d9b0d47824dd",
    "node_failed": "08d4a8c9d3bc5efaf2eb8284afc6c58c",
}
# systemd's own "Started <unit>" (catalog SD_MESSAGE_UNIT_STARTED).
MID_SYSTEMD_STARTED = "39f53479d3a045ac8e11786248231fbf"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bed needs root")


def agent_has_verb(verb):
    """Whether `corekube-agent --help` lists VERB (status and leave are
    written in parallel; their tests wait for them)."""
    exe = os.environ.get("COREKUBE_AGENT")
    if not exe:
        return False
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    return re.search(rf"^\s+{verb}\b", r.stdout + r.stderr, re.M) is not None


class Bed(corekube_test.bed.Bed):
    def __init__(self):
        super().__init__("e2e")
        self.nodes = set()

    def add_node(self, name, role, ip, *options):
        self.run("node-add", name, role, ip, "--agent", "--no-standins", *options)
        self.nodes.add(name)

    def show(self, node, unit, *props):
        out = self.out(node, f"systemctl show -p {','.join(props)} {unit}")
        return dict(line.split("=", 1) for line in out.splitlines())

    def status_text(self, node):
        return self.show(node, AGENT, "StatusText")["StatusText"]

    def journal(self, node, *matches):
        out = self.run("exec", node, "journalctl", "-q", "--no-pager", "-o", "json", *matches).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def agent_log(self, node):
        return self.run("exec", node, "journalctl", "-q", "--no-pager", "-o", "short-monotonic",
                        "-u", AGENT, check=False).stdout

    def etcd_get(self, key, prefix=False):
        args = ["fabric", "etcdctl", f"--endpoints={ETCD}", "get", key, "-w", "json"]
        if prefix:
            args.append("--prefix")
        kvs = json.loads(self.run(*args).stdout).get("kvs", [])
        return {_b64(kv["key"]): _b64(kv["value"]) for kv in kvs}

    def machine_id(self, node):
        """The ID that names the node in etcd (not the raw /etc/machine-id)."""
        return app_specific(self.out(node, "cat /etc/machine-id"))

    def record(self, node):
        v = self.etcd_get(f"/corekube/machines/{self.machine_id(node)}")
        return json.loads(next(iter(v.values()))) if v else None

    def env_file(self, node, path):
        return dict(line.split("=", 1) for line in self.out(node, f"cat {path}").splitlines() if "=" in line)

    def artifact_sums(self):
        with open(os.path.join(self.data, "artifacts", "SHA256SUMS")) as f:
            return {name: h for h, name in (line.split() for line in f)}

    def docker_starts(self, node):
        """systemd's "Started docker.service" entries: one per start of Docker."""
        return len(self.journal(node, "_PID=1", "UNIT=docker.service", f"MESSAGE_ID={MID_SYSTEMD_STARTED}"))


def _b64(s):
    return base64.b64decode(s).decode()


def wait_ready(bed, node, deadline=120):
    return wait_until(lambda: bed.status_text(node).startswith(("master: ready", "minion: ready")),
                      deadline, f"{node}'s agent to be ready", lambda: bed.agent_log(node))


def by_mid(entries, name):
    return [e for e in entries if e.get("MESSAGE_ID") == MID[name]]


@pytest.fixture(scope="module")
def bed():
    b = Bed()
    try:
        b.run("up")
        b.add_node("master", "master", "192.168.3.11")
        yield b
    finally:
        r = b.down()
        assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def master(bed):
    """The master once its agent is ready, with what its first run did."""
    wait_ready(bed, "master")
    inv = bed.show("master", AGENT, "InvocationID")["InvocationID"]
    return {"invocation": inv, "subnet": bed.record("master")["subnet"]}


# ------------------------------------------------------------ master ----

def test_status_text_and_record_say_ready(bed, master):
    text = bed.status_text("master")
    assert re.fullmatch(r"master: ready, \d+ peers, subnet 10\.24[45]\.\d+\.0/24, units 3/3 active", text), text
    rec = bed.record("master")
    assert rec["state"] == "ready" and "error" not in rec, rec
    assert rec["name"] == "master" and rec["role"] == "master" and rec["ip"] == "192.168.3.11"
    assert rec["units"] == {u: "active" for u in MASTER_UNITS}
    assert f"subnet {rec['subnet']}" in text
    # The lease in flannel's layout names us.
    lease = bed.etcd_get(f"/coreos.com/network/subnets/{rec['subnet'].replace('/', '-')}")
    assert json.loads(next(iter(lease.values())))["PublicIP"] == "192.168.3.11"


def test_journal_has_one_entry_per_milestone(bed, master):
    entries = bed.journal("master", f"_SYSTEMD_INVOCATION_ID={master['invocation']}")
    log = bed.agent_log("master")
    once = ["registered", "lease", "overlay", "files", "docker", "ready"]
    for m in once:
        assert len(by_mid(entries, m)) == 1, f"{m}: {by_mid(entries, m)}\n{log}"
    for m in once + ["artifact", "unit_started"]:
        for e in by_mid(entries, m):
            assert any(k.startswith("COREKUBE_") for k in e), e
    assert by_mid(entries, "lease")[0]["COREKUBE_SUBNET"] == master["subnet"]
    assert by_mid(entries, "ready")[0]["COREKUBE_SUBNET"] == master["subnet"]
    assert by_mid(entries, "overlay")[0]["COREKUBE_SUBNET"] == master["subnet"]
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", by_mid(entries, "overlay")[0]["COREKUBE_VTEP_MAC"])
    assert by_mid(entries, "docker")[0]["COREKUBE_UNIT"] == "docker.service"
    assert sorted(e["COREKUBE_ARTIFACT"] for e in by_mid(entries, "artifact")) == sorted(MASTER_ARTIFACTS)
    assert [e["COREKUBE_UNIT"] for e in by_mid(entries, "unit_started")] == MASTER_UNITS
    # In the order of the bring-up, and nothing went wrong on the way. The
    # registration runs beside the network, the downloads beside Docker's
    # restart (issue 13): each comes after what it needs, not after the other.
    first = {m: entries.index(by_mid(entries, m)[0]) for m in once + ["artifact", "unit_started"]}
    last_artifact = entries.index(by_mid(entries, "artifact")[-1])
    for before, after in [("lease", "overlay"), ("overlay", "files"), ("files", "docker"), ("files", "artifact"),
                          ("registered", "unit_started"), ("docker", "unit_started"), ("unit_started", "ready")]:
        assert first[before] < first[after], f"{before} after {after}\n{log}"
    assert last_artifact < first["unit_started"], log
    assert [e["MESSAGE"] for e in entries if int(e["PRIORITY"]) <= 4] == [], log


def test_artifacts_downloaded_and_installed_0755(bed, master):
    sums = bed.artifact_sums()
    for a in MASTER_ARTIFACTS:
        mode, h = bed.out("master", f"stat -c %a /opt/bin/{a}; sha256sum /opt/bin/{a} | cut -d' ' -f1").split()
        assert (mode, h) == ("755", sums[a]), a
    assert bed.out("master", "ls -a /opt/bin | grep -c download || true") == "0"


def test_docker_restarted_once_with_flannel_options(bed, master):
    env = bed.env_file("master", "/run/flannel/subnet.env")
    subnet = ipaddress.ip_interface(env["FLANNEL_SUBNET"])
    assert str(subnet.network) == master["subnet"]
    assert bed.docker_starts("master") == 1
    d = bed.show("master", "docker.service", "ActiveState", "MainPID")
    assert d["ActiveState"] == "active"
    cmdline = bed.out("master", f"tr '\\0' ' ' </proc/{d['MainPID']}/cmdline")
    assert f"--bip={env['FLANNEL_SUBNET']}" in cmdline and f"--mtu={env['FLANNEL_MTU']}" in cmdline, cmdline
    addr = json.loads(bed.out("master", "ip -j -4 addr show dev docker0"))[0]
    assert [f"{a['local']}/{a['prefixlen']}" for a in addr["addr_info"]] == [env["FLANNEL_SUBNET"]]

    bed.out("master", "docker import /usr/share/corekube-bed/busybox.tar ckb-busybox")
    cid = bed.out("master", "docker run -d ckb-busybox sleep 600")
    try:
        out = bed.out("master", f"docker exec {cid} ip -4 -o addr show dev eth0")
        ip = ipaddress.ip_interface(out.split()[3])
        assert ip.ip in subnet.network and ip.ip != subnet.ip, out
        assert bed.out("master", f"docker exec {cid} cat /sys/class/net/eth0/mtu") == env["FLANNEL_MTU"]
        # A bridge takes the smallest MTU of its ports: with a container
        # attached, docker0's is --mtu's.
        assert str(json.loads(bed.out("master", "ip -j link show dev docker0"))[0]["mtu"]) == env["FLANNEL_MTU"]
    finally:
        bed.sh("master", f"docker rm -f {cid} >/dev/null", check=False)


def test_role_units_active_and_started_in_order(bed, master):
    stamps = []
    for u in MASTER_UNITS:
        s = bed.show("master", u, "ActiveState", "ActiveEnterTimestampMonotonic")
        assert s["ActiveState"] == "active", u
        stamps.append(int(s["ActiveEnterTimestampMonotonic"]))
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
    log = bed.out("master", "journalctl -q -u kube-apiserver.service -o cat")
    assert "stand-in (not Kubernetes)" in log and f"--etcd_servers={ETCD}" in log


def test_unit_failing_after_ready_is_reported_and_recovers(bed, master):
    """The kube-scheduler stand-in exits 1 on its next start (fail switch);
    systemd's Restart=always keeps trying, the agent reports it."""
    node = "master"
    try:
        bed.sh(node, "touch /etc/kube-standin/fail-kube-scheduler; systemctl restart kube-scheduler.service || true")

        # systemd's Restart= is at it: waiting for the unit, not failed.
        def waiting():
            rec = bed.record(node)
            return rec if rec["state"] == "waiting" and rec["units"]["kube-scheduler.service"] == "failed" else None

        rec = wait_until(waiting, 60, "a waiting record", lambda: bed.agent_log(node))
        assert rec["reason"] == "unit:kube-scheduler.service", rec
        assert rec["message"] == "kube-scheduler.service: failed (exit-code)" and "error" not in rec, rec
        assert bed.status_text(node) == \
            "master: waiting (unit:kube-scheduler.service): kube-scheduler.service: failed (exit-code)"
        failures = by_mid(bed.journal(node, f"_SYSTEMD_UNIT={AGENT}"), "unit_failed")
        assert [(e["COREKUBE_UNIT"], e["COREKUBE_RESULT"]) for e in failures] == \
            [("kube-scheduler.service", "exit-code")], failures
    finally:
        bed.sh(node, "rm -f /etc/kube-standin/fail-kube-scheduler")
    wait_until(lambda: bed.record(node)["state"] == "ready", 60, "the record to be ready again",
               lambda: bed.agent_log(node))
    rec = bed.record(node)
    assert not {"error", "reason", "message"} & set(rec) and rec["units"] == {u: "active" for u in MASTER_UNITS}, rec
    wait_ready(bed, node)
    assert bed.docker_starts(node) == 1


def test_agent_restart_does_not_restart_docker(bed, master):
    pid = bed.show("master", "docker.service", "MainPID")["MainPID"]
    bed.run("exec", "master", "systemctl", "restart", AGENT)
    inv = bed.show("master", AGENT, "InvocationID")["InvocationID"]
    assert inv != master["invocation"]
    wait_ready(bed, "master")
    entries = bed.journal("master", f"_SYSTEMD_INVOCATION_ID={inv}")
    assert len(by_mid(entries, "ready")) == 1 and by_mid(entries, "docker") == []
    assert any("not restarting it" in e["MESSAGE"] for e in entries)
    assert bed.show("master", "docker.service", "MainPID")["MainPID"] == pid
    assert bed.docker_starts("master") == 1
    assert bed.record("master")["subnet"] == master["subnet"]


def test_docker_older_than_its_options_is_restarted(bed, master):
    """As if a previous run had written docker_opts.env (both copies: /run and
    the persisted one Docker reads) and died before the restart: the content
    is what the agent wants, but newer than Docker's start."""
    pid = bed.show("master", "docker.service", "MainPID")["MainPID"]
    starts = bed.docker_starts("master")
    bed.run("exec", "master", "systemctl", "stop", AGENT)
    bed.sh("master", "touch /run/flannel/docker_opts.env /var/lib/corekube/docker_opts.env")
    bed.run("exec", "master", "systemctl", "start", AGENT)
    inv = bed.show("master", AGENT, "InvocationID")["InvocationID"]
    wait_ready(bed, "master")
    entries = bed.journal("master", f"_SYSTEMD_INVOCATION_ID={inv}")
    assert len(by_mid(entries, "docker")) == 1, bed.agent_log("master")
    assert bed.docker_starts("master") == starts + 1
    assert bed.show("master", "docker.service", "MainPID")["MainPID"] != pid


SLOW_START = """mkdir -p /run/systemd/system/kube-scheduler.service.d
cat >/run/systemd/system/kube-scheduler.service.d/50-e2e-slow.conf <<'EOF'
# e2e test: a start job that lasts, so the agent can be killed while it waits.
[Service]
ExecStartPre=/bin/sleep 8
EOF
systemctl daemon-reload
"""


def test_sigkill_while_starting_units_converges(bed, master):
    pid = bed.show("master", "docker.service", "MainPID")["MainPID"]
    starts = bed.docker_starts("master")
    flannel = bed.out("master", "ip -j -d addr show dev flannel.1")
    bed.sh("master", SLOW_START + "systemctl stop kube-scheduler.service")
    try:
        bed.run("exec", "master", "systemctl", "restart", AGENT)
        inv = bed.show("master", AGENT, "InvocationID")["InvocationID"]
        restarts = int(bed.show("master", AGENT, "NRestarts")["NRestarts"])
        # The agent's start job for kube-scheduler is running: kill it now.
        wait_until(lambda: "kube-scheduler.service start running" in
                   " ".join(bed.out("master", "systemctl list-jobs --no-legend").split()),
                   60, "the agent to be starting kube-scheduler", lambda: bed.agent_log("master"))
        assert bed.status_text("master").startswith("master: units")
        bed.run("exec", "master", "systemctl", "kill", "--kill-who=main", "-s", "SIGKILL", AGENT)
        wait_until(lambda: int(bed.show("master", AGENT, "NRestarts")["NRestarts"]) == restarts + 1,
                   30, "systemd to restart the agent")
        wait_ready(bed, "master")
        new = bed.show("master", AGENT, "InvocationID")["InvocationID"]
        assert new != inv
        assert by_mid(bed.journal("master", f"_SYSTEMD_INVOCATION_ID={inv}"), "ready") == []
        assert bed.show("master", "kube-scheduler.service", "ActiveState")["ActiveState"] == "active"
        assert bed.record("master")["subnet"] == master["subnet"]
        assert bed.record("master")["state"] == "ready"
        assert bed.show("master", "docker.service", "MainPID")["MainPID"] == pid
        assert bed.docker_starts("master") == starts
        assert bed.out("master", "ip -j -d addr show dev flannel.1") == flannel
    finally:
        bed.sh("master", "rm -rf /run/systemd/system/kube-scheduler.service.d; systemctl daemon-reload",
               check=False)


@pytest.mark.skipif(not agent_has_verb("status"), reason="corekube-agent has no status verb yet")
def test_status_wait_returns_0_once_ready(bed, master):
    wait_ready(bed, "master")
    r = bed.sh("master", "corekube-agent status --wait=60s", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    r = bed.sh("master", "corekube-agent status --json", check=False)
    assert r.returncode == 0, r.stderr
    assert "192.168.3.11" in r.stdout


# ------------------------------------------------------------ minion-1 ----

@pytest.fixture(scope="module")
def minion1(bed, master):
    bed.add_node("minion-1", "minion", "192.168.3.12", "--standin-fail", "kubelet")
    return "minion-1"


def test_failing_unit_gives_waiting_record_and_recovers(bed, minion1):
    """The kubelet stand-in exits 1 (its fail switch) from the first start:
    its start job is done (Type=exec), systemd's Restart= retries, so the
    node waits for it; it is not failed."""
    node = minion1

    def waiting():
        rec = bed.record(node)
        return rec if rec and rec["state"] == "waiting" and rec.get("reason") == "unit:kubelet.service" \
            and rec["units"].get("kubelet.service") == "failed" else None

    rec = wait_until(waiting, 120, "a waiting record naming kubelet.service", lambda: bed.agent_log(node))
    assert "exit-code" in rec["message"] and "error" not in rec, rec
    assert bed.status_text(node).startswith("minion: waiting (unit:kubelet.service): "), bed.status_text(node)
    failures = by_mid(bed.journal(node, f"_SYSTEMD_UNIT={AGENT}"), "unit_failed")
    assert failures and failures[0]["COREKUBE_UNIT"] == "kubelet.service"
    assert failures[0]["COREKUBE_RESULT"] == "exit-code" and failures[0]["PRIORITY"] in ("3", "4")

    bed.sh(node, "rm /etc/kube-standin/fail-kubelet")
    wait_until(lambda: (bed.record(node) or {}).get("state") == "ready", 120,
               "the record to be ready again", lambda: bed.agent_log(node))
    rec = bed.record(node)
    assert not {"error", "reason", "message"} & set(rec)
    assert rec["units"] == {"kubelet.service": "active", "kube-proxy.service": "active"}
    assert bed.status_text(node).startswith("minion: ready")


def test_minion_registered_with_the_apiserver(bed, minion1):
    wait_ready(bed, minion1)
    env = bed.env_file(minion1, "/run/corekube/cluster.env")
    assert env["COREKUBE_MASTER_IP"] == "192.168.3.11" and env["COREKUBE_NODE_IP"] == "192.168.3.12"
    listed = json.loads(bed.out("master", "/opt/bin/kubectl get minions"))
    assert "192.168.3.12" in [m["id"] for m in listed["items"]]


# ------------------------------------------------------------ minion-2 ----

@pytest.fixture(scope="module")
def minion2(bed):
    sums = bed.artifact_sums()
    wrong = hashlib.sha256(b"not the kube-proxy stand-in").hexdigest()
    conf = os.path.join(bed.tmp, "minion-2.conf")
    with open(conf, "w") as f:
        f.write(f"""# e2e: kube-proxy's sha256 is wrong on purpose.
[node]
role = minion
name = minion-2
interface = eth2

[etcd]
endpoints = {ETCD}

[role.minion]
artifacts = kubelet kube-proxy

[artifact.kubelet]
url = http://192.168.3.2:8000/kubelet
sha256 = {sums['kubelet']}
path = /opt/bin/kubelet
mode = 0755

[artifact.kube-proxy]
url = http://192.168.3.2:8000/kube-proxy
sha256 = {wrong}
path = /opt/bin/kube-proxy
mode = 0755
""")
    bed.add_node("minion-2", "minion", "192.168.3.13", "--conf", conf)
    return {"node": "minion-2", "wrong": wrong, "actual": sums["kube-proxy"], "kubelet": sums["kubelet"]}


def test_artifact_with_wrong_sha256_is_reported_and_not_installed(bed, minion2):
    node = minion2["node"]

    def failed():
        rec = bed.record(node)
        return rec if rec and rec["state"] == "failed" else None

    rec = wait_until(failed, 120, "a failed record", lambda: bed.agent_log(node))
    err = rec["error"]
    assert "kube-proxy" in err and minion2["wrong"] in err and minion2["actual"] in err, err
    assert minion2["wrong"] in bed.status_text(node)
    errors = [e for e in bed.journal(node, f"_SYSTEMD_UNIT={AGENT}", "PRIORITY=3")
              if minion2["wrong"] in e["MESSAGE"] and minion2["actual"] in e["MESSAGE"]]
    assert errors, bed.agent_log(node)
    assert errors[0].get("COREKUBE_STATE") == "artifacts"
    # Not installed, no temporary file left; the right one is in place.
    assert bed.out(node, "ls -A /opt/bin") == "kubelet"
    mode, h = bed.out(node, "stat -c %a /opt/bin/kubelet; sha256sum /opt/bin/kubelet | cut -d' ' -f1").split()
    assert (mode, h) == ("755", minion2["kubelet"])
    # The role units wait for their binaries.
    assert bed.show(node, "kubelet.service", "ActiveState")["ActiveState"] == "inactive"


@pytest.mark.skipif(not agent_has_verb("status"), reason="corekube-agent has no status verb yet")
def test_status_wait_fails_for_a_failed_node(bed, minion2):
    node = minion2["node"]
    wait_until(lambda: (bed.record(node) or {}).get("state") == "failed", 120, "a failed record")
    r = bed.sh(node, "corekube-agent status --wait=30s", check=False)
    assert r.returncode == 1, r.stdout + r.stderr


# ------------------------------------------------------------ subnet moves ----

DOCKER_HOLD = """mkdir -p /run/systemd/system/docker.service.d
cat >/run/systemd/system/docker.service.d/50-e2e-hold.conf <<'END'
# e2e test: while /run/e2e-hold exists, Docker's start job stays running after
# dockerd is up, until a line is written to the FIFO /run/e2e-docker-hold.
[Service]
ExecStartPost=/bin/sh -c '[ ! -e /run/e2e-hold ] || read x </run/e2e-docker-hold'
END
rm -f /run/e2e-docker-hold; mkfifo /run/e2e-docker-hold; touch /run/e2e-hold
systemctl daemon-reload
"""


def test_subnet_moving_during_the_docker_restart_ends_on_the_new_subnet(bed, master):
    """Issue 12 (d): the lease moves while Docker's restart job runs (dockerd
    already up on the moved-from subnet): the agent ignores that job's result,
    restarts Docker again, and Docker ends on the new --bip."""
    node = "master"
    squat = {"PublicIP": "192.168.3.98", "BackendType": "vxlan",
             "BackendData": {"VNI": 1, "VtepMAC": "02:00:00:00:fe:01"}}
    squatted = []

    def bip():
        return bed.env_file(node, "/run/flannel/docker_opts.env")["DOCKER_OPT_BIP"].strip('"').split("=", 1)[1]

    def take_over(subnet):
        key = f"/coreos.com/network/subnets/{subnet.replace('/', '-')}"
        bed.run("fabric", "etcdctl", f"--endpoints={ETCD}", "put", key, json.dumps(squat))
        squatted.append(key)

    def cmdline(pid):
        return bed.out(node, f"tr '\\0' ' ' </proc/{pid}/cmdline")

    wait_ready(bed, node)
    bed.sh(node, DOCKER_HOLD)
    try:
        s0 = bed.record(node)["subnet"]
        take_over(s0)           # move 1: the agent restarts Docker, whose job then holds
        wait_until(lambda: "docker.service start running" in
                   " ".join(bed.out(node, "systemctl list-jobs --no-legend").split()), 60,
                   "Docker's restart job to hold", lambda: bed.agent_log(node))
        b1 = bip()
        assert f"--bip={b1}" in cmdline(bed.show(node, "docker.service", "MainPID")["MainPID"])
        take_over(str(ipaddress.ip_interface(b1).network))     # move 2, that job still running
        wait_until(lambda: bip() != b1, 60, "docker_opts.env on a third subnet", lambda: bed.agent_log(node))
        b2 = bip()
        # Release: a FIFO opened read-write never blocks; a reader held in
        # ExecStartPost (the first run, or a second one that started before
        # the flag went) gets the line, and no later run waits.
        bed.sh(node, "rm /run/e2e-hold; exec 3<>/run/e2e-docker-hold; echo go >&3; exec 3>&-")
        wait_until(lambda: bed.record(node)["subnet"] == str(ipaddress.ip_interface(b2).network)
                   and bed.record(node)["state"] == "ready" and not bed.out(node, "systemctl list-jobs --no-legend"),
                   180, "the agent ready on the new subnet", lambda: bed.agent_log(node))
        d = bed.show(node, "docker.service", "ActiveState", "MainPID")
        assert d["ActiveState"] == "active"
        assert f"--bip={b2}" in cmdline(d["MainPID"]), bed.agent_log(node)
        addr = json.loads(bed.out(node, "ip -j -4 addr show dev docker0"))[0]
        assert [f"{a['local']}/{a['prefixlen']}" for a in addr["addr_info"]] == [b2]
        master["subnet"] = bed.record(node)["subnet"]       # for the leave test
    finally:
        bed.sh(node, "rm -f /run/e2e-hold /run/systemd/system/docker.service.d/50-e2e-hold.conf; "
               "exec 3<>/run/e2e-docker-hold; echo go >&3; exec 3>&-; rm -f /run/e2e-docker-hold; "
               "systemctl daemon-reload", check=False)
        for key in squatted:
            bed.run("fabric", "etcdctl", f"--endpoints={ETCD}", "del", key, check=False)


# ------------------------------------------------------------ leave (last) ----

@pytest.mark.skipif(not agent_has_verb("leave"), reason="corekube-agent has no leave verb yet")
def test_leave_removes_the_node_keys_and_device(bed, master):
    wait_ready(bed, "master")
    mid = bed.machine_id("master")
    subnet_key = f"/coreos.com/network/subnets/{master['subnet'].replace('/', '-')}"
    assert bed.etcd_get(subnet_key)
    bed.run("exec", "master", "systemctl", "stop", AGENT)
    r = bed.sh("master", "corekube-agent leave", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert bed.etcd_get(f"/corekube/machines/{mid}") == {}
    assert bed.etcd_get(subnet_key) == {}
    assert bed.sh("master", "ip link show flannel.1", check=False).returncode != 0

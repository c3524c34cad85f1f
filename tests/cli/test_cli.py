# SPDX-License-Identifier: Apache-2.0
"""The command line of the built corekube-agent: exit codes (SPEC section 3:
0 ok, 64 usage error, 78 configuration error) and what it prints.

meson passes AGENT_BIN (the binary) and AGENT_VERSION (the project version).
"""

import os
import re
import subprocess

import pytest

from corekube_test.proc import temp_dir

AGENT = os.environ.get("AGENT_BIN", "")
VERSION = os.environ.get("AGENT_VERSION", "")
DEFAULT_CONFIG = "/etc/corekube/agent.conf"

EXIT_OK, EXIT_USAGE, EXIT_CONFIG = 0, 64, 78
HINT = "(try 'corekube-agent --help')"
HEX64 = "0123456789abcdef" * 4

GOOD_CONFIG = f"""\
# a minion
[node]
role = minion
name = minion-1
interface = eth2
address = 192.168.3.12/24

[etcd]
endpoints = http://192.168.3.2:2379

[role.minion]
artifacts = kubelet

[artifact.kubelet]
url = https://example.invalid/v0.6.2/kubelet
sha256 = {HEX64}
path = /opt/bin/kubelet
"""

# Five different kinds of mistake, one per line 2, 4, 6, 8 and 10.
FIVE_MISTAKES = """\
[node]
role = minon
name = minion-1
interfac = eth2
[etcd]
endpoints = ftp://192.168.3.2:2379
[netwrk]
vni = 5
[network]
network = 10.244.1.0/15
"""
FIVE_EXPECTED = [
    (2, '[node] role: invalid role "minon" (use master or minion)'),
    (4, 'unknown key "interfac" in [node] (did you mean "interface"?)'),
    (6, '[etcd] endpoints: invalid URL "ftp://192.168.3.2:2379": only http:// and https:// are supported'),
    (7, "unknown section [netwrk] (did you mean [network]?)"),
    (10, '[network] network: "10.244.1.0/15" has host bits set (did you mean 10.244.0.0/15?)'),
]


@pytest.fixture(scope="session", autouse=True)
def agent_binary():
    if not AGENT or not os.access(AGENT, os.X_OK):
        pytest.fail(f"AGENT_BIN is not an executable: {AGENT!r} (run through meson test)")


@pytest.fixture
def tmpdir_():
    with temp_dir("test-cli-") as d:
        yield d


def clean_env(**extra):
    """The caller's environment without anything that steers the agent."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COREKUBE_") and k not in ("JOURNAL_STREAM", "AGENT_BIN", "AGENT_VERSION")}
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


def run(*args, env=None, **extra_env):
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=30,
                          env=env if env is not None else clean_env(**extra_env))


def write(d, name, text):
    p = os.path.join(d, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)
    return p


def assert_usage_error(p, message):
    assert p.returncode == EXIT_USAGE, (p.returncode, p.stderr)
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0] == f"corekube-agent: {message} {HINT}"


def help_commands(text):
    """The command names listed under "Commands:" in --help."""
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


# ---- help and version ----

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag):
    p = run(flag)
    assert p.returncode == EXIT_OK
    assert p.stderr == ""
    assert p.stdout.startswith("Usage: corekube-agent [OPTIONS] COMMAND\n")
    cmds = help_commands(p.stdout)
    assert "check-config" in cmds and "version" in cmds
    for opt in ("--config=FILE", "--log-level=LEVEL", "--help", "--version"):
        assert opt in p.stdout
    assert DEFAULT_CONFIG in p.stdout


def test_help_matches_dispatcher():
    """Every command --help lists is accepted, and the commands of later
    issues are unknown exactly as long as --help leaves them out."""
    cmds = help_commands(run("--help").stdout)
    for c in cmds:
        p = run(c, "--help")
        assert p.returncode == EXIT_OK, (c, p.stderr)
        assert p.stdout.startswith("Usage:")
    for c in ("run", "status", "leave"):
        if c not in cmds:
            assert_usage_error(run(c), f'unknown command "{c}"')


def test_help_after_command():
    p = run("check-config", "--help")
    assert p.returncode == EXIT_OK
    assert "check-config" in help_commands(p.stdout)


@pytest.mark.parametrize("args", [["--version"], ["version"], ["--log-level=debug", "version"]])
def test_version(args):
    p = run(*args)
    assert p.returncode == EXIT_OK, p.stderr
    assert p.stderr == ""
    assert p.stdout == f"corekube-agent {VERSION}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)


# ---- usage errors: exit 64, one line with the hint ----

@pytest.mark.parametrize("args,message", [
    ([], "missing command"),
    (["frobnicate"], 'unknown command "frobnicate"'),
    (["Version"], 'unknown command "Version"'),
    (["--bogus"], "unknown or incomplete option '--bogus'"),
    (["-x"], "unknown or incomplete option '-x'"),
    (["check-config", "--bogus"], "unknown or incomplete option '--bogus'"),
    (["check-config", "-c"], "unknown or incomplete option '-c'"),
    (["-c"], "unknown or incomplete option '-c'"),
    (["-c", "/x.conf"], "missing command"),
    (["version", "extra"], 'unexpected argument "extra" for version'),
    (["check-config", "a", "b"], 'unexpected argument "a" for check-config'),
    (["--log-level=loud", "version"], 'invalid log level "loud"'),
    (["version", "--log-level", "8"], 'invalid log level "8"'),
    (["--log-level=", "version"], 'invalid log level ""'),
    (["leave", "--force"], "--force only applies to leave --node"),
    (["status", "--node", "n1"], "--node only applies to leave"),
    (["leave", "--node"], "unknown or incomplete option '--node'"),
    (["leave", "--node="], "--node needs a node name or machine ID"),
])
def test_usage_errors(args, message):
    assert_usage_error(run(*args), message)


@pytest.mark.parametrize("value", ["loud", "8", "", "debugging"])
def test_log_level_env_invalid(value):
    assert_usage_error(run("version", COREKUBE_LOG_LEVEL=value), f'invalid COREKUBE_LOG_LEVEL "{value}"')


@pytest.mark.parametrize("value", ["debug", "info", "notice", "warning", "warn", "err", "error", "7", "0", "DEBUG"])
def test_log_level_valid(value):
    assert run("version", COREKUBE_LOG_LEVEL=value).returncode == EXIT_OK
    assert run(f"--log-level={value}", "version").returncode == EXIT_OK


# ---- check-config ----

def test_check_config_good(tmpdir_):
    path = write(tmpdir_, "agent.conf", GOOD_CONFIG)
    p = run("check-config", "-c", path)
    assert p.returncode == EXIT_OK, p.stderr
    assert p.stderr == ""
    out = p.stdout
    assert out.startswith("# Effective configuration; each value with where it came from.\n"
                          f"# Files read: {path}\n")
    lines = out.splitlines()
    # every section, in order
    headers = [l for l in lines if l.startswith("[")]
    assert headers == ["[node]", "[etcd]", "[network]", "[runtime]", "[cni]", "[role.master]", "[role.minion]",
                       "[artifact.kubelet]"]

    def line(key_value, origin):
        want = f"{key_value:<48} # {origin}"
        assert want in lines, (want, out)

    line("role = minion", f"{path}:3")
    line("name = minion-1", f"{path}:4")
    line("address = 192.168.3.12/24", f"{path}:6")
    line("endpoints = http://192.168.3.2:2379", f"{path}:9")
    line("ttl = 30s", "default")
    line("#ca-file =", "unset")
    line("vni = 1", "default")
    line("mtu = auto", "default")
    line("unit = docker.service", "default")
    line("artifacts = kubelet", f"{path}:12")
    line("path = /opt/bin/kubelet", f"{path}:17")
    line("mode = 0755", "default")
    assert f"sha256 = {HEX64} # {path}:16" in lines


def test_check_config_options_before_command(tmpdir_):
    path = write(tmpdir_, "agent.conf", GOOD_CONFIG)
    a = run("-c", path, "check-config")
    b = run("check-config", f"--config={path}")
    assert a.returncode == b.returncode == EXIT_OK
    assert a.stdout == b.stdout


def test_check_config_five_mistakes(tmpdir_):
    path = write(tmpdir_, "agent.conf", FIVE_MISTAKES)
    p = run("check-config", "-c", path)
    assert p.returncode == EXIT_CONFIG
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 5, p.stderr
    assert all(re.match(re.escape(path) + r":\d+: ", l) for l in lines), p.stderr
    assert lines == [f"{path}:{n}: {msg}" for n, msg in FIVE_EXPECTED]


def test_check_config_debug_adds_summary(tmpdir_):
    path = write(tmpdir_, "agent.conf", FIVE_MISTAKES)
    for p in (run("check-config", "-c", path, COREKUBE_LOG_LEVEL="debug"),
              run("--log-level=debug", "check-config", "-c", path)):
        assert p.returncode == EXIT_CONFIG
        lines = p.stderr.splitlines()
        assert len(lines) == 6, p.stderr
        assert re.fullmatch(r"corekube-agent\[\d+\]: debug: Configuration is invalid, nothing changed\.", lines[5])


def test_check_config_missing_required(tmpdir_):
    path = write(tmpdir_, "agent.conf", "[network]\nvni = 2\n")
    p = run("check-config", "-c", path)
    assert p.returncode == EXIT_CONFIG
    assert p.stderr.splitlines() == [
        f"{path}: [node] role is required (master or minion)",
        f"{path}: [etcd] endpoints is required (e.g. http://192.168.3.2:2379)",
    ]


def test_check_config_missing_file(tmpdir_):
    path = os.path.join(tmpdir_, "nope.conf")
    p = run("check-config", "-c", path,
            COREKUBE_NODE_ROLE="minion", COREKUBE_ETCD_ENDPOINTS="http://127.0.0.1:2379")
    assert p.returncode == EXIT_CONFIG
    assert p.stdout == ""
    assert p.stderr.splitlines() == [f"{path}: cannot read: No such file or directory"]


def test_check_config_directory(tmpdir_):
    p = run("check-config", "-c", tmpdir_)
    assert p.returncode == EXIT_CONFIG
    assert p.stderr.splitlines()[0] == f"{tmpdir_}: cannot read: Is a directory"


def test_check_config_default_path():
    if os.path.exists(DEFAULT_CONFIG) or os.path.exists(DEFAULT_CONFIG + ".d"):
        pytest.skip(f"{DEFAULT_CONFIG} exists on this machine")
    # A missing default file is not an error by itself...
    p = run("check-config", COREKUBE_NODE_ROLE="master", COREKUBE_ETCD_ENDPOINTS="http://127.0.0.1:2379")
    assert p.returncode == EXIT_OK, p.stderr
    assert f"{'role = master':<48} # env COREKUBE_NODE_ROLE" in p.stdout.splitlines()
    # ...but the required keys still are.
    p = run("check-config")
    assert p.returncode == EXIT_CONFIG
    assert p.stderr.splitlines() == [
        f"{DEFAULT_CONFIG} (not found): [node] role is required (master or minion)",
        f"{DEFAULT_CONFIG} (not found): [etcd] endpoints is required (e.g. http://192.168.3.2:2379)",
    ]


def test_check_config_dropins_and_env(tmpdir_):
    path = write(tmpdir_, "agent.conf", GOOD_CONFIG + "[network]\nvni = 5\nport = 5000\nmtu = 1400\n")
    d1 = write(tmpdir_, "agent.conf.d/10-a.conf", "[network]\nvni = 10\nport = 1000\n")
    d2 = write(tmpdir_, "agent.conf.d/20-b.conf", "[network]\nvni = 20\n")
    write(tmpdir_, "agent.conf.d/30-c.conf.disabled", "[network]\nvni = 30\n")
    p = run("check-config", "-c", path)
    assert p.returncode == EXIT_OK, p.stderr
    lines = p.stdout.splitlines()
    assert lines[1] == f"# Files read: {path} {d1} {d2}"
    assert f"{'vni = 20':<48} # {d2}:2" in lines
    assert f"{'port = 1000':<48} # {d1}:3" in lines
    assert f"{'mtu = 1400':<48} # {path}:21" in lines

    p = run("check-config", "-c", path, COREKUBE_NETWORK_VNI="77")
    assert p.returncode == EXIT_OK, p.stderr
    assert f"{'vni = 77':<48} # env COREKUBE_NETWORK_VNI" in p.stdout.splitlines()


def test_check_config_env_errors(tmpdir_):
    path = write(tmpdir_, "agent.conf", GOOD_CONFIG)
    p = run("check-config", "-c", path, COREKUBE_NETWORK_VNI="0")
    assert p.returncode == EXIT_CONFIG
    assert p.stderr.splitlines() == ["env COREKUBE_NETWORK_VNI: [network] vni: 0 is out of range 1..16777215"]

    # Unknown variables only warn: the namespace is shared with cluster.env.
    p = run("check-config", "-c", path, COREKUBE_MASTER_IP="192.168.3.2")
    assert p.returncode == EXIT_OK
    assert p.stderr.splitlines() == ["warning: env COREKUBE_MASTER_IP: unknown variable, ignored"]


def test_check_config_output_error(tmpdir_):
    """A printout that cannot be written is a runtime failure (1), not success."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    path = write(tmpdir_, "agent.conf", GOOD_CONFIG)
    with open("/dev/full", "w") as full:
        p = subprocess.run([AGENT, "check-config", "-c", path], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=30, env=clean_env())
    assert p.returncode == 1

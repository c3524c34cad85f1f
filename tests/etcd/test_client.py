# SPDX-License-Identifier: Apache-2.0
"""The client against real etcd: failover, backoff, TLS, auth, /v3beta,
txn read-back."""

import http.server
import json
import os
import subprocess
import threading
import time
import urllib.request

from conftest import Etcd, Proxy, free_port, run_tool, wait_until


def test_refused_names_endpoint(workdir):
    url = f"http://127.0.0.1:{free_port()}"
    rc, events, _ = run_tool(url, "--max-rounds", "1", "get", "/x")
    assert rc == 1
    assert events[-1]["event"] == "error"
    assert url in events[-1]["message"] and "connection refused" in events[-1]["message"]


def test_timeout_names_endpoint(etcd):
    proxy = Proxy(etcd.client_port)
    proxy.mode = "hang"
    try:
        url = f"http://127.0.0.1:{proxy.port}"
        rc, events, _ = run_tool(url, "--max-rounds", "1", "--timeout", "500", "get", "/x")
        assert rc == 1
        assert url in events[-1]["message"] and "timeout" in events[-1]["message"]
        assert events[-1]["errno"] == "Connection timed out"
        # With a second endpoint that answers, the call goes through there.
        rc, events, err = run_tool([url, etcd.url], "--timeout", "500", "put", "/x", "y")
        assert rc == 0, err
        assert etcd.get("/x")["value"] == "y"
    finally:
        proxy.close()


def test_outage_backoff_and_resume(etcd, tool):
    t = tool(etcd.url, "--ip", "192.168.3.12", "lease-watch")
    acq = t.wait_event("acquired")
    t.wait_event("peers")
    before = t.stats()["attempts"]

    etcd.stop()
    time.sleep(10)          # the outage under test lasts 10 s
    during = t.stats()["attempts"] - before
    etcd.start()

    # Two watches and whatever else was due: backoff keeps this to a few
    # dozen (a busy loop would make thousands).
    print(f"requests during a 10 s outage: {during}")
    assert during <= 40

    n = len(t.events)
    etcd.ctl("put", "/coreos.com/network/subnets/10.244.7.0-24",
             '{"PublicIP":"192.168.3.20","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:07"}}')
    e = t.wait_event(lambda e: e["event"] == "peers" and len(e["peers"]) == 1, start=n, timeout=30,
                     what="peer seen after the outage")
    assert e["peers"][0]["subnet"] == "10.244.7.0/24"
    kv = etcd.get(acq["key"])
    assert kv is not None and kv["lease"] == acq["lease"]
    assert t.count("acquired") == 1
    assert "Ignoring" not in t.stderr()      # our own record is not a peer, and not hostile


def test_three_members_first_killed(workdir, cleanup, tool):
    members = [Etcd(workdir, name=f"m{i}") for i in range(3)]
    cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.cluster = cluster
        cleanup(m.kill)
        m.start(wait=False)
    for m in members:
        m.wait_ready()
    urls = [m.url for m in members]

    t = tool(urls, "--ip", "192.168.3.12", "lease-watch")
    acq = t.wait_event("acquired")
    t.wait_event("peers")
    members[0].kill()

    n = len(t.events)
    # The survivors may need a moment to elect a new leader.
    wait_until(lambda: members[1].ctl("put", "/coreos.com/network/subnets/10.244.7.0-24",
                                      '{"PublicIP":"192.168.3.20","BackendType":"vxlan","BackendData":'
                                      '{"VNI":1,"VtepMAC":"02:00:00:00:00:07"}}', check=False).returncode == 0,
               30, "a write to the remaining members")
    t.wait_event(lambda e: e["event"] == "peers" and len(e["peers"]) == 1, start=n, timeout=30,
                 what="watch carried on")
    assert t.stats()["endpoint"] != urls[0]

    # One-shot calls go on to the next endpoint.
    rc, events, err = run_tool(urls, "put", "/x", "y")
    assert rc == 0, err
    rc, events, err = run_tool(urls, "get", "/x")
    assert rc == 0 and events[-1]["kvs"][0]["value"] == "y"
    assert members[1].get(acq["key"]) is not None


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "wrongca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "1",
                "-subj", f"/CN=corekube-test-{ca}", cwd=d)
    for name, usage in (("server", "serverAuth,clientAuth"), ("client", "clientAuth")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=d)
    return {n: os.path.join(d, n) for n in os.listdir(d)}


def test_tls(workdir, cleanup):
    c = make_certs(workdir)
    e = Etcd(workdir, scheme="https",
             extra=["--cert-file", c["server.crt"], "--key-file", c["server.key"],
                    "--client-cert-auth", "--trusted-ca-file", c["ca.crt"]])
    e.ctl_extra = ["--cacert", c["ca.crt"], "--cert", c["client.crt"], "--key", c["client.key"]]
    cleanup(e.kill)
    e.start()

    good = ["--cacert", c["ca.crt"], "--cert", c["client.crt"], "--key", c["client.key"]]
    rc, events, err = run_tool(e.url, *good, "put", "/tls", "ok")
    assert rc == 0, err
    assert e.get("/tls")["value"] == "ok"

    rc, events, _ = run_tool(e.url, "--max-rounds", "1", "--cacert", c["wrongca.crt"], "--cert", c["client.crt"],
                             "--key", c["client.key"], "get", "/tls")
    assert rc == 1
    assert "TLS verification failed" in events[-1]["message"] and e.url in events[-1]["message"]

    # No client certificate: etcd refuses the connection.
    rc, events, _ = run_tool(e.url, "--max-rounds", "1", "--cacert", c["ca.crt"], "get", "/tls")
    assert rc == 1 and e.url in events[-1]["message"]


def test_auth(workdir, cleanup, tool):
    e = Etcd(workdir, extra=["--auth-token-ttl", "1"])
    cleanup(e.kill)
    e.start()
    e.ctl("user", "add", "root", "--new-user-password=rootpw")
    e.ctl("auth", "enable")
    e.ctl_extra = ["--user", "root:rootpw"]

    rc, events, err = run_tool(e.url, "--user", "root", "--password", "rootpw", "put", "/auth", "ok")
    assert rc == 0, err
    assert e.get("/auth")["value"] == "ok"

    rc, events, _ = run_tool(e.url, "--user", "root", "--password", "wrong", "get", "/auth")
    assert rc == 1
    assert "authentication failed" in events[-1]["message"]
    assert e.url in events[-1]["message"] and "HTTP " in events[-1]["message"]

    rc, events, _ = run_tool(e.url, "get", "/auth")
    assert rc == 1 and "user name is empty" in events[-1]["message"]

    # Tokens live 1 s here: a write after 2 s idle must authenticate again.
    t = tool(e.url, "--user", "root", "--password", "rootpw", "--machine-id", "m1", "register", debug=True)
    t.wait_event("registered")
    time.sleep(2.5)
    n = len(t.events)
    t.send("state network")
    t.wait_event("written", start=n)
    assert "token expired" in t.stderr()
    assert json.loads(e.get("/corekube/machines/m1")["value"])["state"] == "network"
    assert t.count("failed") == 0


class V3BetaOnly(http.server.BaseHTTPRequestHandler):
    """An old gateway: /v3 unknown, /v3beta served (forwarded to etcd 3.4,
    which still has it)."""
    target = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.path.startswith("/v3beta/"):
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"Not Found\n")
            return
        req = urllib.request.Request(self.target + self.path, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            data = r.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_v3beta_fallback(etcd):
    handler = type("H", (V3BetaOnly,), {"target": etcd.url})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        rc, events, err = run_tool(url, "--max-rounds", "1", "put", "/beta", "yes", debug=True)
        assert rc == 0, err
        assert "using /v3beta" in err
        assert etcd.get("/beta")["value"] == "yes"
    finally:
        srv.shutdown()
        srv.server_close()


def test_txn_outcome_unknown_is_read_back(etcd):
    proxy = Proxy(etcd.client_port)
    try:
        # Applied, answer lost: read back on the next endpoint, not sent again.
        proxy.mode = "drop_response"
        rc, events, err = run_tool([f"http://127.0.0.1:{proxy.port}", etcd.url], "create", "/txn1", "v", debug=True)
        assert rc == 0, err
        assert events[-1]["succeeded"] is True        # a blind resend would have failed its compare
        assert "had applied" in err
        assert etcd.get("/txn1")["version"] == 1

        # Lost on the way: read back, found absent, sent again.
        proxy.mode = "drop_request"
        rc, events, err = run_tool([f"http://127.0.0.1:{proxy.port}", etcd.url], "create", "/txn2", "v", debug=True)
        assert rc == 0, err
        assert events[-1]["succeeded"] is True
        assert "had not applied" in err
        assert etcd.get("/txn2")["version"] == 1
    finally:
        proxy.close()


def test_txn_compares_and_branches(etcd):
    etcd.ctl("put", "/t", "a")
    etcd.ctl("put", "/t/old", "x")
    kv = etcd.get("/t")

    def txn(*args):
        rc, events, err = run_tool(etcd.url, "txn-if", "/t", *args)
        assert rc == 0, err
        return events[-1]

    # Failure branch: a range of the key.
    e = txn("value", "=", "nope", "b")
    assert e["succeeded"] is False and e["kvs"][0]["value"] == "a"
    e = txn("mod", "=", str(kv["mod_revision"] + 100), "b")
    assert e["succeeded"] is False
    e = txn("create", "<", str(kv["mod_revision"]), "b")
    assert e["succeeded"] is False
    e = txn("version", ">", "1", "b")
    assert e["succeeded"] is False
    assert etcd.get("/t")["value"] == "a" and etcd.get("/t/old") is not None

    # Success branch: the put and the delete.
    e = txn("value", "=", "a", "b")
    assert e["succeeded"] is True
    assert etcd.get("/t")["value"] == "b" and etcd.get("/t/old") is None
    kv = etcd.get("/t")
    assert txn("mod", "=", str(kv["mod_revision"]), "c")["succeeded"] is True
    assert txn("version", "=", "3", "d")["succeeded"] is True
    assert txn("create", "!=", "0", "e")["succeeded"] is True
    assert txn("lease", "=", "0", "f")["succeeded"] is True
    assert etcd.get("/t")["value"] == "f"

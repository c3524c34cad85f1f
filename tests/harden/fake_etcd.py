# SPDX-License-Identifier: Apache-2.0
"""An etcd endpoint that misbehaves in one way (argv[1]) on 127.0.0.1:argv[2]:
slow (accepts and never answers), garbage (200 with bytes that are not
JSON), truncate (a Content-Length it does not keep, then closes), close
(closes without answering), error500, deep (200 with deeply nested JSON),
huge (200 with a body larger than the client's cap), nulls (200 with JSON
nulls where strings and objects belong), stallwatch (a proxy to the real
etcd on 127.0.0.1:2379 that accepts watches and never answers them). Run
inside the test's namespace;
the test stops it by PID (PYTHONPATH holds tests/pylib)."""

import socket
import sys
import threading
import time

from corekube_test.http import read_request

MODE, PORT = sys.argv[1], int(sys.argv[2])


def response(status, body, length=None):
    head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
    return head.encode() + body


def proxy(head, body):
    """The same request to the real etcd; returns (status line, body)."""
    import urllib.error
    import urllib.request
    lines = head.decode().split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers.pop("Host", None)
    req = urllib.request.Request("http://127.0.0.1:2379" + path, data=body or None, method=method,
                                 headers={k: v for k, v in headers.items()
                                          if k.lower() in ("content-type", "authorization")})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return f"{r.status} OK", r.read()
    except urllib.error.HTTPError as e:
        return f"{e.code} Error", e.read()


def handle(c):
    try:
        while (req := read_request(c)) is not None:
            head, body = req
            if MODE == "stallwatch":
                if b"/watch " in head.split(b"\r\n", 1)[0]:
                    time.sleep(3600)
                status, text = proxy(head, body)
                c.sendall(response(status, text))
            elif MODE == "slow":
                time.sleep(3600)
            elif MODE == "garbage":
                c.sendall(response("200 OK", b"\x00\xff{{[[garbage!!\"\"\x01 not json"))
            elif MODE == "truncate":
                c.sendall(response("200 OK", b'{"header":{"revision":"1"},"kvs":[{"ke', length=4096))
                return
            elif MODE == "close":
                return
            elif MODE == "error500":
                c.sendall(response("500 Internal Server Error", b"<html>oops</html>"))
            elif MODE == "deep":
                c.sendall(response("200 OK", b"[" * 200000 + b"]" * 200000))
            elif MODE == "huge":
                size = 80 * 1024 * 1024
                c.sendall(response("200 OK", b"", length=size))
                chunk = b'{"a":"' + b"x" * (1024 * 1024 - 8) + b'"}'
                for _ in range(size // len(chunk)):
                    c.sendall(chunk)
                return
            elif MODE == "nulls":
                c.sendall(response("200 OK", b'{"header":null,"kvs":null,"token":null,"succeeded":null,'
                                             b'"ID":null,"TTL":null,"error":null,"result":null}'))
    except OSError:
        pass
    finally:
        c.close()


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", PORT))
    srv.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


main()

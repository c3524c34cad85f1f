# SPDX-License-Identifier: Apache-2.0
"""A TCP proxy on a free loopback port in front of a test's etcd (or any
HTTP/1.1 server on loopback), for the faults a real network has.

It counts connections and the requests on them (by their request line),
can refuse new connections and cut the open ones, and can freeze a stream:
stop relaying the server's bytes on the connections that carry a given
request (a watch), silently, with the connection kept open, as a proxy or
load balancer that stops forwarding does; now, or on the next such
connection once a given marker has passed (say, right after etcd's answer
that it created the watch). Its hostile modes for new
connections: 'drop_response' (forward the request, never answer),
'drop_request' (read it, never forward) and 'hang' (never answer)."""

import re
import socket
import threading
import time

from .http import read_request
from .proc import free_port

REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


class Conn:
    """One client connection and what it carries now."""

    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.path = None        # the last request seen on it
        self.answered = 0       # server bytes relayed since that request
        self.frozen = False
        self.freeze_after = None    # freeze once these server bytes have passed
        self.tail = b""


class Proxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0
        self.mode = "forward"
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.socks = []
        self.conns = []
        self.requests = []      # (method, path) in the order they were seen
        self.freeze_rule = None     # (path, marker) for the next such request
        self.listener = None
        self.listen()

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.socks.append(c)
                mode = self.mode
            threading.Thread(target=self._serve, args=(c, mode), daemon=True).start()

    @staticmethod
    def _shutdown(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _to_server(self, conn):
        """Client to server: forwarded as it is; request lines noted."""
        tail = b""
        try:
            while True:
                d = conn.client.recv(65536)
                if not d:
                    break
                buf = tail + d
                with self.cond:
                    for m in REQUEST_LINE.finditer(buf):
                        if m.end() > len(tail):    # not one seen in the last chunk
                            conn.path = m.group(2).decode(errors="replace")
                            conn.answered = 0
                            self.requests.append((m.group(1).decode(), conn.path))
                            if self.freeze_rule and conn.path.startswith(self.freeze_rule[0]):
                                conn.freeze_after, self.freeze_rule = self.freeze_rule[1], None
                    self.cond.notify_all()
                tail = buf[-256:]
                conn.upstream.sendall(d)
        except OSError:
            pass
        self._shutdown(conn.client, conn.upstream)

    def _to_client(self, conn):
        """Server to client: relayed unless frozen, then dropped."""
        try:
            while True:
                d = conn.upstream.recv(65536)
                if not d:
                    break
                with self.cond:
                    frozen = conn.frozen
                    if not frozen and conn.freeze_after:
                        buf = conn.tail + d
                        i = buf.find(conn.freeze_after)
                        if i >= 0:     # relay up to the marker's end, then nothing
                            d = d[:max(i + len(conn.freeze_after) - len(conn.tail), 0)]
                            conn.frozen, conn.freeze_after = True, None
                        else:
                            conn.tail = buf[-len(conn.freeze_after):]
                    if not frozen:
                        conn.answered += len(d)
                    self.cond.notify_all()
                if not frozen and d:
                    conn.client.sendall(d)
        except OSError:
            pass
        self._shutdown(conn.client, conn.upstream)

    def _serve(self, c, mode):
        if mode == "hang":
            # Take the request, never answer, keep the connection open.
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass
            c.close()
            return
        if mode == "drop_request":
            try:
                read_request(c)
                time.sleep(0.5)
            except OSError:
                pass
            c.close()
            return
        try:
            u = socket.create_connection(self.target, timeout=5)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        with self.lock:
            self.socks.append(u)
        if mode == "drop_response":
            try:
                req = read_request(c)
                if req:
                    u.sendall(req[0] + b"\r\n\r\n" + req[1])
                time.sleep(1.0)    # the server applies it; the answer never comes back
            except OSError:
                pass
            c.close()
            u.close()
            return
        conn = Conn(c)
        conn.upstream = u
        with self.lock:
            self.conns.append(conn)
        threading.Thread(target=self._to_client, args=(conn,), daemon=True).start()
        self._to_server(conn)
        with self.lock:
            self.conns.remove(conn)

    # ---- what the tests call ----

    def count(self, path):
        """Requests seen so far whose path starts with path."""
        with self.lock:
            return sum(1 for _, p in self.requests if p.startswith(path))

    def wait_requests(self, path, n, timeout=30):
        """Waits until n requests for path have been seen."""
        with self.cond:
            if not self.cond.wait_for(lambda: sum(1 for _, p in self.requests if p.startswith(path)) >= n,
                                      timeout):
                raise AssertionError(f"timed out waiting for {n} requests for {path}; seen: {self.requests[-20:]}")

    def wait_stream(self, path="/v3/watch", timeout=30):
        """Waits until an open connection carries a request for path that
        the server has begun to answer (a watch etcd has created)."""
        with self.cond:
            if not self.cond.wait_for(lambda: any(c.path and c.path.startswith(path) and c.answered > 0
                                                  for c in self.conns), timeout):
                raise AssertionError(f"timed out waiting for an answered {path}; seen: {self.requests[-20:]}")

    def freeze(self, path="/v3/watch"):
        """Stops relaying the server's bytes on the open connections whose
        current request is for path, silently and for good (they stay open).
        Returns how many were frozen."""
        with self.lock:
            n = 0
            for c in self.conns:
                if c.path and c.path.startswith(path) and not c.frozen:
                    c.frozen = True
                    n += 1
            return n

    def freeze_next(self, path="/v3/watch", after=b'"created":true}}'):
        """Freezes the next connection that carries a request for path, as
        freeze() does, once the server's bytes up to and including after
        have been relayed."""
        with self.lock:
            self.freeze_rule = (path, after)

    def block(self):
        """Refuse new connections and cut the open ones."""
        with self.lock:
            if self.listener:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                self._shutdown(self.listener)
                self.listener.close()
                self.listener = None
            socks, self.socks = self.socks, []
        for s in socks:
            self._shutdown(s)
            s.close()

    def unblock(self):
        with self.lock:
            if self.listener:
                return
        self.listen()

    def close(self):
        self.block()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

# SPDX-License-Identifier: Apache-2.0
"""HTTP off a raw socket, for the proxies and fake servers that misbehave
on purpose."""


def read_request(sock):
    """One whole HTTP/1.1 request (headers, then a Content-Length body) as
    (head, body); None if the peer closed before the headers ended."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body

#!/usr/bin/env python3
"""Opens N TLS connections, completes each handshake, then holds them idle.

usage: idle_client.py HOST PORT SNI N READY_FILE DONE_FILE MAX_WAIT_S [PATH]

Writes "<established> <failed>" to READY_FILE once every handshake has been
tried. With PATH, it then waits for READY_FILE.go, sends one "GET PATH"
keep-alive request on each connection, reads its response and writes
"<answered> <failed>" to READY_FILE.2: the connections are then idle
keep-alive connections that have served a request, not fresh ones. It keeps
the connections open until DONE_FILE exists (or MAX_WAIT_S seconds have
passed: the run is bounded even if the caller dies), counts how many the
server still held open, writes "<open> <closed>" to DONE_FILE.alive, closes
them and exits. Certificates are not verified: only the proxy's memory
matters.
"""
import os
import resource
import socket
import ssl
import sys
import time

host, port, sni, n, ready, done, max_wait = sys.argv[1:8]
path = sys.argv[8] if len(sys.argv) > 8 else None
port, n, max_wait = int(port), int(n), float(max_wait)

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, n + 256) if hard != resource.RLIM_INFINITY else n + 256
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def one_request(c):
    c.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: idle_client\r\n\r\n"
               % (path, sni)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            raise OSError("closed before the response head")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("status: %r" % head[:40])
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if length is None:
        raise OSError("no Content-Length")
    while len(body) < length:
        d = c.recv(65536)
        if not d:
            raise OSError("closed in the body")
        body += d


conns, failed = [], 0
deadline = time.monotonic() + max_wait
for _ in range(n):
    if time.monotonic() > deadline:
        failed += 1
        continue
    try:
        raw = socket.create_connection((host, port), timeout=10)
        conns.append(ctx.wrap_socket(raw, server_hostname=sni))
    except OSError:
        failed += 1


def put(path_, text):
    with open(path_ + ".tmp", "w") as f:
        f.write(text)
    os.rename(path_ + ".tmp", path_)


put(ready, "%d %d\n" % (len(conns), failed))

if path:
    while not os.path.exists(ready + ".go") and not os.path.exists(done) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    answered, bad = 0, 0
    for c in conns:
        try:
            one_request(c)
            answered += 1
        except OSError:
            bad += 1
    put(ready + ".2", "%d %d\n" % (answered, bad))

while not os.path.exists(done) and time.monotonic() < deadline:
    time.sleep(0.05)
alive = 0
for c in conns:
    # Still open if a non-blocking read finds nothing to read (session
    # tickets are consumed by OpenSSL and return nothing either).
    try:
        c.setblocking(False)
        alive += 0 if c.recv(1) == b"" else 1
    except ssl.SSLWantReadError:
        alive += 1
    except (OSError, ValueError):
        pass
put(done + ".alive", "%d %d\n" % (alive, len(conns) - alive))
for c in conns:
    try:
        c.close()
    except OSError:
        pass

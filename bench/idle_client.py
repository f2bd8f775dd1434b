#!/usr/bin/env python3
"""Opens N TLS connections, completes each handshake, then holds them idle.

usage: idle_client.py HOST PORT SNI N READY_FILE DONE_FILE MAX_WAIT_S

Writes "<established> <failed>" to READY_FILE once every handshake has been
tried, then keeps the connections open until DONE_FILE exists (or MAX_WAIT_S
seconds have passed: the run is bounded even if the caller dies), closes them
and exits. Certificates are not verified: only the proxy's memory matters.
"""
import os
import resource
import socket
import ssl
import sys
import time

host, port, sni, n, ready, done, max_wait = sys.argv[1:8]
port, n, max_wait = int(port), int(n), float(max_wait)

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, n + 256) if hard != resource.RLIM_INFINITY else n + 256
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

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

tmp = ready + ".tmp"
with open(tmp, "w") as f:
    f.write("%d %d\n" % (len(conns), failed))
os.rename(tmp, ready)

while not os.path.exists(done) and time.monotonic() < deadline:
    time.sleep(0.05)
for c in conns:
    try:
        c.close()
    except OSError:
        pass

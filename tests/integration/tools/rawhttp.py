#!/usr/bin/env python3
"""Send raw bytes to HOST PORT and print the first response line (or CLOSED).

usage: rawhttp.py HOST PORT 'escaped bytes' [pause_s]
The bytes use Python escapes (\\r, \\n, \\x00). With pause_s, the connection
stays silent after sending, to observe timeouts. RAWHTTP_FROM=IP connects from
that local address (a distinct loopback client).
"""
import os
import socket
import sys

host, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = data.encode().decode("unicode_escape").encode("latin-1")
src = os.environ.get("RAWHTTP_FROM")
s = socket.create_connection((host, port), timeout=15, source_address=(src, 0) if src else None)
s.sendall(raw)
buf = b""
try:
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
except (ConnectionResetError, socket.timeout):
    pass
line = buf.split(b"\r\n", 1)[0].decode("latin-1")
print(line if line else "CLOSED")

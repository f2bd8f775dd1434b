#!/usr/bin/env python3
"""A black-holed server on 127.0.0.1:PORT: listen(0) with its accept queue
filled by connections nobody accepts, so further SYNs are dropped and a
connect() waits its whole timeout (a host that left the network). Prints
"ready" once a test connect timed out, then holds until killed."""
import socket, sys, time

port = int(sys.argv[1])
bh = socket.socket()
bh.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
bh.bind(("127.0.0.1", port))
bh.listen(0)
fillers = []
for _ in range(2):
    f = socket.socket()
    f.setblocking(False)
    f.connect_ex(("127.0.0.1", port))
    fillers.append(f)
time.sleep(0.3)
probe = socket.socket()
probe.settimeout(0.7)
try:
    probe.connect(("127.0.0.1", port))
    print("not a black hole: a connect succeeded", flush=True)
    sys.exit(1)
except socket.timeout:
    print("ready", flush=True)
while True:
    time.sleep(3600)

#!/usr/bin/env python3
"""Mute servers on 127.0.0.1:PORT...: each accepts every connection, reads
whatever comes and never writes a byte (a backend that hangs after accept:
no HTTP answer, no TLS handshake). Prints "ready" once all listen, then
holds until killed."""
import socket, sys, threading

held = []


def drain(c):
    while c.recv(65536):
        pass


def serve(s):
    while True:
        c, _ = s.accept()
        held.append(c)
        threading.Thread(target=drain, args=(c,), daemon=True).start()


for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(64)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()

#!/usr/bin/env python3
"""TLS client that sends its ClientHello one byte per TCP segment.

usage: split_client.py HOST PORT SNI CAFILE PATH [DELAY_S]
Prints the HTTP response body. TCP_NODELAY plus a pause between bytes makes
each byte its own segment, so the proxy must reassemble the hello.
"""
import socket
import ssl
import sys
import time

host, port, sni, cafile, path = sys.argv[1:6]
delay = float(sys.argv[6]) if len(sys.argv) > 6 else 0.001

ctx = ssl.create_default_context(cafile=cafile)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname=sni)
sock = socket.create_connection((host, int(port)), timeout=20)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

first = True
while True:
    try:
        tls.do_handshake()
        done = True
    except ssl.SSLWantReadError:
        done = False
    data = out.read()
    if data:
        if first:
            for i in range(len(data)):
                sock.sendall(data[i:i + 1])
                time.sleep(delay)
            first = False
        else:
            sock.sendall(data)
    if done:
        break
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit("connection closed during handshake")
    inc.write(chunk)

tls.write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, sni)).encode())
sock.sendall(out.read())
resp = b""
while True:
    try:
        got = tls.read(65536)
        if not got:
            break
        resp += got
        continue
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLZeroReturnError:
        break
    chunk = sock.recv(65536)
    if not chunk:
        break
    inc.write(chunk)
head, _, body = resp.partition(b"\r\n\r\n")
sys.stdout.write(body.decode(errors="replace"))

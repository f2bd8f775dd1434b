#!/usr/bin/env python3
"""A hostile HTTP/1.1 client over plain TCP or TLS, for t_http_attacks.sh.

usage: h1client.py [--tls SNI --ca CAFILE] [--src IP] HOST PORT MODE ARGS...

Bytes are given with Python escapes (\\r, \\n, \\x00); "@FILE" reads them
from FILE instead.

  send BYTES [WAIT]      send, then print everything received until the peer
                         closes or WAIT seconds (default 5) pass without a byte
  flood HEAD MIB HOLD    send HEAD, then stream up to MIB MiB of filler for at
                         most 10 s (never reading); print "sent N" and keep
                         the connection open HOLD seconds
  noread BYTES HOLD      send, read nothing for HOLD seconds (print "held"
                         when that starts), then read what comes within 5 s
                         and print "got N closed" or "got N open"
"""
import socket
import ssl
import sys
import time


def arg_bytes(a):
    if a.startswith("@"):
        with open(a[1:], "rb") as f:
            return f.read()
    return a.encode().decode("unicode_escape").encode("latin-1")


def connect(host, port, sni, ca, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.settimeout(15)
    s.connect((host, port))
    if sni:
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname=sni)
    return s


def read_until_quiet(s, wait):
    buf = b""
    s.settimeout(wait)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf, True
            buf += chunk
    except (socket.timeout, ssl.SSLWantReadError):
        return buf, False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return buf, True


def main():
    argv = sys.argv[1:]
    sni = ca = src = None
    while argv and argv[0].startswith("--"):
        opt, val = argv[0], argv[1]
        argv = argv[2:]
        if opt == "--tls":
            sni = val
        elif opt == "--ca":
            ca = val
        elif opt == "--src":
            src = val
    host, port, mode = argv[0], int(argv[1]), argv[2]
    s = connect(host, port, sni, ca, src)
    if mode == "send":
        s.sendall(arg_bytes(argv[3]))
        buf, _ = read_until_quiet(s, float(argv[4]) if len(argv) > 4 else 5)
        sys.stdout.write(buf.decode("latin-1"))
    elif mode == "flood":
        s.sendall(arg_bytes(argv[3]))
        limit, hold = int(argv[4]) << 20, float(argv[5])
        chunk = b"x" * 65536
        sent = 0
        end = time.time() + 10
        s.settimeout(0.5)
        while sent < limit and time.time() < end:
            try:
                sent += s.send(chunk)
            except (socket.timeout, ssl.SSLWantWriteError):
                continue
            except OSError:
                break
        print("sent %d" % sent, flush=True)
        time.sleep(hold)
    elif mode == "noread":
        s.sendall(arg_bytes(argv[3]))
        print("held", flush=True)
        time.sleep(float(argv[4]))
        n = 0
        closed = False
        s.settimeout(5)
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    closed = True
                    break
                n += len(chunk)
        except socket.timeout:
            pass
        except (OSError, ssl.SSLError):
            closed = True
        print("got %d %s" % (n, "closed" if closed else "open"), flush=True)
    else:
        sys.exit("unknown mode " + mode)


main()

#!/usr/bin/env python3
"""Peers for portier's stream routes (tests/integration/t_streams.sh).

  stream_peers.py server PORT NAME [--pp] [--tls CERT KEY]
      A backend on 127.0.0.1:PORT. It reads a PROXY v1 or v2 header when
      --pp is given, wraps the socket in TLS with --tls, then speaks first:
      "HELLO NAME from IP\\n" (IP: the PROXY header's source, else the TCP
      peer), and echoes every line after it as "NAME: line". One thread per
      connection; runs until killed.

  stream_peers.py client PORT [--src IP] [--sni NAME] [--alpn P,...] [--ca FILE]
                         [--lines N] [--hold S]
      Connects from IP (default 127.0.0.1) to 127.0.0.1:PORT, with TLS when
      --sni is given, reads the greeting, sends N lines (one every S/N
      seconds) and reads each echo. Prints one JSON object: {"greeting",
      "echoes", "how"} where "how" is "ok", "refused", "closed" (EOF before
      the greeting or an echo) or "error:<name>".
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import threading
import time

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_proxy(s):
    """Returns the source IP of the PROXY header at the start of <s>."""
    first = read_exact(s, 12)
    if first == V2_SIG:
        ver_cmd, fam, length = struct.unpack("!BBH", read_exact(s, 4))
        body = read_exact(s, length)
        if fam >> 4 == 1:
            return socket.inet_ntop(socket.AF_INET, body[0:4])
        if fam >> 4 == 2:
            return socket.inet_ntop(socket.AF_INET6, body[0:16])
        return None
    line = first
    while not line.endswith(b"\r\n"):
        line += read_exact(s, 1)
        if len(line) > 107:
            raise ValueError("PROXY v1 line too long")
    parts = line.decode().split()
    return parts[2] if parts[0] == "PROXY" and parts[1] != "UNKNOWN" else None


def serve_one(conn, peer, args, ctx):
    try:
        src = read_proxy(conn) if args.pp else peer[0]
        if ctx:
            conn = ctx.wrap_socket(conn, server_side=True)
        f = conn.makefile("rwb", buffering=0)
        f.write(("HELLO %s from %s\n" % (args.name, src)).encode())
        for line in f:
            f.write(("%s: " % args.name).encode() + line)
    except Exception:
        pass
    finally:
        try:
            conn.close()
        except Exception:
            pass


def server(args):
    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        ctx.set_alpn_protocols(["xmpp-client", "imap", "h2", "http/1.1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(128)
    while True:
        conn, peer = ls.accept()
        threading.Thread(target=serve_one, args=(conn, peer, args, ctx), daemon=True).start()


def client(args):
    out = {"greeting": None, "echoes": [], "how": "ok"}
    s = socket.socket()
    s.settimeout(10)
    try:
        s.bind((args.src, 0))
        s.connect(("127.0.0.1", args.port))
        if args.sni:
            ctx = ssl.create_default_context(cafile=args.ca) if args.ca else \
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if not args.ca:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if args.alpn:
                ctx.set_alpn_protocols(args.alpn.split(","))
            s = ctx.wrap_socket(s, server_hostname=args.sni)
        f = s.makefile("rwb", buffering=0)
        g = f.readline()
        if not g:
            out["how"] = "closed"
        else:
            out["greeting"] = g.decode().strip()
            for i in range(args.lines):
                if args.hold:
                    time.sleep(args.hold / args.lines)
                f.write(b"line%d\n" % i)
                e = f.readline()
                if not e:
                    out["how"] = "closed"
                    break
                out["echoes"].append(e.decode().strip())
    except ConnectionRefusedError:
        out["how"] = "refused"
    except (ConnectionResetError, ssl.SSLError, EOFError) as e:
        out["how"] = "closed" if out["greeting"] is None else "error:" + type(e).__name__
        if out["greeting"] is None:
            out["detail"] = type(e).__name__
    except Exception as e:
        out["how"] = "error:" + type(e).__name__
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("server")
    sv.add_argument("port", type=int)
    sv.add_argument("name")
    sv.add_argument("--pp", action="store_true")
    sv.add_argument("--tls", nargs=2)
    cl = sub.add_parser("client")
    cl.add_argument("port", type=int)
    cl.add_argument("--src", default="127.0.0.1")
    cl.add_argument("--sni")
    cl.add_argument("--alpn")
    cl.add_argument("--ca")
    cl.add_argument("--lines", type=int, default=1)
    cl.add_argument("--hold", type=float, default=0)
    args = p.parse_args()
    server(args) if args.cmd == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())

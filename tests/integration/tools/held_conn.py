#!/usr/bin/env python3
"""A client that holds a connection open across a ban, for t_bans_open.sh.

  held_conn.py KIND --bind IP --connect IP:PORT --host HOST [--sni NAME --ca FILE]
               --trigger FILE [--path PATH] [--proxy-from IP]

KIND: keepalive  HTTP/1.1 keep-alive requests (TLS when --sni is given)
      stream     one GET whose response keeps coming (rate-limited backend)
      ws         a WebSocket (TLS) exchanging echo messages

It proves the connection works, prints READY, waits until FILE exists, then
watches the connection for 4 s and prints one verdict:
  RESET  the connection was reset (an RST came)
  EOF    it was closed cleanly
  OK     it still works (keepalive: another request answered; ws: another
         echo; stream: bytes kept coming)
  ERROR  anything else (with why)."""
import argparse
import os
import select
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ws_echo  # noqa: E402  (frame codec and accept key)


TCP_CLOSE = 7  # include/net/tcp_states.h


class Cut(Exception):
    pass


def connect(a):
    ip, port = a.connect.rsplit(":", 1)
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.bind((a.bind, 0))
    raw.settimeout(10)
    raw.connect((ip, int(port)))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if a.proxy_from:  # as a trusted front would: the real client first
        raw.sendall(("PROXY TCP4 %s %s 40000 %s\r\n" % (a.proxy_from, ip, port)).encode())
    if not a.sni:
        return raw
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(raw, server_hostname=a.sni)


class Reader(ws_echo.Conn):
    """ws_echo's buffered reader over our own socket, telling an RST from a
    clean close."""

    def __init__(self, s, host):
        self.s, self.host, self.buf = s, host, b""

    def ended(self):
        """RESET or EOF, from the kernel's view of the TCP connection: TLS
        libraries report a reset in several ways, the state does not lie
        (an RST leaves it CLOSED, a FIN leaves it CLOSE_WAIT)."""
        state = self.s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        return Cut("RESET" if state == TCP_CLOSE else "EOF")

    def fill(self):
        try:
            chunk = self.s.recv(1 << 16)
        except (OSError, ssl.SSLError):
            raise self.ended()
        if not chunk:
            raise self.ended()
        self.buf += chunk
        return len(chunk)


def request(s, r, a):
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a.path, a.host)).encode())
    code, _, _ = r.read_response()
    if code != 200:
        raise RuntimeError("status %d" % code)


def ws_echo_once(s, r, text):
    payload = text.encode()
    s.sendall(ws_echo.encode_frame(ws_echo.OP_TEXT, payload, mask=True))
    fin, op, masked, got = ws_echo.decode_frame(r.read_exact)
    if got != payload:
        raise RuntimeError("echo differs: %r" % got[:50])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["keepalive", "stream", "ws"])
    p.add_argument("--bind", required=True)
    p.add_argument("--connect", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--sni")
    p.add_argument("--ca")
    p.add_argument("--trigger", required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--proxy-from", help="send a PROXY v1 header with this client first")
    a = p.parse_args()
    s = connect(a)
    r = Reader(s, a.host)
    if a.kind == "keepalive":
        request(s, r, a)
    elif a.kind == "stream":
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a.path, a.host)).encode())
        r.read_head()
        r.fill()
    else:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (a.host, key)).encode())
        if r.read_head()[0] != 101:
            raise RuntimeError("no 101")
        ws_echo_once(s, r, "before the ban")
    print("READY", flush=True)
    while not os.path.exists(a.trigger):
        time.sleep(0.02)
    # Watch: a cut shows up as a reset (or close) without us sending a byte.
    got = 0
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            raw = s if not isinstance(s, ssl.SSLSocket) else s
            if (isinstance(s, ssl.SSLSocket) and s.pending()) or \
                    select.select([raw], [], [], 0.1)[0]:
                got += r.fill()
                if a.kind != "stream":
                    r.buf = b""
        if a.kind == "keepalive":
            request(s, r, a)
        elif a.kind == "ws":
            ws_echo_once(s, r, "after the ban")
        elif got == 0:
            print("ERROR stream stalled", flush=True)
            return 1
        print("OK", flush=True)
        return 0
    except Cut as c:
        print(str(c), flush=True)
        return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the test prints the verdict line, so say why
        print("ERROR %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)

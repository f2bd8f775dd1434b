#!/usr/bin/env python3
"""WebSocket echo backend and WebSocket/HTTP client for the offload tests.

Server (plain HTTP/1.1 with keep-alive, one thread per connection):

  ws_echo.py serve HOST PORT LOGFILE

  GET /ws*        RFC 6455 handshake (Sec-WebSocket-Accept =
                  base64(sha1(key + GUID))), then echoes every text/binary
                  message (fragments reassembled), answers pings, echoes the
                  close frame and ends the connection. Client frames must be
                  masked (close 1002 otherwise). /ws-greet sends a text frame
                  "hello from backend" in the same write as the 101.
  GET other       200, JSON body: the request as received (path, headers).
  POST/PUT        reads the body (Content-Length or chunked; answers
                  Expect: 100-continue as http.server does), 200 with JSON
                  {"len": n, "sha256": hex, "start": first 60 bytes}.
  Every request is appended to LOGFILE as one JSON line: conn (backend-side
  peer "ip:port"), n (request number on that connection), method, path,
  headers, body_len.

Client (TLS to portier, SNI and CA given, stdlib ssl):

  ws_echo.py client --connect IP:PORT --sni NAME --ca CA.pem --host HOST SCENARIO

  echo            handshake on /ws, 3 text messages, a 1 MiB binary message,
                  a fragmented message, ping/pong, close handshake
  greet           /ws-greet: the frame sent with the 101 arrives
  eager           handshake and a first frame in one write, before the 101
  keepalive       three GETs on one TLS connection (X-Forwarded-*, Host)
  keepalive-post  GET, then on the same connection a POST whose body comes
                  0.3 s after its head: the backend must get exactly the body
  upgrade-after-get  GET, then the WebSocket handshake on the same connection
  expect100       POST with Expect: 100-continue (keep-alive)
  expect100-close the same with Connection: close
  smuggle-connection-cl  POST "Connection: content-length" whose 38-byte
                  body is a request for /smuggled (the test then checks the
                  backend log)
Prints what it checked; exits 1 with a reason on the first failure.
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode()


def xor_mask(data, key):
    """RFC 6455 5.3 masking, fast enough for megabytes (one big-int XOR)."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload, fin=True, mask=False):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = os.urandom(4)
        return head + key + xor_mask(payload, key)
    return head + payload


def decode_frame(read_exact):
    """Returns (fin, opcode, masked, payload) from a read_exact(n) callable."""
    b0, b1 = struct.unpack("!BB", read_exact(2))
    fin, opcode = bool(b0 & 0x80), b0 & 0x0F
    if b0 & 0x70:
        raise ValueError("RSV bits set: 0x%02x" % b0)
    masked, n = bool(b1 & 0x80), b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", read_exact(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", read_exact(8))
    key = read_exact(4) if masked else None
    payload = read_exact(n) if n else b""
    if masked:
        payload = xor_mask(payload, key)
    return fin, opcode, masked, payload


# ---- server -----------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ws_echo"
    timeout = 60

    def setup(self):
        super().setup()
        self.n = 0

    def log_message(self, fmt, *args):  # quiet; the JSON log says it all
        pass

    def log_request_json(self, body_len=None):
        self.n += 1
        rec = {
            "conn": "%s:%d" % self.client_address[:2],
            "n": self.n,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": body_len,
        }
        with self.server.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def read_exact(self, n):
        data = self.rfile.read(n)
        if len(data) != n:
            raise EOFError("connection ended inside a frame")
        return data

    def send_json(self, obj, code=200):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/ws") and "websocket" in self.headers.get("Upgrade", "").lower():
            self.log_request_json()
            self.websocket()
            return
        self.log_request_json()
        self.send_json({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.read_exact(size)
                self.rfile.readline()
        return self.read_exact(int(self.headers.get("Content-Length", "0")))

    def do_POST(self):
        body = self.read_body()
        self.log_request_json(len(body))
        self.send_json({"len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                        "start": body[:60].decode("latin-1")})

    do_PUT = do_POST

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if "upgrade" not in self.headers.get("Connection", "").lower() or not key:
            self.send_json({"error": "not a websocket handshake"}, 400)
            return
        head = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept_key(key)).encode()
        if self.path.startswith("/ws-greet"):
            head += encode_frame(OP_TEXT, b"hello from backend")
        self.wfile.write(head)  # one write: the frame shares the segment with the 101
        self.close_connection = True
        message, mop = b"", None
        while True:
            try:
                fin, op, masked, payload = decode_frame(self.read_exact)
            except (EOFError, ConnectionError, socket.timeout, ValueError):
                return
            if not masked:
                self.wfile.write(encode_frame(OP_CLOSE, struct.pack("!H", 1002) + b"unmasked"))
                return
            if op == OP_PING:
                self.wfile.write(encode_frame(OP_PONG, payload))
            elif op == OP_PONG:
                pass
            elif op == OP_CLOSE:
                self.wfile.write(encode_frame(OP_CLOSE, payload[:2] or struct.pack("!H", 1000)))
                return
            elif op in (OP_TEXT, OP_BIN, OP_CONT):
                if op != OP_CONT:
                    message, mop = b"", op
                message += payload
                if fin:
                    self.wfile.write(encode_frame(mop, message))
                    message = b""


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(host, port, log_path):
    srv = Server((host, port), Handler)
    srv.log_path = log_path
    srv.log_lock = threading.Lock()
    srv.serve_forever()


# ---- client -----------------------------------------------------------------


class Fail(Exception):
    pass


class Conn:
    """A TLS connection to portier with a read buffer."""

    def __init__(self, args):
        ip, port = args.connect.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=args.ca)
        ctx.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection((ip, int(port)), timeout=args.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = ctx.wrap_socket(raw, server_hostname=args.sni)
        self.host = args.host
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def fill(self):
        try:
            chunk = self.s.recv(1 << 16)
        except socket.timeout:
            raise Fail("timed out; unread bytes so far: %r" % self.buf[:300])
        if not chunk:
            raise Fail("connection closed; unread bytes: %r" % self.buf[:300])
        self.buf += chunk

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise Fail("bad status line %r (head %r)" % (lines[0], head[:300]))
        hdrs = {}
        for line in lines[1:]:
            if ":" not in line:
                raise Fail("bad header line %r in %r" % (line, head[:300]))
            k, v = line.split(":", 1)
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        return int(parts[1]), hdrs, head

    def read_response(self):
        """Skips nothing: returns (status, headers, body) of the next response."""
        code, hdrs, head = self.read_head()
        if "chunked" in ",".join(hdrs.get("transfer-encoding", [])).lower():
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.fill()
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.read_exact(2)
                    break
                body += self.read_exact(size)
                self.read_exact(2)
        else:
            body = self.read_exact(int(hdrs.get("content-length", ["0"])[0]))
        return code, hdrs, body

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


def say(msg):
    print(msg, flush=True)


def handshake_bytes(conn, path, key):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: https://%s\r\n\r\n"
            % (path, conn.host, key, conn.host)).encode()


def check_101(conn, key):
    code, hdrs, head = conn.read_head()
    expect(code == 101, "handshake answered %d: %r" % (code, head[:400]))
    got = hdrs.get("sec-websocket-accept", [""])[0]
    expect(got == accept_key(key), "Sec-WebSocket-Accept %r, want %r" % (got, accept_key(key)))
    expect(hdrs.get("upgrade", [""])[0].lower() == "websocket", "Upgrade header: %r" % head)
    expect("upgrade" in ",".join(hdrs.get("connection", [])).lower(), "Connection header: %r" % head)
    say("101 with the right Sec-WebSocket-Accept")


def ws_open(conn, path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    conn.send(handshake_bytes(conn, path, key))
    check_101(conn, key)


def ws_recv(conn):
    fin, op, masked, payload = decode_frame(conn.read_exact)
    expect(not masked, "server frame is masked")
    return fin, op, payload


def ws_echo(conn, op, payload, what):
    conn.send(encode_frame(op, payload, mask=True))
    fin, rop, got = ws_recv(conn)
    expect(fin and rop == op, "%s: frame fin=%s op=%d, want op %d" % (what, fin, rop, op))
    expect(got == payload, "%s: echo differs (%d bytes back, %d sent)" % (what, len(got), len(payload)))
    say("echo ok: %s (%d bytes)" % (what, len(payload)))


def ws_close(conn):
    conn.send(encode_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye", mask=True))
    fin, op, payload = ws_recv(conn)
    expect(op == OP_CLOSE and payload[:2] == struct.pack("!H", 1000),
           "close answered op %d %r" % (op, payload[:20]))
    say("close handshake ok")
    # After the close frames both sides end the connection.
    try:
        conn.s.settimeout(10)
        rest = conn.s.recv(1)
        expect(rest == b"", "bytes after the close frame: %r" % rest)
    except (ssl.SSLError, ConnectionResetError):
        pass
    except socket.timeout:
        raise Fail("connection still open 10 s after the close handshake")
    say("connection ended after close")


def get_json(conn, path, extra=""):
    conn.send(("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, conn.host, extra)).encode())
    code, hdrs, body = conn.read_response()
    expect(code == 200, "GET %s: %d %r" % (path, code, body[:200]))
    return hdrs, json.loads(body)


def sc_echo(args):
    c = Conn(args)
    ws_open(c)
    for i, text in enumerate(["hello", "second message \u00e9\u00e8", "x" * 300]):
        ws_echo(c, OP_TEXT, text.encode(), "text %d" % (i + 1))
    big = os.urandom(1 << 20)
    ws_echo(c, OP_BIN, big, "1 MiB binary")
    # A message in three fragments comes back whole.
    c.send(encode_frame(OP_TEXT, b"frag-1 ", fin=False, mask=True)
           + encode_frame(OP_CONT, b"frag-2 ", fin=False, mask=True)
           + encode_frame(OP_PING, b"between", mask=True)  # control frames may interleave
           + encode_frame(OP_CONT, b"frag-3", fin=True, mask=True))
    fin, op, payload = ws_recv(c)
    expect(op == OP_PONG and payload == b"between", "pong: op %d %r" % (op, payload[:40]))
    fin, op, payload = ws_recv(c)
    expect(fin and op == OP_TEXT and payload == b"frag-1 frag-2 frag-3",
           "fragmented message: op %d %r" % (op, payload[:60]))
    say("fragmented message and interleaved ping ok")
    ws_echo(c, OP_TEXT, b"still there", "text after the big one")
    ws_close(c)


def sc_greet(args):
    c = Conn(args)
    ws_open(c, "/ws-greet")
    fin, op, payload = ws_recv(c)
    expect(op == OP_TEXT and payload == b"hello from backend", "greeting: op %d %r" % (op, payload))
    say("frame sent with the 101 arrived")
    ws_echo(c, OP_TEXT, b"ping?", "text")
    ws_close(c)


def sc_eager(args):
    c = Conn(args)
    key = base64.b64encode(os.urandom(16)).decode()
    c.send(handshake_bytes(c, "/ws", key) + encode_frame(OP_TEXT, b"sent before the 101", mask=True))
    check_101(c, key)
    fin, op, payload = ws_recv(c)
    expect(op == OP_TEXT and payload == b"sent before the 101", "early frame: op %d %r" % (op, payload))
    say("frame sent with the handshake was echoed")
    ws_close(c)


def sc_keepalive(args):
    c = Conn(args)
    conns = set()
    for i in range(3):
        hdrs, j = get_json(c, "/plain/%d?x=1" % i)
        h = j["headers"]
        expect(j["path"] == "/plain/%d?x=1" % i, "path %r" % j["path"])
        expect(h.get("host") == args.host, "backend Host %r" % h.get("host"))
        expect(h.get("x-forwarded-proto") == "https", "X-Forwarded-Proto %r" % h.get("x-forwarded-proto"))
        expect(h.get("x-forwarded-host") == args.host, "X-Forwarded-Host %r" % h.get("x-forwarded-host"))
        expect(h.get("x-real-ip") == "127.0.0.1", "X-Real-IP %r" % h.get("x-real-ip"))
        expect(h.get("x-forwarded-for") == "127.0.0.1", "X-Forwarded-For %r" % h.get("x-forwarded-for"))
        expect("keep-alive" in ",".join(hdrs.get("connection", ["keep-alive"])).lower(),
               "response Connection: %r" % hdrs.get("connection"))
    say("3 GETs on one TLS connection, forwarded fields right")
    c.close()


def sc_keepalive_post(args):
    c = Conn(args)
    get_json(c, "/first")
    say("GET /first ok")
    body = os.urandom(10000)
    c.send(("POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: %d\r\n\r\n" % (c.host, len(body))).encode())
    time.sleep(0.3)  # the body comes in later reads, as from a slow client
    c.send(body[:4000])
    time.sleep(0.1)
    c.send(body[4000:])
    code, hdrs, rbody = c.read_response()
    expect(code == 200, "POST: %d %r" % (code, rbody[:200]))
    j = json.loads(rbody)
    expect(j["len"] == len(body) and j["sha256"] == hashlib.sha256(body).hexdigest(),
           "backend got %d bytes (sha %s..., starting %r), sent %d (sha %s..., starting %r)"
           % (j["len"], j["sha256"][:12], j["start"][:60], len(body),
              hashlib.sha256(body).hexdigest()[:12], body[:20]))
    say("POST body arrived intact on the reused connection")
    get_json(c, "/after")
    say("GET /after ok")
    c.close()


def sc_upgrade_after_get(args):
    c = Conn(args)
    get_json(c, "/before-ws")
    say("GET /before-ws ok")
    ws_open(c)
    ws_echo(c, OP_TEXT, b"after a keep-alive request", "text")
    ws_echo(c, OP_BIN, os.urandom(100000), "binary")
    ws_close(c)


def sc_expect100(args, close):
    c = Conn(args)
    body = b"0123456789" * 1000
    c.send(("POST /expect HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n%s\r\n"
            % (c.host, len(body), "Connection: close\r\n" if close else "")).encode())
    c.s.settimeout(5)
    code, hdrs, head = c.read_head()
    expect(code == 100, "interim answer %d: %r" % (code, head[:300]))
    expect(head.split(b"\r\n")[0] == b"HTTP/1.1 100 Continue", "interim status line %r" % head[:100])
    say("100 Continue received whole: %r" % head)
    c.s.settimeout(args.timeout)
    c.send(body)
    code, hdrs, rbody = c.read_response()
    expect(code == 200, "final answer %d %r" % (code, rbody[:200]))
    expect(json.loads(rbody)["len"] == len(body), "backend got %r" % rbody[:200])
    say("final 200 after the body")


def sc_smuggle_connection_cl(args):
    c = Conn(args)
    inner = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    c.send(("POST /outer HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: content-length\r\n\r\n%s"
            % (c.host, len(inner), inner)).encode())
    c.s.settimeout(5)
    try:
        code, hdrs, rbody = c.read_response()
        say("answer %d %r" % (code, rbody[:120]))
    except Fail as e:
        say("no complete answer: %s" % e)
    time.sleep(0.5)


SCENARIOS = {
    "echo": sc_echo,
    "greet": sc_greet,
    "eager": sc_eager,
    "keepalive": sc_keepalive,
    "keepalive-post": sc_keepalive_post,
    "upgrade-after-get": sc_upgrade_after_get,
    "expect100": lambda a: sc_expect100(a, False),
    "expect100-close": lambda a: sc_expect100(a, True),
    "smuggle-connection-cl": sc_smuggle_connection_cl,
}


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        if len(sys.argv) != 5:
            sys.exit("usage: ws_echo.py serve HOST PORT LOGFILE")
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    p = argparse.ArgumentParser(prog="ws_echo.py client")
    p.add_argument("mode", choices=["client"])
    p.add_argument("--connect", required=True)
    p.add_argument("--sni", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--host", required=True, help="Host header value")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    args = p.parse_args()
    try:
        SCENARIOS[args.scenario](args)
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
    except (OSError, ValueError, KeyError) as e:
        print("FAIL: %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

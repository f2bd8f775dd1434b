#!/usr/bin/env python3
"""A scriptable HTTP/2 client for t_h2.sh: well-behaved requests with python3-h2,
and hostile frame sequences written by hand (the floods and smuggling shapes a
library refuses to send).

usage: h2_client.py PORT CAFILE HOST SCENARIO [ARG]
Prints one line: what the server did ("status 200 ...", "reset CODE",
"goaway CODE", "closed", "timeout")."""
import socket
import ssl
import struct
import sys
import time

import hpack

PORT, CAFILE, HOST, SCEN = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ARG = sys.argv[5] if len(sys.argv) > 5 else ""

DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINDOW, CONT = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 1, 4, 1


def connect(settings=b""):
    ctx = ssl.create_default_context(cafile=CAFILE)
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT)), server_hostname=HOST)
    assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0, settings))
    return s


def frame(typ, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", sid) + payload


def req_headers(path="/", authority=None, extra=(), method="GET"):
    return [(":method", method), (":scheme", "https"), (":authority", authority or HOST),
            (":path", path)] + list(extra)


class Reader:
    def __init__(self, s, timeout=10):
        self.s, self.buf, self.dec = s, b"", hpack.Decoder()
        s.settimeout(timeout)

    def next(self):
        """(type, flags, sid, payload), or None when the connection ended."""
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    f = self.buf[:9 + n]
                    self.buf = self.buf[9 + n:]
                    return f[3], f[4], int.from_bytes(f[5:9], "big") & 0x7FFFFFFF, f[9:]
            try:
                d = self.s.recv(65536)
            except (ConnectionResetError, ssl.SSLError, OSError) as e:
                if isinstance(e, socket.timeout):
                    raise
                return None
            if not d:
                return None
            self.buf += d


def try_send(s, b):
    try:
        s.sendall(b)
    except (OSError, ValueError):
        pass  # the server may have closed already: what it said is read next


def outcome(s, sid=None, timeout=15, send_acks=True):
    """Reads until the stream <sid> ends or the connection does."""
    r = Reader(s, timeout)
    status, body, trailers = None, b"", []
    try:
        while True:
            f = r.next()
            if f is None:
                return "closed"
            typ, flags, fsid, p = f
            if typ == SETTINGS and not flags & ACK and send_acks:
                try_send(s, frame(SETTINGS, ACK, 0))
            elif typ == GOAWAY:
                code = struct.unpack(">I", p[4:8])[0]
                # the connection must end after it
                while r.next() is not None:
                    pass
                return "goaway %d" % code
            elif typ == HEADERS and fsid == sid:
                hdrs = r.dec.decode(p)
                if status is None:
                    status = dict(hdrs)[":status"]
                    head = hdrs
                else:
                    trailers = hdrs
                if flags & END_STREAM:
                    return fmt(status, head, body, trailers)
            elif typ == DATA and fsid == sid:
                body += p
                if p:
                    try_send(s, frame(WINDOW, 0, 0, struct.pack(">I", len(p))) +
                             frame(WINDOW, 0, sid, struct.pack(">I", len(p))))
                if flags & END_STREAM:
                    return fmt(status, head, body, trailers)
            elif typ == RST and fsid == sid:
                return "reset %d" % struct.unpack(">I", p)[0]
    except socket.timeout:
        return "timeout"


def fmt(status, head, body, trailers):
    h = ";".join("%s=%s" % (k, v) for k, v in head if not k.startswith(":"))
    t = ";".join("%s=%s" % kv for kv in trailers)
    return "status %s body=%r headers=%s trailers=%s" % (status, body[:60], h, t)


enc = hpack.Encoder()


def send_request(s, sid, hdrs, end=True, raw_block=None):
    block = raw_block if raw_block is not None else enc.encode(hdrs)
    s.sendall(frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block))


def literal(name, value):
    """A header field as a literal without indexing: no normalisation, so
    uppercase names, CR/LF/NUL go out as given."""
    def s(b):
        return bytes([len(b)]) + b if len(b) < 127 else bytes([127]) + hpack_int(len(b) - 127) + b
    return b"\x00" + s(name) + s(value)


def hpack_int(n):
    out = b""
    while n >= 128:
        out += bytes([(n % 128) + 128])
        n //= 128
    return out + bytes([n])


def raw_block(fields):
    return b"".join(literal(n.encode(), v if isinstance(v, bytes) else v.encode()) for n, v in fields)


def main():
    s = connect()
    if SCEN == "get":
        send_request(s, 1, req_headers(ARG or "/"))
        print(outcome(s, 1))
    elif SCEN == "authority":  # coalescing: a name of another route
        send_request(s, 1, req_headers("/", authority=ARG))
        print(outcome(s, 1))
    elif SCEN == "post-trailers":  # body then request trailers
        send_request(s, 1, req_headers("/upload", method="POST"), end=False)
        s.sendall(frame(DATA, 0, 1, b"hello trailers"))
        s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, enc.encode([("x-sum", "42")])))
        print(outcome(s, 1))
    elif SCEN == "smuggle":
        shapes = {
            "cl-more": (req_headers("/upload", method="POST") + [("content-length", "3")], b"hello"),
            "cl-less": (req_headers("/upload", method="POST") + [("content-length", "50")], b"hello"),
            "connection": (req_headers("/smuggle-conn") + [("connection", "close")], None),
            "te": (req_headers("/smuggle-te") + [("te", "chunked")], None),
            "transfer-encoding": (req_headers("/upload", method="POST") + [("transfer-encoding", "chunked")], b"0\r\n\r\n"),
            "crlf": (req_headers("/smuggle-crlf") + [("x-a", b"b\r\nGET /evil HTTP/1.1")], None),
            "lf": (req_headers("/smuggle-lf") + [("x-a", b"b\nx-b: c")], None),
            "nul": (req_headers("/smuggle-nul") + [("x-a", b"b\x00c")], None),
            "upper": (req_headers("/smuggle-upper") + [("X-Upper", "1")], None),
            "pseudo-after": ([(":method", "GET"), (":scheme", "https"), ("x-a", "1"),
                              (":authority", HOST), (":path", "/smuggle-pseudo")], None),
            "pseudo-unknown": (req_headers("/smuggle-unknown") + [(":foo", "1")], None),
            "no-path": ([(":method", "GET"), (":scheme", "https"), (":authority", HOST)], None),
            "space-path": (req_headers("/smuggle path HTTP/1.1\r\nx: y"), None),
            "host-mismatch": (req_headers("/smuggle-host") + [("host", "pass.test")], None),
        }
        hdrs, body = shapes[ARG]
        block = raw_block(hdrs)
        send_request(s, 1, None, end=body is None, raw_block=block)
        if body is not None:
            s.sendall(frame(DATA, END_STREAM, 1, body))
        print(outcome(s, 1))
    elif SCEN == "rapid-reset":
        try:
            for i in range(1000):
                sid = 1 + 2 * i
                send_request(s, sid, req_headers("/rapid"), end=True)
                s.sendall(frame(RST, 0, sid, struct.pack(">I", 8)))
        except OSError:
            pass
        print(outcome(s))
    elif SCEN == "continuation":
        s.sendall(frame(HEADERS, 0, 1, enc.encode(req_headers("/cont"))))
        out = "sent"
        try:
            for i in range(20000):
                s.sendall(frame(CONT, 0, 1, raw_block([("x-c%d" % i, "")])))
        except OSError:
            out = None
        print(outcome(s) if out else "closed")
    elif SCEN == "hpack-bomb":
        # one 4 KiB value put in the dynamic table, then referenced by a
        # one-byte index over and over: tiny on the wire, huge decoded
        big = b"\x40" + bytes([4]) + b"bomb" + bytes([127]) + hpack_int(4000 - 127) + b"x" * 4000
        block = enc.encode(req_headers("/bomb")) + big + b"\xbe" * 3000
        s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        print(outcome(s, 1))
    elif SCEN == "big-headers":
        # 40 KB of fields, in a HEADERS frame and CONTINUATIONs of 16 KiB
        block = enc.encode(req_headers("/big") + [("x-big-%d" % i, "v" * 1000) for i in range(40)])
        parts = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        try:
            s.sendall(frame(HEADERS, END_STREAM, 1, parts[0]))
            for i, p in enumerate(parts[1:]):
                s.sendall(frame(CONT, END_HEADERS if i == len(parts) - 2 else 0, 1, p))
        except OSError:
            pass
        print(outcome(s, 1))
    elif SCEN in ("settings", "ping", "priority", "empty-data"):
        if SCEN == "empty-data":
            send_request(s, 1, req_headers("/upload", method="POST"), end=False)
        try:
            for i in range(20000):
                if SCEN == "settings":
                    s.sendall(frame(SETTINGS, 0, 0))
                elif SCEN == "ping":
                    s.sendall(frame(PING, 0, 0, b"12345678"))
                elif SCEN == "priority":
                    s.sendall(frame(PRIORITY, 0, 1 + 2 * (i % 1000), struct.pack(">IB", 0, 16)))
                else:
                    s.sendall(frame(DATA, 0, 1, b""))
        except OSError:
            pass
        print(outcome(s, send_acks=False))
    elif SCEN == "zero-window":
        s.close()
        s = connect(struct.pack(">HI", 4, 0))  # SETTINGS_INITIAL_WINDOW_SIZE 0
        send_request(s, 1, req_headers(ARG or "/big.bin"))
        r = Reader(s, 60)
        start = time.time()
        got = "closed"
        try:
            while True:
                f = r.next()
                if f is None:
                    break
                if f[0] == SETTINGS and not f[1] & ACK:
                    s.sendall(frame(SETTINGS, ACK, 0))
                if f[0] == GOAWAY:
                    got = "goaway %d" % struct.unpack(">I", f[3][4:8])[0]
        except socket.timeout:
            got = "timeout"
        print("%s after %.0f s" % (got, time.time() - start))
    elif SCEN == "streams":
        # settle SETTINGS first, so the limit is in force, then open too many
        r = Reader(s, 10)
        while True:
            f = r.next()
            if f is None or (f[0] == SETTINGS and not f[1] & ACK):
                break
        s.sendall(frame(SETTINGS, ACK, 0))
        time.sleep(0.3)
        for i in range(150):
            send_request(s, 1 + 2 * i, req_headers("/slow-%d" % i, method="POST"), end=False)
        print(outcome(s))
    else:
        sys.exit("unknown scenario " + SCEN)


main()

#!/usr/bin/env python3
"""A strict HTTP/1.1 origin server for the smuggling tests.

usage: strict_origin.py PORT LOGDIR

Listens on 127.0.0.1:PORT. Every byte received on connection N is appended to
LOGDIR/conn-N.bin as it arrives. Each request it can frame (RFC 9112, strictly:
CRLF only, token field names with the colon right after, no obs-fold, no CTL,
one Content-Length of digits or Transfer-Encoding exactly "chunked", not both,
chunk lines of 1*HEXDIG [;ext] CRLF, CRLF after chunk data, trailer fields) is
answered "200 OK" with a small body and logged as one JSON line in
LOGDIR/requests.jsonl: {"conn", "seq", "head" (the raw head, latin-1),
"body" (latin-1, de-chunked), "chunked", "trailers"}. Anything it cannot frame
is not guessed at: it logs {"conn", "refused": reason, "at": raw bytes seen}
and answers 400 with Connection: close. A connection that ends inside a
request logs {"conn", "incomplete": raw bytes of that request}. It never
upgrades (a request with Upgrade gets a plain 200), so whatever follows on
the connection must be framed as the next request.
"""
import json
import os
import re
import socket
import sys
import threading

TCHAR = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
MAX_HEAD = 64 * 1024

port, logdir = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
counter = [0]


class Refuse(Exception):
    pass


class Need(Exception):
    pass


def log(obj):
    with lock:
        with open(os.path.join(logdir, "requests.jsonl"), "a") as f:
            f.write(json.dumps(obj) + "\n")


def vchar_ok(v):
    return all(c == 9 or (c >= 0x20 and c != 0x7F) for c in v)


def parse_fields(lines):
    fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise Refuse("obs-fold")
        name, sep, value = line.partition(b":")
        if not sep or not TCHAR.match(name):
            raise Refuse("bad field name %r" % name)
        value = value.strip(b" \t")
        if not vchar_ok(value):
            raise Refuse("control byte in field %r" % name)
        fields.append((name, value))
    return fields


def parse_head(buf):
    """Returns (head_len, method, target, version, fields) or raises Need/Refuse."""
    i = 0
    end = buf.find(b"\r\n\r\n")
    scan = buf if end < 0 else buf[: end + 4]
    for k, c in enumerate(scan):
        if c == 0:
            raise Refuse("NUL in head")
        if c == 10 and (k == 0 or scan[k - 1] != 13):
            raise Refuse("bare LF")
        if c == 13 and k + 1 < len(scan) and scan[k + 1] != 10:
            raise Refuse("bare CR")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise Refuse("head too large")
        raise Need()
    lines = buf[:end].split(b"\r\n")
    m = re.match(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^ \x00-\x1f\x7f]+) HTTP/1\.([01])$", lines[0])
    if not m:
        raise Refuse("bad request line %r" % lines[0])
    return end + 4, m.group(1), m.group(2), m.group(3), parse_fields(lines[1:])


def framing(version, fields):
    cl = [v for n, v in fields if n.lower() == b"content-length"]
    te = [v for n, v in fields if n.lower() == b"transfer-encoding"]
    hosts = [v for n, v in fields if n.lower() == b"host"]
    if len(hosts) != 1 and version == b"1":
        raise Refuse("Host missing or repeated")
    if cl and te:
        raise Refuse("Content-Length and Transfer-Encoding")
    if len(cl) > 1:
        raise Refuse("several Content-Length")
    if len(te) > 1 or (te and te[0].lower() != b"chunked"):
        raise Refuse("Transfer-Encoding other than chunked")
    if te and version == b"0":
        raise Refuse("Transfer-Encoding on HTTP/1.0")
    if cl:
        if not re.match(rb"^[0-9]{1,15}$", cl[0]):
            raise Refuse("bad Content-Length")
        return ("length", int(cl[0]))
    if te:
        return ("chunked", 0)
    return ("length", 0)


def read_line(buf, pos, limit=8192):
    """The line at <pos> without its CRLF, and where the next one starts."""
    k = buf.find(b"\r\n", pos)
    rest = buf[pos:] if k < 0 else buf[pos:k]
    if b"\n" in rest or b"\r" in rest[:-1] or (k >= 0 and rest.endswith(b"\r")):
        raise Refuse("bare CR or LF in chunked body")
    if k < 0:
        if len(rest) > limit:
            raise Refuse("chunk line too long")
        raise Need()
    return rest, k + 2


CHUNK = re.compile(
    rb'^([0-9A-Fa-f]{1,16})((?:;[!#$%&\'*+\-.^_`|~0-9A-Za-z]+'
    rb'(?:=(?:[!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t -~\x80-\xff])*"))?)*)$')


def parse_chunked(buf, pos):
    """Returns (end, body, trailers) or raises Need/Refuse."""
    body = b""
    while True:
        line, pos = read_line(buf, pos)
        m = CHUNK.match(line)
        if not m:
            raise Refuse("bad chunk line %r" % line[:80])
        size = int(m.group(1), 16)
        if size >= 1 << 63:
            raise Refuse("chunk size too large")
        if size == 0:
            break
        if len(buf) < pos + size + 2:
            raise Need()
        body += buf[pos : pos + size]
        pos += size
        if buf[pos : pos + 2] != b"\r\n":
            raise Refuse("chunk data not followed by CRLF")
        pos += 2
    trailers = []
    while True:
        line, pos = read_line(buf, pos)
        if line == b"":
            return pos, body, trailers
        for n, v in parse_fields([line]):
            if n.lower() in (b"content-length", b"transfer-encoding", b"host"):
                raise Refuse("framing field in trailers")
            trailers.append((n + b": " + v).decode("latin-1"))


def serve(conn, n):
    path = os.path.join(logdir, "conn-%d.bin" % n)
    buf = b""
    seq = 0
    with conn, open(path, "ab") as raw:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                if buf:
                    log({"conn": n, "incomplete": buf.decode("latin-1")})
                return
            raw.write(data)
            raw.flush()
            buf += data
            while buf:
                try:
                    hl, method, target, version, fields = parse_head(buf)
                    mode, length = framing(version, fields)
                    if mode == "length":
                        if len(buf) < hl + length:
                            raise Need()
                        end, body, trailers = hl + length, buf[hl : hl + length], []
                    else:
                        end, body, trailers = parse_chunked(buf, hl)
                except Need:
                    break
                except Refuse as e:
                    log({"conn": n, "refused": str(e), "at": buf.decode("latin-1")})
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    return
                log({"conn": n, "seq": seq, "head": buf[:hl].decode("latin-1"),
                     "body": body.decode("latin-1"), "chunked": mode == "chunked",
                     "trailers": trailers})
                seq += 1
                buf = buf[end:]
                close = any(n_.lower() == b"connection" and b"close" in v.lower()
                            for n_, v in fields) or version == b"0"
                answer = b"seen %s %s\n" % (method, target)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (
                    len(answer), b"Connection: close\r\n" if close else b"", answer))
                if close:
                    return


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    while True:
        c, _ = s.accept()
        counter[0] += 1
        threading.Thread(target=serve, args=(c, counter[0]), daemon=True).start()


if __name__ == "__main__":
    main()

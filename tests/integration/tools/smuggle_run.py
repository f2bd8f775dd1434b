#!/usr/bin/env python3
"""Runs the smuggling corpus through portier against strict_origin.py.

usage: smuggle_run.py tls|plain HOST PORT CA_OR_- ORIGIN_LOGDIR NET CORPUS.py

Case i is sent from 127.0.NET.(10+i) (so X-Forwarded-For tells the cases
apart), in one write on a new connection (TLS with SNI HOST, or plain), and
its expectation checked (see tests/integration/data/smuggle_corpus.py):
the statuses the client reads, in order; the requests the origin completed
in the meantime, head byte for byte against the canonical head (only the
Connection value may be keep-alive or close: it is portier's choice per
hop), body and trailers as the origin de-framed them; and no request the
origin had to refuse. Prints one line per case:
  RESULT<TAB>pass|fail<TAB>name<TAB>reason
"""
import importlib.util
import json
import os
import socket
import ssl
import sys
import time

mode, host, port, ca, logdir, net, corpus_path = sys.argv[1:8]
port, net = int(port), int(net)
spec = importlib.util.spec_from_file_location("corpus", corpus_path)
corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus)
proto = "https" if mode == "tls" else "http"
LOG = os.path.join(logdir, "requests.jsonl")


def sub(b):
    return b.replace(b"{host}", host.encode())


def log_lines():
    try:
        with open(LOG) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def canonical(r, client):
    """The head portier must send for <r> (common/http1.c pt_http1_write_request)."""
    fields = [(n, v.replace("{host}", host)) for n, v in r["fields"]]
    hv = next((v for n, v in fields if n.lower() == "host"), None)
    out = "%s %s HTTP/%s\r\n" % (r["method"], r["path"], r["version"])
    for n, v in fields:
        out += "%s: %s\r\n" % (n, v) if v else "%s:\r\n" % n
    out += "X-Forwarded-For: %s\r\n" % client
    out += "Forwarded: for=%s%s;proto=%s\r\n" % (client, ";host=" + hv if hv else "", proto)
    out += "X-Real-IP: %s\r\nX-Forwarded-Proto: %s\r\n" % (client, proto)
    if hv is not None:
        out += "X-Forwarded-Host: %s\r\n" % hv
    out += "Connection: %s\r\n\r\n" % ("upgrade" if r["upgrade"] else "{conn}")
    return out


def read_responses(sock, want):
    """Statuses of the responses read (framed by Content-Length), until <want>
    are read and 0.3 s pass quietly, or the peer closes, or 5 s pass."""
    buf, statuses = b"", []
    deadline = time.time() + 5
    closed = False
    while time.time() < deadline:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            length = 0
            for l in lines[1:]:
                n, _, v = l.partition(":")
                if n.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(buf) < end + 4 + length:
                break
            statuses.append(int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1)
            buf = buf[end + 4 + length:]
        if closed:
            break
        quiet = len(statuses) >= want
        sock.settimeout(0.3 if quiet else max(0.05, deadline - time.time()))
        try:
            data = sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            if quiet:
                break
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            closed = True
        buf += data
    if buf:
        statuses.append("junk:%r" % buf[:60])
    return statuses


def connect(client):
    s = socket.socket()
    s.bind((client, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "tls":
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname=host)
    return s


def wait_quiet():
    """Until the origin's log has not grown for 0.4 s (at most 3 s)."""
    last, since, start = len(log_lines()), time.time(), time.time()
    while time.time() - start < 3:
        time.sleep(0.1)
        n = len(log_lines())
        if n != last:
            last, since = n, time.time()
        elif time.time() - since >= 0.4:
            break


def run_case(i, c):
    client = "127.0.%d.%d" % (net, 10 + i)
    before = len(log_lines())
    try:
        s = connect(client)
        s.sendall(sub(c["send"]))
        statuses = read_responses(s, len(c["status"]))
        s.close()
    except OSError as e:
        return "connection failed: %s" % e
    wait_quiet()
    new = [json.loads(l) for l in log_lines()[before:]]
    done = [e for e in new if "seq" in e]
    refused = [e for e in new if "refused" in e]
    if statuses != c["status"]:
        return "client read statuses %s, expected %s" % (statuses, c["status"])
    if refused:
        return "the origin had to refuse (%s) bytes %r" % (refused[0]["refused"],
                                                            refused[0]["at"][:200])
    if len(done) != len(c["origin"]):
        return "the origin completed %d requests, expected %d: %s" % (
            len(done), len(c["origin"]), [d["head"][:200] for d in done])
    for k, (got, want) in enumerate(zip(done, c["origin"])):
        exp = canonical(want, client)
        head = got["head"]
        conn = "keep-alive" if "Connection: keep-alive\r\n" in head else "close"
        if not want["upgrade"]:
            exp = exp.replace("{conn}", conn)
        if head != exp:
            return "request %d head differs:\n  got  %r\n  want %r" % (k, head, exp)
        body = sub(want["body"]).decode("latin-1")
        if got["body"] != body or got["chunked"] != want["chunked"]:
            return "request %d body %r (chunked %s), want %r (chunked %s)" % (
                k, got["body"][:100], got["chunked"], body[:100], want["chunked"])
        if got["trailers"] != want["trailers"]:
            return "request %d trailers %s, want %s" % (k, got["trailers"], want["trailers"])
    return None


for i, c in enumerate(corpus.CASES):
    why = run_case(i, c)
    print("RESULT\t%s\t%s\t%s" % ("fail" if why else "pass", c["name"],
                                  (why or "").replace("\n", " ")), flush=True)

#!/usr/bin/env python3
"""Hostile and broken peers around portier's SNI passthrough relay.

usage: relay_peers.py SCENARIO [options]   (see --help of each scenario)

Every scenario plays both ends itself: the client connects to portier's TLS
listener, and, where the route leads to a plain TCP "backend" (passthrough
does not decrypt, so any TCP server will do), a listener in this process
plays the backend. A scenario prints one JSON object on stdout with what
happened (how each connection ended, after how long, what arrived); the
shell test judges it. Nothing here waits without a bound.

Endings ("how"): "eof" clean FIN, "reset" ECONNRESET, "open" still open when
we stopped waiting, "error:<name>" anything else.
"""
import argparse
import hashlib
import json
import os
import queue
import random
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.request

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
HELLO_FILE = os.path.join(HERE, "..", "..", "data", "clienthello", "curl-http1.1.bin")

ALERT_HANDSHAKE_FAILURE = bytes.fromhex("15030300020228")
ALERT_INTERNAL_ERROR = bytes.fromhex("15030300020250")


def now():
    return time.monotonic()


def rnd(x):
    return round(x, 3)


def curl_hello():
    """The ClientHello curl 7.88.1 sent (SNI a.test), as captured on the wire."""
    with open(HELLO_FILE, "rb") as f:
        return f.read()


def make_hello(sni):
    """A real ClientHello for <sni> from Python's ssl module."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    t = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        t.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def connect(port, timeout=10):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_quiet(s, data):
    """sendall that reports instead of raising (the peer may cut us off)."""
    try:
        s.sendall(data)
        return "sent"
    except ConnectionResetError:
        return "reset"
    except BrokenPipeError:
        return "epipe"
    except OSError as e:
        return "error:%s" % type(e).__name__


def wait_end(s, t0, limit, keep=1 << 20):
    """Reads until EOF / reset / <limit> seconds after t0. Returns a dict:
    how, t (seconds after t0 when it ended, or None), got (bytes count),
    head (hex of the first bytes)."""
    data = bytearray()
    n = 0
    how, t = "open", None
    while True:
        left = limit - (now() - t0)
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            how, t = "reset", now() - t0
            break
        except OSError as e:
            how, t = "error:%s" % type(e).__name__, now() - t0
            break
        if not chunk:
            how, t = "eof", now() - t0
            break
        n += len(chunk)
        if len(data) < keep:
            data += chunk[: keep - len(data)]
    return {"how": how, "t": None if t is None else rnd(t), "got": n,
            "head": bytes(data[:16]).hex(), "data": bytes(data)}


def public(d):
    """Drops raw bytes from a wait_end result before printing."""
    return {k: v for k, v in d.items() if k != "data"}


def recv_exact(s, n, timeout=5):
    buf = bytearray()
    end = now() + timeout
    while len(buf) < n:
        left = end - now()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def is_open(s, wait=0.05):
    """True when nothing (no byte, no FIN, no RST) is waiting on s."""
    s.settimeout(wait)
    try:
        chunk = s.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        return True
    except OSError:
        return False
    return False if not chunk else "data"


def reset_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class Backend:
    """Plain TCP listener; accepted sockets are queued with their accept time."""

    def __init__(self, port, backlog=512):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, port))
        self.ls.listen(backlog)
        self.ls.settimeout(0.1)
        self.q = queue.Queue()
        self.stop = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        while not self.stop:
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.q.put((s, now()))

    def get(self, timeout=5):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None, None

    def close(self):
        self.stop = True
        self.th.join(1)
        self.ls.close()


def routed(port, be, hello, timeout=5):
    """Client connected through portier to a backend socket that has read the
    replayed hello. Returns (client, backend, ok)."""
    c = connect(port)
    c.sendall(hello)
    b, _ = be.get(timeout)
    if b is None:
        return c, None, False
    got = recv_exact(b, len(hello), timeout)
    return c, b, got == hello


def out(obj):
    json.dump(obj, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime (fields 14, 15)


# ---- scenarios -----------------------------------------------------------------


def sc_probe(a):
    """One routed exchange: the relay still works."""
    be = Backend(a.backend)
    try:
        c, b, ok = routed(a.port, be, curl_hello())
        res = {"routed": ok}
        if b is not None:
            b.sendall(b"pong")
            res["reply"] = recv_exact(c, 4).decode(errors="replace")
            b.close()
        c.close()
    finally:
        be.close()
    out(res)


def sc_hello(a):
    """Clients that never finish their hello."""
    hello = curl_hello()
    res = {}

    def run(name, first, trickle=None):
        t0 = now()
        try:
            s = connect(a.port)
        except OSError as e:
            res[name] = {"how": "connect:%s" % e}
            return
        if first:
            s.sendall(first)
        if trickle is None:
            res[name] = public(wait_end(s, t0, a.timeout + 4))
        else:
            # one byte every <trickle> s: the hello deadline must not move
            i = 0
            end = None
            while now() - t0 < a.timeout + 4 and i < len(hello):
                if send_quiet(s, hello[i:i + 1]) != "sent":
                    break
                i += 1
                if is_open(s, trickle) is not True:
                    break
            r = wait_end(s, t0, a.timeout + 4)
            r["sent"] = i
            res[name] = public(r)
        s.close()

    ths = [threading.Thread(target=run, args=x) for x in (
        ("silent", b""),
        ("header3", b"\x16\x03\x01"),
        ("half_hello", hello[:100]),
        ("slowloris", b"", 0.25),
    )]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    out(res)


def garbage_cases():
    hello = make_hello("a.test")
    rec = lambda body: b"\x16\x03\x01" + struct.pack(">H", len(body)) + body
    # ClientHello body with a 33-byte session id (at most 32 allowed)
    bad_sid = b"\x03\x03" + b"\x11" * 32 + b"\x21" + b"\x00" * 33 + b"\x00\x02\x13\x01\x01\x00"
    bad_hello = rec(b"\x01" + struct.pack(">I", len(bad_sid))[1:] + bad_sid)
    # handshake type 2 (ServerHello) where a ClientHello must be
    not_ch = rec(b"\x02" + hello[6:9] + hello[9:])
    # 20 KB of 1-byte records building a 16000-byte handshake message
    frag = b"\x01\x00\x3e\x80" + b"\x00" * 4000
    many_small = b"".join(b"\x16\x03\x01\x00\x01" + frag[i:i + 1] for i in range(3413))
    # one maximal record (2^14) plus more: 20 KB, cannot fit the hello buffer
    body = b"\x01\x00\x3f\xfc" + b"\x03\x03" + b"\x00" * (16380 - 2)
    big_record = b"\x16\x03\x01\x40\x00" + body + b"\x16\x03\x01\x10\x00" + b"\x00" * 3600
    return {
        "http": b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "binary": b"\x00" + os.urandom(4095),
        "sslv2": b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + os.urandom(37),
        "record_len_too_big": b"\x16\x03\x01\xff\xff" + b"\x00" * 64,
        "empty_record": b"\x16\x03\x01\x00\x00" + b"\x16" * 8,
        "bad_session_id": bad_hello,
        "not_clienthello": not_ch,
        "declared_16mb": rec(b"\x01\xff\xff\xff" + b"\x03\x03" + b"\x00" * 40),
        "oversized_small_records": many_small,
        "oversized_big_record": big_record,
        "alert_in_handshake_record": b"\x16\x03\x03\x00\x07" + ALERT_HANDSHAKE_FAILURE,
    }


def sc_garbage(a):
    res = {}

    def run(name, data):
        t0 = now()
        s = connect(a.port)
        sent = send_quiet(s, data)
        r = public(wait_end(s, t0, a.limit))
        r["sent"] = sent
        r["len"] = len(data)
        res[name] = r
        s.close()

    ths = [threading.Thread(target=run, args=kv) for kv in garbage_cases().items()]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    out(res)


def padded_hello(sni, total):
    """A real ClientHello for <sni> grown with a padding extension (RFC 7685)
    and split into two TLS records so that the records take <total> bytes."""
    h = make_hello(sni)
    assert h[0] == 22 and 5 + int.from_bytes(h[3:5], "big") == len(h), "one record"
    msg = bytearray(h[5:])
    body = msg[4:]
    p = 2 + 32
    p += 1 + body[p]                                 # session id
    p += 2 + int.from_bytes(body[p:p + 2], "big")    # cipher suites
    p += 1 + body[p]                                 # compression methods
    ext_at = p
    grow = total - 10 - len(msg) - 4                 # 2 record headers, ext header
    assert grow >= 0
    body += b"\x00\x15" + grow.to_bytes(2, "big") + bytes(grow)
    body[ext_at:ext_at + 2] = (len(body) - ext_at - 2).to_bytes(2, "big")
    msg = bytearray(b"\x01") + len(body).to_bytes(3, "big") + body
    half = len(msg) // 2
    rec = lambda b: b"\x16\x03\x01" + len(b).to_bytes(2, "big") + bytes(b)
    out = rec(msg[:half]) + rec(msg[half:])
    assert len(out) == total
    return out


def sc_maxhello(a):
    """A hello of exactly the largest accepted size (<max> bytes of records)
    is routed and replayed byte for byte; one byte more is refused."""
    be = Backend(a.backend)
    res = {}
    try:
        hello = padded_hello("a.test", a.max)
        c, b, ok = routed(a.port, be, hello)
        res["max"] = {"len": len(hello), "routed": ok}
        if b is not None:
            b.sendall(b"pong")
            res["max"]["reply"] = recv_exact(c, 4).decode(errors="replace")
            b.close()
        c.close()
        t0 = now()
        c = connect(a.port)
        c.sendall(padded_hello("a.test", a.max + 1))
        res["over"] = public(wait_end(c, t0, 3))
        res["over"]["len"] = a.max + 1
        res["over"]["backend_accepts"] = be.q.qsize()
        c.close()
    finally:
        be.close()
    out(res)


def sc_idle(a):
    """A silent relayed connection is cut after the idle timeout; trickling
    ones (either direction) are not."""
    be = Backend(a.backend)
    hello = curl_hello()
    res = {}
    try:
        conns = {}
        for name in ("silent", "cli_trickle", "srv_trickle"):
            c, b, ok = routed(a.port, be, hello)
            conns[name] = (c, b, now())
            res[name] = {"routed": ok}
        if not all(r["routed"] for r in res.values()):
            out(res)
            return
        keep = a.idle + 2.0  # trickle for longer than the idle timeout

        def silent():
            c, b, t0 = conns["silent"]
            rb = {}
            th = threading.Thread(target=lambda: rb.update(wait_end(b, t0, a.idle + 4)))
            th.start()
            res["silent"]["client"] = public(wait_end(c, t0, a.idle + 4))
            th.join()
            res["silent"]["backend"] = public(rb)

        def trickle(name, src, dst):
            c, b, t0 = conns[name]
            s, d = (c, b) if src == "c" else (b, c)
            sent = got = 0
            alive = True
            t_last = t0
            while now() - t0 < keep:
                if send_quiet(s, b".") != "sent":
                    alive = False
                    break
                sent += 1
                r = recv_exact(d, 1, 2)
                t_last = now()
                got += len(r)
                if len(r) != 1:
                    alive = False
                    break
                time.sleep(1.0)
            r = res[name]
            r.update(sent=sent, got=got, alive_after=rnd(now() - t0),
                     alive=alive and is_open(c) is True and is_open(b) is True)
            # now silent: it must go idle-timeout after the last byte
            r["then_silent"] = public(wait_end(c, t_last, a.idle + 4))

        ths = [threading.Thread(target=silent),
               threading.Thread(target=trickle, args=("cli_trickle", "c", "b")),
               threading.Thread(target=trickle, args=("srv_trickle", "b", "c"))]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        for c, b, _ in conns.values():
            c.close()
            b.close()
    finally:
        be.close()
    out(res)


def pattern(n, seed=7):
    r = random.Random(seed)
    return r.randbytes(n)


def sc_halfclose(a):
    be = Backend(a.backend)
    hello = curl_hello()
    reply = pattern(256 * 1024)
    res = {}
    try:
        # -- client half-closes first
        r = res["client_first"] = {}
        c, b, r["routed"] = routed(a.port, be, hello)
        c.sendall(b"request-body")
        c.shutdown(socket.SHUT_WR)
        e = wait_end(b, now(), 5)
        r["backend_got"] = e["data"].decode(errors="replace")
        r["backend_end"] = e["how"]  # must be eof: recv() returned b''
        if e["how"] == "eof":
            r["backend_reply"] = send_quiet(b, reply)
            b.close()
        e = wait_end(c, now(), 5)
        r["client_end"] = e["how"]
        r["client_got_reply"] = e["data"] == reply
        r["client_got"] = e["got"]
        c.close()

        # -- backend half-closes first
        r = res["backend_first"] = {}
        c, b, r["routed"] = routed(a.port, be, hello)
        b.sendall(b"banner")
        b.shutdown(socket.SHUT_WR)
        e = wait_end(c, now(), 5)
        r["client_got"] = e["data"].decode(errors="replace")
        r["client_end"] = e["how"]
        if e["how"] == "eof":
            r["client_reply"] = send_quiet(c, reply)
            c.shutdown(socket.SHUT_WR)
        e = wait_end(b, now(), 5)
        r["backend_end"] = e["how"]
        r["backend_got_reply"] = e["data"] == reply
        r["backend_got"] = e["got"]
        b.close()
        # both directions are done: portier must close the client side too
        r["client_after"] = public(wait_end(c, now(), 3))
        c.close()

        # -- hello and FIN in one go, before portier even has a backend
        r = res["hello_fin"] = {}
        c = connect(a.port)
        c.sendall(hello)
        c.shutdown(socket.SHUT_WR)
        b, _ = be.get(5)
        if b is None:
            r["routed"] = False
        else:
            e = wait_end(b, now(), 5)
            r["routed"] = e["data"] == hello
            r["backend_end"] = e["how"]
            r["backend_reply"] = send_quiet(b, b"late answer")
            b.close()
            e = wait_end(c, now(), 5)
            r["client_got"] = e["data"].decode(errors="replace")
            r["client_end"] = e["how"]
        c.close()
    finally:
        be.close()
    out(res)


def sc_rst(a):
    be = Backend(a.backend)
    hello = curl_hello()
    res = {}
    try:
        # -- backend resets mid-transfer
        r = res["backend_rst"] = {}
        c, b, r["routed"] = routed(a.port, be, hello)
        b.sendall(pattern(512 * 1024))
        time.sleep(0.2)
        reset_close(b)
        e = wait_end(c, now(), 5)
        r["client"] = public(e)
        c.close()

        # -- backend resets while the client has sent a request and waits
        r = res["backend_rst_idle"] = {}
        c, b, r["routed"] = routed(a.port, be, hello)
        c.sendall(b"request")
        recv_exact(b, 7)
        reset_close(b)
        r["client"] = public(wait_end(c, now(), 5))
        c.close()

        # -- backend resets while portier holds data the stalled client has
        #    not read yet (reading from the backend is paused): the reset
        #    must still reach the client once it reads, never a clean EOF
        for name, snd, rcv in (("backend_rst_backpressured", "b", "c"),
                               ("client_rst_backpressured", "c", "b")):
            r = res[name] = {}
            c, b, r["routed"] = routed(a.port, be, hello)
            s, d = (b, c) if snd == "b" else (c, b)
            s.setblocking(False)
            chunk = pattern(64 * 1024)
            n = 0
            t0 = now()
            while now() - t0 < 0.7:
                try:
                    n += s.send(chunk)
                except BlockingIOError:
                    time.sleep(0.01)
            r["sent"] = n
            reset_close(s)
            time.sleep(0.5)  # still not reading; 1.2 s in all < idle-timeout
            r["receiver"] = public(wait_end(d, now(), 5))
            d.close()

        # -- client resets while the backend streams to it
        r = res["client_rst_streaming"] = {}
        c, b, r["routed"] = routed(a.port, be, hello)
        stop = threading.Event()
        info = {}

        def stream():
            chunk = pattern(16 * 1024)
            b.settimeout(5)
            while not stop.is_set():
                try:
                    b.sendall(chunk)
                except OSError as e:
                    info["how"] = "reset" if isinstance(e, ConnectionResetError) else \
                        "epipe" if isinstance(e, BrokenPipeError) else type(e).__name__
                    info["t"] = now()
                    return
                time.sleep(0.005)
            info["how"] = "still sending"

        th = threading.Thread(target=stream)
        th.start()
        recv_exact(c, 100000, 2)
        t0 = now()
        reset_close(c)
        th.join(5)
        stop.set()
        th.join(1)
        r["backend_send"] = info.get("how")
        r["t"] = rnd(info["t"] - t0) if "t" in info else None
        b.close()

        # -- client resets while idle: the backend blocked in recv() sees it
        r = res["client_rst_idle"] = {}
        c, b, r["routed"] = routed(a.port, be, hello)
        t0 = now()
        reset_close(c)
        r["backend"] = public(wait_end(b, t0, 5))
        b.close()
    finally:
        be.close()
    out(res)


def stream_blocks(mib, seed=11):
    base = bytearray(random.Random(seed).randbytes(1 << 20))
    for i in range(mib):
        base[0:8] = struct.pack(">Q", i)
        base[-8:] = struct.pack(">Q", i ^ 0x5A5A5A5A)
        yield bytes(base)


def sc_stream(a):
    """One side streams <mib> MiB as fast as it can (the backend, or the
    client with --upload); the receiver first reads at <rate> bytes/s (0: not
    at all) for <stall> s, RSS of the worker sampled meanwhile, then reads
    everything as fast as it can. The stream is checked with sha256."""
    be = Backend(a.backend)
    hello = curl_hello()
    res = {"mib": a.mib, "stall": a.stall, "rate": a.rate, "upload": bool(a.upload)}
    try:
        rss0 = vmrss_kb(a.pid) if a.pid else -1
        c, b, res["routed"] = routed(a.port, be, hello)
        src, dst = (c, b) if a.upload else (b, c)
        sent = {"n": 0, "how": "running", "sha": None}

        def feed():
            h = hashlib.sha256()
            src.settimeout(a.stall + 60)
            try:
                for blk in stream_blocks(a.mib):
                    src.sendall(blk)
                    h.update(blk)
                    sent["n"] += len(blk)
                sent["how"] = "done"
            except OSError as e:
                sent["how"] = "reset" if isinstance(e, ConnectionResetError) else \
                    "epipe" if isinstance(e, BrokenPipeError) else type(e).__name__
            sent["sha"] = h.hexdigest()
            try:
                src.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        th = threading.Thread(target=feed)
        th.start()
        h = hashlib.sha256()
        got = 0
        how = "open"
        buf = bytearray(1 << 20)
        mv = memoryview(buf)

        def read_some(limit, timeout):
            nonlocal got, how
            dst.settimeout(timeout)
            try:
                n = dst.recv_into(buf, limit)
            except ConnectionResetError:
                how = "reset"
                return False
            except socket.timeout:
                return True
            if n == 0:
                how = "eof"
                return False
            h.update(mv[:n])
            got += n
            return True

        samples = []
        t0 = now()
        step = 0.1
        while now() - t0 < a.stall and how == "open":
            if a.pid:
                samples.append(vmrss_kb(a.pid))
            if a.rate > 0:
                want = int(a.rate * step)
                while want > 0 and how == "open":
                    before = got
                    if not read_some(want, step) or got == before:
                        break
                    want -= got - before
            time.sleep(step)
        res["sent_during_stall"] = sent["n"]
        res["got_during_stall"] = got
        res["ended_during_stall"] = None if how == "open" else rnd(now() - t0)
        t1 = now()
        while how == "open" and now() - t1 < 60:
            if not read_some(len(buf), 30):
                break
        res["read_s"] = rnd(now() - t1)
        th.join(30)
        res.update(end=how, got=got, sent=sent["n"], sender_end=sent["how"],
                   sha_match=(sent["sha"] == h.hexdigest() and got == sent["n"]))
        if a.pid:
            res.update(rss0_kb=rss0, rss_max_stall_kb=max(samples) if samples else -1,
                       rss_end_kb=vmrss_kb(a.pid), samples=len(samples))
        c.close()
        b.close()
    finally:
        be.close()
    out(res)


def api_connections(api_port, token, pid):
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/status" % api_port,
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            d = json.load(r)
    except Exception as e:
        return "error:%s" % e
    for w in d.get("workers", []):
        if w.get("pid") == pid:
            return w.get("connections")
    return None


def sc_connlimit(a):
    be = Backend(a.backend)
    hello = curl_hello()
    res = {"limit": a.limit}
    try:
        idle = [connect(a.port) for _ in range(a.limit)]
        # The TLS listener defers accept (PT_WORKER_DEFER_ACCEPT_S, 1 s): a
        # silent connection reaches the worker only after that.
        time.sleep(2.0)
        t0 = now()
        extra = connect(a.port)  # the kernel completes it: listen backlog
        res["extra_connect_s"] = rnd(now() - t0)
        extra.sendall(hello)     # waits in the kernel until portier accepts
        tick = os.sysconf("SC_CLK_TCK")
        cpu0 = cpu_ticks(a.pid)
        t0 = now()
        w = wait_end(extra, t0, a.hold)
        res["extra_while_full"] = public(w)
        res["cpu_s_while_full"] = rnd((cpu_ticks(a.pid) - cpu0) / tick)
        res["wall_s"] = rnd(now() - t0)
        res["backend_accepts_while_full"] = be.q.qsize()
        res["api_connections_while_full"] = api_connections(a.api, a.token, a.pid)
        res["idle_still_open"] = sum(1 for s in idle if is_open(s) is True)
        # free two slots: the queued connection is accepted and routed
        t0 = now()
        for s in idle[:2]:
            s.close()
        b, tb = be.get(5)
        if b is None:
            res["served"] = False
        else:
            res["served_after_s"] = rnd(tb - t0)
            res["served"] = recv_exact(b, len(hello)) == hello
            b.sendall(b"served")
            res["extra_reply"] = recv_exact(extra, 6).decode(errors="replace")
            b.close()
        extra.close()
        for s in idle[2:]:
            s.close()
    finally:
        be.close()
    out(res)


def sc_unreachable(a):
    res = {}
    be = Backend(a.backend)
    # Blackhole: listen(0) takes one connection in its accept queue; with the
    # queue full (nobody accepts) the kernel drops further SYNs unanswered.
    bh = socket.socket()
    bh.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bh.bind((HOST, a.blackhole))
    bh.listen(0)
    fillers = []
    for _ in range(2):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex((HOST, a.blackhole))
        fillers.append(f)
    time.sleep(0.3)
    probe = socket.socket()
    probe.settimeout(0.7)
    try:
        probe.connect((HOST, a.blackhole))
        res["blackhole_ok"] = False
    except socket.timeout:
        res["blackhole_ok"] = True
    except OSError as e:
        res["blackhole_ok"] = "error:%s" % e
    probe.close()

    def refused():
        t0 = now()
        c = connect(a.port)
        c.sendall(make_hello("dead.test"))
        e = wait_end(c, t0, 5)
        res["all_refused"] = dict(public(e), alert=e["data"][:7] == ALERT_INTERNAL_ERROR)
        c.close()

    def failover():
        hello = make_hello("bh.test")
        t0 = now()
        c = connect(a.port)
        c.sendall(hello)
        b, tb = be.get(a.connect_timeout * 3 + 2)
        r = res["failover"] = {}
        if b is None:
            r["routed"] = False
            r["client"] = public(wait_end(c, t0, 1))
        else:
            r["after_s"] = rnd(tb - t0)
            r["routed"] = recv_exact(b, len(hello)) == hello
            b.sendall(b"from-second-server")
            r["reply"] = recv_exact(c, 18).decode(errors="replace")
            b.close()
        c.close()

    def only_blackhole():
        t0 = now()
        c = connect(a.port)
        c.sendall(make_hello("bhonly.test"))
        e = wait_end(c, t0, a.connect_timeout * 3 + 2)
        res["only_blackhole"] = dict(public(e), alert=e["data"][:7] == ALERT_INTERNAL_ERROR)
        c.close()

    try:
        ths = [threading.Thread(target=f) for f in (refused, failover, only_blackhole)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
    finally:
        be.close()
        for f in fillers:
            f.close()
        bh.close()
    out(res)


def sc_many(a):
    ctx = ssl.create_default_context(cafile=a.ca)
    barrier = threading.Barrier(a.n)
    results = [None] * a.n
    times = [None] * a.n

    def one(i):
        try:
            barrier.wait(30)
        except threading.BrokenBarrierError:
            pass
        t0 = now()
        try:
            with socket.create_connection((HOST, a.port), timeout=60) as raw:
                with ctx.wrap_socket(raw, server_hostname=a.sni) as s:
                    s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                               % a.sni).encode())
                    resp = b""
                    while True:
                        try:
                            chunk = s.recv(65536)
                        except ssl.SSLZeroReturnError:
                            break
                        if not chunk:
                            break
                        resp += chunk
            head, _, body = resp.partition(b"\r\n\r\n")
            ok = head.startswith(b"HTTP/1.1 200") and body.decode(errors="replace") == a.expect
            results[i] = True if ok else "bad response: %r" % resp[:80]
        except Exception as e:
            results[i] = "%s: %s" % (type(e).__name__, e)
        times[i] = now() - t0

    t0 = now()
    ths = [threading.Thread(target=one, args=(i,)) for i in range(a.n)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(90)
    errs = [r for r in results if r is not True]
    ts = sorted(t for t in times if t is not None)
    out({"n": a.n, "ok": a.n - len(errs), "errors": sorted(set(map(str, errs)))[:5],
         "elapsed_s": rnd(now() - t0),
         "p50_s": rnd(ts[len(ts) // 2]) if ts else None, "max_s": rnd(ts[-1]) if ts else None})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="scenario", required=True)

    def sc(name, fn, *opts):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, required=True, help="portier TLS listener")
        for o in opts:
            p.add_argument("--" + o[0], type=o[1], default=o[2] if len(o) > 2 else None,
                           required=len(o) <= 2)
        p.set_defaults(fn=fn)

    sc("probe", sc_probe, ("backend", int))
    sc("hello", sc_hello, ("timeout", float))
    sc("garbage", sc_garbage, ("limit", float, 3.0))
    sc("maxhello", sc_maxhello, ("backend", int), ("max", int, 16384))
    sc("idle", sc_idle, ("backend", int), ("idle", float))
    sc("halfclose", sc_halfclose, ("backend", int))
    sc("rst", sc_rst, ("backend", int))
    sc("stream", sc_stream, ("backend", int), ("mib", int), ("stall", float),
       ("pid", int, 0), ("rate", float, 0.0), ("upload", int, 0))
    sc("connlimit", sc_connlimit, ("backend", int), ("pid", int), ("limit", int),
       ("hold", float, 3.0), ("api", int), ("token", str))
    sc("unreachable", sc_unreachable, ("backend", int), ("blackhole", int),
       ("connect-timeout", float))
    sc("many", sc_many, ("n", int), ("sni", str), ("ca", str), ("expect", str))
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()

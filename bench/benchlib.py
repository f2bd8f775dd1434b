"""Helpers shared by the control-plane benchmarks (bans_bench.py, domains_bench.py)."""
import http.client
import json
import os
import socket
import time

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_ms(pid):
    """utime + stime of the process (every thread), in ms."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000.0 / TICK


def call(conn, token, method, path, body=None):
    """One API call on a keep-alive http.client connection: (status, JSON or None)."""
    hdr = {"Authorization": "Bearer " + token}
    if body is not None:
        hdr["Content-Type"] = "application/json"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def wait_healthy(port, proc, timeout):
    """Until GET /healthz on the API answers 200; False if <proc> exits or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False

#!/usr/bin/env python3
"""Control plane at scale: what one domain write costs with N domains configured.

usage: bench/domains_bench.py [PORTIERD] [N,N,...] [WRITES]
       (defaults: build/portierd 1000,10000,100000 30)

For each N: a fresh state dir; portierd (2 workers, loopback) starts once to
create its store and one backend, stops; N passthrough domains are then
inserted straight into the SQLite store (one transaction: onboarding through
the API costs one whole-configuration publish per domain, hours at 100,000,
which is the problem being measured, not the setup), and portierd starts
again on that store. Then WRITES domain PUTs (new names, one keep-alive
connection, one after the other) are timed:
  - answer latency (median, p99, max) and how many answered "applied": true
    (every worker acked the new version before the answer left);
  - from each answer until /metrics shows every worker at its version
    (the /metrics round trip included, so an upper bound);
  - daemon CPU per write (utime + stime of the daemon, /proc/PID/stat);
  - daemon and worker RSS (VmRSS) with N domains, and the daemon's start
    time until /healthz answers and every worker applied the first snapshot.
Prints one line per N and a Markdown table (used by bench/run.sh for
bench/README.md). Writes nothing else; everything it starts is stopped."""
import http.client
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import call, cpu_ms, free_port, wait_healthy

HERE = os.path.dirname(os.path.abspath(__file__))
PORTIERD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "portierd")
SIZES = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1000,10000,100000").split(",")]
WRITES = int(sys.argv[3]) if len(sys.argv) > 3 else 30


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid):
    try:
        return [int(x) for x in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except OSError:
        return []


def worker_versions(conn, token):
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
    text = conn.getresponse().read().decode()
    return [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("portier_worker_config_version{")]


class Daemon:
    def __init__(self, tmp):
        self.tmp = tmp
        self.api, self.https, self.http80 = free_port(), free_port(), free_port()
        self.p = None

    def start(self):
        log = open(os.path.join(self.tmp, "portierd.log"), "a")
        t0 = time.monotonic()
        self.p = subprocess.Popen([PORTIERD, "--state-dir", os.path.join(self.tmp, "state"),
                                   "--api", "127.0.0.1:%d" % self.api,
                                   "--https", "127.0.0.1:%d" % self.https,
                                   "--http", "127.0.0.1:%d" % self.http80,
                                   "--workers", "2", "--access-log", "off"],
                                  stdout=log, stderr=log)
        if not wait_healthy(self.api, self.p, 300):
            raise SystemExit("portierd did not start; log in %s" % self.tmp)
        self.token = open(os.path.join(self.tmp, "state", "api.token")).read().strip()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.api, timeout=120)
        # Started: every worker applied the store's configuration.
        want = None
        while time.monotonic() - t0 < 300:
            st, out = call(self.conn, self.token, "GET", "/api/v1/status")
            if st == 200 and isinstance(out, dict):
                want = out.get("config_version")
                vs = worker_versions(self.conn, self.token)
                if want is not None and len(vs) == 2 and min(vs) >= want:
                    break
            time.sleep(0.05)
        self.started_s = time.monotonic() - t0

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def preload(tmp, n):
    """N passthrough domains to backend "be", inserted as the API stores them
    (the row of one domain PUT through the API is the template)."""
    db = sqlite3.connect(os.path.join(tmp, "state", "portier.db"))
    row = db.execute("SELECT name, doc, created_at, updated_at, backend, mode FROM domains "
                     "WHERE name = 'template.bench.test'").fetchone()
    name, doc, ca, ua, be, mode = row
    rows = ((("d%d.bench.test" % i), doc.replace(name, "d%d.bench.test" % i), ca, ua, be, mode)
            for i in range(n))
    with db:
        db.executemany("INSERT INTO domains (name, doc, created_at, updated_at, backend, mode) "
                       "VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.close()


def store_path_check(tmp):
    p = os.path.join(tmp, "state", "portier.db")
    if not os.path.exists(p):
        cands = [f for f in os.listdir(os.path.join(tmp, "state")) if f.endswith(".db")]
        raise SystemExit("no portier.db in the state dir (%s)" % cands)


def measure(n):
    tmp = tempfile.mkdtemp(prefix="portier-domainsbench.")
    d = Daemon(tmp)
    try:
        d.start()
        call(d.conn, d.token, "PUT", "/api/v1/backends/be", {"servers": ["127.0.0.1:9"]})
        st, _ = call(d.conn, d.token, "PUT", "/api/v1/domains/template.bench.test",
                     {"mode": "passthrough", "backend": "be"})
        assert st in (200, 201), st
        d.stop()
        store_path_check(tmp)
        t0 = time.monotonic()
        preload(tmp, n)
        insert_s = time.monotonic() - t0
        d.start()
        workers = children(d.p.pid)
        lat, lag, applied = [], [], 0
        c0 = cpu_ms(d.p.pid)
        for i in range(WRITES):
            s = time.monotonic()
            st, out = call(d.conn, d.token, "PUT", "/api/v1/domains/new%d.bench.test" % i,
                           {"mode": "passthrough", "backend": "be"})
            e = time.monotonic()
            if st not in (200, 201):
                raise SystemExit("PUT answered %d: %s" % (st, out))
            lat.append((e - s) * 1000)
            applied += out.get("applied") is True
            v = out["config_version"]
            while True:
                vs = worker_versions(d.conn, d.token)
                if vs and min(vs) >= v:
                    lag.append((time.monotonic() - e) * 1000)
                    break
                if time.monotonic() - e > 30:
                    lag.append(float("inf"))
                    break
        cpu_per = (cpu_ms(d.p.pid) - c0) / WRITES
        res = {"n": n, "insert_s": insert_s, "start_s": d.started_s, "lat": sorted(lat),
               "lag": sorted(lag), "applied": applied, "cpu_ms": cpu_per,
               "daemon_rss": rss_kib(d.p.pid),
               "worker_rss": [rss_kib(w) for w in workers]}
        return res
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def pct(v, q):
    return v[min(len(v) - 1, int(len(v) * q))]


def main():
    out = []
    for n in SIZES:
        r = measure(n)
        out.append(r)
        print("%7d domains: PUT median %.1f ms p99 %.1f ms; live in every worker after the "
              "answer: median %.1f ms p99 %.1f ms (with the /metrics round trip); applied %d/%d; "
              "daemon CPU %.1f ms per write; RSS daemon %d KiB, workers %s KiB; start %.1f s"
              % (n, statistics.median(r["lat"]), pct(r["lat"], 0.99),
                 statistics.median(r["lag"]), pct(r["lag"], 0.99), r["applied"], WRITES,
                 r["cpu_ms"], r["daemon_rss"], "/".join(str(x) for x in r["worker_rss"]),
                 r["start_s"]), flush=True)
    print()
    print("| domains | PUT latency median / p99 (ms) | live in every worker after the answer, "
          "median / p99 (ms) | answers with applied: true | daemon CPU per write (ms) | "
          "daemon RSS (KiB) | worker RSS (KiB, each) | daemon start until every worker "
          "applied (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        print("| %d | %.1f / %.1f | %.1f / %.1f | %d of %d | %.1f | %d | %s | %.1f |"
              % (r["n"], statistics.median(r["lat"]), pct(r["lat"], 0.99),
                 statistics.median(r["lag"]), pct(r["lag"], 0.99), r["applied"], WRITES,
                 r["cpu_ms"], r["daemon_rss"], " / ".join(str(x) for x in r["worker_rss"]),
                 r["start_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

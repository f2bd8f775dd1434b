#!/usr/bin/env python3
"""Control plane at scale: onboarding N domains in bulk, then what one domain
write costs with N domains configured.

usage: bench/domains_bench.py [PORTIERD] [N,N,...] [WRITES]
       (defaults: build/portierd 1000,10000,100000 200)

For each N: a fresh state dir; portierd (2 workers, loopback) starts with one
backend; N passthrough domains are onboarded through POST /api/v1/batch in
batches of 10,000 changes (each batch one transaction, one config version,
one delta to the workers), timed until every worker applied the last one.
Then WRITES domain PUTs (new names, one keep-alive connection, one after the
other, each a lone write: the next starts BENCH_WRITE_GAP_MS after the
previous one is live in every worker) are timed:
  - answer latency (median, p99, max) and how many answered "applied": true
    (every worker acked the new version before the answer left);
  - from each answer until /metrics shows every worker at its version
    (the /metrics round trip included, so an upper bound);
  - daemon CPU per write (utime + stime of the daemon, /proc/PID/stat) and
    the workers' CPU per write (the delta's apply, both workers summed);
  - BENCH_OTHER_WRITES of each other kind of write, one after the other: a stream route
    PUT (its backend flips between two), a certificate upload (a new
    self-signed P-256 certificate each time, made before the clock starts;
    python3-cryptography) and a session ticket key rotation (SIGUSR1 to the
    daemon; its latency is from the signal until /api/v1/status shows the new
    version and /metrics every worker at it, polled every millisecond, so the
    daemon CPU includes those polls); with the whole snapshots published
    meanwhile (portier_config_publishes_total{form="snapshot"}: 0 expected);
  - the same writes again while a process opens TLS connections to a configured
    domain in a loop (every worker then holds its snapshot in connections, so
    each delta derives a successor instead of changing it in place);
  - a concurrent burst (group commit): BURST writes (domain PUTs and ban
    POSTs, alternating) from BURST_CONNS keep-alive connections at once:
    answers per second, answer latency median / p99, how many answered
    applied, and how many group commits (publishes) carried them
    (portier_config_commits_total before and after; "-" for a portierd
    without it);
  - daemon and worker RSS (VmRSS) with N domains; then the daemon restarts
    on that store: its start time until /healthz answers and every worker
    applied the first (whole) snapshot.
Output: three lines per N (idle, under connection churn, totals) and one per
other kind of write, then a Markdown table with two rows per N (idle;
"N (connection churn)") and these columns (bench/run.sh puts it in
bench/README.md), then a second table: | domains | write | latency median /
p99 (ms) | applied | daemon CPU per write (ms) | workers' CPU per write (ms) |
whole snapshots published |; and the first table's columns:
  | domains | bulk onboarding (s) | PUT latency median / p99 / max (ms) | live in
  every worker after the answer, median / p99 / max (ms) | answers with applied: true |
  daemon CPU per write (ms) | workers' CPU per write (ms) | daemon RSS (KiB) |
  worker RSS (KiB, each) | daemon start until every worker applied (s) |
Then a third table, the bursts:
  | domains | burst writes x connections | answers/s | latency median / p99
  (ms) | answers with applied: true | group commits | daemon CPU per write (ms) |
  workers' CPU per write (ms) |
Environment: BENCH_BURST (writes, default 1000; 0: no burst),
BENCH_BURST_CONNS (default 8), BENCH_OTHER_WRITES (default 30, at most
WRITES), BENCH_WRITE_GAP_MS (default 10), BENCH_COMMIT_TRACE=1 (portierd
runs with PORTIER_COMMIT_TRACE=1 and a line per N gives each phase of the
idle writes' commits from its log, median / p99 / max in ms),
BENCH_KEEP_LOG=PATH (portierd's log copied to PATH.N, and each timed PUT's
version and answer time to PATH.N.client).
Writes nothing else; everything it starts is stopped."""
import http.client
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import ssl
import socket

from benchlib import call, cpu_ms, free_port, wait_healthy

HERE = os.path.dirname(os.path.abspath(__file__))
PORTIERD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "portierd")
SIZES = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1000,10000,100000").split(",")]
WRITES = int(sys.argv[3]) if len(sys.argv) > 3 else 200
OTHER_WRITES = min(WRITES, int(os.environ.get("BENCH_OTHER_WRITES", "30")))
GAP_S = float(os.environ.get("BENCH_WRITE_GAP_MS", "10")) / 1000
TRACE = os.environ.get("BENCH_COMMIT_TRACE") == "1"
KEEP_LOG = os.environ.get("BENCH_KEEP_LOG")
BURST = int(os.environ.get("BENCH_BURST", "1000"))
BURST_CONNS = int(os.environ.get("BENCH_BURST_CONNS", "8"))


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
        self.client_log = []  # BENCH_KEEP_LOG: each PUT's version and answer time

    def start(self):
        log = open(os.path.join(self.tmp, "portierd.log"), "a")
        env = dict(os.environ)
        if TRACE:
            env["PORTIER_COMMIT_TRACE"] = "1"
        t0 = time.monotonic()
        self.p = subprocess.Popen([PORTIERD, "--state-dir", os.path.join(self.tmp, "state"),
                                   "--api", "127.0.0.1:%d" % self.api,
                                   "--https", "127.0.0.1:%d" % self.https,
                                   "--http", "127.0.0.1:%d" % self.http80,
                                   "--workers", "2", "--access-log", "off"],
                                  stdout=log, stderr=log, env=env)
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


BATCH = 10000


class Churn:
    """New TLS connections to a configured domain in a loop (the handshake
    fails: the backend is a closed port), so every worker routes connections
    all the time and holds the snapshot they were routed with: a write then
    cannot change that snapshot in place and derives a successor. A process
    of its own: as a thread it held Python's GIL in its handshakes and the
    timed writes' answers waited for it (milliseconds added to their tail)."""

    def __init__(self, port, name):
        self.port, self.name = port, name
        ctx = multiprocessing.get_context("fork")
        self.stop, self.count = ctx.Event(), ctx.Value("l", 0)
        self.p = ctx.Process(target=self.run, daemon=True)
        self.p.start()

    def run(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        n = 0
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    with ctx.wrap_socket(s, server_hostname=self.name):
                        pass
            except (OSError, ssl.SSLError):
                pass
            n += 1
            self.count.value = n

    def end(self):
        self.stop.set()
        self.p.join()
        self.n = self.count.value


def onboard(d, n):
    """N domains through the bulk API; returns the seconds until every worker
    applied the last batch."""
    t0 = time.monotonic()
    v = 0
    for start in range(0, n, BATCH):
        changes = [{"op": "put", "kind": "domain", "name": "d%d.bench.test" % i,
                    "body": {"mode": "passthrough", "backend": "be"}}
                   for i in range(start, min(n, start + BATCH))]
        st, out = call(d.conn, d.token, "POST", "/api/v1/batch", {"changes": changes})
        if st != 200:
            raise SystemExit("batch answered %d: %s" % (st, out))
        v = out["config_version"]
    while min(worker_versions(d.conn, d.token) or [0]) < v:
        time.sleep(0.01)
    return time.monotonic() - t0


def writes(d, workers, prefix):
    lat, lag, applied, versions = [], [], 0, []
    c0 = cpu_ms(d.p.pid)
    w0 = sum(cpu_ms(w) for w in workers)
    for i in range(WRITES):
        time.sleep(GAP_S)
        s = time.monotonic()
        st, out = call(d.conn, d.token, "PUT", "/api/v1/domains/%s%d.bench.test" % (prefix, i),
                       {"mode": "passthrough", "backend": "be"})
        e = time.monotonic()
        if st not in (200, 201):
            raise SystemExit("PUT answered %d: %s" % (st, out))
        lat.append((e - s) * 1000)
        applied += out.get("applied") is True
        v = out["config_version"]
        if KEEP_LOG:
            d.client_log.append("%s version %d answer_us %d" % (prefix, v, (e - s) * 1e6))
        versions.append(v)
        while True:
            vs = worker_versions(d.conn, d.token)
            if vs and min(vs) >= v:
                lag.append((time.monotonic() - e) * 1000)
                break
            if time.monotonic() - e > 30:
                lag.append(float("inf"))
                break
    # The daemon's CPU includes the /metrics polls: an upper bound.
    return {"lat": sorted(lat), "lag": sorted(lag), "applied": applied, "versions": versions,
            "cpu_ms": (cpu_ms(d.p.pid) - c0) / WRITES,
            "wcpu_ms": (sum(cpu_ms(w) for w in workers) - w0) / WRITES}


def publishes(d):
    """portier_config_commits_total, or None (a portierd without it)."""
    d.conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + d.token})
    for line in d.conn.getresponse().read().decode().splitlines():
        if line.startswith("portier_config_commits_total "):
            return int(float(line.split()[1]))
    return None


def burst(d, workers):
    """BURST writes from BURST_CONNS connections at once (group commit)."""
    lat, applied, errors = [], [0], []
    barrier = threading.Barrier(BURST_CONNS + 1)

    def run(k):
        c = http.client.HTTPConnection("127.0.0.1", d.api, timeout=120)
        barrier.wait()
        for i in range(k, BURST, BURST_CONNS):
            s = time.monotonic()
            if i % 2:
                st, out = call(c, d.token, "POST", "/api/v1/bans",
                               {"ip": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)})
            else:
                st, out = call(c, d.token, "PUT", "/api/v1/domains/burst%d.bench.test" % i,
                               {"mode": "passthrough", "backend": "be"})
            lat.append((time.monotonic() - s) * 1000)
            if st not in (200, 201):
                errors.append("%d: %s" % (st, out))
            elif out.get("applied") is True:
                applied[0] += 1
        c.close()

    p0 = publishes(d)
    c0 = cpu_ms(d.p.pid)
    w0 = sum(cpu_ms(w) for w in workers)
    ts = [threading.Thread(target=run, args=(k,)) for k in range(BURST_CONNS)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    cpu = (cpu_ms(d.p.pid) - c0) / BURST
    wcpu = (sum(cpu_ms(w) for w in workers) - w0) / BURST
    if errors:
        raise SystemExit("burst: %d errors, first %s" % (len(errors), errors[0]))
    p1 = publishes(d)
    return {"rate": BURST / wall, "lat": sorted(lat), "applied": applied[0],
            "cpu_ms": cpu, "wcpu_ms": wcpu,
            "publishes": p1 - p0 if p0 is not None and p1 is not None else None}


def stream_write(d):
    """A stream PUT on backend "be" (a delta since ctl3; it binds a listener).
    Returns its answer time in ms."""
    t0 = time.monotonic()
    st, out = call(d.conn, d.token, "PUT", "/api/v1/streams/one",
                   {"listen": ["127.0.0.1:%d" % free_port()], "mode": "tcp", "backend": "be"})
    if st not in (200, 201):
        raise SystemExit("stream PUT answered %d: %s" % (st, out))
    return (time.monotonic() - t0) * 1000


def snapshots_published(d):
    d.conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + d.token})
    for line in d.conn.getresponse().read().decode().splitlines():
        if line.startswith('portier_config_publishes_total{form="snapshot"}'):
            return int(line.rsplit(" ", 1)[1])
    return -1


def other_writes(d, workers):
    """WRITES stream PUTs, certificate uploads and ticket key rotations: for
    each, its latencies, applied answers, CPU per write and whole snapshots."""
    import certs_bench  # python3-cryptography, needed here only
    port = free_port()
    call(d.conn, d.token, "PUT", "/api/v1/backends/be2", {"servers": ["127.0.0.1:9"]})

    def stream(i):
        return call(d.conn, d.token, "PUT", "/api/v1/streams/st",
                    {"listen": ["127.0.0.1:%d" % port], "mode": "tcp",
                     "backend": "be2" if i % 2 else "be"})

    pems = [certs_bench.cert_pem("c%d.bench.test" % i) for i in range(OTHER_WRITES)]

    def cert(i):
        return call(d.conn, d.token, "POST", "/api/v1/certificates",
                    {"cert_pem": pems[i], "key_pem": certs_bench.KEY_PEM})

    def ticket(i):
        st, out = call(d.conn, d.token, "GET", "/api/v1/status")
        v = out["config_version"]
        os.kill(d.p.pid, signal.SIGUSR1)
        while True:
            st, out = call(d.conn, d.token, "GET", "/api/v1/status")
            if out["config_version"] > v:
                break
            time.sleep(0.001)
        while min(worker_versions(d.conn, d.token) or [0]) <= v:
            time.sleep(0.001)
        return 200, {"applied": True}

    res = {}
    for kind, fn in (("stream PUT", stream), ("certificate upload", cert),
                     ("ticket key rotation", ticket)):
        lat, applied = [], 0
        snaps = snapshots_published(d)
        c0, w0 = cpu_ms(d.p.pid), sum(cpu_ms(w) for w in workers)
        for i in range(OTHER_WRITES):
            s = time.monotonic()
            st, out = fn(i)
            lat.append((time.monotonic() - s) * 1000)
            if st not in (200, 201):
                raise SystemExit("%s answered %d: %s" % (kind, st, out))
            applied += out.get("applied") is True
        res[kind] = {"lat": sorted(lat), "applied": applied,
                     "cpu_ms": (cpu_ms(d.p.pid) - c0) / OTHER_WRITES,
                     "wcpu_ms": (sum(cpu_ms(w) for w in workers) - w0) / OTHER_WRITES,
                     "snapshots": snapshots_published(d) - snaps}
    return res


PHASES = ("lock", "sql", "encode", "commit", "handoff", "workers", "wakeup", "relock", "total")


def trace_phases(tmp, versions):
    """From portierd's log (PORTIER_COMMIT_TRACE=1): {phase: sorted ms} over
    the commits of <versions>, and "request" (the request's whole time in
    the API: the commit's line of a lone write is followed by its request's)
    and "request - commit" (that time less the COMMIT and its fsync: what is
    not the disk)."""
    want, last, commit = set(versions), None, 0
    out = {ph: [] for ph in PHASES + ("request", "request - commit")}
    for line in open(os.path.join(tmp, "portierd.log"), errors="replace"):
        for tag in ("commit trace: ", "request trace: "):
            i = line.find(tag)
            if i >= 0:
                break
        if i < 0:
            continue
        f = line[i + len(tag):].split()
        if tag == "request trace: ":
            if last is not None:
                us = int(dict(zip(f[1::2], f[2::2]))["total_us"])
                out["request"].append(us / 1000)
                out["request - commit"].append((us - commit) / 1000)
            last = None
            continue
        kv = dict(zip(f[0::2], f[1::2]))
        last = int(kv.get("version", 0))
        if last not in want:
            last = None
            continue
        commit = int(kv.get("commit_us", 0))
        for ph in PHASES:
            us = int(kv.get(ph + "_us", -1))
            if us >= 0:
                out[ph].append(us / 1000)
    return {ph: sorted(v) for ph, v in out.items() if v}


def mpm(v):
    """median / p99 / max of sorted <v>."""
    return "%.2f / %.2f / %.2f" % (statistics.median(v), pct(v, 0.99), v[-1])


def measure(n):
    tmp = tempfile.mkdtemp(prefix="portier-domainsbench.")
    d = Daemon(tmp)
    try:
        d.start()
        call(d.conn, d.token, "PUT", "/api/v1/backends/be", {"servers": ["127.0.0.1:9"]})
        onboard_s = onboard(d, n)
        workers = children(d.p.pid)
        res = {"n": n, "onboard_s": onboard_s, "idle_rss": [rss_kib(w) for w in workers]}
        res.update(writes(d, workers, "new"))
        if TRACE:
            res["trace"] = trace_phases(tmp, res["versions"])
        res["other"] = other_writes(d, workers)
        churn = Churn(d.https, "d1.bench.test")
        res["churn"] = writes(d, workers, "churn")
        churn.end()
        if TRACE:
            res["churn"]["trace"] = trace_phases(tmp, res["churn"]["versions"])
        res["churn"]["conns"] = churn.n
        if BURST > 0:
            res["burst"] = burst(d, workers)
        res["daemon_rss"] = rss_kib(d.p.pid)
        res["worker_rss"] = [rss_kib(w) for w in workers]
        d.stop()
        d.start()
        res["start_s"] = d.started_s
        return res
    finally:
        d.stop()
        if KEEP_LOG:
            shutil.copy(os.path.join(tmp, "portierd.log"), "%s.%d" % (KEEP_LOG, n))
            with open("%s.%d.client" % (KEEP_LOG, n), "w") as f:
                f.write("".join(x + "\n" for x in d.client_log))
        shutil.rmtree(tmp, ignore_errors=True)


def pct(v, q):
    return v[min(len(v) - 1, int(len(v) * q))]


def row(r, c, label):
    return ("| %d%s | %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %d of %d | %.2f | %.2f | %d "
            "| %s | %.1f |"
            % (r["n"], label, "%.1f" % r["onboard_s"] if not label else "",
               statistics.median(c["lat"]), pct(c["lat"], 0.99), c["lat"][-1],
               statistics.median(c["lag"]), pct(c["lag"], 0.99), c["lag"][-1], c["applied"],
               WRITES,
               c["cpu_ms"], c["wcpu_ms"], r["daemon_rss"],
               " / ".join(str(x) for x in r["worker_rss"]), r["start_s"]))


def main():
    out = []
    for n in SIZES:
        r = measure(n)
        out.append(r)
        for c, label in ((r, "idle"), (r["churn"], "under connection churn (%d connections)"
                                         % r["churn"]["conns"])):
            print("%7d domains, %s: %d PUTs: median %.1f ms p99 %.1f ms max %.1f ms; live in "
                  "every worker after the answer: median %.1f ms p99 %.1f ms max %.1f ms (with "
                  "the /metrics round trip); applied %d/%d; CPU per write: daemon %.2f ms, "
                  "workers %.2f ms"
                  % (n, label, WRITES, statistics.median(c["lat"]), pct(c["lat"], 0.99),
                     c["lat"][-1], statistics.median(c["lag"]), pct(c["lag"], 0.99),
                     c["lag"][-1], c["applied"], WRITES, c["cpu_ms"], c["wcpu_ms"]),
                  flush=True)
            if c.get("trace"):
                print("%7d domains, %s: commit phases in ms, median / p99 / max (%d traced): %s"
                      % (n, label, len(c["trace"].get("total", [])),
                         "; ".join("%s %s" % (ph, mpm(v)) for ph, v in c["trace"].items())),
                      flush=True)
        b = r.get("burst")
        if b:
            print("%7d domains, burst of %d writes from %d connections: %.0f answers/s; latency "
                  "median %.1f ms p99 %.1f ms; applied %d/%d; %s group commits; CPU per write: "
                  "daemon %.2f ms, workers %.2f ms"
                  % (n, BURST, BURST_CONNS, b["rate"], statistics.median(b["lat"]),
                     pct(b["lat"], 0.99), b["applied"], BURST,
                     "-" if b["publishes"] is None else b["publishes"], b["cpu_ms"],
                     b["wcpu_ms"]), flush=True)
        for kind, c in r["other"].items():
            print("%7d domains, %s: median %.1f ms p99 %.1f ms; applied %d/%d; CPU per write: "
                  "daemon %.2f ms, workers %.2f ms; whole snapshots published: %d"
                  % (n, kind, statistics.median(c["lat"]), pct(c["lat"], 0.99), c["applied"],
                     OTHER_WRITES, c["cpu_ms"], c["wcpu_ms"], c["snapshots"]), flush=True)
        print("%7d domains: onboarded in %.1f s; RSS daemon %d KiB, workers %s KiB (%s KiB "
              "before the churn); start %.1f s"
              % (n, r["onboard_s"], r["daemon_rss"],
                 "/".join(str(x) for x in r["worker_rss"]),
                 "/".join(str(x) for x in r["idle_rss"]), r["start_s"]), flush=True)
    print()
    print("| domains | bulk onboarding (s) | PUT latency median / p99 / max (ms) | live in every "
          "worker after the answer, median / p99 / max (ms) | answers with applied: true | daemon "
          "CPU per write (ms) | workers' CPU per write (ms) | daemon RSS (KiB) | worker RSS "
          "(KiB, each) | daemon start until every worker applied (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        print(row(r, r, ""))
        print(row(r, r["churn"], " (connection churn)"))
    print()
    print("| domains | write | latency median / p99 (ms) | answers with applied: true | daemon "
          "CPU per write (ms) | workers' CPU per write (ms) | whole snapshots published |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in out:
        for kind, c in r["other"].items():
            print("| %d | %s | %.1f / %.1f | %d of %d | %.2f | %.2f | %d |"
                  % (r["n"], kind, statistics.median(c["lat"]), pct(c["lat"], 0.99),
                     c["applied"], OTHER_WRITES, c["cpu_ms"], c["wcpu_ms"], c["snapshots"]))
    if BURST > 0:
        print()
        print("Concurrent bursts (group commit): %d writes, domain PUTs and ban POSTs "
              "alternating, from %d keep-alive connections at once." % (BURST, BURST_CONNS))
        print()
        print("| domains | burst writes x connections | answers/s | latency median / p99 (ms) "
              "| answers with applied: true | group commits | daemon CPU per write (ms) | workers' "
              "CPU per write (ms) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in out:
            b = r["burst"]
            print("| %d | %d x %d | %.0f | %.1f / %.1f | %d of %d | %s | %.2f | %.2f |"
                  % (r["n"], BURST, BURST_CONNS, b["rate"], statistics.median(b["lat"]),
                     pct(b["lat"], 0.99), b["applied"], BURST,
                     "-" if b["publishes"] is None else b["publishes"], b["cpu_ms"],
                     b["wcpu_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

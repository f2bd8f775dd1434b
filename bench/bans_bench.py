#!/usr/bin/env python3
"""fail2ban at full tilt: 1,000 ban POSTs in about one second, what it costs.

usage: bench/bans_bench.py [PORTIERD] [N] [RATE] [PRELOAD]
       (defaults: build/portierd 1000 1000 0)

Starts its own portierd (2 workers, loopback, a temporary state dir) with 200
domains and 20 certificates configured, so a whole snapshot is not trivial,
then sends N POST /api/v1/bans on one keep-alive connection (python
http.client), paced at RATE per second, as a "bans" token. It prints:
  - the daemon's CPU time (utime + stime of the daemon process, every thread,
    from /proc/PID/stat) spent on the whole burst, and per ban;
  - the answers' latency (median, p99, max) and how many answered
    "applied": true, i.e. every worker had acked the ban before the answer
    left (a ban then reaches the workers within 0 ms of its answer);
  - the time from the last answer until /metrics shows every worker at the
    last ban's config version;
  - the same daemon CPU for 20 configuration writes (whole snapshots), for
    scale, measured after the burst (so with N + PRELOAD bans in the
    snapshot: PRELOAD admin bans are made first, as fast as they go).
Exit status 1 when the burst took 500 ms of daemon CPU or more, or a worker
lagged an answer by 100 ms or more."""
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import call, cpu_ms, free_port, wait_healthy

HERE = os.path.dirname(os.path.abspath(__file__))
PORTIERD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "portierd")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
RATE = float(sys.argv[3]) if len(sys.argv) > 3 else 1000.0
PRELOAD = int(sys.argv[4]) if len(sys.argv) > 4 else 0


def make_cert(d, i):
    key, crt = os.path.join(d, "k%d.pem" % i), os.path.join(d, "c%d.pem" % i)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "30", "-subj", "/CN=d%d.bench.test" % i, "-addext",
                    "subjectAltName=DNS:d%d.bench.test" % i],
                   check=True, capture_output=True)
    return open(crt).read(), open(key).read()


def main():
    tmp = tempfile.mkdtemp(prefix="portier-bansbench.")
    api, https, http80 = free_port(), free_port(), free_port()
    log = open(os.path.join(tmp, "portierd.log"), "w")
    d = subprocess.Popen([PORTIERD, "--state-dir", os.path.join(tmp, "state"), "--api",
                          "127.0.0.1:%d" % api, "--https", "127.0.0.1:%d" % https,
                          "--http", "127.0.0.1:%d" % http80, "--workers", "2"],
                         stdout=log, stderr=log)
    try:
        if not wait_healthy(api, d, 10):
            raise SystemExit("portierd did not start; log in %s" % tmp)
        admin = open(os.path.join(tmp, "state", "api.token")).read().strip()
        conn = http.client.HTTPConnection("127.0.0.1", api, timeout=30)
        call(conn, admin, "PUT", "/api/v1/backends/be", {"servers": ["127.0.0.1:9"]})
        for i in range(200):
            call(conn, admin, "PUT", "/api/v1/domains/d%d.bench.test" % i,
                 {"mode": "offload" if i < 20 else "passthrough", "backend": "be",
                  "certificate": "manual"} if i < 20 else
                 {"mode": "passthrough", "backend": "be"})
        for i in range(20):
            crt, key = make_cert(tmp, i)
            st, _ = call(conn, admin, "POST", "/api/v1/certificates",
                         {"cert_pem": crt, "key_pem": key})
            assert st == 201, st
        st, tok = call(conn, admin, "POST", "/api/v1/tokens",
                       {"name": "f2b", "scope": "bans"})
        assert st == 201, (st, tok)
        bans = tok["token"]

        for i in range(PRELOAD):
            st, _ = call(conn, admin, "POST", "/api/v1/bans",
                         {"ip": "10.%d.%d.%d" % (i // 65536, (i // 256) % 256, i % 256)})
            assert st == 201, st

        if os.environ.get("BANS_BENCH_PAUSE"):  # time to attach a profiler
            print("daemon pid %d; burst in 2 s" % d.pid, flush=True)
            time.sleep(2)
        lat, applied, versions = [], 0, []
        c0 = cpu_ms(d.pid)
        t0 = time.monotonic()
        for i in range(N):
            due = t0 + i / RATE
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            s = time.monotonic()
            st, out = call(conn, bans, "POST", "/api/v1/bans",
                           {"ip": "198.%d.%d.%d" % (18 + i // 65536, (i // 256) % 256, i % 256),
                            "duration": 600, "reason": "bench"})
            lat.append((time.monotonic() - s) * 1000)
            if st != 201:
                raise SystemExit("ban %d answered %d: %s" % (i, st, out))
            applied += out["applied"] is True
            versions.append(out["config_version"])
        t_last = time.monotonic()
        burst_ms = cpu_ms(d.pid) - c0
        wall = t_last - t0
        # Until every worker shows the last version in /metrics.
        last = versions[-1]
        lag = None
        while time.monotonic() - t_last < 5:
            st = conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + admin})
            text = conn.getresponse().read().decode()
            vs = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("portier_worker_config_version{")]
            if vs and min(vs) >= last:
                lag = (time.monotonic() - t_last) * 1000
                break
        # Whole snapshots (every ban included), for scale.
        c0 = cpu_ms(d.pid)
        for i in range(20):
            call(conn, admin, "PUT", "/api/v1/backends/be",
                 {"servers": ["127.0.0.1:%d" % (10 + i)]})
        snap_ms = (cpu_ms(d.pid) - c0) / 20
        lat.sort()
        print("portierd %s, 2 workers, 200 domains, 20 certificates, %d bans made before"
              % (PORTIERD, PRELOAD))
        print("%d bans in %.2f s (%.0f/s) on one keep-alive connection, bans token"
              % (N, wall, N / wall))
        print("daemon CPU for the burst: %.0f ms (%.3f ms per ban); a whole-snapshot write "
              "(with %d bans): %.2f ms" % (burst_ms, burst_ms / N, N + PRELOAD, snap_ms))
        print("answer latency: median %.2f ms, p99 %.2f ms, max %.2f ms"
              % (lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]))
        print("answers with \"applied\": true (every worker acked before the answer): %d of %d"
              % (applied, N))
        print("last answer -> /metrics shows every worker at its version: %s"
              % ("%.1f ms (includes the /metrics round trip)" % lag if lag is not None
                 else "not within 5 s"))
        ok = burst_ms < 500 and applied == N and lag is not None and lag < 100
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(10)
        except subprocess.TimeoutExpired:
            d.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

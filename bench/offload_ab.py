#!/usr/bin/env python3
"""A/B of two portierd binaries on TLS offload, with bench/bench.py's pieces.

usage: PORTIERD_A=... PORTIERD_B=... python3 bench/offload_ab.py

One plain nginx backend; each binary runs as portier with one worker and
the offload domain bench.py uses. For each: the worker's RSS per idle TLS
connection (bench/idle_client.py, BENCH_IDLE connections, then one request
on each, as bench.py's offload row 5), then interleaved rounds (A B, B A,
...) of wrk keep-alive and Connection: close (BENCH_CONNS connections,
BENCH_OFFLOAD_DURATION s each) and two 64 MiB downloads (curl): requests or
MiB per worker CPU-second, medians over BENCH_OFFLOAD_ROUNDS rounds.
Writes nothing but its log.
"""
import os
import statistics
import sys
import tempfile
import shutil

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

BINS = {"A": os.environ.get("PORTIERD_A"), "B": os.environ.get("PORTIERD_B")}
if not all(BINS.values()):
    sys.exit(__doc__)


def main():
    T = tempfile.mkdtemp(prefix="portier-ab.")
    try:
        be_pp, be_direct, be_plain = b.free_ports(3)
        key, crt, www = b.make_files(T)
        backend, _ = b.start_backend(T, key, crt, www, be_pp, be_direct, be_plain)
        be_worker = b.nginx_worker(backend)
        P, port = {}, {}
        for name, exe in BINS.items():
            b.PORTIERD = exe
            https, http, api = b.free_ports(3)
            P[name] = b.Portier(T, "portier-" + name, https, http, api,
                                b.offload_calls(be_plain, key, crt), ["--hello-timeout", "60"])
            port[name] = https
            if not b.fetch_small(https):
                raise b.Abort("GET / through %s" % name)
        pids = {n: [P[n].worker] for n in BINS}
        run_ = b.Runner(T, list(BINS), pids, [backend] + [P[n].proc for n in BINS],
                        [be_worker] + [P[n].worker for n in BINS])
        for n in BINS:
            i = b.idle_test(T, "ab-" + n, port[n], pids[n], [], path="/", count_port=be_plain)
            b.log("%s idle: %.2f KiB per handshaken connection, %.2f KiB after a request "
                  "(%d ok, %d failed)" % (n, i["per_conn"], i["req_per_conn"], i["ok"],
                                          i["failed"]))
        for n in BINS:
            b.wrk(port[n], False, 2)
        names = list(BINS)
        for rnd in range(b.O_ROUNDS):
            for n in (names if rnd % 2 == 0 else names[::-1]):
                v = run_.measure(n, "ka", b.wrk_fn(port[n], False, b.O_DURATION))
                b.log("round %d %s keep-alive %8.0f req/s" % (rnd + 1, n, v))
                v = run_.measure(n, "close", b.wrk_fn(port[n], True, b.O_DURATION))
                b.log("round %d %s resumed    %8.0f req/s" % (rnd + 1, n, v))
                v = run_.measure(n, "bulk", b.bulk_fn(port[n], 2))
                b.log("round %d %s bulk       %8.0f MB/s" % (rnd + 1, n, v))
        for n in names:
            eff = [x / (1 << 20) for x in run_.R[n]["bulk_eff"]]
            b.log("%s bulk: %.0f MiB per worker CPU-second (median of %s)"
                  % (n, statistics.median(eff), ", ".join("%.0f" % e for e in eff)))
        for key, what in (("ka", "keep-alive"), ("close", "new connection (resumed)")):
            for n in names:
                eff = run_.R[n][key + "_eff"]
                b.log("%s %s: %.0f requests per worker CPU-second (median of %s), "
                      "%.1f us CPU per request"
                      % (n, what, statistics.median(eff), ", ".join("%.0f" % e for e in eff),
                         1e6 / statistics.median(eff)))
        b.log("errors: %s" % {n: run_.R[n]["errors"] for n in names})
        b.stop([P[n].proc for n in BINS] + [backend], [P[n].worker for n in BINS])
    finally:
        b.kill_all()
        shutil.rmtree(T, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A/B of new passthrough connections: two portierd builds and nginx stream.

Development tool (bench/PROFILE.md, issue 15), not part of `make bench`: it
reuses bench.py's fixtures (the nginx HTTPS backend with PROXY protocol,
nginx stream, portier with one passthrough domain) and runs only the
new-connection rows (wrk, Connection: close) at the given connection counts,
rounds interleaved and their order rotated, so that the machine's drift hits
every target alike. Prints connections per proxy CPU-second per round and
the medians, with each portier's same-round ratio to nginx stream.

  PORTIERD_A=/tmp/portierd.base PORTIERD_B=build/portierd \\
  AB_ROUNDS=5 AB_CONNS=8,64,256 AB_DURATION=4 [AB_STRACE=1] python3 bench/newconn_ab.py

AB_STRACE=1 adds each target's system calls per connection (strace -c during
a separate 3 s wrk run per connection count, after the timed rounds).
AB_BULK=N measures N 64 MiB downloads per target and round instead (MB per
proxy CPU-second). AB_KEEPALIVE=1 measures keep-alive requests instead (the "ka" rows: requests
per proxy CPU-second, system calls per request).
"""
import os
import statistics
import sys
import tempfile
import shutil

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_PARTS", "passthrough")
os.environ.setdefault("BENCH_README", "-")
import bench as B  # noqa: E402

ROUNDS = int(os.environ.get("AB_ROUNDS", "5"))
CONNS = [int(x) for x in os.environ.get("AB_CONNS", "8,64,256").split(",") if x]
DURATION = int(os.environ.get("AB_DURATION", "4"))
STRACE = os.environ.get("AB_STRACE") == "1"  # then strace -c per connection too
CLOSE = os.environ.get("AB_KEEPALIVE") != "1"  # new connections, else keep-alive requests
BULK = int(os.environ.get("AB_BULK", "0"))  # 64 MiB downloads per round instead of wrk
BINS = {"A": os.environ.get("PORTIERD_A", B.PORTIERD), "B": os.environ.get("PORTIERD_B", B.PORTIERD)}


def main():
    T = tempfile.mkdtemp(prefix="portier-ab.")
    try:
        be_pp, be_direct, be_plain = B.free_ports(3)
        key, crt, www = B.make_files(T, big=BULK > 0)
        backend, _ = B.start_backend(T, key, crt, www, be_pp, be_direct, be_plain)
        ngx_port, pa, ha, aa, pb, hb, ab = B.free_ports(7)
        ngx_proc, _ = B.start_nginx_stream(T, ngx_port, be_pp)
        port, pids, procs = {"nginx": ngx_port}, {"nginx": [B.nginx_worker(ngx_proc)]}, [ngx_proc]
        for name, (p, h, a) in (("A", (pa, ha, aa)), ("B", (pb, hb, ab))):
            B.PORTIERD = BINS[name]
            pt = B.Portier(T, "portier-" + name, p, h, a, B.passthrough_calls(be_pp))
            port[name], pids[name] = p, [pt.worker]
            procs.append(pt.proc)
        targets = ["A", "B", "nginx"]
        for t in targets:
            if not B.fetch_small(port[t]):
                raise B.Abort("GET / through %s failed" % t)
            B.wrk(port[t], True, 1)  # warm-up
        run_ = B.Runner(T, targets, pids, [backend] + procs, [])
        R = run_.R
        if BULK:
            for rnd in range(ROUNDS):
                for t in targets[rnd % 3:] + targets[:rnd % 3]:
                    v = run_.measure(t, "bulk", B.bulk_fn(port[t], BULK))
                    B.log("round %d %-5s %6.0f MB/s %6.0f MB/CPU-s"
                          % (rnd + 1, t, v, R[t]["bulk_eff"][-1] / 1e6))
            e = {t: R[t]["bulk_eff"] for t in targets}
            print("\nbulk: MB per proxy CPU-second, median of %d rounds of %d downloads"
                  % (ROUNDS, BULK))
            print("| A | B | nginx stream | A/nginx | B/nginx | B/A |\n|---:|---:|---:|---:|---:|---:|")
            rat = lambda x, y: statistics.median(a / b for a, b in zip(e[x], e[y]))  # noqa: E731
            print("| %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |"
                  % tuple([statistics.median(e[t]) / 1e6 for t in targets]
                          + [rat("A", "nginx"), rat("B", "nginx"), rat("B", "A")]))
            if STRACE:
                print("\nsystem calls per MiB (strace -c, %d downloads; calls (failed))" % BULK)
                for t in targets:
                    counts, units = B.strace_counts(pids[t], lambda: B.bulk_fn(port[t], BULK)()[0],
                                                    T, "bulk-" + t)
                    mib = units / 2**20
                    print("%s: %s" % (t, ", ".join(
                        "%s %.2f" % (k, v / mib) + (" (%.2f)" % (e / mib) if e else "")
                        for k, (v, e) in sorted(counts.items(), key=lambda x: -x[1][0]))))
            return 0
        B.interleaved(run_, targets, port, ROUNDS, CONNS, CLOSE, DURATION, width=5)
        print("\n%s per proxy CPU-second (median of %d rounds, %d s each); "
              "ratio = median of same-round ratios to nginx stream"
              % ("connections" if CLOSE else "keep-alive requests", ROUNDS, DURATION))
        print("| conns | A (%s) | B (%s) | nginx stream | A/nginx | B/nginx | B/A |"
              % (BINS["A"], BINS["B"]))
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for n in CONNS:
            k = ("close%d_eff" if CLOSE else "ka%d_eff") % n
            e = {t: R[t][k] for t in targets}
            med = {t: statistics.median(e[t]) for t in targets}

            def rat(x, y):
                return statistics.median(a / b for a, b in zip(e[x], e[y]))
            print("| %d | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |"
                  % (n, med["A"], med["B"], med["nginx"], rat("A", "nginx"), rat("B", "nginx"),
                     rat("B", "A")))
        print("errors: %s" % {t: R[t]["errors"] for t in targets})
        if STRACE:
            S = {}
            for t in targets:
                for n in CONNS:
                    S[(t, n)] = B.strace_counts(pids[t], lambda: B.wrk(port[t], CLOSE, 3, conns=n)[0],
                                                T, "%s-%d" % (t, n))
            names = sorted({k for c, _ in S.values() for k in c},
                           key=lambda k: -sum(S[x][0].get(k, (0, 0))[0] / S[x][1] for x in S))
            print("\nsystem calls per %s (strace -c, wrk 3 s; calls (failed))"
                  % ("connection (Connection: close)" if CLOSE else "keep-alive request"))
            cols = [(t, n) for n in CONNS for t in targets]
            print("| call | " + " | ".join("%s %d" % c for c in cols) + " |")
            print("|---|" + "---:|" * len(cols))
            for k in names + ["total"]:
                cells = []
                for c in cols:
                    counts, units = S[c]
                    if k == "total":
                        v, e = sum(x for x, _ in counts.values()), sum(y for _, y in counts.values())
                    else:
                        v, e = counts.get(k, (0, 0))
                    cells.append("%.2f" % (v / units) + (" (%.2f)" % (e / units) if e else ""))
                print("| %s | %s |" % (k, " | ".join(cells)))
        return 0
    except B.Abort as e:
        B.log("ABORTED: %s" % e)
        return 1
    finally:
        B.kill_all()
        shutil.rmtree(T, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

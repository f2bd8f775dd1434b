#!/usr/bin/env python3
"""Keep-alive through bench/relay_proto.c's event models against nginx stream.

Same setup as bench/bench.py's passthrough part (its helpers: the nginx HTTPS
backend with PROXY protocol, nginx stream with ssl_preread, wrk over TLS end to
end), plus portier when build/portierd exists. Rounds are interleaved (the
order rotates) and each target's figure is requests per proxy CPU-second, CPU
from /proc/PID/task/*/schedstat (every thread: io_uring's io-wq workers, if
any, are threads of the process and are listed after the run).

The sockmap mode moves the relaying out of the process (into the senders'
softirq and kworker threads), so each round also takes the whole machine's
busy CPU from /proc/stat (all CPUs; total - idle - iowait) and the kworker
threads' CPU, and a "direct" target (wrk straight to the backend, no proxy)
runs in every round: a proxy's marginal cost per request is the machine's CPU
per request minus direct's in the same round. Other processes on the machine
land in these figures: run it on a quiet machine.

Environment: PROTO_CONNS ["64,256"], PROTO_ROUNDS [5], PROTO_DURATION [4],
PROTO_MODES ["lt,et,uring,uringf"] (relay_proto.c lists all), PROTO_PORTIER [1],
PROTO_DIRECT [1] (the no-proxy target and the machine table),
PROTO_PERF (a directory: one `perf stat` and one `perf record` of each target at
each count, after the rounds, and each profile's samples split by call chain as in
bench/PROFILE.md), KEEP=1 keeps the temp dir with each
prototype's log, PROTO_CFLAGS [-O2] (e.g. "-O1 -g -fsanitize=address,undefined"
to check the prototype itself).
"""
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

CONNS = [int(x) for x in os.environ.get("PROTO_CONNS", "64,256").split(",")]
ROUNDS = int(os.environ.get("PROTO_ROUNDS", "5"))
DURATION = int(os.environ.get("PROTO_DURATION", "4"))
MODES = os.environ.get("PROTO_MODES", "lt,et,uring,uringf").split(",")
PERF = os.environ.get("PROTO_PERF")


def build(T):
    exe = os.path.join(T, "relay_proto")
    rc, out, err = B.run(["cc"] + os.environ.get("PROTO_CFLAGS", "-O2").split() + ["-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe,
                          os.path.join(B.HERE, "relay_proto.c")], 120)
    if rc != 0:
        raise B.Abort("relay_proto.c: " + err)
    return exe


# Call chains through the TCP/IP stack, loopback delivery, the copies and the
# peer's wake-up: the part of a relay's CPU that any event model pays.
NET = re.compile(r"tcp|ip_|ipv4|__dev_queue_xmit|net_rx|loopback|sock_def_readable|skb|"
                 r"__inet|inet_|_copy_to_iter|_copy_from_iter|__netif|process_backlog|bbr_|"
                 r"sk_|__sk|sock_(sendmsg|recvmsg|rfree|wfree)|dst_|__release_sock|__napi|"
                 r"do_softirq|__local_bh_enable|security_socket|release_sock|lock_sock")
SCHED = re.compile(r"finish_task_switch|schedule|try_to_wake_up|ttwu|enqueue_task|"
                   r"dequeue_task|pick_next|update_curr|psi_")
EVENTS = re.compile(r"^(io_|__io_|ep_|do_epoll|__x64_sys_epoll|sock_poll)")


def split_samples(path):
    """Shares of a perf.data's samples: stack, sleep/wake, the rest."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym"], capture_output=True,
                         text=True).stdout
    n, c = 0, {"stack": 0, "sleep/wake": 0, "rest": 0}
    for block in out.split("\n\n"):
        syms = [ln.split(None, 1)[1] if len(ln.split(None, 1)) > 1 else ""
                for ln in block.strip().split("\n") if ln.strip()]
        if not syms:
            continue
        n += 1
        if SCHED.search(syms[0]):
            c["sleep/wake"] += 1
        elif NET.search(" ".join(syms)) and not EVENTS.search(syms[0]):
            c["stack"] += 1
        else:
            c["rest"] += 1
    return {k: 100.0 * v / n for k, v in c.items()} if n else c


def machine():
    """(busy CPU s, softirq CPU s) of the whole machine since boot, all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]  # user .. steal
    return (sum(v) - v[3] - v[4]) / B.TCK, v[6] / B.TCK


def kthreads():
    """CPU s since start of the kworker and of the ksoftirqd threads: sockmap's
    egress runs in kworkers; softirq work the kernel defers runs in ksoftirqd."""
    ns = {"kworker": 0, "ksoftirqd": 0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                kind = f.read().split("/")[0].strip()
            if kind not in ns:
                continue
            with open("/proc/%s/schedstat" % pid) as f:
                ns[kind] += int(f.read().split()[0])
        except OSError:
            pass  # a kworker that went away mid-round: its time is lost
    return {k: v / 1e9 for k, v in ns.items()}


class MachineRunner(B.Runner):
    """B.Runner, plus around each run: the machine's CPU, and the CPU of every
    party to a request (proxy, wrk, backend nginx, kworker and ksoftirqd
    threads; loopback's softirq work is charged to the task it runs in, as this
    kernel has no IRQ_TIME_ACCOUNTING), which other processes on the machine do
    not blur as they do the machine's figure."""

    def measure(self, t, key, fn):
        box = {}

        def wrapped():
            pids = self.pids[t] + self.backend_pids
            k0 = kthreads()
            g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            p0 = B.cpu(pids)[0]
            m0 = machine()
            units, value, errs = fn()
            m1 = machine()
            p1 = B.cpu(pids)[0]
            g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            k1 = kthreads()
            gen = (g1.ru_utime - g0.ru_utime) + (g1.ru_stime - g0.ru_stime)
            box.update(units=units, busy=m1[0] - m0[0], softirq=m1[1] - m0[1],
                       kw=k1["kworker"] - k0["kworker"], ksirq=k1["ksoftirqd"] - k0["ksoftirqd"],
                       parties=(p1 - p0) + gen + sum(k1.values()) - sum(k0.values()))
            return units, value, errs
        v = super().measure(t, key, wrapped)
        self.R[t].setdefault(key + "_m", []).append(box)
        if not self.pids[t]:  # direct: no proxy, so no proxy CPU (B.interleaved logs one)
            self.R[t].setdefault(key + "_eff", []).append(0.0)
        return v


def machine_table(R, targets):
    """Per target and count, CPU µs per request (medians over rounds): the relay
    process's; the machine's and the parties' (MachineRunner), each also minus
    direct's in the same round (the proxy's marginal cost), with the ratio to
    nginx stream's marginal cost (median of same-round ratios, and the ratio of
    the medians); the kworkers' and ksoftirqd's share."""
    def us(m, f):
        return 1e6 * m[f] / m["units"]

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    print("\n| target | conns | relay process | machine | machine − direct | × nginx (same-round; "
          "of medians) | parties | parties − direct | × nginx (same-round; of medians) "
          "| kworker | ksoftirqd |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in CONNS:
        k = "ka%d" % n
        marg = {}
        for f in ("busy", "parties"):
            d = [us(m, f) for m in R["direct"][k + "_m"]]
            for t in targets:
                marg[t, f] = [us(m, f) - x for m, x in zip(R[t][k + "_m"], d)]
        for t in targets:
            ms = R[t][k + "_m"]
            acc = R[t].get(k + "_cpu")
            cells = ["%.1f" % (1e6 * acc["cpu"] / acc["units"]) if acc else "–"]
            for f in ("busy", "parties"):
                mg = marg[t, f]
                rs = [a / b for a, b in zip(marg["nginx", f], mg) if b > 0]
                cells += ["%.1f" % med([us(m, f) for m in ms]), "%.1f" % med(mg),
                          "–" if t == "direct" else "%.2f×; %.2f×" % (
                              med(rs), med(marg["nginx", f]) / med(mg) if med(mg) > 0 else 0)]
            cells += ["%.1f" % med([us(m, "kw") for m in ms]), "%.1f" % med([us(m, "ksirq") for m in ms])]
            print("| %s | %d | %s |" % (t, n, " | ".join(cells)))
    print("(CPU µs per request; machine = /proc/stat, all CPUs, total − idle − iowait; parties = "
          "proxy + wrk + backend + kworker + ksoftirqd threads)")


def threads(pid):
    out = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid)):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return out


def main():
    T = tempfile.mkdtemp(prefix="relay-proto.")
    try:
        return run_all(T)
    except B.Abort as e:
        B.log("ABORTED: %s" % e)
        return 1
    finally:
        B.kill_all()
        if os.environ.get("KEEP") == "1":
            B.log("temp dir kept: %s" % T)
        else:
            shutil.rmtree(T, ignore_errors=True)


def run_all(T):
    exe = build(T)
    be_pp, be_direct, be_plain, ngx = B.free_ports(4)
    key, crt, www = B.make_files(T, big=False)
    backend, _ = B.start_backend(T, key, crt, www, be_pp, be_direct, be_plain)
    be_worker = B.nginx_worker(backend)
    ngx_proc, _ = B.start_nginx_stream(T, ngx, be_pp)
    port, pids, procs = {"nginx": ngx}, {"nginx": [B.nginx_worker(ngx_proc)]}, [backend, ngx_proc]
    if os.environ.get("PROTO_DIRECT", "1") == "1":
        port["direct"], pids["direct"] = be_direct, []
    for m in MODES:
        (p,) = B.free_ports(1)
        proc = B.spawn([exe, m, str(p), str(be_pp)], os.path.join(T, m + ".log"))
        B.wait_port(p, proc, "relay_proto " + m)
        port[m], pids[m] = p, [proc.pid]
        procs.append(proc)
    if os.environ.get("PROTO_PORTIER", "1") == "1" and os.path.exists(B.PORTIERD):
        p_https, p_http, p_api = B.free_ports(3)
        pt = B.Portier(T, "portier", p_https, p_http, p_api, B.passthrough_calls(be_pp))
        port["portier"], pids["portier"] = p_https, [pt.worker]
        procs.append(pt.proc)
    targets = list(port)
    for t in targets:
        if not B.fetch_small(port[t]):
            raise B.Abort("sanity check failed: GET / through %s" % t)
    with open("/proc/loadavg") as f:
        B.log("load average before: %s" % " ".join(f.read().split()[:3]))
    run_ = MachineRunner(T, targets, pids, procs, [be_worker], [be_worker])
    for t in targets:
        B.wrk(port[t], False, 1, conns=64)
    B.interleaved(run_, targets, port, ROUNDS, CONNS, False, DURATION)
    for t in targets:
        if pids[t]:
            B.log("%s threads after the runs: %s" % (t, ", ".join(threads(pids[t][0]))))
    with open("/proc/loadavg") as f:
        B.log("load average after: %s" % " ".join(f.read().split()[:3]))
    R = run_.R
    B.log("wrk errors (socket errors + non-2xx): %s"
          % ", ".join("%s %d" % (t, R[t]["errors"]) for t in targets))
    print("\n| target | conns | req/s (median) | req per proxy CPU-s (median) | × nginx stream "
          "(median of same-round ratios) | user / sys share |")
    print("|---|---:|---:|---:|---:|---|")
    for n in CONNS:
        k = "ka%d" % n
        for t in targets:
            if not pids[t]:
                continue
            eff = R[t][k + "_eff"]
            ratios = [a / b for a, b in zip(eff, R["nginx"][k + "_eff"])]
            acc = R[t][k + "_cpu"]
            us = acc["user"] + acc["sys"]
            print("| %s | %d | %.0f | %.0f | %.2f× (%.2f–%.2f) | %.0f%% / %.0f%% |"
                  % (t, n, statistics.median(R[t][k]), statistics.median(eff),
                     statistics.median(ratios), min(ratios), max(ratios),
                     100 * acc["user"] / us if us else 0, 100 * acc["sys"] / us if us else 0))
    if "direct" in targets:
        machine_table(R, targets)
    if PERF:
        os.makedirs(PERF, exist_ok=True)
        for n in CONNS:
            for t in (x for x in targets if pids[x]):
                pid = str(pids[t][0])
                stat = os.path.join(PERF, "stat-%s-%d.txt" % (t, n))
                rec = os.path.join(PERF, "rec-%s-%d.data" % (t, n))
                for argv in (["perf", "stat", "-e", "task-clock,context-switches,cycles,"
                              "instructions,raw_syscalls:sys_enter", "-p", pid, "-o", stat],
                             ["perf", "record", "-F", "1999", "-g", "-p", pid, "-o", rec]):
                    pp = subprocess.Popen(argv + ["--", "sleep", str(DURATION)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    reqs, secs, _ = B.wrk(port[t], False, DURATION, conns=n)
                    pp.wait()
                    if "stat" in argv:
                        with open(os.path.join(PERF, "reqs-%s-%d.txt" % (t, n)), "w") as f:
                            f.write("%d %.3f\n" % (reqs, secs))
        B.log("perf output in %s" % PERF)
        for n in CONNS:
            for t in (x for x in targets if pids[x]):
                sh = split_samples(os.path.join(PERF, "rec-%s-%d.data" % (t, n)))
                B.log("%-7s %3d conns: stack %.0f%%, sleep/wake %.0f%%, rest %.0f%%"
                      % (t, n, sh["stack"], sh["sleep/wake"], sh["rest"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""HTTP/2 offload: portier and nginx (`listen ... ssl http2`) in front of the same
nginx backend, in one run (issue 13).

h2load drives each front in interleaved rounds; the figure compared is the
front's requests per CPU-second (its worker process's own CPU, all threads),
since the machine's 2 shared cores also run h2load and the backend. Then the
memory per idle HTTP/2 connection (RSS growth of the front with IDLE
connections open, TLS done, preface and SETTINGS exchanged).

usage: python3 bench/h2_bench.py      (needs nginx, nghttp2-client; writes bench/H2.md)
Knobs: H2_ROUNDS (3), H2_DURATION (5 s), H2_CONNS (4), H2_STREAMS (16), H2_IDLE (500).
"""
import datetime
import os
import re
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the helpers of the main benchmark)
from bench import Abort, Portier, children, cpu, cpu_delta, free_ports, kill_all, log  # noqa: E402
from bench import nginx_conf, offload_calls, rss_kib, run, spawn, wait_port  # noqa: E402

ROUNDS = bench.env_int("H2_ROUNDS", 3)
DURATION = bench.env_int("H2_DURATION", 5)
CONNS = bench.env_int("H2_CONNS", 4)
STREAMS = bench.env_int("H2_STREAMS", 16)
IDLE = bench.env_int("H2_IDLE", 500)
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"
OUT = os.environ.get("H2_README", os.path.join(bench.HERE, "H2.md"))


TEMP = """    client_body_temp_path %(p)s/tmp/body;
    proxy_temp_path %(p)s/tmp/proxy;
    fastcgi_temp_path %(p)s/tmp/fastcgi;
    uwsgi_temp_path %(p)s/tmp/uwsgi;
    scgi_temp_path %(p)s/tmp/scgi;
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
"""


def start_backend(T, port, www):
    p = os.path.join(T, "backend")
    body = "http {\n" + TEMP % {"p": p} + """    server {
        listen 127.0.0.1:%d;
        root %s;
    }
}""" % (port, www)
    path, _ = nginx_conf(p, body)
    proc = spawn([bench.NGINX, "-p", p, "-c", path, "-g", "daemon off;"], os.path.join(p, "logs", "stderr"))
    wait_port(port, proc, "nginx backend")
    return proc


def start_nginx_h2(T, port, be, key, crt):
    p = os.path.join(T, "nginx-h2")
    body = "http {\n" + TEMP % {"p": p} + ("""    http2_max_concurrent_streams 128;
    upstream backend { server 127.0.0.1:%(be)d; keepalive 32; }
    server {
        listen 127.0.0.1:%(port)d ssl http2;
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;
""" + bench.NGINX_PROXY_LOCATION + """    }
}""") % {"be": be, "port": port, "crt": crt, "key": key}
    path, conf = nginx_conf(p, body)
    proc = spawn([bench.NGINX, "-p", p, "-c", path, "-g", "daemon off;"], os.path.join(p, "logs", "stderr"))
    wait_port(port, proc, "nginx h2")
    return proc, conf


H2LOAD_RE = re.compile(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded")


def h2load(port):
    argv = [H2LOAD, "-c%d" % CONNS, "-m%d" % STREAMS, "-D%d" % DURATION, "--warm-up-time=1",
            "https://localhost:%d/" % port]
    rc, out, err = run(argv, DURATION + 60)
    m = H2LOAD_RE.search(out)
    if not m or "Application protocol: h2" not in out:
        raise Abort("h2load: no result: " + out[-500:] + err[-500:])
    return int(m.group(3)), int(m.group(2)) - int(m.group(3))


def idle_h2(port, n):
    """Opens <n> h2 connections (handshake, preface, SETTINGS both ways) and
    returns them open."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    conns = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        if s.selected_alpn_protocol() != "h2":
            raise Abort("no h2 on port %d" % port)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        s.settimeout(5)
        s.recv(65536)
        s.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # SETTINGS ACK
        conns.append(s)
    return conns


def main():
    for path, what in ((H2LOAD, "h2load (nghttp2-client)"), (bench.NGINX, "nginx"),
                       (bench.PORTIERD, "portierd")):
        if not os.path.exists(path):
            sys.exit("h2_bench: %s not found at %s" % (what, path))
    T = tempfile.mkdtemp(prefix="portier-h2bench.")
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    try:
        key, crt, www = bench.make_files(T, big=False)
        be, ng, pt, pt80, api = free_ports(5)
        start_backend(T, be, www)
        nproc, conf = start_nginx_h2(T, ng, be, key, crt)
        calls = [c for c in offload_calls(be, key, crt)]
        portier = Portier(T, "portier", pt, pt80, api, calls)
        time.sleep(0.5)
        nginx_w = children(nproc.pid)[0]
        pids = {"portier": portier.worker, "nginx": nginx_w}
        ports = {"portier": pt, "nginx": ng}

        # memory first, on fresh processes
        mem = {}
        for name in ("portier", "nginx"):
            before = rss_kib(pids[name])
            conns = idle_h2(ports[name], IDLE)
            time.sleep(1)
            after = rss_kib(pids[name])
            for s in conns:
                s.close()
            mem[name] = (before, after, (after - before) / IDLE)
            log("%s: RSS %d -> %d KiB with %d idle h2 connections" % (name, before, after, IDLE))
            time.sleep(1)

        res = {n: [] for n in pids}
        for r in range(ROUNDS):
            for name in ("portier", "nginx") if r % 2 == 0 else ("nginx", "portier"):
                c0 = cpu([pids[name]])
                done, failed = h2load(ports[name])
                c1 = cpu([pids[name]])
                total = cpu_delta(c0, c1)[0]
                res[name].append((done, failed, total))
                log("round %d %s: %d requests (%d failed), front CPU %.2f s, %.0f req/CPU-s"
                    % (r + 1, name, done, failed, total, done / total if total else 0))
        per_cpu = {n: sum(d for d, _, _ in v) / sum(t for _, _, t in v) for n, v in res.items()}
        rate = {n: statistics.median(d / DURATION for d, _, _ in v) for n, v in res.items()}
        ratio = per_cpu["portier"] / per_cpu["nginx"]
        print("requests per CPU-second of the front: portier %.0f, nginx %.0f, ratio %.2fx"
              % (per_cpu["portier"], per_cpu["nginx"], ratio))
        print("memory per idle h2 connection: portier %.2f KiB, nginx %.2f KiB"
              % (mem["portier"][2], mem["nginx"][2]))
        md = ["# HTTP/2 offload: portier and nginx side by side\n",
              "Generated by `python3 bench/h2_bench.py` on %s (one run; git %s). Same nginx "
              "backend (plain HTTP/1.1, keep-alive), each front with one worker, loopback, "
              "h2load `-c%d -m%d -D%d` per round, %d interleaved rounds.\n"
              % (started, run(["git", "-C", bench.ROOT, "rev-parse", "--short", "HEAD"], 10)[1].strip(), CONNS,
                 STREAMS, DURATION, ROUNDS),
              "| row (ratio to nginx) | better | portier | nginx |",
              "|---|---|---:|---:|",
              "| h2 requests per CPU-second of the front | higher | %.0f (%.2f×) | %.0f (1.00×) |"
              % (per_cpu["portier"], ratio, per_cpu["nginx"]),
              "| h2 requests/s (median round; bounded by h2load and the backend) | higher | "
              "%.0f (%.2f×) | %.0f (1.00×) |" % (rate["portier"], rate["portier"] / rate["nginx"],
                                                rate["nginx"]),
              "| RSS KiB per idle h2 connection (%d open) | lower | %.2f (%.2f×) | %.2f (1.00×) |"
              % (IDLE, mem["portier"][2], mem["portier"][2] / mem["nginx"][2] if mem["nginx"][2] else 0,
                 mem["nginx"][2]),
              "",
              "Per round (requests, failed, front CPU s): " + "; ".join(
                  "%s %s" % (n, ", ".join("%d/%d/%.2f" % x for x in v)) for n, v in res.items()),
              "",
              "Idle RSS KiB before → after: portier %d → %d, nginx %d → %d." % (
                  mem["portier"][0], mem["portier"][1], mem["nginx"][0], mem["nginx"][1]),
              "",
              "The idle figure for portier is its HTTP/1.1 offload connection (TLS state, about 18.5 KiB in bench/README.md's offload row 5a) plus nghttp2's session, which allocates its 16 KiB output frame buffer and HPACK tables up front; nginx allocates its HTTP/2 buffers per worker and on demand.\n",
              "portier: `%s`, then the API calls of the offload part of bench.py (one offload "
              "domain `localhost`, `\"http2\": true` by default). nginx:\n" % portier.shown_argv(),
              "```nginx\n" + conf.strip() + "\n```\n"]
        with open(OUT, "w") as f:
            f.write("\n".join(md))
        return 0
    except Abort as e:
        log("ABORTED: %s" % e)
        return 1
    finally:
        kill_all()
        shutil.rmtree(T, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

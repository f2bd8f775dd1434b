#!/usr/bin/env python3
"""portier benchmark: SNI passthrough and TLS offload, against nginx and HAProxy.

Run by bench/run.sh (`make bench`), which installs the tools first. One run
starts one nginx backend (HTTPS for passthrough, plain HTTP for offload, one
worker) and, part after part, the proxies in front of it, all on 127.0.0.1
with free ports in a temp dir:

  passthrough  portier, nginx stream and HAProxy (mode tcp) relaying TLS to
               the backend's HTTPS listener, plus direct to the backend
  offload      portier (an offload domain with an uploaded certificate),
               nginx (http, ssl) and HAProxy (mode http, bind ssl)
               terminating TLS and proxying HTTP/1.1 with keep-alive to the
               backend's plain listener

It measures every row for every target (rounds interleaved, so that the
machine's drift hits all targets alike), prints the tables and writes
bench/README.md. Everything started here runs in its own session (setsid)
and is killed by process group on exit, error, Ctrl-C, SIGTERM or the
overall time limit.

Environment (defaults in brackets):
  BENCH_DURATION   seconds per wrk run [6]     BENCH_ROUNDS  rounds [5]
  BENCH_CONNS      wrk connections [8]         BENCH_THREADS wrk threads [1]
  BENCH_MANY       keep-alive and new connections (passthrough and offload)
                   also at these connection counts ["64,256"]; "" for none
  BENCH_IDLE       idle connections [2000]     BENCH_BULK    64 MiB downloads per round [16]
  BENCH_BULK_CHURN passthrough: 64 MiB downloads per round again at the end of
                   each round, after its connection-churn rows, for an
                   informational row (the goal's bulk rounds run before
                   them); 0 skips it [BENCH_BULK]
  BENCH_OFFLOAD_DURATION  seconds per offload load run [5]
  BENCH_OFFLOAD_ROUNDS    offload rounds [4]
  BENCH_OFFLOAD_BULK      64 MiB downloads per offload round [8]
  BENCH_PARTS      "passthrough,offload" [both]; with one part only, README
                   defaults to "-" (the file holds both)
  BENCH_README     output file [bench/README.md], "-" for none
  BENCH_DOMAINS    control plane: domain counts for bench/domains_bench.py
                   ["1000,10000,100000"]; "" skips it
  BENCH_DOMAIN_WRITES  timed lone domain PUTs per count, idle and again
                   under connection churn [200]
  BENCH_BANS       control plane: ban POSTs in one burst for bench/bans_bench.py
                   [1000]; 0 skips it
  BENCH_BANS_PRELOAD   bans made before the burst [10000]
  BENCH_QUICK      1: a short development run (2 rounds of 3 s, 4 downloads,
                   500 idle connections, 1,000 and 10,000 domains, 200 bans);
                   any knob set explicitly still wins. The README it writes
                   says so.
  BENCH_LIMIT      hard limit for the whole run in seconds [2400]
  BENCH_SYSCALLS   1: count each proxy's system calls per unit with strace -c
                   in separate short runs after the timed ones [1]
  PORTIERD         binary [build/portierd]     KEEP=1 keeps the temp dir
"""
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


QUICK = os.environ.get("BENCH_QUICK") == "1"
QUICK_DEFAULTS = {"BENCH_DURATION": 3, "BENCH_ROUNDS": 2, "BENCH_BULK": 4, "BENCH_IDLE": 500,
                  "BENCH_OFFLOAD_DURATION": 3, "BENCH_OFFLOAD_ROUNDS": 2,
                  "BENCH_OFFLOAD_BULK": 4, "BENCH_DOMAINS": "1000,10000",
                  "BENCH_DOMAIN_WRITES": 30, "BENCH_BANS": 200, "BENCH_BANS_PRELOAD": 0}


def env_int(name, default):
    if QUICK:
        default = QUICK_DEFAULTS.get(name, default)
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit("%s must be an integer" % name)


DURATION = env_int("BENCH_DURATION", 6)
ROUNDS = env_int("BENCH_ROUNDS", 5)
CONNS = env_int("BENCH_CONNS", 8)
try:
    MANY = [int(x) for x in os.environ.get("BENCH_MANY", "64,256").split(",") if x]
except ValueError:
    sys.exit("BENCH_MANY: a comma-separated list of connection counts")
THREADS = env_int("BENCH_THREADS", 1)
IDLE = env_int("BENCH_IDLE", 2000)
BULK_N = env_int("BENCH_BULK", 16)
BULK_CHURN_N = env_int("BENCH_BULK_CHURN", BULK_N)
LIMIT = env_int("BENCH_LIMIT", 3600)
DOMAINS = os.environ.get("BENCH_DOMAINS", QUICK_DEFAULTS["BENCH_DOMAINS"] if QUICK
                         else "1000,10000,100000")
DOMAIN_WRITES = env_int("BENCH_DOMAIN_WRITES", 200)
BANS = env_int("BENCH_BANS", 1000)
BANS_PRELOAD = env_int("BENCH_BANS_PRELOAD", 10000)
SYSCALLS = env_int("BENCH_SYSCALLS", 1)
O_DURATION = env_int("BENCH_OFFLOAD_DURATION", 5)
O_ROUNDS = env_int("BENCH_OFFLOAD_ROUNDS", 4)
O_BULK_N = env_int("BENCH_OFFLOAD_BULK", 8)
PARTS = [x for x in os.environ.get("BENCH_PARTS", "passthrough,offload").split(",") if x]
if not PARTS or any(x not in ("passthrough", "offload") for x in PARTS):
    sys.exit("BENCH_PARTS: a comma-separated list of passthrough and offload")
README = os.environ.get("BENCH_README", os.path.join(HERE, "README.md")
                        if len(set(PARTS)) == 2 else "-")
PORTIERD = os.environ.get("PORTIERD", os.path.join(ROOT, "build", "portierd"))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
BIG = 64 * 1024 * 1024
TCK = os.sysconf("SC_CLK_TCK")
TARGETS = ["direct", "portier", "nginx", "haproxy"]
PROXIES = ["portier", "nginx", "haproxy"]
LABEL = {"direct": "direct (baseline)", "portier": "portier", "nginx": "nginx stream",
         "haproxy": "HAProxy"}
# Offload: the same three proxies terminating TLS (nginx's http module, HAProxy
# in mode http); no direct column (the backend speaks plain HTTP).
O_TARGETS = ["portier", "nginx", "haproxy"]
O_LABEL = {"portier": "portier", "nginx": "nginx", "haproxy": "HAProxy"}
T0 = time.monotonic()
try:
    with open("/proc/loadavg") as _f:
        LOAD0 = " ".join(_f.read().split()[:3])
except OSError:
    LOAD0 = "?"


class Abort(Exception):
    pass


def log(msg):
    sys.stderr.write("[%6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


# ---- processes ---------------------------------------------------------------

PROCS = []        # every Popen we started, each the leader of its own session
EXTRA_PIDS = set()  # pids seen (portier workers, nginx workers) killed one by one too


def spawn(argv, logfile, env=None):
    with open(logfile, "ab") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    PROCS.append(p)
    return p


def run(argv, timeout):
    """Runs a bounded command in its own session; kills its group on timeout."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        killpg(p)
        p.communicate()
        raise Abort("timed out after %ss: %s" % (timeout, " ".join(argv)))
    finally:
        if p in PROCS and p.poll() is not None:
            PROCS.remove(p)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def killpg(p):
    for fn in (lambda: os.killpg(p.pid, signal.SIGKILL), lambda: p.kill()):
        try:
            fn()
        except (ProcessLookupError, PermissionError, OSError):
            pass


def kill_all():
    signal.alarm(0)
    for p in PROCS:
        killpg(p)
    for pid in EXTRA_PIDS:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in PROCS:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log("WARNING: pid %d did not exit" % p.pid)
    PROCS.clear()


def on_signal(sig, frame):
    raise Abort("signal %d" % sig)


def on_alarm(sig, frame):
    raise Abort("overall time limit of %d s reached" % LIMIT)


# ---- /proc -------------------------------------------------------------------

def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


HAVE_SCHEDSTAT = os.path.exists("/proc/self/schedstat")


def cpu(pids):
    """(total CPU s, user s, system s) of the processes, all threads.

    The total comes from schedstat (ns, every thread) when the kernel has it,
    else from utime+stime (clock ticks); user/system from /proc/PID/stat."""
    total_ns, ut, st = 0, 0, 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        ut += int(fields[11])
        st += int(fields[12])
        if HAVE_SCHEDSTAT:
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                        total_ns += int(f.read().split()[0])
                except OSError:
                    pass
    total = total_ns / 1e9 if HAVE_SCHEDSTAT else (ut + st) / TCK
    return total, ut / TCK, st / TCK


def sockstat():
    """TCP sockets in TIME_WAIT and TCP memory in pages (/proc/net/sockstat):
    the state the bulk rounds start in, stated in the README."""
    try:
        with open("/proc/net/sockstat") as f:
            m = re.search(r"TCP: inuse \d+ orphan \d+ tw (\d+) alloc \d+ mem (\d+)", f.read())
    except OSError:
        m = None
    return {"tw": int(m.group(1)), "mem": int(m.group(2))} if m else None


def cpu_delta(a, b):
    return tuple(y - x for x, y in zip(a, b))


# ---- network -----------------------------------------------------------------

def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port, proc, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Abort("%s exited with status %s (see its log)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Abort("%s does not listen on %d after %d s" % (what, port, timeout))


# ---- setup ------------------------------------------------------------------

def make_files(T, big=True):
    key, crt = os.path.join(T, "tls.key"), os.path.join(T, "tls.pem")
    rc, out, err = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"], 30)
    if rc != 0:
        raise Abort("openssl: " + err)
    www = os.path.join(T, "www")
    os.mkdir(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<!doctype html><title>bench</title><p>" + "portier bench " * 40 + "</p>\n")
    if big:
        with open(os.path.join(www, "big.bin"), "wb") as f:
            for _ in range(BIG // (1 << 20)):
                f.write(os.urandom(1 << 20))
    return key, crt, www


def nginx_conf(prefix, body, modules=""):
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    conf = """%suser root;
worker_processes 1;
worker_rlimit_nofile 16384;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 8192; }
%s
""" % (modules, prefix, prefix, body)
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path, conf


def start_backend(T, key, crt, www, pp_port, direct_port, plain_port):
    p = os.path.join(T, "backend")
    body = """http {
    access_log off;
    client_body_temp_path %(p)s/tmp/body;
    proxy_temp_path %(p)s/tmp/proxy;
    fastcgi_temp_path %(p)s/tmp/fastcgi;
    uwsgi_temp_path %(p)s/tmp/uwsgi;
    scgi_temp_path %(p)s/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:%(pp)d ssl proxy_protocol;   # for the proxies
        listen 127.0.0.1:%(direct)d ssl;              # baseline
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        root %(www)s;
    }
    server {
        listen 127.0.0.1:%(plain)d;                    # plain HTTP, for the offload proxies
        root %(www)s;
    }
}""" % {"p": p, "pp": pp_port, "direct": direct_port, "plain": plain_port, "crt": crt,
       "key": key, "www": www}
    path, conf = nginx_conf(p, body)
    proc = spawn([NGINX, "-p", p, "-c", path, "-g", "daemon off;"], os.path.join(p, "logs", "stderr"))
    wait_port(pp_port, proc, "backend nginx")
    wait_port(direct_port, proc, "backend nginx")
    wait_port(plain_port, proc, "backend nginx")
    return proc, conf


def start_nginx_stream(T, port, be_port):
    p = os.path.join(T, "nginx-stream")
    body = """stream {
    map $ssl_preread_server_name $up {
        localhost be;
        default   be;
    }
    upstream be { server 127.0.0.1:%d; }
    server {
        listen 127.0.0.1:%d;
        ssl_preread on;
        proxy_pass $up;
        proxy_protocol on;
    }
}""" % (be_port, port)
    path, conf = nginx_conf(p, body, "load_module %s;\n" % STREAM_MODULE)
    proc = spawn([NGINX, "-p", p, "-c", path, "-g", "daemon off;"], os.path.join(p, "logs", "stderr"))
    wait_port(port, proc, "nginx stream")
    return proc, conf


def start_haproxy(T, port, be_port):
    conf = """global
    nbthread 1
    maxconn 6000

defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s

frontend sni
    bind 127.0.0.1:%d
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend be if { req.ssl_sni -i localhost }
    default_backend be

backend be
    server s1 127.0.0.1:%d send-proxy-v2
""" % (port, be_port)
    path = os.path.join(T, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(conf)
    proc = spawn([HAPROXY, "-db", "-f", path], os.path.join(T, "haproxy.log"))
    wait_port(port, proc, "haproxy")
    return proc, conf


# nginx's offload location (no "%": the server blocks using it are %-formatted).
NGINX_PROXY_LOCATION = """        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # the same request rewriting as portier's offload
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            # buffer in memory only (the default spills a 64 MiB body to disk)
            proxy_max_temp_file_size 0;
        }
"""


def start_nginx_offload(T, port, port80, plain_port, key, crt):
    p = os.path.join(T, "nginx-offload")
    body = ("""http {
    access_log off;
    client_body_temp_path %(p)s/tmp/body;
    proxy_temp_path %(p)s/tmp/proxy;
    fastcgi_temp_path %(p)s/tmp/fastcgi;
    uwsgi_temp_path %(p)s/tmp/uwsgi;
    scgi_temp_path %(p)s/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream backend {
        server 127.0.0.1:%(plain)d;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:%(port)d ssl;
        listen 127.0.0.1:%(port80)d;   # the port-80 row: plain HTTP, same proxying
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;   # 1.22's default lacks TLSv1.3
""" + NGINX_PROXY_LOCATION + """    }
}""") % {"p": p, "plain": plain_port, "port": port, "port80": port80, "crt": crt, "key": key}
    path, conf = nginx_conf(p, body)
    proc = spawn([NGINX, "-p", p, "-c", path, "-g", "daemon off;"], os.path.join(p, "logs", "stderr"))
    wait_port(port, proc, "nginx offload")
    return proc, conf


def start_haproxy_offload(T, port, port80, plain_port, key, crt):
    pem = os.path.join(T, "tls-haproxy.pem")  # HAProxy wants certificate and key in one file
    with open(pem, "w") as f, open(crt) as c, open(key) as k:
        f.write(c.read() + k.read())
    conf = """global
    nbthread 1
    maxconn 6000

defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-request 60s
    timeout http-keep-alive 300s

frontend fe
    bind 127.0.0.1:%d ssl crt %s alpn http/1.1
    bind 127.0.0.1:%d
    # the same request rewriting as portier's offload
    option forwardfor
    http-request set-header X-Real-IP %%[src]
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
    http-request set-header X-Forwarded-Host %%[req.hdr(host)]
    default_backend be

backend be
    http-reuse safe
    server s1 127.0.0.1:%d
""" % (port, pem, port80, plain_port)
    path = os.path.join(T, "haproxy-offload.cfg")
    with open(path, "w") as f:
        f.write(conf)
    proc = spawn([HAPROXY, "-db", "-f", path], os.path.join(T, "haproxy-offload.log"))
    wait_port(port, proc, "haproxy offload")
    return proc, conf


def passthrough_calls(be_port):
    """portier's API calls for the passthrough part: (method, path, body, shown body)."""
    return [
        ("PUT", "/api/v1/backends/be",
         {"servers": ["127.0.0.1:%d" % be_port], "proxy_protocol": "v2"}, None),
        ("PUT", "/api/v1/domains/localhost", {"mode": "passthrough", "backend": "be"}, None),
        ("PUT", "/api/v1/domains/*", {"mode": "passthrough", "backend": "be"}, None),
    ]


def offload_calls(plain_port, key, crt):
    """The offload part: one offload domain, its certificate uploaded."""
    with open(crt) as f:
        cert_pem = f.read()
    with open(key) as f:
        key_pem = f.read()
    return [
        ("PUT", "/api/v1/backends/b", {"servers": ["127.0.0.1:%d" % plain_port]}, None),
        ("POST", "/api/v1/certificates", {"cert_pem": cert_pem, "key_pem": key_pem},
         {"cert_pem": "<tls.pem>", "key_pem": "<tls.key>"}),
        # redirect_http off: port 80 proxies too (the port-80 keep-alive row)
        ("PUT", "/api/v1/domains/localhost",
         {"mode": "offload", "backend": "b", "certificate": "manual",
          "redirect_http": False}, None),
    ]


class Portier:
    def __init__(self, T, name, https, http, api, calls, extra_args=()):
        self.api_port = api
        self.state = os.path.join(T, name + "-state")
        self.argv = [PORTIERD, "--state-dir", self.state, "--api", "127.0.0.1:%d" % api,
                     "--https", "127.0.0.1:%d" % https, "--http", "127.0.0.1:%d" % http,
                     "--workers", "1"] + list(extra_args)
        # nginx and HAProxy log nothing here (no access_log / log lines):
        # portier's per-connection JSON access log is turned off to match.
        rc, out, err = run([PORTIERD, "--help"], 10)
        if "--access-log" in out + err:
            self.argv += ["--access-log", "off"]
        log_path = os.path.join(T, name + ".log")
        self.proc = spawn(self.argv, log_path)
        end = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise Abort("portierd exited with status %s (see %s)"
                            % (self.proc.returncode, log_path))
            try:
                if self.call("GET", "/healthz", auth=False)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise Abort("portierd /healthz not 200 after 20 s")
            time.sleep(0.1)
        with open(os.path.join(self.state, "api.token")) as f:
            self.token = f.read().strip()
        self.calls = [(m, p, shown if shown is not None else b) for m, p, b, shown in calls]
        for method, path, body, _ in calls:
            st, doc = self.call(method, path, body)
            if st not in (200, 201):
                raise Abort("portier API %s %s -> %s %s" % (method, path, st, doc))
        end = time.monotonic() + 10
        while True:
            st, doc = self.call("GET", "/api/v1/status")
            ws = doc.get("workers", []) if st == 200 else []
            if (len(ws) == 1 and isinstance(ws[0].get("pid"), int)
                    and ws[0].get("config_version") == doc.get("config_version")):
                self.worker = ws[0]["pid"]
                EXTRA_PIDS.add(self.worker)
                break
            if time.monotonic() > end:
                raise Abort("portier worker did not apply the routes: %s" % doc)
            time.sleep(0.1)
        wait_port(https, self.proc, "portierd")

    def shown_argv(self):
        return " ".join(self.argv).replace(ROOT + "/", "")

    def shown_calls(self):
        return "\n".join("curl -X %s -H 'Authorization: Bearer TOKEN' -d '%s' http://127.0.0.1:API%s"
                         % (m, json.dumps(b), p) for m, p, b in self.calls)

    def call(self, method, path, body=None, auth=True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.api_port, path),
                                     data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                st = r.status
        except urllib.error.HTTPError as e:
            raw, st = e.read(), e.code
        try:
            return st, json.loads(raw or b"{}")
        except ValueError:
            return st, {}


# ---- measurements --------------------------------------------------------------

WRK_RE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def wrk(port, close, duration, scheme="https", conns=None):
    argv = [WRK, "-t%d" % THREADS, "-c%d" % (conns or CONNS), "-d%ds" % duration, "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append("%s://localhost:%d/" % (scheme, port))
    rc, out, err = run(argv, duration + 30)
    m = WRK_RE.search(out)
    if rc != 0 or not m:
        raise Abort("wrk failed (%s): %s %s" % (rc, out, err))
    reqs = int(m.group(1))
    secs = float(m.group(2)) * UNIT_S[m.group(3)]
    errs = 0
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if e:
        errs += sum(int(x) for x in e.groups())
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if e:
        errs += int(e.group(1))
    return reqs, secs, errs


def curl_big(port):
    # HTTP/1.1 for every proxy: Debian's curl offers h2, which portier accepts
    # and the nginx/HAProxy peers here do not, so the row would compare
    # protocols, not proxies (bench/H2.md measures h2 on its own).
    argv = ["curl", "-sk", "--http1.1", "--max-time", "120", "-o", "/dev/null", "-w",
            "%{http_code} %{size_download} %{time_total}", "--resolve",
            "localhost:%d:127.0.0.1" % port, "https://localhost:%d/big.bin" % port]
    rc, out, err = run(argv, 130)
    parts = out.split()
    if rc != 0 or len(parts) != 3 or parts[0] != "200" or int(parts[1]) != BIG:
        raise Abort("bulk download through port %d failed: rc=%s %s %s" % (port, rc, out, err))
    return int(parts[1]), float(parts[2])


def build_hs_client(T):
    """bench/hs_client.c (full handshakes, no resumption); None if it does not build."""
    exe = os.path.join(T, "hs_client")
    try:
        rc, out, err = run(["gcc", "-O2", "-Wall", os.path.join(HERE, "hs_client.c"), "-o", exe,
                            "-lssl", "-lcrypto"], 120)
    except Abort as e:
        log("hs_client skipped: %s" % e)
        return None
    if rc != 0:
        log("hs_client does not build, full-handshake row skipped: %s" % err.strip()[:300])
        return None
    return exe


HS_RE = re.compile(r"done=(\d+) errors=(\d+) resumed=(\d+) not200=(\d+) seconds=([\d.]+) "
                   r"proto=(\S+) cipher=(\S+) group=(\S+)")


def hs_client(exe, port, duration, path="/"):
    """Full handshakes, CONNS at a time: (requests, seconds, errors, details)."""
    rc, out, err = run([exe, "127.0.0.1", str(port), "localhost", str(CONNS), str(duration),
                        path], duration + 30)
    m = HS_RE.search(out)
    if rc != 0 or not m:
        raise Abort("hs_client failed (%s): %s %s" % (rc, out, err))
    done, errs, resumed, not200 = (int(m.group(i)) for i in range(1, 5))
    if resumed:
        raise Abort("hs_client: %d of %d handshakes were resumed" % (resumed, done))
    return done, float(m.group(5)), errs + not200, {
        "proto": m.group(6), "cipher": m.group(7), "group": m.group(8)}


def resumes(port):
    """True when a TLS 1.3 session ticket from one connection resumes the next."""
    T = tempfile.mkdtemp(prefix="portier-bench-sess.")
    sess = os.path.join(T, "sess.pem")
    base = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
            "localhost", "-tls1_3", "-ign_eof"]
    try:
        # A request makes the client read the tickets sent after the handshake.
        req = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        for argv in (base + ["-sess_out", sess], base + ["-sess_in", sess]):
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
            PROCS.append(p)
            try:
                out, _ = p.communicate(req.encode(), timeout=10)
            except subprocess.TimeoutExpired:
                killpg(p)
                p.communicate()
                return None
            finally:
                PROCS.remove(p)
        return b"Reused, TLSv1.3" in out
    finally:
        shutil.rmtree(T, ignore_errors=True)


def fetch_small(port):
    argv = ["curl", "-sk", "--max-time", "10", "--resolve", "localhost:%d:127.0.0.1" % port,
            "https://localhost:%d/" % port]
    rc, out, err = run(argv, 20)
    return rc == 0 and "portier bench" in out


def established_to(port, pids):
    """TCP connections of <pids> established to 127.0.0.1:<port>: their socket
    inodes (/proc/PID/fd) matched against /proc/net/tcp."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    n = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if (parts[3] == "01" and parts[2] == "0100007F:%04X" % port
                        and parts[9] in inodes):
                    n += 1
    except (OSError, StopIteration, IndexError):
        pass
    return n


def idle_test(T, name, port, pids, extra_pids, path=None, count_port=None):
    """Proxy RSS before/after IDLE established TLS connections through it.

    With <path>, a second reading follows once each connection has had one
    keep-alive request answered ("req_*" keys); <count_port>: also count the
    connections established to that port (the backend) at each reading."""
    ready = os.path.join(T, "idle-%s.ready" % name)
    done = os.path.join(T, "idle-%s.done" % name)
    time.sleep(0.5)
    before = sum(rss_kib(p) for p in pids)
    extra_before = {p: rss_kib(p) for p in extra_pids}
    c = spawn([PY, os.path.join(HERE, "idle_client.py"), "127.0.0.1", str(port), "localhost",
               str(IDLE), ready, done, "150"] + ([path] if path else []),
              os.path.join(T, "idle-%s.log" % name))

    def wait_file(f, what):
        end = time.monotonic() + 100
        while not os.path.exists(f):
            if c.poll() is not None:
                raise Abort("idle client for %s exited early (see %s)" % (name, T))
            if time.monotonic() > end:
                raise Abort("idle client for %s did not finish %s" % (name, what))
            time.sleep(0.1)
        time.sleep(1.5)
        with open(f) as fh:
            return [int(x) for x in fh.read().split()]

    ok, failed = wait_file(ready, "its handshakes")
    after = sum(rss_kib(p) for p in pids)
    extra_after = {p: rss_kib(p) for p in extra_pids}
    res = {"before": before, "after": after, "ok": ok, "failed": failed,
           "per_conn": (after - before) / ok if ok else None,
           "extra": {p: (extra_before[p], extra_after[p]) for p in extra_pids}}
    if count_port:
        res["backend_conns"] = established_to(count_port, pids)
    if path and ok:
        open(ready + ".go", "w").close()
        answered, bad = wait_file(ready + ".2", "its requests")
        after2 = sum(rss_kib(p) for p in pids)
        res.update({"req_after": after2, "req_ok": answered, "req_failed": bad,
                    "req_per_conn": (after2 - before) / ok,
                    "req_extra": {p: rss_kib(p) for p in extra_pids}})
        if count_port:
            res["req_backend_conns"] = established_to(count_port, pids)
    open(done, "w").close()
    try:
        c.wait(timeout=30)
    except subprocess.TimeoutExpired:
        killpg(c)
        c.wait()
    if c in PROCS:
        PROCS.remove(c)
    try:  # connections the proxy still held open after the readings
        with open(done + ".alive") as f:
            res["open"] = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        res["open"] = None
    time.sleep(1.0)  # let the proxy close its side before the next test
    if count_port:  # backend connections kept once the clients are gone
        res["end_backend_conns"] = established_to(count_port, pids)
    if ok == 0:
        raise Abort("no idle connection could be established through %s" % name)
    return res


# ---- system calls per unit (strace -c, outside the timed runs) --------------------

STRACE_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+\s+)?(\w+)\s*$")


def strace_counts(pids, fn, T, tag):
    """Runs fn() with strace -c attached to pids; {syscall: (calls, errors)}, units."""
    out = os.path.join(T, "strace-%s.txt" % tag)
    argv = ["strace", "-c", "-f", "-o", out]
    for pid in pids:
        argv += ["-p", str(pid)]
    tr = spawn(argv, os.path.join(T, "strace-%s.log" % tag))
    time.sleep(0.7)  # attached
    try:
        units = fn()
    finally:
        try:
            os.killpg(tr.pid, signal.SIGINT)
        except OSError:
            pass
        try:
            tr.wait(timeout=15)
        except subprocess.TimeoutExpired:
            killpg(tr)
            tr.wait()
        if tr in PROCS:
            PROCS.remove(tr)
    counts = {}
    try:
        with open(out) as f:
            for line in f:
                m = STRACE_LINE.match(line)
                if m and m.group(3) != "total":
                    counts[m.group(3)] = (int(m.group(1)), int((m.group(2) or "0").strip()))
    except OSError:
        pass
    return counts, units


def syscall_profile(T, pids, targets, plan):
    """System calls per unit of work: plan is [(mode, fn(t) -> units)]."""
    res = {}
    for t in targets:
        for mode, fn in plan:
            counts, units = strace_counts(pids[t], lambda: fn(t), T, "%s-%s" % (t, mode))
            if not counts or not units:
                log("strace gave nothing for %s %s: skipped" % (t, mode))
                return None
            res.setdefault(mode, {})[t] = {k: (c / units, e / units)
                                          for k, (c, e) in counts.items()}
            log("syscalls %-8s %-5s %6.1f per unit" % (
                t, mode, sum(c for c, _ in res[mode][t].values())))
    return res


def passthrough_syscalls(T, port, pids):
    def bulk(t):
        for _ in range(2):
            curl_big(port[t])
        return 2 * BIG / (1 << 20)
    return syscall_profile(T, pids, PROXIES, [
        ("ka", lambda t: wrk(port[t], False, 3)[0]),
        ("close", lambda t: wrk(port[t], True, 3)[0]),
        ("bulk", bulk)])


SYS_TITLES = {"ka": "per keep-alive request", "close": "per new connection",
              "bulk": "per MiB relayed"}
O_SYS_TITLES = {"ka": "per keep-alive request", "full": "per request with a full handshake",
                "bulk": "per MiB relayed"}


def syscall_tables(S, targets=None, labels=None, titles=None):
    targets, labels, titles = targets or PROXIES, labels or LABEL, titles or SYS_TITLES
    out = []
    for mode in titles:
        if mode not in S:
            continue
        per = S[mode]
        names = sorted({n for t in targets for n in per[t]},
                       key=lambda n: -max(per[t].get(n, (0, 0))[0] for t in targets))
        names = [n for n in names if max(per[t].get(n, (0, 0))[0] for t in targets) >= 0.05]
        out.append("System calls %s (errors in brackets):\n" % titles[mode])
        out.append("| syscall | " + " | ".join(labels[t] for t in targets) + " |")
        out.append("|---|" + "---:|" * len(targets))
        for n in names:
            cells = []
            for t in targets:
                c, e = per[t].get(n, (0, 0))
                cells.append("—" if c == 0 else ("%.2f" % c) + (" (%.2f)" % e if e >= 0.005 else ""))
            out.append("| %s | %s |" % (n, " | ".join(cells)))
        out.append("| **total** | " + " | ".join(
            "**%.2f**" % sum(c for c, _ in per[t].values()) for t in targets) + " |")
        out.append("")
    return "\n".join(out)


# ---- report --------------------------------------------------------------------

def fmt(v, digits):
    if v is None:
        return "—"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{d}f}".format(v, d=digits)


def ratio(v, ref):
    if v is None or ref in (None, 0):
        return ""
    return " (%.2f×)" % (v / ref)


def build_table(R):
    """Rows: (label, {target: value}, digits, better)."""
    rows = []

    def med(t, key):
        v = R[t].get(key)
        return statistics.median(v) if v else None

    def per(t, key, unit):
        c = R[t].get(key + "_cpu")
        if not c or c["units"] == 0:
            return None
        return c["cpu"] / c["units"] * unit

    rows.append(("1. keep-alive requests/s (wrk, %d conns)" % CONNS,
                 {t: med(t, "ka") for t in TARGETS}, 0, "higher"))
    rows.append(("2. new TLS connections/s (Connection: close)",
                 {t: med(t, "close") for t in TARGETS}, 0, "higher"))
    rows.append(("3. bulk MB/s (64 MiB file, curl)",
                 {t: med(t, "bulk") for t in TARGETS}, 0, "higher"))
    rows.append(("4. proxy RSS KiB per idle TLS connection (%d open)" % IDLE,
                 {t: (R[t]["idle"]["per_conn"] if t in PROXIES else None) for t in TARGETS},
                 2, "lower"))
    rows.append(("5a. proxy CPU ms per 10k keep-alive requests",
                 {t: (per(t, "ka", 1e4 * 1e3) if t in PROXIES else None) for t in TARGETS},
                 0, "lower"))
    rows.append(("5b. proxy CPU ms per 10k new connections",
                 {t: (per(t, "close", 1e4 * 1e3) if t in PROXIES else None) for t in TARGETS},
                 0, "lower"))
    rows.append(("5c. proxy CPU ms per GiB relayed",
                 {t: (per(t, "bulk", float(1 << 30) * 1e3) if t in PROXIES else None)
                  for t in TARGETS}, 0, "lower"))
    rows.append(("5d. MB relayed per proxy CPU-second (bulk)",
                 {t: per_cpu_s(R, t, "bulk", 1e-6) for t in TARGETS}, 0, "higher"))
    if any(R[t].get("bulk_churn") for t in TARGETS):
        rows.append(("5e. MB relayed per proxy CPU-second (bulk after churn, informational)",
                     {t: per_cpu_s(R, t, "bulk_churn", 1e-6) for t in TARGETS}, 0, "higher"))
    for n in MANY:
        rows.append(("6. keep-alive requests/s (wrk, %d conns)" % n,
                     {t: med(t, "ka%d" % n) for t in TARGETS}, 0, "higher"))
        rows.append(("6. keep-alive requests per proxy CPU-second (%d conns)" % n,
                     {t: per_cpu_s(R, t, "ka%d" % n) for t in TARGETS}, 0, "higher"))
    for n in MANY:
        rows.append(("7. new TLS connections/s (wrk, Connection: close, %d conns)" % n,
                     {t: med(t, "close%d" % n) for t in TARGETS}, 0, "higher"))
        rows.append(("7. new connections per proxy CPU-second (%d conns)" % n,
                     {t: per_cpu_s(R, t, "close%d" % n) for t in TARGETS}, 0, "higher"))
    return rows


def per_cpu_s(R, t, key, scale=1.0):
    """Units of work (times <scale>) per CPU-second of the proxy, over all
    rounds of <key>; None without a proxy (direct) or without CPU."""
    c = R[t].get(key + "_cpu")
    if not c or c["units"] == 0 or c["cpu"] <= 0:
        return None
    return c["units"] * scale / c["cpu"]


def table_md(rows, targets=None, labels=None, ref_label="nginx stream"):
    targets, labels = targets or TARGETS, labels or LABEL
    head = "| row (ratio to %s in brackets) | better | " % ref_label + \
        " | ".join(labels[t] for t in targets) + " |"
    sep = "|---|---|" + "---:|" * len(targets)
    out = [head, sep]
    for label, vals, digits, better in rows:
        ref = vals.get("nginx")
        cells = [fmt(vals[t], digits) + ratio(vals[t], ref) for t in targets]
        out.append("| %s | %s | %s |" % (label, better, " | ".join(cells)))
    return "\n".join(out)


def sys_share(R, t, key):
    c = R[t].get(key + "_cpu")
    if not c or c["user"] + c["sys"] <= 0:
        return None
    return c["sys"] / (c["user"] + c["sys"])


def interpretation(R, rows):
    v = {label.split(".")[0]: vals for label, vals, _, _ in rows}
    lines = []

    def r(row, a, b="nginx"):
        x, y = v[row].get(a), v[row].get(b)
        return x / y if x is not None and y else None

    def cmp(row, key, what, higher=True):
        rp, rh = r(row, "portier"), r(row, "haproxy")
        if rp is None:
            return
        # Same-round ratios: their spread shows what this run's noise is.
        pr = [a / b for a, b in zip(R["portier"][key], R["nginx"][key]) if b]
        spread = " (per-round ratios %.2f–%.2f×)" % (min(pr), max(pr)) if len(pr) > 1 else ""
        if len(pr) > 1 and min(pr) < 1 < max(pr):
            verdict = "within this run's noise of nginx stream: median %.2f×%s" % (rp, spread)
        elif abs(rp - 1) < 0.05:
            verdict = "on par with nginx stream (%.2f×)%s" % (rp, spread)
        elif (rp > 1) == higher:
            verdict = "ahead of nginx stream (%.2f×)%s" % (rp, spread)
        else:
            verdict = "behind nginx stream (%.2f×)%s" % (rp, spread)
        lines.append("- **%s**: portier is %s; HAProxy %.2f×, direct %s." % (
            what, verdict, rh if rh else float("nan"),
            ("%.2f×" % r(row, "direct")) if r(row, "direct") else "—"))

    cmp("1", "ka", "Keep-alive requests/s")
    cmp("2", "close", "New TLS connections/s")
    cmp("3", "bulk", "Bulk MB/s")
    im = {t: R[t]["idle"] for t in PROXIES}
    d = im["portier"].get("daemon")
    lines.append(
        "- **Memory per idle established connection** (proxy process RSS growth with %d "
        "handshaken, idle TLS connections open through it): portier %.2f KiB (worker; the "
        "daemon moved by %+d KiB in total), nginx stream %.2f KiB (worker), HAProxy %.2f KiB. "
        "Kernel socket buffers are not in these figures; they are the same for every proxy."
        % (IDLE, im["portier"]["per_conn"], d if d is not None else 0,
           im["nginx"]["per_conn"], im["haproxy"]["per_conn"]))
    if "backend_idle" in R["direct"]:
        lines.append("  For scale, the TLS-terminating nginx backend itself grew by %.2f KiB per "
                     "direct idle connection (mostly OpenSSL state)."
                     % R["direct"]["backend_idle"]["per_conn"])
    cpu_parts = []
    for row, what in (("5a", "keep-alive request"), ("5b", "new connection"),
                      ("5c", "GiB relayed")):
        rp, rh = r(row, "portier"), r(row, "haproxy")
        if rp is not None:
            cpu_parts.append("per %s portier %.2f× nginx stream's (HAProxy %.2f×)"
                             % (what, rp, rh if rh else float("nan")))
    lines.append("- **Proxy CPU per unit of work** (the fairest figure on this machine): " +
                 "; ".join(cpu_parts) + ".")
    shares = []
    for t in PROXIES:
        s = [sys_share(R, t, k) for k in ("ka", "close", "bulk")]
        shares.append("%s %s" % (LABEL[t], "/".join("%.0f%%" % (x * 100) if x is not None
                                                     else "?" for x in s)))
    lines.append("- Kernel share of each proxy's CPU (keep-alive/close/bulk): " +
                 ", ".join(shares) + ". A passthrough relay's cost is mostly system calls "
                 "and loopback TCP; it wins by making fewer of them per byte and per request.")
    return "\n".join(lines)


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def first(argv, stream="out"):
        try:
            rc, out, err = run(argv, 10)
            text = (out if stream == "out" else err) or out or err
            return text.strip().splitlines()[0] if text.strip() else "?"
        except (Abort, OSError):
            return "?"
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    rev = first(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    return {
        "nproc": os.cpu_count(), "cpu": model, "mem": mem,
        "kernel": platform.release(),
        "nginx": first([NGINX, "-v"], "err"), "haproxy": first([HAPROXY, "-v"]),
        "wrk": first([WRK, "-v"]), "openssl": first(["openssl", "version"]),
        "curl": first(["curl", "--version"]), "portier": first([PORTIERD, "--version"]),
        "rev": rev,
    }


def route_bench(T):
    """bench/route_bench.c (route lookup cost against table size), if it builds."""
    src = os.path.join(HERE, "route_bench.c")
    if not os.path.exists(src):
        return None
    exe = os.path.join(T, "route_bench")
    try:
        rc, out, err = run(["gcc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-I", ROOT, src] +
                           [os.path.join(ROOT, "common", x) for x in
                            ("route.c", "dname.c", "pt.c")] + ["-o", exe], 120)
        if rc != 0:
            log("route_bench does not build, skipped: %s" % err.strip()[:300])
            return None
        rc, out, err = run([exe], 120)
        return out.strip() if rc == 0 else None
    except Abort as e:
        log("route_bench skipped: %s" % e)
        return None


def domains_bench():
    """bench/domains_bench.py: the cost of one domain write at each size."""
    if not DOMAINS:
        return None
    log("control plane: domain writes with %s domains configured" % DOMAINS)
    rc, out, err = run([sys.executable, os.path.join(HERE, "domains_bench.py"), PORTIERD,
                        DOMAINS, str(DOMAIN_WRITES)], 1800)
    if rc != 0:
        log("domains_bench failed, skipped: %s" % (out + err).strip()[-400:])
        return None
    for line in out.splitlines():
        if line.strip() and not line.startswith("|"):
            log("  " + line.strip())
    return out.strip()


def bans_bench():
    """bench/bans_bench.py: a burst of ban POSTs on top of preloaded bans."""
    if BANS <= 0:
        return None
    log("control plane: %d bans in one burst, %d made before" % (BANS, BANS_PRELOAD))
    rc, out, err = run([sys.executable, os.path.join(HERE, "bans_bench.py"), PORTIERD,
                        str(BANS), "1000", str(BANS_PRELOAD)], 1800)
    for line in out.splitlines():
        if line.strip():
            log("  " + line.strip())
    if not out.strip():
        log("bans_bench failed, skipped: %s" % err.strip()[-400:])
        return None
    return out.strip()


def same_round_ratios(R, key, a="portier", b="nginx"):
    """a/b of work per proxy CPU-second, round by round (the rounds are
    interleaved, so the machine's drift cancels within each)."""
    return [x / y for x, y in zip(R[a].get(key + "_eff", []), R[b].get(key + "_eff", [])) if y]


def goal_rows(P, O):
    """The issue-15 goals this run can judge: (goal, target text, need,
    portier/nginx ratios per round, HAProxy/nginx ratios per round)."""
    out = []
    if P:
        R = P["R"]
        for n in MANY:
            out.append(("passthrough keep-alive, requests per proxy CPU-second, %d conns" % n,
                        "≥ 1.3× nginx stream", 1.3, R, "ka%d" % n))
        for n in [CONNS] + MANY:
            out.append(("passthrough new connections per proxy CPU-second, %d conns" % n,
                        "≥ 1.0× nginx stream", 1.0, R, "close" if n == CONNS else "close%d" % n))
        out.append(("passthrough bulk 64 MiB, MB per proxy CPU-second", "≥ 2.5× nginx stream",
                    2.5, R, "bulk"))
        # Not a goal: the same downloads at the end of each round, right after
        # its connection-churn rows (see passthrough_md), so that nothing is hidden.
        out.append(("passthrough bulk 64 MiB after the churn rows (informational)", "—",
                    None, R, "bulk_churn"))
    if O:
        R = O["R"]
        for n in [CONNS] + MANY:
            out.append(("offload keep-alive, requests per proxy CPU-second, %d conns" % n,
                        "≥ 1.3× nginx", 1.3, R, "ka" if n == CONNS else "ka%d" % n))
    return out


def goals_md(P, O, db, bb):
    md = ["## Issue 15 goals, this run\n"]
    md.append("Each ratio is portier's work per CPU-second of its worker over nginx's (one "
              "worker each, same backend), taken round by round (the rounds are interleaved, "
              "so the machine's drift hits both alike); the figure is the median of the "
              "per-round ratios, with their range. HAProxy's is given for scale.\n")
    md.append("| goal | target | portier / nginx | HAProxy / nginx | verdict |")
    md.append("|---|---|---:|---:|---|")
    for goal, target, need, R, key in goal_rows(P, O):
        pr, hr = same_round_ratios(R, key), same_round_ratios(R, key, "haproxy")
        if not pr:
            continue
        m = statistics.median(pr)
        if need is None:
            verdict = "not a goal"
        else:
            verdict = "**met**" if m >= need else "missed"
            if m < need <= max(pr) or m >= need > min(pr):
                verdict += " (rounds straddle it)"
        md.append("| %s | %s | %.2f× (%.2f–%.2f) | %s | %s |" % (
            goal, target, m, min(pr), max(pr),
            "%.2f×" % statistics.median(hr) if hr else "—", verdict))
    if O:
        im = O["R"]["portier"]["idle"]
        for what, k in (("handshaken", "per_conn"), ("after one request", "req_per_conn")):
            v = im.get(k)
            if v is not None:
                md.append("| offload RSS per idle TLS connection, %s | ≤ 7 KiB | %.2f KiB | "
                          "— | %s |" % (what, v, "**met**" if v <= 7 else "missed"))
    md.append("")
    md.append("Control plane (bench/domains_bench.py and bench/bans_bench.py, below): "
              "the goals are a write ≤ 5 ms p99 and live in every worker ≤ 5 ms p99 "
              "after its answer at 100,000 domains, and 100,000 bans; read them off "
              "the tables at the end of this file%s.\n"
              % ("" if db or bb else " (not run this time)"))
    return md


def write_readme(path, P, O, info, be_conf, page_len, started, elapsed, rb, db=None, bb=None):
    md = []
    md.append("# portier benchmark: passthrough and TLS offload\n")
    md.append("Generated by `bench/run.sh` (`make bench`) on %s, in %.0f s. Re-running it "
              "rewrites this file. Profiling notes written by hand are in "
              "[PROFILE.md](PROFILE.md).\n" % (started, elapsed))
    md.append("## Machine\n")
    md.append("- nproc: %s, CPU: %s, memory %s, kernel %s" % (
        info["nproc"], info["cpu"], info["mem"], info["kernel"]))
    md.append("- %s (built from the work tree at git %s, uncommitted edits included); "
              "%s; %s; %s; %s; %s\n" % (
        info["portier"], info["rev"], info["nginx"], info["haproxy"], info["wrk"],
        info["openssl"], info["curl"].split(" (")[0]))
    md.append("The machine has 2 shared cores running the load generator, the proxy and the "
              "backend at once, and its speed drifts during a run: only ratios taken in the "
              "same run mean anything, and the proxy's CPU per unit of work is the fairest "
              "figure.\n")
    if QUICK:
        md.append("**A short development run (BENCH_QUICK=1)**: fewer and shorter rounds; "
                  "do not quote these figures.\n")
    md.append("Load on the machine during this run: %s (load average before it started; "
              "other work on the machine shares its cores).\n" % LOAD0)
    md += goals_md(P, O, db, bb)
    if P:
        md += passthrough_md(P)
    if O:
        md += offload_md(O)
    md.append("## Backend (both parts: nginx, 1 worker, serves index.html (%d bytes) and "
              "big.bin (64 MiB))\n" % page_len)
    md.append("```nginx\n" + be_conf.strip() + "\n```\n")
    if db:
        md.append("## Control plane: one domain write with N domains configured "
                  "(bench/domains_bench.py, same run)\n")
        md.append("portierd with 2 workers; N passthrough domains are onboarded through "
                  "`POST /api/v1/batch` (10,000 per batch), then %d domain PUTs with new names "
                  "are timed one after the other on one keep-alive connection, each a lone "
                  "write (the next starts 10 ms after the previous one is live in every "
                  "worker), idle and again while another process opens TLS connections in a "
                  "loop (connection churn); p99 is the second slowest of 200. \"Live "
                  "in every worker\" is from each answer until `/metrics` shows every worker "
                  "at the answer's `config_version` (its own round trip included). A write "
                  "sends a delta of what changed, not the configuration: see "
                  "docs/operations.md \"Configuration at scale\". The second table: 30 "
                  "writes of each other kind, one after the other (a stream route PUT, "
                  "a certificate upload, a session ticket key rotation by SIGUSR1, timed "
                  "until every worker is at its version), and the whole snapshots published "
                  "meanwhile (none expected). The third table: a burst of writes (domain "
                  "PUTs and ban POSTs alternating) from several connections at once, and the "
                  "group commits that carried them (docs/operations.md, item 6).\n"
                  % DOMAIN_WRITES)
        tables = [b.strip() for b in db.split("\n\n") if b.strip().startswith("|")]
        md.append("\n\n".join(tables) + "\n")
    if bb:
        md.append("## Control plane: a burst of bans (bench/bans_bench.py, same run)\n")
        md.append("```\n" + bb + "\n```\n")
    if rb:
        md.append("## Route lookup (bench/route_bench.c, same run)\n")
        md.append("```\n" + rb + "\n```\n")
    text = "\n".join(md)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def bulk_md(R):
    """Where the bulk rounds sit in the run, and the state they start in."""
    st = R["portier"].get("bulk_state") or {}

    def state(k):
        v = st.get(k)
        return ("%d sockets in TIME_WAIT, TCP memory %d pages" % (v["tw"], v["mem"])
                if v else "not read")
    text = ("Row 3 and the bulk goal come from %d rounds of %d downloads per target taken "
            "after row 4 and before any keep-alive or Connection: close row (TCP at their "
            "start: %s; at their end: %s). "
            % (ROUNDS, BULK_N, state("start"), state("end")))
    if R["portier"].get("bulk_churn"):
        eff = same_round_ratios(R, "bulk_churn")
        text += ("Row 5e repeats %d downloads per target at the end of every round, right "
                 "after its connection-churn rows (as the bulk rounds of runs before "
                 "2026-12-06 were): portier/nginx stream per CPU-second %.2f× (rounds "
                 "%.2f–%.2f). "
                 % (BULK_CHURN_N, statistics.median(eff), min(eff), max(eff)) if eff else "")
    text += ("Why this order: until 2026-12-06 the bulk downloads came last in each round, "
             "after the churn rows, and full runs gave a lower ratio than bulk alone. "
             "Measured since (bench/PROFILE.md, \"The bulk row after connection churn\"): the "
             "churn leaves no state that makes relaying dearer (TIME_WAIT, TCP memory, pipe "
             "sizes and the processes' own state were checked); the ratio swings from round to "
             "round with how many bytes each of the splicing relay's wake-ups finds queued, "
             "that is with where the scheduler puts the proxy, curl and the backend on the two "
             "shared cores. The bulk rounds come first so that they start from the same, stated "
             "state in every run; row 5e keeps the old position for comparison.\n")
    return text


def passthrough_md(P):
    R, rows, S, confs, portier = P["R"], P["rows"], P["S"], P["confs"], P["portier"]
    md = []
    md.append("## Passthrough\n")
    md.append("### Results\n")
    md.append("All targets in one run, same nginx backend (1 worker), each proxy with one "
              "worker/thread, loopback only. Rates are the median of %d interleaved rounds; "
              "CPU per unit is the proxy process's own CPU time (all its threads, from "
              "/proc/PID/schedstat; user/system split from utime/stime in /proc/PID/stat) "
              "summed over all rounds divided by the work done. For portier that is the one "
              "worker process; the daemon does not touch the data path. MB = 10^6 bytes.\n"
              % ROUNDS)
    md.append(table_md(rows) + "\n")
    md.append("Errors reported by wrk (socket errors + non-2xx), summed over rounds: " +
              ", ".join("%s %d" % (LABEL[t], R[t].get("errors", 0)) for t in TARGETS) + ".\n")
    md.append("Idle test detail (RSS KiB before → after, connections established/failed): " +
              "; ".join("%s %d → %d (%d/%d)" % (LABEL[t], R[t]["idle"]["before"],
                                               R[t]["idle"]["after"], R[t]["idle"]["ok"],
                                               R[t]["idle"]["failed"]) for t in PROXIES) +
              ". portier daemon RSS %s KiB → %s KiB (not part of row 4).\n"
              % R["portier"]["idle"].get("daemon_rss", ("?", "?")))
    md.append("Per-round values: " + "; ".join(
        "%s ka %s, close %s, bulk %s%s" % (
            LABEL[t], "/".join("%.0f" % x for x in R[t]["ka"]),
            "/".join("%.0f" % x for x in R[t]["close"]),
            "/".join("%.0f" % x for x in R[t]["bulk"]),
            (", bulk after churn " + "/".join("%.0f" % x for x in R[t]["bulk_churn"]))
            if R[t].get("bulk_churn") else "") for t in TARGETS) + ".\n")
    md.append(bulk_md(R))
    md.append("### Interpretation\n")
    md.append(interpretation(R, rows) + "\n")
    md.append("""Rows 1–3 are mostly bounded by wrk/curl and the backend's TLS work
(the direct column shows the ceiling); rows 5a–5c compare what each proxy itself spends
and are the figures to watch when changing the relay. Row 2 especially is bounded by
wrk's own handshakes: its per-round spread is larger than the differences between
proxies, so read 5b for it. wrk resumes TLS sessions (TLS 1.3 PSK: the server's first
flight is ~245 bytes instead of ~800 with the certificate), which changes nothing for a
passthrough proxy but makes row 2 cheaper for the backend than cold handshakes.
nginx 1.22's stream module can only send PROXY v1 (text); portier and HAProxy send v2.
No proxy writes an access log (portier runs with `--access-log off`; nginx stream and
HAProxy have none configured).
Row 4 is measured first, on freshly started proxies, so that memory freed by earlier
load cannot hide the cost; the proxies then keep running for rows 1–3.
""")
    if S:
        md.append("### System calls per unit of work\n")
        md.append("Counted with `strace -c -f -p PID` attached to each proxy process during "
                  "separate short runs after the timed ones (3 s of wrk each, two 64 MiB "
                  "downloads); strace slows the proxy, so only the counts are used. "
                  "Calls per request, per connection and per MiB:\n")
        md.append(syscall_tables(S))
    md.append("### Exact commands\n")
    md.append("```sh\nmake bench            # = bench/run.sh; knobs: BENCH_DURATION=%d BENCH_ROUNDS=%d "
              "BENCH_CONNS=%d BENCH_MANY=%s BENCH_IDLE=%d BENCH_BULK=%d\n"
              "BENCH_QUICK=1 make bench   # a short development run (see bench/bench.py)\n```\n"
              % (DURATION, ROUNDS, CONNS, ",".join(map(str, MANY)), IDLE, BULK_N))
    md.append("Per target and round (PORT = the target's port; `localhost` is 127.0.0.1 and "
              "every proxy has a catch-all route, so SNI never decides):\n")
    md.append("```sh\n"
              "wrk -t%d -c%d -d%ds --timeout 5s https://localhost:PORT/                         # row 1\n"
              "wrk -t%d -c%d -d%ds --timeout 5s -H 'Connection: close' https://localhost:PORT/  # row 2\n"
              "for i in $(seq %d); do curl -sk -o /dev/null -w '%%{size_download} %%{time_total}' \\\n"
              "    --resolve localhost:PORT:127.0.0.1 https://localhost:PORT/big.bin; done     # row 3\n"
              "python3 bench/idle_client.py 127.0.0.1 PORT localhost %d READY DONE 150          # row 4\n"
              "# rows 6-7: rows 1-2 again with -cN for each N of BENCH_MANY\n"
              "# rows 4-5: VmRSS from /proc/PID/status and CPU from /proc/PID/{stat,schedstat} of the\n"
              "# proxy process, read just before and just after each of the commands above\n"
              "```\n" % (THREADS, CONNS, DURATION, THREADS, CONNS, DURATION, BULK_N, IDLE))
    md.append("Each row first runs a %d s keep-alive warm-up per target. Ports below are "
              "those of this run; the backend's configuration is at the end.\n" % 2)
    md.append("#### portier\n")
    md.append("```sh\n" + portier.shown_argv() + "\n" + portier.shown_calls() + "\n```\n")
    md.append("#### nginx stream\n")
    md.append("```nginx\n" + confs["nginx"].strip() + "\n```\n")
    md.append("#### HAProxy (`haproxy -db -f haproxy.cfg`)\n")
    md.append("```\n" + confs["haproxy"].strip() + "\n```\n")
    return md


# ---- main ----------------------------------------------------------------------

def main():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(LIMIT)
    for tool, path in (("nginx", NGINX), ("haproxy", HAPROXY), ("wrk", WRK),
                       ("portierd", PORTIERD), ("stream module", STREAM_MODULE)):
        if not os.path.exists(path):
            sys.exit("bench: %s not found at %s (run bench/run.sh)" % (tool, path))
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    T = tempfile.mkdtemp(prefix="portier-bench.")
    ok = False
    try:
        ok = bench(T, started)
    except Abort as e:
        log("ABORTED: %s" % e)
    finally:
        kill_all()
        if os.environ.get("KEEP") == "1" or not ok:
            try:  # keep the logs and configs, not the 64 MiB file
                if not ok:
                    os.unlink(os.path.join(T, "www", "big.bin"))
            except OSError:
                pass
            log("temp dir kept: %s" % T)
        else:
            shutil.rmtree(T, ignore_errors=True)
    return 0 if ok else 1


def nginx_worker(master):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        ch = children(master.pid)
        if ch:
            EXTRA_PIDS.update(ch)
            return ch[0]
        time.sleep(0.05)
    raise Abort("nginx master %d has no worker" % master.pid)


def stop(procs, pids=()):
    """Ends proxies of a finished part (their sessions) so that the next part
    runs on a quiet machine; kill_all() still covers anything left."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in procs:
        killpg(p)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log("WARNING: pid %d did not exit" % p.pid)
        if p in PROCS:
            PROCS.remove(p)


class Runner:
    """Per-target results of one part: rates per round, proxy CPU summed
    over rounds, errors; checks after each run that nothing died."""

    def __init__(self, T, targets, pids, procs, watch_pids, backend_pids=()):
        self.T, self.pids, self.procs, self.watch = T, pids, procs, watch_pids
        self.backend_pids = list(backend_pids)
        self.R = {t: {"errors": 0} for t in targets}

    def alive(self):
        for p in self.procs:
            if p.poll() is not None:
                raise Abort("%s exited (status %s); logs in %s"
                            % (p.args[0], p.returncode, self.T))
        for pid in self.watch:
            if not os.path.exists("/proc/%d" % pid):
                raise Abort("process %d is gone; logs in %s" % (pid, self.T))

    def measure(self, t, key, fn):
        pids = self.pids[t]
        c0 = cpu(pids) if pids else None
        # The load generator's CPU: wrk, hs_client and curl are children that
        # run() has waited for, so RUSAGE_CHILDREN grows by exactly theirs.
        g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0 = cpu(self.backend_pids) if self.backend_pids else None
        w0 = time.monotonic()
        units, value, errs = fn()
        wall = time.monotonic() - w0
        g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if c0 is not None:
            total, user, sysc = cpu_delta(c0, cpu(pids))
            acc = self.R[t].setdefault(key + "_cpu", {"cpu": 0.0, "user": 0.0, "sys": 0.0,
                                                      "units": 0, "wall": 0.0, "gen": 0.0,
                                                      "backend": 0.0})
            acc["cpu"] += total
            if total > 0:  # per round, for same-round ratios (the goals)
                self.R[t].setdefault(key + "_eff", []).append(units / total)
            acc["user"] += user
            acc["sys"] += sysc
            acc["units"] += units
            acc["wall"] += wall
            acc["gen"] += (g1.ru_utime - g0.ru_utime) + (g1.ru_stime - g0.ru_stime)
            if b0 is not None:
                acc["backend"] += cpu_delta(b0, cpu(self.backend_pids))[0]
        self.R[t].setdefault(key, []).append(value)
        self.R[t]["errors"] += errs
        self.alive()
        return value


def interleaved(run_, targets, port, rounds, conns, close, duration, width=7):
    """wrk rounds over targets in a rotating order (the machine's drift hits
    every target alike), at each connection count: per target "ka<n>" or
    "close<n>" (and their "_eff" per CPU-second) in run_.R. For the
    development tools (relay_proto.py, newconn_ab.py)."""
    key, unit = ("close", "conn") if close else ("ka", "req")
    for rnd in range(rounds):
        order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
        for n in conns:
            for t in order:
                v = run_.measure(t, "%s%d" % (key, n), wrk_fn(port[t], close, duration, conns=n))
                eff = run_.R[t]["%s%d_eff" % (key, n)][-1]
                log("round %d %-*s %3d conns %8.0f %s/s %8.0f %s/CPU-s"
                    % (rnd + 1, width, t, n, v, unit, eff, unit))


def wrk_fn(port, close, duration, scheme="https", conns=None):
    def fn():
        reqs, secs, errs = wrk(port, close, duration, scheme, conns)
        return reqs, reqs / secs, errs
    return fn


def bulk_fn(port, n):
    def fn():
        nbytes, secs = 0, 0.0
        for _ in range(n):
            b, s = curl_big(port)
            nbytes += b
            secs += s
        return nbytes, nbytes / secs / 1e6, 0
    return fn


def bench(T, started):
    (be_pp, be_direct, be_plain) = free_ports(3)
    log("temp dir %s; files and certificate" % T)
    key, crt, www = make_files(T)
    backend, be_conf = start_backend(T, key, crt, www, be_pp, be_direct, be_plain)
    be_worker = nginx_worker(backend)
    with open(os.path.join(www, "index.html")) as f:
        page_len = len(f.read())
    env = {"T": T, "key": key, "crt": crt, "backend": backend, "be_worker": be_worker,
           "be_pp": be_pp, "be_direct": be_direct, "be_plain": be_plain}
    P = passthrough_part(env) if "passthrough" in PARTS else None
    O = offload_part(env) if "offload" in PARTS else None
    rb = route_bench(T)
    db = domains_bench()
    bb = bans_bench()
    elapsed = time.monotonic() - T0
    if P:
        print()
        print("portier passthrough benchmark, %s, %d CPUs" % (started, os.cpu_count()))
        print(table_md(P["rows"]))
        print()
        print(interpretation(P["R"], P["rows"]))
        if P["S"]:
            print()
            print(syscall_tables(P["S"]))
    if O:
        print()
        print("portier offload benchmark, %s, %d CPUs" % (started, os.cpu_count()))
        print(o_table_md(O["rows"]))
        print()
        print(o_interpretation(O))
        if O["S"]:
            print()
            print(syscall_tables(O["S"], O_TARGETS, O_LABEL, O_SYS_TITLES))
    if README != "-":
        info = machine_info()
        write_readme(README, P, O, info, be_conf, page_len, started, elapsed, rb, db, bb)
        log("wrote %s" % README)
    with open(os.path.join(T, "results.json"), "w") as f:
        json.dump({"passthrough": P and P["R"], "offload": O and O["R"]}, f, indent=1,
                  default=str)
    return True


def passthrough_part(env):
    T, backend, be_worker = env["T"], env["backend"], env["be_worker"]
    be_pp, be_direct = env["be_pp"], env["be_direct"]
    (p_https, p_http, p_api, ngx, hap) = free_ports(5)
    log("passthrough: starting nginx stream, HAProxy (mode tcp), portier")
    ngx_proc, ngx_conf = start_nginx_stream(T, ngx, be_pp)
    hap_proc, hap_conf = start_haproxy(T, hap, be_pp)
    portier = Portier(T, "portier", p_https, p_http, p_api, passthrough_calls(be_pp))

    port = {"direct": be_direct, "portier": p_https, "nginx": ngx, "haproxy": hap}
    pids = {"direct": [], "portier": [portier.worker], "nginx": [nginx_worker(ngx_proc)],
            "haproxy": [hap_proc.pid]}
    log("backend worker %d; portier daemon %d worker %d; nginx stream worker %d; haproxy %d"
        % (be_worker, portier.proc.pid, portier.worker, pids["nginx"][0], hap_proc.pid))
    for t in TARGETS:
        if not fetch_small(port[t]):
            raise Abort("sanity check failed: GET / through %s" % t)
    run_ = Runner(T, TARGETS, pids, [backend, ngx_proc, hap_proc, portier.proc],
                  [be_worker] + pids["portier"] + pids["nginx"])
    R = run_.R
    for t in TARGETS:
        R[t].update({"ka": [], "close": [], "bulk": [], "bulk_churn": []})
        R[t].update({"ka%d" % n: [] for n in MANY})
        R[t].update({"close%d" % n: [] for n in MANY})

    # Row 4 first, on fresh processes: memory freed by earlier load would
    # otherwise be reused and hide part of the cost. The backend's own figure
    # (direct connections) is taken first for the same reason.
    log("idle: %d TLS connections direct to the backend (for scale)" % IDLE)
    R["direct"]["backend_idle"] = idle_test(T, "direct", be_direct, [be_worker], [])
    run_.alive()
    for t in PROXIES:
        log("idle: %d TLS connections through %s" % (IDLE, t))
        extra = [portier.proc.pid] if t == "portier" else []
        R[t]["idle"] = idle_test(T, t, port[t], pids[t], extra)
        if t == "portier":
            b, a = R[t]["idle"]["extra"][portier.proc.pid]
            R[t]["idle"]["daemon"] = a - b
            R[t]["idle"]["daemon_rss"] = (b, a)
        log("  %.2f KiB per connection (%d ok, %d failed)" % (
            R[t]["idle"]["per_conn"], R[t]["idle"]["ok"], R[t]["idle"]["failed"]))
        run_.alive()

    # The bulk rounds before any churn row, so that they start from the same
    # stated state in every run. The churn leaves nothing that makes relaying
    # dearer, but the row swings with scheduling (bench/PROFILE.md, "The bulk
    # row after connection churn"); the old position stays as row 5e.
    R["portier"]["bulk_state"] = {"start": sockstat()}
    for rnd in range(ROUNDS):
        for t in TARGETS[rnd % 4:] + TARGETS[:rnd % 4]:
            v = run_.measure(t, "bulk", bulk_fn(port[t], BULK_N))
            log("round %d %-8s bulk       %10.0f MB/s" % (rnd + 1, t, v))
    R["portier"]["bulk_state"]["end"] = sockstat()

    log("warm-up: 2 s keep-alive per target")
    for t in TARGETS:
        wrk(port[t], False, 2)
    for rnd in range(ROUNDS):
        order = TARGETS[rnd % 4:] + TARGETS[:rnd % 4]
        for t in order:
            v = run_.measure(t, "ka", wrk_fn(port[t], False, DURATION))
            log("round %d %-8s keep-alive %10.0f req/s" % (rnd + 1, t, v))
        for n in MANY:
            for t in order:
                v = run_.measure(t, "ka%d" % n, wrk_fn(port[t], False, DURATION, conns=n))
                log("round %d %-8s keep-alive %10.0f req/s (%d conns)" % (rnd + 1, t, v, n))
        for t in order:
            v = run_.measure(t, "close", wrk_fn(port[t], True, DURATION))
            log("round %d %-8s close      %10.0f conn/s" % (rnd + 1, t, v))
        for n in MANY:
            for t in order:
                v = run_.measure(t, "close%d" % n, wrk_fn(port[t], True, DURATION, conns=n))
                log("round %d %-8s close      %10.0f conn/s (%d conns)" % (rnd + 1, t, v, n))
        for t in order if BULK_CHURN_N > 0 else ():
            v = run_.measure(t, "bulk_churn", bulk_fn(port[t], BULK_CHURN_N))
            log("round %d %-8s bulk after churn %10.0f MB/s" % (rnd + 1, t, v))

    S = None
    if SYSCALLS and shutil.which("strace"):
        log("system calls per unit: strace -c on each proxy (short untimed runs)")
        S = passthrough_syscalls(T, port, pids)
    stop([ngx_proc, hap_proc, portier.proc], [portier.worker])
    return {"R": R, "rows": build_table(R), "S": S, "portier": portier,
            "confs": {"nginx": ngx_conf, "haproxy": hap_conf}}


def offload_part(env):
    T, key, crt = env["T"], env["key"], env["crt"]
    backend, be_worker, plain = env["backend"], env["be_worker"], env["be_plain"]
    (p_https, p_http, p_api, ngx, hap, ngx80, hap80) = free_ports(7)
    log("offload: starting nginx (http, ssl), HAProxy (mode http, bind ssl), portier "
        "(offload domain)")
    ngx_proc, ngx_conf = start_nginx_offload(T, ngx, ngx80, plain, key, crt)
    hap_proc, hap_conf = start_haproxy_offload(T, hap, hap80, plain, key, crt)
    # --hello-timeout: portier waits that long for the first request after the
    # handshake (10 s by default); 60 s is nginx's client_header_timeout and
    # the HAProxy `timeout http-request` below, and keeps the idle test's
    # first connections open while the last ones are made.
    portier = Portier(T, "portier-offload", p_https, p_http, p_api,
                      offload_calls(plain, key, crt), ["--hello-timeout", "60"])
    port = {"portier": p_https, "nginx": ngx, "haproxy": hap}
    port80 = {"portier": p_http, "nginx": ngx80, "haproxy": hap80}
    pids = {"portier": [portier.worker], "nginx": [nginx_worker(ngx_proc)],
            "haproxy": [hap_proc.pid]}
    log("offload: portier daemon %d worker %d; nginx worker %d; haproxy %d"
        % (portier.proc.pid, portier.worker, pids["nginx"][0], hap_proc.pid))
    for t in O_TARGETS:
        if not fetch_small(port[t]):
            raise Abort("sanity check failed: GET / through %s (offload)" % t)
    hs = build_hs_client(T)
    run_ = Runner(T, O_TARGETS, pids, [backend, ngx_proc, hap_proc, portier.proc],
                  [be_worker] + pids["portier"] + pids["nginx"], [be_worker])
    R = run_.R

    # Memory first, on fresh processes (see the passthrough part): handshaken
    # idle connections, then the same connections after one request each.
    for t in O_TARGETS:
        log("offload idle: %d TLS connections through %s, then one request on each"
            % (IDLE, t))
        extra = [portier.proc.pid] if t == "portier" else []
        R[t]["idle"] = idle_test(T, "offload-" + t, port[t], pids[t], extra, path="/",
                                 count_port=plain)
        i = R[t]["idle"]
        log("  %.2f KiB per handshaken connection, %.2f KiB after a request; backend "
            "connections %d; %d ok, %d failed, %s still open"
            % (i["per_conn"], i.get("req_per_conn", float("nan")),
               i.get("req_backend_conns", -1), i["ok"], i["failed"], i["open"]))
        run_.alive()

    for t in O_TARGETS:
        R[t]["resumes"] = resumes(port[t])
        if hs:
            R[t]["tls"] = hs_client(hs, port[t], 1)[3]
        log("offload %-8s TLS %s, session resumption: %s" % (
            t, R[t].get("tls"), R[t]["resumes"]))

    log("offload warm-up: 2 s keep-alive per target")
    for t in O_TARGETS:
        wrk(port[t], False, 2)

    def full(t):
        def fn():
            reqs, secs, errs, _ = hs_client(hs, port[t], O_DURATION)
            return reqs, reqs / secs, errs
        return fn

    n = len(O_TARGETS)
    for rnd in range(O_ROUNDS):
        order = O_TARGETS[rnd % n:] + O_TARGETS[:rnd % n]
        for t in order:
            v = run_.measure(t, "ka", wrk_fn(port[t], False, O_DURATION))
            log("offload round %d %-8s keep-alive %8.0f req/s" % (rnd + 1, t, v))
        for t in order:
            v = run_.measure(t, "ka80", wrk_fn(port80[t], False, O_DURATION, "http"))
            log("offload round %d %-8s port 80 ka %8.0f req/s" % (rnd + 1, t, v))
        for t in order:
            v = run_.measure(t, "close", wrk_fn(port[t], True, O_DURATION))
            log("offload round %d %-8s resumed    %8.0f req/s" % (rnd + 1, t, v))
        for n in MANY:
            for t in order:
                v = run_.measure(t, "ka%d" % n, wrk_fn(port[t], False, O_DURATION, conns=n))
                log("offload round %d %-8s keep-alive %8.0f req/s (%d conns)"
                    % (rnd + 1, t, v, n))
            for t in order:
                v = run_.measure(t, "close%d" % n, wrk_fn(port[t], True, O_DURATION, conns=n))
                log("offload round %d %-8s resumed    %8.0f req/s (%d conns)"
                    % (rnd + 1, t, v, n))
        if hs:
            for t in order:
                v = run_.measure(t, "full", full(t))
                log("offload round %d %-8s full hs    %8.0f req/s" % (rnd + 1, t, v))
        for t in order:
            v = run_.measure(t, "bulk", bulk_fn(port[t], O_BULK_N))
            log("offload round %d %-8s bulk       %8.0f MB/s" % (rnd + 1, t, v))

    S = None
    if SYSCALLS and shutil.which("strace"):
        log("offload system calls per unit: strace -c on each proxy (short untimed runs)")

        def bulk(t):
            for _ in range(2):
                curl_big(port[t])
            return 2 * BIG / (1 << 20)
        plan = [("ka", lambda t: wrk(port[t], False, 3)[0])]
        if hs:
            plan.append(("full", lambda t: hs_client(hs, port[t], 3)[0]))
        plan.append(("bulk", bulk))
        S = syscall_profile(T, pids, O_TARGETS, plan)
    stop([ngx_proc, hap_proc, portier.proc], [portier.worker])
    return {"R": R, "rows": o_build_table(R), "S": S, "portier": portier, "hs": bool(hs),
            "confs": {"nginx": ngx_conf, "haproxy": hap_conf}}


def o_build_table(R):
    def med(t, key):
        v = R[t].get(key)
        return statistics.median(v) if v else None

    def per(t, key, unit):
        c = R[t].get(key + "_cpu")
        if not c or c["units"] == 0:
            return None
        return c["cpu"] / c["units"] * unit

    def idle(t, key):
        return R[t]["idle"].get(key)

    T_ = O_TARGETS
    return [
        ("1. keep-alive requests/s over TLS (wrk, %d conns)" % CONNS,
         {t: med(t, "ka") for t in T_}, 0, "higher"),
        ("1b. port-80 keep-alive requests/s, plain HTTP proxy (wrk, %d conns)" % CONNS,
         {t: med(t, "ka80") for t in T_}, 0, "higher"),
        ("2. requests/s, each on a new TLS connection, resumed (wrk, Connection: close)",
         {t: med(t, "close") for t in T_}, 0, "higher"),
        ("3. requests/s, each on a new TLS connection, full handshake (hs_client, %d conns)"
         % CONNS, {t: med(t, "full") for t in T_}, 0, "higher"),
        ("4. bulk MB/s (64 MiB file, curl)", {t: med(t, "bulk") for t in T_}, 0, "higher"),
        ("5a. proxy RSS KiB per idle TLS connection (%d handshaken)" % IDLE,
         {t: idle(t, "per_conn") for t in T_}, 2, "lower"),
        ("5b. proxy RSS KiB per idle TLS connection after one request (keep-alive)",
         {t: idle(t, "req_per_conn") for t in T_}, 2, "lower"),
        ("6a. proxy CPU ms per 10k keep-alive requests",
         {t: per(t, "ka", 1e4 * 1e3) for t in T_}, 0, "lower"),
        ("6a'. proxy CPU ms per 10k port-80 keep-alive requests",
         {t: per(t, "ka80", 1e4 * 1e3) for t in T_}, 0, "lower"),
        ("6b. proxy CPU ms per 10k resumed handshakes (with their request)",
         {t: per(t, "close", 1e4 * 1e3) for t in T_}, 0, "lower"),
        ("6c. proxy CPU ms per 10k full handshakes (with their request)",
         {t: per(t, "full", 1e4 * 1e3) for t in T_}, 0, "lower"),
        ("6d. proxy CPU ms per GiB relayed", {t: per(t, "bulk", float(1 << 30) * 1e3)
                                              for t in T_}, 0, "lower"),
        ("6e. keep-alive requests per proxy CPU-second (%d conns)" % CONNS,
         {t: per_cpu_s(R, t, "ka") for t in T_}, 0, "higher"),
    ] + [row for n in MANY for row in (
        ("7. keep-alive requests/s over TLS (wrk, %d conns)" % n,
         {t: med(t, "ka%d" % n) for t in T_}, 0, "higher"),
        ("7. keep-alive requests per proxy CPU-second (%d conns)" % n,
         {t: per_cpu_s(R, t, "ka%d" % n) for t in T_}, 0, "higher"),
        ("8. resumed new TLS connections/s (wrk, Connection: close, %d conns)" % n,
         {t: med(t, "close%d" % n) for t in T_}, 0, "higher"),
        ("8. resumed new connections per proxy CPU-second (%d conns)" % n,
         {t: per_cpu_s(R, t, "close%d" % n) for t in T_}, 0, "higher"))]


def o_table_md(rows):
    return table_md(rows, O_TARGETS, O_LABEL, "nginx")


def o_ratios(R, key):
    """portier/nginx per round (same round, so the drift cancels)."""
    return [a / b for a, b in zip(R["portier"].get(key, []), R["nginx"].get(key, [])) if b]


def o_verdicts(O):
    """The issue's targets: keep-alive requests/s at or above nginx, handshakes
    within 10% of nginx. Judged on the median of the per-round ratios (each
    from one round, so the machine's drift cancels). (text, met) per target."""
    R, rows = O["R"], O["rows"]
    v = {label.split(".")[0]: vals for label, vals, _, _ in rows}

    def r(row):
        x, y = v[row].get("portier"), v[row].get("nginx")
        return x / y if x is not None and y else None

    out = []
    for row, crow, key, what, need, goal in (
            ("1", "6a", "ka", "keep-alive requests/s", 1.0, "at or above nginx's"),
            ("3", "6c", "full", "full-handshake requests/s", 0.9, "within 10% of nginx's"),
            ("2", "6b", "close", "resumed-handshake requests/s", 0.9,
             "within 10% of nginx's")):
        pr = o_ratios(R, key)
        if not pr:
            continue
        m, cr = statistics.median(pr), r(crow)
        noise = (" — within this run's noise: the per-round ratios straddle %.2f×" % need
                 if m < need <= max(pr) else "")
        out.append(("%s %s: portier/nginx %.2f× (median of the per-round ratios, range "
                    "%.2f–%.2f×; ratio of the medians %.2f×); proxy CPU per request %.2f× "
                    "nginx's%s" % (what, goal, m, min(pr), max(pr), r(row) or float("nan"),
                                   cr if cr else float("nan"), noise), m >= need))
    return out


def o_interpretation(O, targets=True):
    R, rows = O["R"], O["rows"]
    v = {label.split(".")[0]: vals for label, vals, _, _ in rows}
    lines = []
    for text, met in (o_verdicts(O) if targets else []):
        lines.append("- Target %s: %s." % ("**met**" if met else "**missed**", text))

    def r(row, a, b="nginx"):
        x, y = v[row].get(a), v[row].get(b)
        return x / y if x is not None and y else None
    parts = []
    for row, what in (("4", "bulk MB/s"), ("6d", "CPU per GiB")):
        if r(row, "portier") is not None:
            parts.append("%s portier %.2f× nginx's (HAProxy %.2f×)"
                         % (what, r(row, "portier"), r(row, "haproxy") or float("nan")))
    if parts:
        lines.append("- Bulk: " + "; ".join(parts) + ".")
    im = {t: R[t]["idle"] for t in O_TARGETS}
    lines.append(
        "- **Memory per idle TLS connection** (proxy RSS growth with %d handshaken connections "
        "open through it, then after one keep-alive request on each): " % IDLE +
        "; ".join("%s %.2f → %s KiB" % (O_LABEL[t], im[t]["per_conn"],
                                        fmt(im[t].get("req_per_conn"), 2))
                  for t in O_TARGETS) + ". "
        "Backend connections the proxy held open with those %d idle keep-alive client "
        "connections, and 1 s after the clients closed: " % IDLE +
        ", ".join("%s %s, %s" % (O_LABEL[t], im[t].get("req_backend_conns", "?"),
                                im[t].get("end_backend_conns", "?")) for t in O_TARGETS) +
        " (nginx: upstream `keepalive 32`; HAProxy: `http-reuse safe`). The requests are "
        "sent one after the other, so one backend connection could serve them all. Kernel "
        "socket buffers are not in these figures.")
    shares = []
    for t in O_TARGETS:
        sv = [sys_share(R, t, k) for k in ("ka", "close", "full", "bulk")]
        shares.append("%s %s" % (O_LABEL[t], "/".join("%.0f%%" % (x * 100) if x is not None
                                                       else "?" for x in sv)))
    lines.append("- Kernel share of each proxy's CPU (keep-alive/resumed/full/bulk): " +
                 ", ".join(shares) + ". Unlike passthrough, offload is mostly user-space "
                 "work (TLS crypto, HTTP parsing), so the proxy's own code matters.")
    use, sums = [], []
    for key, what in (("ka", "keep-alive"), ("close", "resumed"), ("full", "full"),
                      ("bulk", "bulk")):
        cells = []
        for t in O_TARGETS:
            c = R[t].get(key + "_cpu")
            if c and c.get("wall"):
                g, p, b = (100 * c[k] / c["wall"] for k in ("gen", "cpu", "backend"))
                cells.append("%s %.0f/%.0f/%.0f" % (O_LABEL[t], g, p, b))
                sums.append(g + p + b)
        if cells:
            use.append("%s: %s" % (what, ", ".join(cells)))
    per_req = []
    for t in O_TARGETS:
        c = R[t].get("ka_cpu")
        if c and c.get("units"):
            per_req.append("%s %.1f/%.1f/%.1f" % (O_LABEL[t], 1e6 * c["gen"] / c["units"],
                                                  1e6 * c["cpu"] / c["units"],
                                                  1e6 * c["backend"] / c["units"]))
    if per_req:
        lines.append("- CPU µs per keep-alive request, load generator (wrk)/proxy/backend: " +
                     ", ".join(per_req) + ". The proxy's answer shapes the client's work too "
                     "(TLS records per response: wrk's OpenSSL reads each record with two "
                     "read() calls), and wrk is on the same cores and in the same chain.")
    if use:
        lines.append("- Average CPU use during the timed runs, in % of one core, load "
                     "generator/proxy/backend: " + "; ".join(use) + ". Together %.0f–%.0f%% "
                     "of the machine's %d00%%: where that is well below the total, the run is "
                     "bounded by latency (each request wakes the three processes in turn) "
                     "rather than by CPU, and a proxy's rate depends on its wakeups and "
                     "writes per request as much as on its CPU."
                     % (min(sums), max(sums), os.cpu_count()))
    tls = []
    for t in O_TARGETS:
        d = R[t].get("tls") or {}
        tls.append("%s %s %s %s, resumption %s" % (
            O_LABEL[t], d.get("proto", "?"), d.get("cipher", "?"), d.get("group", "?"),
            {True: "yes", False: "NO", None: "?"}[R[t].get("resumes")]))
    lines.append("- Negotiated by each (hs_client; resumption checked with `openssl s_client "
                 "-sess_out`/`-sess_in`): " + "; ".join(tls) + ".")
    return "\n".join(lines)


def offload_md(O):
    R, rows, S, confs, portier = O["R"], O["rows"], O["S"], O["confs"], O["portier"]
    md = []
    md.append("## Offload\n")
    md.append("portier terminating TLS for an offload domain (certificate uploaded through the "
              "API) against nginx (`listen ... ssl` + `proxy_pass`, upstream keepalive) and "
              "HAProxy (`mode http`, `bind ... ssl crt`, `http-reuse safe`): the same "
              "ECDSA P-256 certificate, the same plain-HTTP nginx backend (1 worker), one "
              "worker/thread each, loopback only. Each proxy adds X-Forwarded-For, X-Real-IP, "
              "X-Forwarded-Proto and X-Forwarded-Host and passes the Host on (portier does it "
              "by itself; the nginx and HAProxy configurations below are set to match). "
              "Rates are the median of %d interleaved rounds of %d s; CPU per unit is the "
              "proxy process's own CPU time summed over all rounds divided by the work done, "
              "as for passthrough. MB = 10^6 bytes.\n" % (O_ROUNDS, O_DURATION))
    md.append("### Results\n")
    md.append(o_table_md(rows) + "\n")
    md.append("### Targets (from the issue)\n")
    md.append("\n".join("- %s: %s." % ("**met**" if met else "**missed**", text)
                        for text, met in o_verdicts(O)) + "\n")
    md.append("Errors (wrk socket errors + non-2xx, hs_client failures + non-200), summed over "
              "rounds: " + ", ".join("%s %d" % (O_LABEL[t], R[t].get("errors", 0))
                                     for t in O_TARGETS) + ".\n")
    md.append("Idle test detail (proxy RSS KiB before → handshaken → after one request; "
              "connections established/failed, requests answered/failed, still open at the "
              "end): " + "; ".join(
                  "%s %d → %d → %s (%d/%d, %s/%s, %s open)" % (
                      O_LABEL[t], R[t]["idle"]["before"], R[t]["idle"]["after"],
                      R[t]["idle"].get("req_after", "?"), R[t]["idle"]["ok"],
                      R[t]["idle"]["failed"], R[t]["idle"].get("req_ok", "?"),
                      R[t]["idle"].get("req_failed", "?"), R[t]["idle"].get("open"))
                  for t in O_TARGETS) + ".\n")
    md.append("Per-round values: " + "; ".join(
        "%s ka %s, resumed %s, full %s, bulk %s" % (
            O_LABEL[t], *("/".join("%.0f" % x for x in R[t].get(k, [])) or "—"
                          for k in ("ka", "close", "full", "bulk"))) for t in O_TARGETS) + ".\n")
    md.append("### Interpretation\n")
    md.append(o_interpretation(O, targets=False) + "\n")
    md.append("""Row 1 is bounded by wrk and the backend as much as by the proxy (wrk decrypts and
encrypts too, on the same 2 cores), rows 2–3 above all by the load generator's own
handshakes: read rows 6a–6c next to them. Row 2 uses wrk, which resumes TLS sessions
(TLS 1.3 PSK with a ticket: no certificate, no signature); row 3 uses bench/hs_client.c,
which never offers a session, so every connection pays for a full handshake (ECDHE X25519
and an ECDSA P-256 signature on the proxy). Both send one request per connection
(`Connection: close`), so rows 2, 3, 6b and 6c include that request and the connection's
setup and teardown, and, for a proxy that does not share backend connections across
client connections, a backend connect and close. No proxy writes an access log.
Rows 5a–5b are measured first, on freshly started proxies; the proxies then keep running
for the other rows. If portier misses a target, [PROFILE.md](PROFILE.md) says where its
time goes.
""")
    if S:
        md.append("### System calls per unit of work\n")
        md.append("Counted with `strace -c -f -p PID` on each proxy during separate short runs "
                  "after the timed ones (3 s of wrk keep-alive, 3 s of hs_client, two 64 MiB "
                  "downloads):\n")
        md.append(syscall_tables(S, O_TARGETS, O_LABEL, O_SYS_TITLES))
    md.append("### Exact commands\n")
    md.append("```sh\nmake bench   # knobs: BENCH_OFFLOAD_DURATION=%d BENCH_OFFLOAD_ROUNDS=%d "
              "BENCH_OFFLOAD_BULK=%d BENCH_CONNS=%d BENCH_MANY=%s BENCH_IDLE=%d\n```\n"
              % (O_DURATION, O_ROUNDS, O_BULK_N, CONNS, ",".join(map(str, MANY)), IDLE))
    md.append("Per target and round (PORT = the target's port):\n")
    md.append("```sh\n"
              "wrk -t%(th)d -c%(c)d -d%(d)ds --timeout 5s https://localhost:PORT/                          # row 1\n"
              "wrk -t%(th)d -c%(c)d -d%(d)ds --timeout 5s -H 'Connection: close' https://localhost:PORT/   # row 2\n"
              "gcc -O2 bench/hs_client.c -o hs_client -lssl -lcrypto\n"
              "./hs_client 127.0.0.1 PORT localhost %(c)d %(d)d /                                  # row 3\n"
              "for i in $(seq %(b)d); do curl -sk -o /dev/null -w '%%{size_download} %%{time_total}' \\\n"
              "    --resolve localhost:PORT:127.0.0.1 https://localhost:PORT/big.bin; done      # row 4\n"
              "python3 bench/idle_client.py 127.0.0.1 PORT localhost %(i)d READY DONE 150 /       # rows 5a-5b\n"
              "# rows 7-8: rows 1-2 again with -cN for each N of BENCH_MANY\n"
              "# rows 5-6: VmRSS from /proc/PID/status and CPU from /proc/PID/{stat,schedstat} of the\n"
              "# proxy process, read just before and just after each of the commands above\n"
              "```\n" % {"th": THREADS, "c": CONNS, "d": O_DURATION, "b": O_BULK_N, "i": IDLE})
    md.append("Each row first runs a 2 s keep-alive warm-up per target. `tls.pem`/`tls.key`: "
              "`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 ... "
              "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`, used by "
              "all three.\n")
    md.append("#### portier\n")
    md.append("```sh\n" + portier.shown_argv() + "\n" + portier.shown_calls() + "\n```\n")
    md.append("#### nginx\n")
    md.append("```nginx\n" + confs["nginx"].strip() + "\n```\n")
    md.append("#### HAProxy (`haproxy -db -f haproxy-offload.cfg`; tls-haproxy.pem = tls.pem + "
              "tls.key)\n")
    md.append("```\n" + confs["haproxy"].strip() + "\n```\n")
    return md


if __name__ == "__main__":
    sys.exit(main())

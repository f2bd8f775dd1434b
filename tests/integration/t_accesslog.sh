#!/bin/bash
# The access log never blocks a worker: its stdout is a pipe whose reader
# never reads (the pipe fills after a few hundred lines). The worker keeps
# serving thousands of connections, lines past its bounded buffer are dropped
# and counted in /metrics.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 <<<"$(free_ports 1)"
make_cert a "DNS:a.test"
mkdir -p www && echo "backend-one" >www/index.html
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key; root $T/www;
}" || bail "nginx backend starts"

mkfifo "$T/alog.fifo"
# A reader that holds the pipe open and never reads.
env "$MARK" sleep 100000 <>"$T/alog.fifo" &
track_pid $!
sleep 0.2

start_portierd --workers 1 --access-log "$T/alog.fifo" || bail "portierd starts"
api PUT /api/v1/backends/be "{\"servers\":[\"127.0.0.1:$P1\"]}"
check "backend created" is_status 201
api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"be"}'
check "domain created" is_status 201

fetch() {
    curl -sS --max-time 3 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:127.0.0.1" \
        "https://a.test:$HTTPS_PORT/" 2>&1
}
check "served before the flood" [ "$(fetch)" = backend-one ]

# 6,000 connections with an unknown SNI: each one is an access log line
# (about 300 bytes), 1.8 MB in all, far past the pipe (64 KiB) and the
# worker's buffer (1 MiB).
"$PY" - "$HTTPS_PORT" >flood.out 2>&1 <<'PYEOF'
import socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t0 = time.time(); ok = 0; slow = 0
for i in range(6000):
    t = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        slow += 1
        break
    try:
        ctx.wrap_socket(s, server_hostname="nope.test")
    except ssl.SSLError:
        ok += 1  # the unrecognized_name alert: the worker answered
    except OSError:
        pass
    finally:
        s.close()
    if time.time() - t > 1:
        slow += 1
        break  # a stalled worker: no point waiting 5 s for each of the rest
print("answered %d slow %d in %.1f s" % (ok, slow, time.time() - t0))
PYEOF
note "$(cat flood.out)"
check "every flood connection answered, none stalled" grep -q '^answered 6000 slow 0 ' flood.out
check "served after the flood, the log reader still stalled" [ "$(fetch)" = backend-one ]
dropped() {
    api GET /metrics
    local n; n=$(awk '/^portier_access_log_dropped_total/ {s += $2} END {print s + 0}' <<<"$BODY")
    [ "$n" -gt 0 ]
}
check "/metrics counts the dropped lines" wait_until 5 dropped
note "$(grep '^portier_access_log_dropped_total' <<<"$BODY")"

stop_portierd
finish

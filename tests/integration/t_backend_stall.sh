#!/bin/bash
# A "tls": true backend server that accepts connections and never answers
# the TLS handshake: the HTTP engine's backend connection (worker/upconn.c)
# must be up within --connect-timeout, TLS handshake included, so the client
# gets 504 after about that long (not after --idle-timeout), with or without
# a request body still owed, over HTTP/1.1 and HTTP/2. (A server that
# completes the connection and then never answers has --idle-timeout:
# t_health_mute.sh.)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r MUTE MUTE2 <<<"$(free_ports 2)"
make_cert front "DNS:app.test,DNS:h2.test"
# Two mute servers (one per backend: the first one's failure must not
# spare the second its stall).
"$PY" "$HERE/tools/mute.py" "$MUTE" "$MUTE2" >mute.out 2>&1 &
track_pid $!
wait_until 5 grep -q ready mute.out

start_portierd --workers 1 --connect-timeout 1 --idle-timeout 30 || bail "portierd starts"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$MUTE\"],\"tls\":true,\"tls_verify\":false}"
api PUT /api/v1/backends/web2 "{\"servers\":[\"127.0.0.1:$MUTE2\"],\"tls\":true,\"tls_verify\":false}"
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual"}'
api PUT /api/v1/domains/h2.test '{"mode":"offload","backend":"web2","certificate":"manual"}'
upload_cert front
check "certificate uploaded" is_status 201

get() { # HOST curl args...: prints "CODE TIME_MS"
    local host=$1
    shift
    curl -s -o /dev/null --max-time 10 --cacert ca.pem --resolve "$host:$HTTPS_PORT:127.0.0.1" \
        -w '%{http_code} %{time_total}' "$@" "https://$host:$HTTPS_PORT/" |
        "$PY" -c 'import sys; c, t = sys.stdin.read().split(); print(c, int(float(t) * 1000))'
}
read -r code ms <<<"$(get app.test --http1.1)"
check "GET: the backend's TLS handshake stalls -> 504 after --connect-timeout ($code, ${ms} ms)" \
    eval '[ "$code" = 504 ] && [ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ]'
# The server is down for the health memory now: the next dial is refused at
# once (502) or waits for its probe; either way no client waits long.
sleep 2
read -r code ms <<<"$(get app.test --http1.1 -X POST -H 'Expect:' --data-binary @/etc/hostname)"
check "POST with a body: 502/504 from the backend's side, never 408 ($code, ${ms} ms)" \
    eval '[ "$code" = 504 ] || [ "$code" = 502 ]'
check "... and in under --idle-timeout (${ms} ms)" [ "$ms" -lt 5000 ]
read -r code ms <<<"$(get h2.test --http2)"
check "HTTP/2 stream: its backend's TLS handshake stalls -> 504 after --connect-timeout ($code, ${ms} ms)" \
    eval '[ "$code" = 504 ] && [ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ]'
finish

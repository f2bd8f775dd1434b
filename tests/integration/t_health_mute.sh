#!/bin/bash
# Passive health for a server that accepts connections but never answers
# (issue 16: "a server that failed to connect or answer is skipped"): the
# first request through it gets 504 after --idle-timeout, the server is then
# down, and the next requests go straight to the next server, over HTTP/1.1
# and HTTP/2 alike. One worker, so every request meets the same memory.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r PB MUTE <<<"$(free_ports 2)"
make_cert front "DNS:app.test"
mkdir -p www
echo "answered" >www/index.html
start_nginx be "
server {
    listen 127.0.0.1:$PB;
    root $T/www;
}" || bail "nginx backend starts"
"$PY" "$HERE/tools/mute.py" "$MUTE" >mute.out 2>&1 &
MUTE_PID=$!
track_pid "$MUTE_PID"
wait_until 5 grep -q ready mute.out

start_portierd --workers 1 --idle-timeout 2 || bail "portierd starts"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$MUTE\",\"127.0.0.1:$PB\"]}"
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual"}'
upload_cert front
check "certificate uploaded" is_status 201

get() { # curl args...: prints "CODE TIME_MS"
    curl -s -o /dev/null --max-time 10 --cacert ca.pem --resolve "app.test:$HTTPS_PORT:127.0.0.1" \
        -w '%{http_code} %{time_total}' "$@" "https://app.test:$HTTPS_PORT/" |
        "$PY" -c 'import sys; c, t = sys.stdin.read().split(); print(c, int(float(t) * 1000))'
}
read -r code ms <<<"$(get --http1.1)"
check "first request: the mute server never answers -> 504 after --idle-timeout ($code, ${ms} ms)" \
    eval '[ "$code" = 504 ] && [ "$ms" -ge 1900 ]'
check "API: the mute server is down" wait_until 5 server_is web "127.0.0.1:$MUTE" down
slow=0 bad=0 times=""
for p in --http1.1 --http2 --http1.1 --http2; do
    read -r code ms <<<"$(get $p)"
    times="$times $code/${ms}ms"
    [ "$code" = 200 ] || bad=$((bad + 1))
    [ "$ms" -lt 1000 ] || slow=$((slow + 1))
done
note "next requests:$times"
check "next requests (HTTP/1.1 and HTTP/2) answered by the next server" [ "$bad" = 0 ]
check "none of them waits for the mute server" [ "$slow" = 0 ]
finish

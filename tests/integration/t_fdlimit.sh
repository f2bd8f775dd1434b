#!/bin/bash
# Open-file limits a newcomer's shell has (issue 16): the daemon raises its
# soft limit to the hard one and says so; workers start under 1024:4096 and
# under 256:256 (where nothing can be raised); at the limit accepts pause
# (counted in /metrics), an established transfer completes byte for byte, and
# service resumes once the held connections go. A worker that keeps dying
# right after its start is respawned with a growing pause, not in a loop.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"
command -v prlimit >/dev/null || { echo "# prlimit not installed: skipping"; exit 77; }

read -r P1 <<<"$(free_ports 1)"
make_cert a "DNS:a.test"
mkdir -p www
echo "backend-one" >www/index.html
head -c $((32 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    root $T/www; limit_rate 8m;
}" || bail "nginx backend starts"

fetch() {
    curl -sS --max-time 60 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:127.0.0.1" \
        "$@"
}
setup_routes() {
    api PUT /api/v1/backends/be "{\"servers\":[\"127.0.0.1:$P1\"]}"
    api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"be"}'
    [ "$STATUS" = 201 ] || [ "$STATUS" = 200 ]
}
worker_limit() { # pid -> soft limit of open files
    awk '/^Max open files/ {print $4}' "/proc/$1/limits"
}

# ---- 1024:4096, a user's shell ------------------------------------------------
PORTIERD_WRAP="prlimit --nofile=1024:4096" start_portierd --workers 2 ||
    bail "portierd starts under a soft limit of 1024"
check "the daemon says it raised the limit to 4096" \
    grep -q "open-file limit raised from 1024 to 4096" "$T/portierd.log"
wpids=$(worker_pids)
check "two workers run ($wpids)" [ "$(wc -w <<<"$wpids")" = 2 ]
w1=${wpids%% *}
check "a worker runs with a soft limit of 4096 ($(worker_limit "$w1"))" [ "$(worker_limit "$w1")" = 4096 ]
check "no worker failed to start" eval '! grep -q "could not start" "$T/portierd.log"'
api GET /healthz
check "/healthz: 2 workers serving" json_true 'd["ok"] and d["serving"] == 2 and d["workers"] == 2'
check "routes created" setup_routes
check "a request goes through" eval '[ "$(fetch https://a.test:$HTTPS_PORT/)" = backend-one ]'
stop_portierd

# ---- 256:256: nothing to raise, 1,000 idle connections held ------------------
PORTIERD_WRAP="prlimit --nofile=256:256" start_portierd --workers 1 --hello-timeout 60 ||
    bail "portierd starts under 256:256"
w1=$(worker_pids)
check "the worker runs with a limit of 256" [ "$(worker_limit "$w1")" = 256 ]
check "routes created (256)" setup_routes
check "a request goes through (256)" eval '[ "$(fetch https://a.test:$HTTPS_PORT/)" = backend-one ]'

# A 32 MiB download at 8 MB/s is under way while the idle connections pile up.
fetch -o "$T/big.out" "https://a.test:$HTTPS_PORT/big.bin" &
dl=$!
sleep 0.5
"$PY" - "$HTTPS_PORT" >"$T/hold.out" 2>&1 <<'PYEOF' &
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(1000):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
print("holding", len(socks), flush=True)
time.sleep(6)
for s in socks:
    s.close()
print("released", flush=True)
PYEOF
holder=$!
track_pid "$holder"
wait_until 10 grep -q holding "$T/hold.out"
sleep 2
api GET /metrics
refused=$(awk '/^portier_worker_refused_total/ {s += $2} END {print s + 0}' <<<"$BODY")
check "accepts paused at the limit (portier_worker_refused_total $refused)" [ "$refused" -gt 0 ]
check "the pause is logged at most once a second" \
    eval '[ "$(grep -c "not accepting for now" "$T/portierd.log")" -le 12 ]'
check "the worker is still alive" eval '! pid_gone $w1'
wait "$dl"
check "the download in flight completed byte for byte" cmp -s "$T/big.out" www/big.bin
wait "$holder"
check "service resumes once the held connections are gone" \
    wait_until 20 eval '[ "$(fetch --max-time 3 https://a.test:$HTTPS_PORT/ 2>/dev/null)" = backend-one ]'
api GET /healthz
check "/healthz: the worker serves" json_true 'd["ok"] and d["serving"] == 1'

# ---- a worker dying right after its start: growing pause ---------------------
for i in 1 2 3 4; do
    w=$(worker_pids)
    [ -n "$w" ] && kill -9 $w
    wait_until 10 eval '[ -n "$(worker_pids)" ] && [ "$(worker_pids)" != "$w" ]'
done
check "respawn pauses grow: 1000, 2000, 4000 ms" \
    eval 'grep -o "respawning in [0-9]* ms" "$T/portierd.log" | tail -3 | tr "\n" " " | grep -q "in 1000 ms respawning in 2000 ms respawning in 4000 ms"'
grep -o "worker 0 (pid [0-9]*) .*" "$T/portierd.log" | tail -3 | note "$(cat)"
api GET /api/v1/status
check "/api/v1/status carries serving_workers" json_true '"serving_workers" in d'
stop_portierd
finish

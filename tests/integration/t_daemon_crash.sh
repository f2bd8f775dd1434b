#!/bin/bash
# The daemon dies and comes back (issue 16): kill -9 of the daemon during
# rate-limited downloads through passthrough and offload, an immediate
# restart on the same state directory, and a request every 50 ms across it:
# every download is byte-identical, no request of the loop fails (the orphaned
# workers keep accepting, then hand their listening sockets to the new daemon,
# so nothing is refused and nothing queued is lost). Then: with no new daemon,
# orphans stop accepting after the grace period and exit; a process of another
# user cannot take the sockets.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r PT PH <<<"$(free_ports 2)"
make_cert pass "DNS:pass.test"
make_cert front "DNS:app.test"
mkdir -p www
echo "hello" >www/index.html
head -c $((12 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
server {
    listen 127.0.0.1:$PT ssl;
    ssl_certificate $T/pass.pem; ssl_certificate_key $T/pass.key;
    root $T/www; limit_rate 3m;
}
server {
    listen 127.0.0.1:$PH;
    root $T/www; limit_rate 3m;
}" || bail "nginx backends start"

GRACE=20
start_portierd --grace $GRACE || bail "portierd starts"
api PUT /api/v1/backends/tls "{\"servers\":[\"127.0.0.1:$PT\"]}"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PH\"]}"
api PUT /api/v1/domains/pass.test '{"mode":"passthrough","backend":"tls"}'
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual"}'
upload_cert front
check "certificate uploaded" is_status 201
get() { # NAME PATH [curl args]
    local n=$1 p=$2; shift 2
    curl -sS --max-time 30 --cacert "$T/ca.pem" --resolve "$n:$HTTPS_PORT:127.0.0.1" "$@" "https://$n:$HTTPS_PORT$p"
}
check "passthrough answers" eval '[ "$(get pass.test /)" = hello ]'
check "offload answers" wait_until 5 eval '[ "$(get app.test / 2>/dev/null)" = hello ]'

# ---- kill -9 with downloads in flight and a request loop -------------------
get pass.test /big.bin -o "$T/dl-pass" 2>"$T/dl-pass.err" &
DL1=$!
get app.test /big.bin -o "$T/dl-off" 2>"$T/dl-off.err" &
DL2=$!
# 50 ms apart for 6 s, alternating passthrough and offload; each line "rc body".
(
    for i in $(seq 1 120); do
        n=pass.test; [ $((i % 2)) = 0 ] && n=app.test
        out=$(get $n / --max-time 10 2>&1)
        echo "$? $n $out"
        sleep 0.05
    done
) >"$T/loop.out" &
LOOP=$!
sleep 1.5
OLD_PID=$PID
kill9_portierd
OLD_WORKERS=$KILLED_WORKERS
note "killed daemon $OLD_PID (workers $OLD_WORKERS)"
start_portierd --grace $GRACE || bail "portierd restarts at once"
NEW_WORKERS=$(worker_pids)
wait $LOOP
fails=$(awk '!($1 == 0 && $3 == "hello")' "$T/loop.out" | wc -l)
total=$(wc -l <"$T/loop.out")
check "request loop across the crash: $total requests, 0 failed ($fails)" \
    eval '[ "$total" = 120 ] && [ "$fails" = 0 ]'
[ "$fails" = 0 ] || awk '!($1 == 0 && $3 == "hello")' "$T/loop.out" | head -5 | note "$(cat)"
wait $DL1; rc1=$?
wait $DL2; rc2=$?
check "passthrough download across the crash is byte-identical (rc $rc1)" cmp -s "$T/dl-pass" www/big.bin
check "offload download across the crash is byte-identical (rc $rc2)" cmp -s "$T/dl-off" www/big.bin
check "the new daemon took over the listening sockets of both old workers" \
    eval '[ "$(grep -c "took over 2 of 2 listening sockets" "$T/portierd.log")" = 2 ]'
check "the old workers said they handed the listeners over" \
    eval '[ "$(grep -c "listeners handed to a new daemon" "$T/portierd.log")" = 2 ]'
check "the old workers ($OLD_WORKERS) exit once their downloads are done" wait_until 10 all_gone $OLD_WORKERS
check "new workers ($NEW_WORKERS) serve" eval '[ "$(get pass.test /)" = hello ]'
api GET /healthz
check "/healthz ok after the restart" json_true 'd["ok"] and d["serving"] == 2'

# ---- kill -9 with no new daemon: orphans give up after --grace -------------
stop_portierd
start_portierd --grace 2 || bail "portierd starts with --grace 2"
kill9_portierd
check "orphans still accept right after the kill" eval '[ "$(get pass.test /)" = hello ]'
check "with no new daemon, the port is released after the grace period" wait_until 8 port_free "$HTTPS_PORT"
check "and the orphans exit ($KILLED_WORKERS)" wait_until 5 all_gone $KILLED_WORKERS
check "they said why" grep -q "no new daemon took the listeners" "$T/portierd.log"

# ---- another user cannot take the sockets -----------------------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    start_portierd --grace 5 || bail "portierd starts (foreign taker)"
    STATE_REAL=$(realpath "$CUR_STATE_DIR")
    kill9_portierd
    out=$(runuser -u nobody -- "$PY" - "$STATE_REAL" <<'PYEOF'
import array, socket, sys
h = 1469598103934665603
for c in sys.argv[1].encode():
    h = ((h ^ c) * 1099511628211) % (1 << 64)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(2)
try:
    s.connect("\0portier-handover/%016x/0" % h)
    fds = array.array("i")
    msg, anc, flags, addr = s.recvmsg(8, socket.CMSG_LEN(64 * fds.itemsize))
    print("got", len(msg), "bytes", len(anc), "ancillary")
except Exception as e:
    print("refused:", type(e).__name__)
PYEOF
)
    note "foreign taker: $out"
    check "a process of another user gets no socket" eval '! grep -q "ancillary" <<<"$out" || grep -q "0 ancillary" <<<"$out"'
    check "the worker logged the refusal" grep -q "refused to hand the listeners to a process of another user" "$T/portierd.log"
    wait_until 10 all_gone $KILLED_WORKERS
fi
finish

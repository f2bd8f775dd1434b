#!/bin/bash
# SNI passthrough against hostile and broken peers: hello timeout (silent,
# partial, slowloris), garbage and oversized hellos, idle timeout vs trickling
# connections, half-close both ways, RST propagation both ways, a slow reader
# (backpressure: bounded worker RSS, every byte in order), the per-worker
# connection limit (PORTIER_MAX_CONNS: excess stays queued in the kernel, no
# spinning), unreachable and blackholed backend servers, 300 parallel TLS
# fetches. Clients and plain-TCP "backends" are tools/relay_peers.py
# (passthrough does not decrypt, so a TLS-less backend sees the replayed
# ClientHello and any bytes after it); the TLS fetches go to nginx.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

TOOL="$HERE/tools/relay_peers.py"
HELLO_T=2 IDLE_T=3 CONN_T=2
read -r PRAW DEAD1 DEAD2 BH PNGX <<<"$(free_ports 5)"

# peers SCENARIO ARGS...: run one scenario of relay_peers.py; its JSON in RES.
peers() {
    local t0; t0=$(now_ms)
    RES=$(timeout 150 "$PY" "$TOOL" "$1" --port "$HTTPS_PORT" "${@:2}" 2>>"$T/peers.err")
    [ -n "$RES" ] || { RES='{}'; note "relay_peers.py $1 printed nothing:"; tail -n 5 "$T/peers.err" | sed 's/^/#   /'; }
    note "$1 ($(( $(now_ms) - t0 )) ms): $RES"
}
# rj EXPR [ARGS]: python expression on d = the last scenario's JSON; a = ARGS
# (numbers converted), HF / IE = hex of the fatal handshake_failure /
# internal_error alert records.
rj() {
    local err
    err=$(printf '%s' "$RES" | "$PY" -c '
import json, sys
def num(x):
    for f in (int, float):
        try:
            return f(x)
        except ValueError:
            pass
    return x
HF, IE = "15030300020228", "15030300020250"
a = [num(x) for x in sys.argv[2:]]
d = {}
try:
    d = json.loads(sys.stdin.read())
    ok = eval("(" + sys.argv[1] + "\n)")
except Exception as e:
    print("%s: %s;" % (type(e).__name__, e))
    ok = False
if not ok and isinstance(d, dict):  # evidence: the parts the expression looks at
    part = {k: v for k, v in d.items() if chr(34) + k + chr(34) in sys.argv[1] or k in a}
    print("result: " + json.dumps(part or d, sort_keys=True)[:900])
sys.exit(0 if ok else 1)' "$@") && return 0
    WHY=$err
    return 1
}
rget() { local BODY=$RES; json_get "$@"; }
# conns_zero: every worker reports 0 open connections (stats come every second).
conns_zero() { ( api GET /api/v1/status; json_true 'all(w["connections"] == 0 for w in d["workers"])' ); }

make_cert b "DNS:b.test"
mkdir -p www
printf 'tls-ok' >www/index.html
start_nginx tls "
server {
    listen 127.0.0.1:$PNGX ssl backlog=4096;
    ssl_certificate $T/b.pem; ssl_certificate_key $T/b.key;
    root $T/www;
}" || bail "nginx TLS backend starts"

start_portierd --hello-timeout $HELLO_T --idle-timeout $IDLE_T --connect-timeout $CONN_T ||
    bail "portierd starts"
api PUT /api/v1/backends/raw "{\"servers\":[\"127.0.0.1:$PRAW\"]}"
check "backend raw (python, plain TCP) created" is_status 201
api PUT /api/v1/backends/dead "{\"servers\":[\"127.0.0.1:$DEAD1\",\"127.0.0.1:$DEAD2\"]}"
check "backend dead (two refusing servers) created" is_status 201
api PUT /api/v1/backends/bh "{\"servers\":[\"127.0.0.1:$BH\",\"127.0.0.1:$PRAW\"]}"
check "backend bh (blackhole first, then raw) created" is_status 201
api PUT /api/v1/backends/bhonly "{\"servers\":[\"127.0.0.1:$BH\"]}"
check "backend bhonly (blackhole only) created" is_status 201
api PUT /api/v1/backends/tls "{\"servers\":[\"127.0.0.1:$PNGX\"]}"
check "backend tls (nginx) created" is_status 201
for d in a.test:raw dead.test:dead bh.test:bh bhonly.test:bhonly b.test:tls; do
    api PUT "/api/v1/domains/${d%%:*}" "{\"mode\":\"passthrough\",\"backend\":\"${d##*:}\"}"
    check "domain ${d%%:*} -> ${d##*:}" is_status 201
done
W_START=$(worker_pids)
note "workers: $W_START"

peers probe --backend "$PRAW"
check "captured curl ClientHello (SNI a.test) is routed to the raw backend, reply comes back" \
    rj 'd.get("routed") is True and d.get("reply") == "pong"'

# ---- 1. hello timeout --------------------------------------------------------------
peers hello --timeout $HELLO_T
for k in silent:"sends nothing" header3:"sends 3 bytes of a record header" \
         half_hello:"sends 100 bytes of a hello" slowloris:"trickles its hello, 1 byte / 250 ms"; do
    check "client that ${k#*:} is closed within hello-timeout+1 s (${HELLO_T}..$((HELLO_T + 1)) s)" \
        rj 'd[a[0]]["how"] in ("eof", "reset") and a[1] - 0.3 <= d[a[0]]["t"] <= a[1] + 1' "${k%%:*}" $HELLO_T
done
check "nothing is sent back to a client that timed out in the hello phase" \
    rj 'all(v["got"] == 0 for v in d.values())'

# ---- 2. garbage, malformed and oversized hellos ------------------------------------
peers garbage --limit 3
for k in http binary sslv2; do
    check "non-TLS bytes ($k) are closed within 1 s, nothing sent back" \
        rj 'd[a[0]]["how"] in ("eof", "reset") and d[a[0]]["t"] < 1 and d[a[0]]["got"] == 0' $k
done
for k in record_len_too_big empty_record bad_session_id not_clienthello declared_16mb \
         alert_in_handshake_record oversized_small_records oversized_big_record; do
    check "malformed/oversized hello ($k) gets a handshake_failure alert or a close within 1 s" \
        rj 'd[a[0]]["how"] in ("eof", "reset") and d[a[0]]["t"] < 1
            and d[a[0]]["head"] in ("", HF)' $k
done
peers maxhello --backend "$PRAW" --max 16384
check "hello of exactly 16384 bytes of records (2 records, padding) is routed and replayed intact" \
    rj 'd["max"]["routed"] is True and d["max"]["reply"] == "pong"'
check "hello of 16385 bytes of records gets a handshake_failure alert or a close, not routed" \
    rj 'd["over"]["how"] in ("eof", "reset") and d["over"]["t"] < 1 and d["over"]["head"] in ("", HF)
        and d["over"]["backend_accepts"] == 0'
check "workers survive the garbage (pids unchanged: $W_START)" [ "$(worker_pids)" = "$W_START" ]
peers probe --backend "$PRAW"
check "relay still routes after the garbage" rj 'd.get("routed") is True and d.get("reply") == "pong"'

# ---- 3. idle timeout -----------------------------------------------------------------
peers idle --backend "$PRAW" --idle $IDLE_T
check "all three idle-test connections routed" \
    rj 'all(d[k]["routed"] for k in ("silent", "cli_trickle", "srv_trickle"))'
check "silent relayed connection: client gets EOF after idle-timeout (${IDLE_T}..$((IDLE_T + 1)) s)" \
    rj 'd["silent"]["client"]["how"] == "eof" and a[0] - 0.3 <= d["silent"]["client"]["t"] <= a[0] + 1' $IDLE_T
check "silent relayed connection: backend gets EOF after idle-timeout too" \
    rj 'd["silent"]["backend"]["how"] == "eof" and a[0] - 0.3 <= d["silent"]["backend"]["t"] <= a[0] + 1' $IDLE_T
check "client trickling 1 byte/s is not closed after idle-timeout (every byte relayed)" \
    rj 'd["cli_trickle"]["alive"] is True and d["cli_trickle"]["sent"] == d["cli_trickle"]["got"] >= a[0] + 1' $IDLE_T
check "backend trickling 1 byte/s is not closed after idle-timeout (every byte relayed)" \
    rj 'd["srv_trickle"]["alive"] is True and d["srv_trickle"]["sent"] == d["srv_trickle"]["got"] >= a[0] + 1' $IDLE_T
check "a trickling connection that goes silent is closed idle-timeout after its last byte" \
    rj 'all(d[k]["then_silent"]["how"] == "eof" and a[0] - 1.3 <= d[k]["then_silent"]["t"] <= a[0] + 1
            for k in ("cli_trickle", "srv_trickle"))' $IDLE_T

# ---- 4. half-close ---------------------------------------------------------------------
peers halfclose --backend "$PRAW"
check "client SHUT_WR: backend reads the request then EOF (recv returns b'')" \
    rj 'd["client_first"]["routed"] and d["client_first"]["backend_got"] == "request-body"
        and d["client_first"]["backend_end"] == "eof"'
check "client SHUT_WR: the backend's 256 KiB reply after the EOF reaches the client intact, then EOF" \
    rj 'd["client_first"]["client_got_reply"] is True and d["client_first"]["client_end"] == "eof"'
check "backend SHUT_WR: client reads the banner then EOF" \
    rj 'd["backend_first"]["routed"] and d["backend_first"]["client_got"] == "banner"
        and d["backend_first"]["client_end"] == "eof"'
check "backend SHUT_WR: the client's 256 KiB answer after the EOF reaches the backend intact, then EOF" \
    rj 'd["backend_first"]["backend_got_reply"] is True and d["backend_first"]["backend_end"] == "eof"'
check "both directions finished: portier closes the client side" \
    rj 'd["backend_first"]["client_after"]["how"] == "eof"'
check "hello + FIN at once: backend gets the hello then EOF, its late answer reaches the client" \
    rj 'd["hello_fin"]["routed"] is True and d["hello_fin"]["backend_end"] == "eof"
        and d["hello_fin"]["client_got"] == "late answer" and d["hello_fin"]["client_end"] == "eof"'

# ---- 5. RST propagation ----------------------------------------------------------------
peers rst --backend "$PRAW"
check "backend RST mid-transfer: client sees ECONNRESET, not a clean EOF" \
    rj 'd["backend_rst"]["routed"] and d["backend_rst"]["client"]["how"] == "reset"'
check "backend RST while the client waits for an answer: client sees ECONNRESET" \
    rj 'd["backend_rst_idle"]["routed"] and d["backend_rst_idle"]["client"]["how"] == "reset"'
check "backend RST while portier holds data for a stalled client: client sees ECONNRESET when it reads" \
    rj 'd["backend_rst_backpressured"]["routed"] and d["backend_rst_backpressured"]["receiver"]["how"] == "reset"'
check "client RST while its upload waits on a stalled backend: backend sees ECONNRESET when it reads" \
    rj 'd["client_rst_backpressured"]["routed"] and d["client_rst_backpressured"]["receiver"]["how"] == "reset"'
check "client RST while the backend streams: backend's send fails (RST/EPIPE) within 1 s" \
    rj 'd["client_rst_streaming"]["backend_send"] in ("reset", "epipe") and d["client_rst_streaming"]["t"] < 1'
check "client RST while idle: backend sees a reset or EOF within 1 s" \
    rj 'd["client_rst_idle"]["backend"]["how"] in ("reset", "eof") and d["client_rst_idle"]["backend"]["t"] < 1'

# ---- 8. unreachable / blackholed backend servers ---------------------------------------
peers unreachable --backend "$PRAW" --blackhole "$BH" --connect-timeout $CONN_T
check "blackhole listener drops SYNs (test setup)" rj 'd["blackhole_ok"] is True'
check "all servers refuse: client gets a fatal internal_error alert then a close, within 1 s" \
    rj 'd["all_refused"]["head"] == IE and d["all_refused"]["how"] in ("eof", "reset")
        and d["all_refused"]["t"] < 1'
check "blackholed first server: after connect-timeout (${CONN_T} s) the next server gets the hello" \
    rj 'd["failover"]["routed"] is True and a[0] - 0.3 <= d["failover"]["after_s"] <= a[0] + 1
        and d["failover"]["reply"] == "from-second-server"' $CONN_T
check "only a blackholed server: internal_error alert after connect-timeout" \
    rj 'd["only_blackhole"]["head"] == IE and a[0] - 0.3 <= d["only_blackhole"]["t"] <= a[0] + 1' $CONN_T

# ---- 9. many concurrent TLS fetches -----------------------------------------------------
peers many --n 300 --sni b.test --ca "$T/ca.pem" --expect tls-ok
check "300 parallel TLS fetches through portier all succeed" rj 'd["ok"] == d["n"] == 300'

# ---- the idle timeout and a receiver that stalls or reads slowly ------------------------
# "Idle" means no byte either way. A receiver that keeps reading slowly is not
# idle; one that stops reading longer than idle-timeout may be cut, but a cut
# transfer must not look complete (a clean EOF after fewer bytes).
peers stream --backend "$PRAW" --mib 64 --stall $((IDLE_T + 3)) --rate 150000
check "client reading steadily at 150 kB/s for idle-timeout+3 s is not cut; all 64 MiB arrive" \
    rj 'd["ended_during_stall"] is None and d["sha_match"] is True and d["got"] == 64 << 20'
peers stream --backend "$PRAW" --mib 64 --stall $((IDLE_T + 2))
check "client not reading for idle-timeout+2 s: complete stream or a reset, never a truncated stream with a clean EOF" \
    rj 'd["sha_match"] is True and d["got"] == 64 << 20 or d["end"] == "reset"'
peers stream --backend "$PRAW" --mib 64 --stall $((IDLE_T + 2)) --upload 1
check "backend not reading an upload for idle-timeout+2 s: complete stream or a reset, never a truncated stream with a clean EOF" \
    rj 'd["sha_match"] is True and d["got"] == 64 << 20 or d["end"] == "reset"'

check "workers report 0 open connections once every test connection is gone" wait_until 5 conns_zero
check "workers unchanged through the hostile peers ($W_START)" [ "$(worker_pids)" = "$W_START" ]
stop_portierd
note "access log, connections of more than 1 MB (time bytes_in bytes_out duration_ms result):
$(grep '^{' "$T/portierd.log" | "$PY" -c '
import json, sys
for l in sys.stdin:
    try:
        d = json.loads(l)
        if max(d["bytes_in"], d["bytes_out"]) > 1 << 20:
            print("  %s %s %s %s %s" % (d["time"][11:23], d["bytes_in"], d["bytes_out"], d["duration_ms"], d["result"]))
    except (ValueError, KeyError, TypeError):
        pass')"

# ---- 6/7. one worker, PORTIER_MAX_CONNS=5: backpressure, then the connection limit -----
PORTIER_MAX_CONNS=5 start_portierd --workers 1 --hello-timeout 30 --idle-timeout 30 \
    --connect-timeout $CONN_T || bail "portierd restarts with one worker and PORTIER_MAX_CONNS=5"
W=$(worker_pids)
check "the single worker ($W) inherited PORTIER_MAX_CONNS=5" \
    grep -qx 'PORTIER_MAX_CONNS=5' <(tr '\0' '\n' <"/proc/$W/environ" 2>/dev/null)

# A bulk transfer is spliced (worker/splice.h): the worker takes a pipe per
# direction and pools both when the connection ends. Small exchanges (the
# ClientHello replay) never take one.
pipe_fds() { find "/proc/$W/fd" -lname 'pipe:*' 2>/dev/null | wc -l; }
PIPES0=$(pipe_fds)
peers stream --backend "$PRAW" --mib 200 --stall 5 --pid "$W"
PIPES1=$(pipe_fds)
check "slow reader: the transfer was spliced (2 more pipes, 4 descriptors, pooled after it: $PIPES0 -> $PIPES1)" \
    [ $((PIPES1 - PIPES0)) -eq 4 ]
check "slow reader: all 200 MiB arrive in order (sha256 of the stream matches)" \
    rj 'd["sha_match"] is True and d["got"] == 200 << 20 and d["end"] == "eof"'
check "slow reader: worker RSS grows by less than 8 MiB while the client does not read" \
    rj 'd["rss_max_stall_kb"] - d["rss0_kb"] < 8192'
note "$(rget '"worker RSS %s kB before, at most %s kB during the stall, %s kB after the transfer; the backend got %.1f MiB out during the 5 s stall; read in %s s" % (d.get("rss0_kb"), d.get("rss_max_stall_kb"), d.get("rss_end_kb"), d.get("sent_during_stall", 0) / 1048576.0, d.get("read_s"))')"

check "worker back at 0 connections before the limit test" wait_until 5 conns_zero
peers connlimit --backend "$PRAW" --pid "$W" --limit 5 --hold 3 --api "$API_PORT" --token "$TOKEN"
check "6th connection at the limit: TCP connect completes (kernel backlog)" \
    rj 'd["extra_connect_s"] < 1'
check "6th connection at the limit: not accepted-and-closed, nothing comes back for 3 s" \
    rj 'd["extra_while_full"]["how"] == "open" and d["extra_while_full"]["got"] == 0'
check "6th connection at the limit: its hello is not routed while the worker is full" \
    rj 'd["backend_accepts_while_full"] == 0'
check "the 5 idle connections stay open at the limit (hello-timeout 30 s)" rj 'd["idle_still_open"] == 5'
check "status reports 5 open connections at the limit" rj 'd["api_connections_while_full"] == 5'
check "worker does not spin at the limit (< 0.3 s CPU in 3 s)" rj 'd["cpu_s_while_full"] < 0.3'
check "after 2 of the 5 close, the queued 6th is accepted and routed within 1.5 s" \
    rj 'd["served"] is True and d["served_after_s"] < 1.5 and d["extra_reply"] == "served"'
check "log says the connection limit was reached" \
    grep -q 'not accepting for now: connection limit reached' "$T/portierd.log"
peers probe --backend "$PRAW"
check "relay routes normally after the limit episode" rj 'd.get("routed") is True and d.get("reply") == "pong"'
check "worker $W survived (still listed)" [ "$(worker_pids)" = "$W" ]
stop_portierd

finish

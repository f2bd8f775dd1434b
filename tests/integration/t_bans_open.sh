#!/bin/bash
# A ban reaches connections that are already open, as a firewall's would:
# passthrough, offload keep-alive, port 80 and a WebSocket tunnel from the
# banned address are cut with an RST when the ban arrives; the same four from
# another client keep working. Behind a trusted front the address judged is
# the one its PROXY header carries. /metrics counts the cuts by reason. And
# port 80 from a trusted front that sends no PROXY header takes "POST ..." for
# the request it is. Workers that (re)start get the snapshot and every ban
# delta since, and ban writes switch to whole snapshots when deltas pile up.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

. "$HERE/bans_fixture.sh"
bans_backends
start_portierd --workers 2 --trusted-proxy 127.0.0.30/32 || bail "portierd starts"
bans_routes

for who in bad:127.0.0.21 good:127.0.0.22; do
    n=${who%%:*} ip=${who#*:}
    hold "$n-pass" keepalive "$ip" "${tls_a[@]}"
    hold "$n-offload" keepalive "$ip" "${tls_b[@]}"
    hold "$n-http80" stream "$ip" "${http_a[@]}"
    hold "$n-ws" ws "$ip" "${tls_b[@]}"
done
# Behind the trusted front 127.0.0.30: judged by the PROXY header's address.
hold front-bad keepalive 127.0.0.30 "${tls_a[@]}" --proxy-from 127.0.0.21
hold front-good keepalive 127.0.0.30 "${tls_a[@]}" --proxy-from 127.0.0.23
NAMES="bad-pass bad-offload bad-http80 bad-ws good-pass good-offload good-http80 good-ws front-bad front-good"
check "ten connections open and working before the ban" wait_until 20 all_ready $NAMES

api POST /api/v1/bans '{"ip":"127.0.0.21","reason":"open-test"}'
check "ban 127.0.0.21 -> 201, applied by every worker" json_true 'd["applied"] is True'
touch "$TRIGGER"
for p in "${HELD_PIDS[@]}"; do wait "$p"; done
check "passthrough connection of the banned client: cut with an RST" verdict bad-pass RESET
check "offload keep-alive connection of the banned client: cut with an RST" verdict bad-offload RESET
check "port-80 transfer of the banned client: cut with an RST" verdict bad-http80 RESET
check "WebSocket tunnel of the banned client: cut with an RST" verdict bad-ws RESET
check "another client's passthrough connection still works" verdict good-pass OK
check "another client's offload keep-alive connection still works" verdict good-offload OK
check "another client's port-80 transfer keeps flowing" verdict good-http80 OK
check "another client's WebSocket still echoes" verdict good-ws OK
check "behind the trusted front: the banned client's connection (PROXY 127.0.0.21) cut" \
    verdict front-bad RESET
check "behind the trusted front: another client's connection (PROXY 127.0.0.23) kept" \
    verdict front-good OK

cut_counted() {
    curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/metrics" >metrics.txt
    grep -qE '^portier_ban_cut_connections_total\{reason="open-test"\} 5$' metrics.txt ||
        { WHY=$(grep ban_cut metrics.txt); return 1; }
}
check "/metrics: portier_ban_cut_connections_total{reason=\"open-test\"} 5" wait_until 5 cut_counted
check "the access log says why" eval 'grep -q "cut 1 open\|cut [0-9]* open" "$T/portierd.log"'

# A new connection from the banned client is refused; the unban lifts it.
get_a() { curl -sS --max-time 10 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:127.0.0.1" \
    --interface "$1" "https://a.test:$HTTPS_PORT/" 2>/dev/null || echo REFUSED; }
check "a new connection from 127.0.0.21 is refused" [ "$(get_a 127.0.0.21)" = REFUSED ]

# Workers that start later get the last snapshot, then every ban delta since.
worker_pids() { api GET /api/v1/status; json_get '" ".join(str(w["pid"]) for w in d["workers"])'; }
respawned() { # OLD_PIDS: every worker up, current, with a new pid
    api GET /api/v1/status
    json_true 'len(d["workers"]) == 2 and all(w["up"] and w["pid"] and str(w["pid"]) not in a[0].split() and w["config_version"] == d["config_version"] for w in d["workers"])' "$1"
}
refused_5() { local i; for i in 1 2 3 4 5; do [ "$(get_a "$1")" = REFUSED ] || return 1; done; }
old_pids=$(worker_pids)
for p in $old_pids; do kill -9 "$p"; done
check "both workers killed and respawned at the current version" wait_until 15 respawned "$old_pids"
check "respawned workers still refuse 127.0.0.21 (snapshot + the ban delta)" refused_5 127.0.0.21
api DELETE /api/v1/bans/127.0.0.21
check "unban -> 204" is_status 204
check "127.0.0.21 is served again" [ "$(get_a 127.0.0.21)" = backend-one ]

# ---- deltas give way to a whole snapshot -----------------------------------------
# Once the deltas kept for starting workers outweigh the snapshot (by 1 MiB;
# here: past 200 bytes), the next ban write publishes a whole snapshot instead.
stop_portierd
export PORTIER_BAN_DELTA_LIMIT=200
start_portierd --workers 2 --trusted-proxy 127.0.0.30/32 || bail "portierd restarts"
for i in 51 52 53 54 55 56; do
    api POST /api/v1/bans "{\"ip\":\"127.0.0.$i\",\"reason\":\"mixed\"}"
done
api DELETE /api/v1/bans/127.0.0.52
api DELETE /api/v1/bans/127.0.0.55
check "ban writes switched to whole snapshots when the deltas outweighed it" \
    grep -q "publishing a whole snapshot" "$T/portierd.log"
mixed_ok() {
    local i
    for i in 51 53 54 56; do refused_5 127.0.0.$i || { WHY="127.0.0.$i served"; return 1; }; done
    for i in 52 55; do [ "$(get_a 127.0.0.$i)" = backend-one ] || { WHY="127.0.0.$i refused"; return 1; }; done
}
check "deltas and snapshots mixed: 4 bans in force, 2 lifted" mixed_ok
old_pids=$(worker_pids)
for p in $old_pids; do kill -9 "$p"; done
check "workers respawned" wait_until 15 respawned "$old_pids"
check "after the respawn: the same 4 bans in force, 2 lifted" mixed_ok
unset PORTIER_BAN_DELTA_LIMIT

# ---- port 80 from the trusted front without a PROXY header ---------------------
# Only "PROXY " or the v2 signature starts a header: a request starting with
# P (POST, PUT, PATCH) is a request.
front80() { # METHOD: the status line the trusted front gets back, or CLOSED
    RAWHTTP_FROM=127.0.0.30 "$PY" "$HERE/tools/rawhttp.py" 127.0.0.1 "$HTTP_PORT" \
        "$1 / HTTP/1.1\\r\\nHost: a.test\\r\\nContent-Length: 2\\r\\n\\r\\nhi"
}
for m in POST PUT PATCH GET; do
    line=$(front80 $m)
    check "trusted front, no PROXY header, $m: an HTTP answer (got: $line)" \
        eval '[[ "$line" == HTTP/1.1\ * ]]'
done

finish

#!/bin/bash
# A ban reaches connections that are already open, as a firewall's would:
# passthrough, offload keep-alive, port 80 and a WebSocket tunnel from the
# banned address are cut with an RST when the ban arrives; the same four from
# another client keep working. Behind a trusted front the address judged is
# the one its PROXY header carries. /metrics counts the cuts by reason. And
# port 80 from a trusted front that sends no PROXY header takes "POST ..." for
# the request it is.
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
api DELETE /api/v1/bans/127.0.0.21
check "unban -> 204" is_status 204
check "127.0.0.21 is served again" [ "$(get_a 127.0.0.21)" = backend-one ]

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

# Fixture for the tests of bans on open connections (sourced after lib.sh and
# nginx.sh, from $T): real backends for every kind of connection a ban must
# cut, and clients that hold such connections open across a ban.
#
#   bans_backends              nginx (TLS on $P1 for passthrough, plain on $P2
#                              with a rate-limited /slow.bin for port 80) and
#                              tools/ws_echo.py on $PB (offload, WebSocket)
#   bans_routes                after start_portierd: a.test passthrough (port 80
#                              to $P2), b.test offload with an uploaded certificate
#   hold NAME KIND FROM ARGS   a held connection (tools/held_conn.py) in the
#                              background; verdict in held-NAME.out once
#                              $TRIGGER exists
#   all_ready NAMES...         every named connection printed READY
#   verdict NAME WANT          its verdict is WANT (RESET, EOF, OK)
# tls_a, tls_b, http_a: the held_conn.py arguments for a.test over TLS, b.test
# over TLS and a.test's slow download on port 80.

HELD="$HERE/tools/held_conn.py"
read -r P1 P2 PB <<<"$(free_ports 3)"
TRIGGER="$T/ban-sent"
HELD_PIDS=()

bans_backends() {
    make_cert a "DNS:a.test"
    make_cert front "DNS:b.test"
    mkdir -p www
    echo "backend-one" >www/index.html
    head -c $((8 * 1024 * 1024)) /dev/urandom >www/slow.bin
    start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    root $T/www;
}
server {
    listen 127.0.0.1:$P2;
    root $T/www;
    location /slow.bin { limit_rate 64k; }
}" || bail "nginx backend starts"
    env "$MARK" "$PY" "$HERE/tools/ws_echo.py" serve 127.0.0.1 "$PB" "$T/ws-backend.log" \
        >"$T/ws-backend.err" 2>&1 &
    track_pid $!
    wait_until 10 port_listening "$PB" || bail "ws_echo backend listens on $PB"
}

bans_routes() {
    api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:$P1\"],\"http_servers\":[\"127.0.0.1:$P2\"]}"
    check "passthrough backend (with a port-80 server)" is_status 201
    api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"yuno"}'
    check "passthrough domain a.test" is_status 201
    api PUT /api/v1/backends/app "{\"servers\":[\"127.0.0.1:$PB\"]}"
    api PUT /api/v1/domains/b.test '{"mode":"offload","backend":"app","certificate":"manual"}'
    check "offload domain b.test" is_status 201
    upload_cert front
    check "certificate for b.test uploaded" is_status 201
    tls_a=(--connect "127.0.0.1:$HTTPS_PORT" --host a.test --sni a.test --ca "$T/ca.pem")
    tls_b=(--connect "127.0.0.1:$HTTPS_PORT" --host b.test --sni b.test --ca "$T/ca.pem")
    http_a=(--connect "127.0.0.1:$HTTP_PORT" --host a.test --path /slow.bin)
}

hold() {
    local name=$1 kind=$2 from=$3; shift 3
    "$PY" "$HELD" "$kind" --bind "$from" --trigger "$TRIGGER" "$@" >"$T/held-$name.out" 2>&1 &
    HELD_PIDS+=($!)
}

all_ready() {
    local n
    for n in "$@"; do
        grep -q READY "$T/held-$n.out" 2>/dev/null || { WHY="$n: $(cat "$T/held-$n.out")"; return 1; }
    done
}

verdict() {
    local got; got=$(grep -v READY "$T/held-$1.out" | tail -n 1)
    [ "$got" = "$2" ] || { WHY="$1: $got"; return 1; }
}

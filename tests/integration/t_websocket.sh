#!/bin/bash
# WebSocket through TLS offload: portier terminates TLS for ws.test (uploaded
# certificate) and proxies to a plain-HTTP backend, tools/ws_echo.py, that
# implements the RFC 6455 handshake and echoes messages. The client (the same
# tool, python3 ssl) upgrades through portier, exchanges text messages and a
# 1 MiB binary one, and closes; then plain keep-alive requests on the same
# domain must still work, on one client connection and with the body of a
# later request intact.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh" # make_cert, upload_cert
cd "$T"

WS_TOOL="$HERE/tools/ws_echo.py"
read -r PB <<<"$(free_ports 1)"
make_cert front "DNS:ws.test,DNS:*.ws.test"

env "$MARK" "$PY" "$WS_TOOL" serve 127.0.0.1 "$PB" "$T/ws-backend.log" >"$T/ws-backend.err" 2>&1 &
track_pid $!
wait_until 10 port_listening "$PB" || bail "ws_echo backend listens on $PB"
start_portierd || bail "portierd starts"

api PUT /api/v1/backends/wsb "{\"servers\":[\"127.0.0.1:$PB\"]}"
check "backend created" is_status "200|201"
api PUT /api/v1/domains/ws.test '{"mode":"offload","backend":"wsb","certificate":"manual"}'
check "offload domain created" is_status 201

upload_cert front
check "certificate upload -> 201" is_status 201

# ws SCENARIO: runs the client; its output goes to ws-SCENARIO.out and, on
# failure, into the check's explanation.
ws() {
    local out="$T/ws-$1.out"
    if "$PY" "$WS_TOOL" client --connect "127.0.0.1:$HTTPS_PORT" --sni ws.test --ca "$T/ca.pem" \
        --host "ws.test:$HTTPS_PORT" "$1" >"$out" 2>&1; then
        return 0
    fi
    WHY=$(tail -n 4 "$out" | tr '\n' ' ')
    return 1
}
https_ok() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$T/ca.pem" \
        --resolve "ws.test:$HTTPS_PORT:127.0.0.1" "https://ws.test:$HTTPS_PORT/ready")" = 200 ]
}
check "offload domain answers over TLS" wait_until 10 https_ok

# backend_saw PY-EXPR: true when some line of the backend log matches
# (r = the request record, h = its headers with lowercase names).
backend_saw() {
    "$PY" - "$T/ws-backend.log" "$1" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = {k.lower(): v for k, v in r["headers"]}
    if eval(sys.argv[2]):
        sys.exit(0)
sys.exit(1)
PYEOF
}

check "WebSocket: handshake, 3 text messages, 1 MiB binary, fragments, ping, close" ws echo
check "the backend saw the upgrade with Connection: upgrade and X-Forwarded-For" \
    backend_saw 'r["path"] == "/ws" and h.get("upgrade") == "websocket" and h.get("connection", "").lower() == "upgrade" and h.get("x-forwarded-for") == "127.0.0.1" and h.get("x-forwarded-proto") == "https" and "sec-websocket-key" in h'
check "a frame sent by the backend with its 101 reaches the client" ws greet
check "a frame sent by the client with its handshake reaches the backend" ws eager
check "WebSocket on a connection that already carried a keep-alive request" ws upgrade-after-get

check "plain keep-alive GETs on the same domain afterwards (one TLS connection)" ws keepalive
n=$(curl -sS --max-time 30 --cacert "$T/ca.pem" --resolve "ws.test:$HTTPS_PORT:127.0.0.1" \
    -w '%{num_connects}\n' -o /dev/null -o /dev/null -o /dev/null \
    "https://ws.test:$HTTPS_PORT/k1" "https://ws.test:$HTTPS_PORT/k2" "https://ws.test:$HTTPS_PORT/k3" |
    paste -sd+ | bc)
check "curl: three requests over one client connection (connects: $n)" [ "$n" = 1 ]
check "the backend connection is reused across keep-alive requests" \
    backend_saw 'r["path"] == "/plain/2?x=1" and r["n"] >= 3'

check "keep-alive POST whose body comes after its head, on a reused backend connection" ws keepalive-post
check "Expect: 100-continue: the 100 is passed on whole, then the 200" ws expect100
check "Expect: 100-continue with Connection: close: the 100 is passed on whole" ws expect100-close

no_smuggled() {
    backend_saw 'r["path"] == "/smuggled"' || return 0
    WHY="the backend logged: $(grep -m1 '"/smuggled"' "$T/ws-backend.log" | cut -c1-300)"
    return 1
}
ws smuggle-connection-cl
check "Connection: content-length cannot smuggle a request past portier" no_smuggled

check "portier still serves WebSocket after all that" ws greet
finish

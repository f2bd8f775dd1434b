#!/bin/bash
# Bans and trusted PROXY fronts with real peers: refused at accept, by the real
# client address, on every listener; other clients and established transfers
# untouched; expiry; a second portier in front sending PROXY v2.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 FRONT_API FRONT_HTTPS FRONT_HTTP <<<"$(free_ports 4)"
make_cert a "DNS:a.test"
mkdir -p www
echo "backend-one" >www/index.html
head -c $((3 * 1024 * 1024)) /dev/urandom >www/mid.bin
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl proxy_protocol;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
    access_log $T/nginx-be/logs/p1.log pt; root $T/www;
}" || bail "nginx backend starts"

start_portierd --https "127.0.0.1:$HTTPS_PORT" --https "[::1]:$HTTPS_PORT" \
    --trusted-proxy 127.0.0.1/32 || bail "portierd starts"
api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:$P1\"],\"proxy_protocol\":\"v2\"}"
api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"yuno"}'
check "route a.test created" is_status 201

# get FROM [port]: body, or "REFUSED" when the connection gave nothing.
get() {
    local from=$1 port=${2:-$HTTPS_PORT} host=127.0.0.1
    case $from in *:*) host=::1 ;; esac
    curl -sS --max-time 10 --cacert "$T/ca.pem" --resolve "a.test:$port:$host" \
        --interface "$from" "https://a.test:$port/" 2>"$T/curl.err" || echo REFUSED
}

check "127.0.0.3 is served before any ban" [ "$(get 127.0.0.3)" = backend-one ]

fetch_mid() { curl -sS --max-time 60 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:127.0.0.1" \
    --interface 127.0.0.4 --limit-rate 1M -o "$T/mid.out" "https://a.test:$HTTPS_PORT/mid.bin"; }
fetch_mid &
dl=$!
sleep 0.5

api POST /api/v1/bans '{"ip":"127.0.0.3","duration":3600,"reason":"fail2ban nginx-http-auth"}'
check "POST ban 127.0.0.3 -> 201" is_status 201
check "ban answer is applied by every worker" json_true 'd["applied"] is True'
check "ban answer has ip, reason, created, expires" \
    json_true 'd["ip"] == "127.0.0.3" and d["reason"].startswith("fail2ban") and d["created"].endswith("Z") and d["expires"].endswith("Z")'
check "banned 127.0.0.3 is refused on the TLS port" [ "$(get 127.0.0.3)" = REFUSED ]
no_tls_byte() { ! grep -qi alert "$T/curl.err" &&
    grep -qiE "reset|closed|SSL_ERROR_SYSCALL|unexpected eof|connect to server" "$T/curl.err" ||
    { WHY=$(cat "$T/curl.err"); return 1; }; }
check "refused without a TLS byte (reset, no alert)" no_tls_byte
check "127.0.0.2 keeps working" [ "$(get 127.0.0.2)" = backend-one ]
api POST /api/v1/bans '{"ip":"127.0.0.3","duration":600,"reason":"fail2ban again"}'
check "re-ban of the same address -> 200 (replace)" is_status 200
wait $dl
check "a transfer of another client running across the ban completes intact" cmp -s "$T/mid.out" www/mid.bin

api POST /api/v1/bans '{"ip":"127.0.0.0/30","reason":"cidr"}'
check "CIDR ban 127.0.0.0/30 -> 201, permanent" json_true 'd["expires"] is None and d["ip"] == "127.0.0.0/30"'
check "127.0.0.2 (inside /30) refused" [ "$(get 127.0.0.2)" = REFUSED ]
check "127.0.0.5 (outside /30) served" [ "$(get 127.0.0.5)" = backend-one ]
api DELETE /api/v1/bans/127.0.0.0%2F30
check "DELETE /api/v1/bans/127.0.0.0%2F30 -> 204" is_status 204
check "127.0.0.2 served again after unban" [ "$(get 127.0.0.2)" = backend-one ]
api DELETE /api/v1/bans/127.0.0.0%2F30
check "DELETE again -> 404" is_error 404

check "IPv6 ::1 served before its ban" [ "$(get ::1)" = backend-one ]
api POST /api/v1/bans '{"ip":"::1"}'
check "ban ::1 -> 201" is_status 201
check "IPv6 client ::1 refused" [ "$(get ::1)" = REFUSED ]
api DELETE /api/v1/bans/::1
check "unban ::1 -> 204" is_status 204

api POST /api/v1/bans '{"ip":"127.0.0.6","duration":2,"reason":"short"}'
check "2-second ban refuses at once" [ "$(get 127.0.0.6)" = REFUSED ]
sleep 2.5
check "expired ban no longer refuses" [ "$(get 127.0.0.6)" = backend-one ]
api GET /api/v1/bans
check "expired ban is gone from the list" json_true 'all(b["ip"] != "127.0.0.6" for b in d["bans"])'
check "permanent and current bans listed" json_true 'any(b["ip"] == "127.0.0.3" for b in d["bans"])'

for bad in '{"ip":"300.1.1.1"}' '{"ip":"10.0.0.0/33"}' '{}' '{"ip":"1.2.3.4","duration":-1}' '{"ip":"1.2.3.4","extra":1}'; do
    api POST /api/v1/bans "$bad"
    check "bad ban $bad -> 400" is_error 400
done

curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/metrics" >metrics.txt
check "/metrics counts refusals per ban reason" grep -qE '^portier_banned_connections_total\{reason="fail2ban.*"\} [1-9]' metrics.txt

# A front portier that routes a.test to this one with PROXY v2 (this one
# trusts 127.0.0.1): the nginx backend must log the original client.
mkdir -p front
env "$MARK" setsid "$PORTIERD" --state-dir "$T/front" --api "127.0.0.1:$FRONT_API" \
    --https "127.0.0.1:$FRONT_HTTPS" --http "127.0.0.1:$FRONT_HTTP" --workers 1 \
    >>"$T/front.log" 2>&1 &
track_pid $!
wait_until 20 eval '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$FRONT_API/healthz)" = 200 ]' ||
    bail "front portier starts"
FT=$(tr -d ' \n' <"$T/front/api.token")
fcurl() { curl -s -H "Authorization: Bearer $FT" -X "$1" "http://127.0.0.1:$FRONT_API$2" -d "$3" -o /dev/null -w '%{http_code}'; }
check "front backend -> this portier with PROXY v2" \
    [ "$(fcurl PUT /api/v1/backends/inner "{\"servers\":[\"127.0.0.1:$HTTPS_PORT\"],\"proxy_protocol\":\"v2\"}")" = 201 ]
check "front domain a.test" [ "$(fcurl PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"inner"}')" = 201 ]
: >nginx-be/logs/p1.log.mark
body=$(get 127.0.0.7 "$FRONT_HTTPS")
check "through front and inner portier the page arrives" [ "$body" = backend-one ]
check "backend logs the original client 127.0.0.7, not the front" grep -q '^127.0.0.7|127.0.0.7|a.test|' nginx-be/logs/p1.log
check "a ban at the inner portier applies to the client behind the front" \
    [ "$(get 127.0.0.3 "$FRONT_HTTPS")" = REFUSED ]

# The same header from an untrusted source: closed without an answer.
untrusted() {
    "$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
s.settimeout(5)
s.connect(("127.0.0.1", int(sys.argv[2])))
s.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1234 443\r\n")
try:
    data = s.recv(100)
except ConnectionResetError:
    data = b""
print("CLOSED" if data == b"" else "ANSWERED %r" % data)
PYEOF
}
check "PROXY header from an untrusted source is closed without an answer" \
    [ "$(untrusted 127.0.0.8 "$FRONT_HTTPS")" = CLOSED ]

finish

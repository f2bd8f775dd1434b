#!/bin/bash
# SNI passthrough with real peers: nginx backends configured like a YunoHost
# server behind an SNI router (listen ... ssl proxy_protocol; set_real_ip_from;
# real_ip_header proxy_protocol), curl from distinct loopback addresses.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 P2 P3 DEAD <<<"$(free_ports 4)"
make_cert a "DNS:a.test,DNS:*.w.test,DNS:v1.test,DNS:nope.test,DNS:dns.test,DNS:$(printf 'r%.0s' {1..60}).a.test"
mkdir -p www1 www2
echo "backend-one" >www1/index.html
echo "backend-two" >www2/index.html
head -c $((64 * 1024 * 1024)) /dev/urandom >www1/big.bin
head -c $((4 * 1024 * 1024)) /dev/urandom >www1/mid.bin

# P1: PROXY protocol (v1 or v2: nginx takes both), like a YunoHost backend.
# P2: plain TLS, no PROXY header. P3: PROXY protocol, for the v1 backend.
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl proxy_protocol; listen [::1]:$P1 ssl proxy_protocol;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    set_real_ip_from 127.0.0.1; set_real_ip_from ::1; real_ip_header proxy_protocol;
    access_log $T/nginx-be/logs/p1.log pt; root $T/www1;
}
server {
    listen 127.0.0.1:$P2 ssl;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    access_log $T/nginx-be/logs/p2.log pt; root $T/www2;
}
server {
    listen 127.0.0.1:$P3 ssl proxy_protocol;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
    access_log $T/nginx-be/logs/p3.log pt; root $T/www1;
}" || bail "nginx backends start"

start_portierd --https "127.0.0.1:$HTTPS_PORT" --https "[::1]:$HTTPS_PORT" || bail "portierd starts"

api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:$DEAD\",\"127.0.0.1:$P1\"],\"proxy_protocol\":\"v2\"}"
check "backend yuno (dead server first, PROXY v2) created" is_status 201
api PUT /api/v1/backends/other "{\"servers\":[\"127.0.0.1:$P2\"]}"
check "backend other created" is_status 201
api PUT /api/v1/backends/old "{\"servers\":[\"127.0.0.1:$P3\"],\"proxy_protocol\":\"v1\"}"
check "backend old (PROXY v1) created" is_status 201
api PUT /api/v1/backends/byname "{\"servers\":[\"localhost:$P1\"],\"proxy_protocol\":\"v2\"}"
check "backend with a DNS name created" is_status 201
for d in a.test:yuno '*.w.test:other' v1.test:old dns.test:byname; do
    api PUT "/api/v1/domains/${d%%:*}" "{\"mode\":\"passthrough\",\"backend\":\"${d##*:}\"}"
    check "domain ${d%%:*} -> ${d##*:}" is_status 201
done

# fetch NAME PATH [curl args...]: body on stdout
fetch() {
    local name=$1 path=$2; shift 2
    curl -sS --max-time 60 --cacert "$T/ca.pem" --resolve "$name:$HTTPS_PORT:127.0.0.1" \
        "$@" "https://$name:$HTTPS_PORT$path"
}

body=$(fetch a.test / --interface 127.0.0.2)
check "a.test through portier gets backend one's page" [ "$body" = backend-one ]
check "backend log shows the real client 127.0.0.2 (PROXY v2)" \
    grep -q '^127.0.0.2|127.0.0.2|a.test|' nginx-be/logs/p1.log
access_line() { grep -q '"client":"127.0.0.2:[0-9]*".*"sni":"a.test","route":"a.test","mode":"passthrough","backend":"yuno","server":"127.0.0.1:'"$P1"'".*"bytes_in":[1-9][0-9]*,"bytes_out":[1-9][0-9]*,.*"result":"ok"' "$T/portierd.log"; }
check "access log: one JSON line with client, SNI, route, backend server, bytes, result" wait_until 5 access_line
body=$(fetch x.w.test / --interface 127.0.0.3)
check "wildcard *.w.test routes x.w.test to backend two" [ "$body" = backend-two ]
body=$(fetch deep.x.w.test / -k)
check "wildcard matches several labels (deep.x.w.test)" [ "$body" = backend-two ]
check "no PROXY header to a backend without proxy_protocol" grep -q '^127.0.0.1|' nginx-be/logs/p2.log
body=$(fetch V1.TEST. / --interface 127.0.0.4)
check "SNI matching ignores case and a trailing dot" [ "$body" = backend-one ]
check "PROXY v1 backend logs the real client 127.0.0.4" grep -q '^127.0.0.4|' nginx-be/logs/p3.log
body=$(fetch dns.test / --interface 127.0.0.5)
check "backend server given by DNS name (resolved off-loop)" [ "$body" = backend-one ]

out=$(fetch nope.test / 2>&1)
check "unknown SNI gets a fatal unrecognized_name alert" grep -qi 'unrecognized name' <<<"$out"
check "access log records the unknown SNI" wait_until 5 grep -q '"sni":"nope.test","route":null.*"result":"unknown_sni"' "$T/portierd.log"
out=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -noservername </dev/null 2>&1)
check "absent SNI without a '*' route gets the alert" grep -qi 'unrecognized name' <<<"$out"
api PUT '/api/v1/domains/*' '{"mode":"passthrough","backend":"other"}'
check "catch-all '*' created" is_status 201
body=$(fetch nope.test /)
check "'*' takes unknown SNI" [ "$body" = backend-two ]
body=$(curl -sk --max-time 10 "https://127.0.0.1:$HTTPS_PORT/")
check "'*' takes a hello without SNI (curl to an IP)" [ "$body" = backend-two ]
api DELETE '/api/v1/domains/*'
check "catch-all deleted" is_status 204
out=$(fetch nope.test / 2>&1)
check "after deleting '*' unknown SNI gets the alert again" grep -qi 'unrecognized name' <<<"$out"

fetch a.test /big.bin -o big.out
check "64 MiB download through portier is byte-identical" cmp -s big.out www1/big.bin
rm -f big.out
dd if=/dev/urandom of=up.bin bs=1M count=8 2>/dev/null
code=$(fetch a.test /nothing -o /dev/null -w '%{http_code}' --data-binary @up.bin)
check "8 MiB upload through portier reaches the backend (nginx answers, not a reset)" \
    [ "$code" = 405 -o "$code" = 404 -o "$code" = 413 ]

body=$("$PY" "$HERE/tools/split_client.py" 127.0.0.1 "$HTTPS_PORT" a.test "$T/ca.pem" / 0.0005 2>"$T/split.err")
check "ClientHello sent one byte per TCP segment still routes" [ "$body" = backend-one ]
[ "$body" = backend-one ] || note "split client: $body $(cat "$T/split.err")"
long=$(printf 'r%.0s' {1..60}).a.test
api PUT "/api/v1/domains/$long" '{"mode":"passthrough","backend":"other"}'
body=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername "$long" -max_send_frag 512 \
        -alpn "$(printf 'x%.0s' {1..200}),$(printf 'y%.0s' {1..200}),$(printf 'z%.0s' {1..200}),http/1.1" \
        -CAfile "$T/ca.pem" </dev/null 2>&1)
check "ClientHello spread over several TLS records still routes" grep -q 'Verify return code: 0' <<<"$body"

body=$(curl -sS --max-time 30 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:::1" \
        --interface ::1 "https://a.test:$HTTPS_PORT/")
check "IPv6 listener: page arrives" [ "$body" = backend-one ]
check "IPv6 client appears as ::1 at the backend (PROXY v2 INET6)" grep -q '^::1|::1|a.test|' nginx-be/logs/p1.log

# A config change never breaks a connection in flight: a rate-limited
# download keeps going while a.test is moved to another backend.
fetch a.test /mid.bin --limit-rate 1M -o mid.out &
dl=$!
sleep 1
api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"other"}'
check "a.test moved to backend two while a download runs" is_status 200
body=$(fetch a.test /)
check "new connections use the new route" [ "$body" = backend-two ]
wait $dl
check "the download started before the change completes intact" cmp -s mid.out www1/mid.bin

finish

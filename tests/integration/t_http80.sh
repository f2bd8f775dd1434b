#!/bin/bash
# Port 80 with real peers: ACME paths reserved, 301 to https for offload
# domains, plain HTTP proxy to a passthrough backend's http_servers with the
# real client address, 404 for unknown hosts, request smuggling shapes refused.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P80 <<<"$(free_ports 1)"
mkdir -p www
echo "plain-backend" >www/index.html
head -c $((16 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
server {
    listen 127.0.0.1:$P80;
    set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;
    access_log $T/nginx-be/logs/p80.log pt; root $T/www;
}" || bail "nginx backend starts"
start_portierd --hello-timeout 2 || bail "portierd starts"

api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:1\"],\"http_servers\":[\"127.0.0.1:$P80\"],\"proxy_protocol\":\"v2\"}"
check "backend with http_servers" is_status 201
api PUT /api/v1/backends/nohttp '{"servers":["127.0.0.1:1"]}'
api PUT /api/v1/domains/yuno.test '{"mode":"passthrough","backend":"yuno"}'
api PUT /api/v1/domains/bare.test '{"mode":"passthrough","backend":"nohttp"}'
api PUT /api/v1/domains/shop.test '{"mode":"offload","backend":"nohttp"}'
check "domains created" is_status 201

h80() { curl -sS --max-time 10 --resolve "$1:$HTTP_PORT:127.0.0.1" "${@:3}" "http://$1:$HTTP_PORT$2"; }

body=$(h80 yuno.test / --interface 127.0.0.2 -H 'X-Forwarded-For: 203.0.113.9')
check "passthrough domain on port 80 is proxied to http_servers" [ "$body" = plain-backend ]
check "backend sees the real client (X-Real-IP) and only it in X-Forwarded-For (client's dropped)" \
    wait_until 5 grep -q '^127.0.0.2|-|-|127.0.0.2|127.0.0.2|GET / HTTP/1.1|200|.*|http|yuno.test' nginx-be/logs/p80.log
h80 yuno.test /big.bin -o big.out
check "16 MiB through port 80 unchanged" cmp -s big.out www/big.bin
code=$(h80 bare.test / -o /dev/null -w '%{http_code}')
check "passthrough domain without http_servers -> 404" [ "$code" = 404 ]
code=$(h80 nowhere.test / -o /dev/null -w '%{http_code}')
check "unknown Host -> 404" [ "$code" = 404 ]

loc=$(h80 shop.test '/a/b?c=d' -o /dev/null -w '%{http_code} %{redirect_url}')
check "offload domain redirects: 301 to https://host:port/path?query" \
    [ "$loc" = "301 https://shop.test:$HTTPS_PORT/a/b?c=d" ]
loc=$(h80 SHOP.test. '/' -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: SHOP.test:$HTTP_PORT")
check "Host matching ignores case, port and a trailing dot" [ "$loc" = "301 https://shop.test:$HTTPS_PORT/" ]
mkdir -p www/.well-known/acme-challenge
echo "backend-own-challenge" >www/.well-known/acme-challenge/tok123
body=$(h80 yuno.test /.well-known/acme-challenge/tok123)
check "ACME path of a passthrough domain with http_servers reaches its backend (its own HTTP-01)" \
    [ "$body" = backend-own-challenge ]
code=$(h80 bare.test /.well-known/acme-challenge/tok123 -o /dev/null -w '%{http_code}')
check "ACME path of a passthrough domain without http_servers -> 404" [ "$code" = 404 ]
code=$(h80 shop.test /.well-known/acme-challenge/unknowntoken -o /dev/null -w '%{http_code}')
check "ACME path is reserved even on a redirecting domain: unknown token -> 404" [ "$code" = 404 ]
api PUT /api/v1/domains/shop.test '{"mode":"offload","backend":"nohttp","redirect_http":false}'
code=$(h80 shop.test / -o /dev/null -w '%{http_code}')
check "offload domain without redirect_http is proxied (unreachable backend -> 502)" [ "$code" = 502 ]

raw() { "$PY" "$HERE/tools/rawhttp.py" 127.0.0.1 "$HTTP_PORT" "$1"; }
while IFS='|' read -r want desc req; do
    [ -n "$want" ] || continue
    got=$(raw "$req")
    check "$desc -> $want" grep -q "^HTTP/1.1 $want " <<<"$got"
done <<'TABLE'
400|Content-Length and Transfer-Encoding|POST / HTTP/1.1\r\nHost: yuno.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc
400|duplicate Content-Length|POST / HTTP/1.1\r\nHost: yuno.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc
400|invalid Content-Length|POST / HTTP/1.1\r\nHost: yuno.test\r\nContent-Length: 3x\r\n\r\nabc
400|negative Content-Length|POST / HTTP/1.1\r\nHost: yuno.test\r\nContent-Length: -1\r\n\r\n
400|bare LF|GET / HTTP/1.1\nHost: yuno.test\n\n
400|obs-fold|GET / HTTP/1.1\r\nHost: yuno.test\r\nX-A: a\r\n b\r\n\r\n
400|Transfer-Encoding on HTTP/1.0|POST / HTTP/1.0\r\nHost: yuno.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n
400|Transfer-Encoding other than chunked|POST / HTTP/1.1\r\nHost: yuno.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n
400|missing Host on HTTP/1.1|GET / HTTP/1.1\r\n\r\n
400|two Host headers|GET / HTTP/1.1\r\nHost: yuno.test\r\nHost: other.test\r\n\r\n
400|NUL in head|GET / HTTP/1.1\r\nHost: yuno.test\r\nX: a\x00b\r\n\r\n
400|not HTTP|HELLO THERE\r\n\r\n
200|a clean request still works|GET / HTTP/1.1\r\nHost: yuno.test\r\n\r\n
TABLE
long=$(printf 'a%.0s' {1..9000})
check "request line over 8 KiB -> 414" grep -q '^HTTP/1.1 414 ' <<<"$(raw "GET /$long HTTP/1.1\r\nHost: yuno.test\r\n\r\n")"
hdrs=$(for i in $(seq 1 200); do printf 'X-H%d: %s\\r\\n' "$i" "$(printf 'v%.0s' {1..100})"; done)
check "header block over 16 KiB -> 431" grep -q '^HTTP/1.1 431 ' <<<"$(raw "GET / HTTP/1.1\r\nHost: yuno.test\r\n$hdrs\r\n")"
start=$(now_ms)
got=$(raw "GET / HTTP/1.1\r\nHost: yu")
check "slow head -> 408 after --hello-timeout ($(( $(now_ms) - start )) ms)" grep -q '^HTTP/1.1 408 ' <<<"$got"

api POST /api/v1/bans '{"ip":"127.0.0.3","reason":"port 80 test"}'
code=$(h80 yuno.test / --interface 127.0.0.3 -o /dev/null -w '%{http_code}' 2>/dev/null)
check "banned client refused on port 80 before any byte" [ "$code" = 000 ]
body=$(h80 yuno.test / --interface 127.0.0.4)
check "other clients still served on port 80" [ "$body" = plain-backend ]

finish

#!/bin/bash
# HTTP/2 to clients on TLS offload (issue 13): curl --http2 and h2load through
# portier to a real nginx (HTTP/1.1 behind), and hostile clients written frame
# by frame (tests/integration/h2_client.py): smuggling shapes refused per RFC
# 9113 8.2/8.3, the known floods each ending in GOAWAY while other
# connections go on.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

command -v h2load >/dev/null || bail "h2load (nghttp2-client) installed"
"$PY" -c 'import h2, hpack' 2>/dev/null || bail "python3-h2 installed"
read -r PB <<<"$(free_ports 1)"
make_cert front "DNS:app.test,DNS:*.app.test,DNS:h1.test,DNS:pass.test"
mkdir -p www
echo "h2-backend" >www/index.html
head -c $((32 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
log_format conn '\$connection \$request';
server {
    access_log $T/nginx-be/logs/conn.log conn;
    listen 127.0.0.1:$PB;
    access_log $T/nginx-be/logs/plain.log pt; root $T/www;
    client_max_body_size 100m;
    location = /upload { proxy_pass http://127.0.0.1:$PB/sink; }
    location = /upload-nolength { proxy_pass http://127.0.0.1:$PB/sink; }
    location = /sink { return 200 \"got \$content_length\n\"; }
    location = /echo { return 200 \"xff=\$http_x_forwarded_for proto=\$http_x_forwarded_proto host=\$host proto1=\$server_protocol cookie=\$http_cookie\n\"; }
    location = /trailer { add_trailer x-checksum abc123; return 200 \"with trailer\n\"; }
}" || bail "nginx backend starts"
start_portierd --idle-timeout 20 --send-timeout 3 || bail "portierd starts"

api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PB\"]}"
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual","response_headers":{"X-Frame-Options":"DENY"},"hsts":true}'
check "offload domain created" is_status 201
check "http2 is on by default" json_true 'd["http2"] is True'
api PUT /api/v1/domains/h1.test '{"mode":"offload","backend":"web","certificate":"manual","http2":false}'
check "a domain with http2 false" json_true 'd["http2"] is False'
api PUT /api/v1/domains/other.app.test '{"mode":"offload","backend":"web","certificate":"manual"}'
upload_cert front
check "certificate upload -> 201" is_status 201

get() { # NAME PATH [curl args]
    local n=$1 p=$2; shift 2
    curl -sS --max-time 60 --cacert "$T/ca.pem" --resolve "$n:$HTTPS_PORT:127.0.0.1" "$@" "https://$n:$HTTPS_PORT$p"
}
nogrep() { ! grep "$@"; }
h2c() { timeout 90 "$PY" "$HERE/h2_client.py" "$HTTPS_PORT" "$T/ca.pem" "$@"; }

out=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername app.test -alpn h2,http/1.1 </dev/null 2>&1)
check "ALPN chooses h2 on an offload domain" grep -q 'ALPN protocol: h2' <<<"$out"
out=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername h1.test -alpn h2,http/1.1 </dev/null 2>&1)
check "ALPN chooses http/1.1 where http2 is false" grep -q 'ALPN protocol: http/1.1' <<<"$out"

body=$(get app.test / --http2 --interface 127.0.0.2 -D hdrs.txt -w '%{http_version}')
check "curl --http2: the page, over HTTP/2 ($body)" [ "$body" = "h2-backend
2" ]
check "the domain's response header is there" grep -qi '^x-frame-options: DENY' hdrs.txt
check "HSTS is there" grep -qi '^strict-transport-security: max-age=' hdrs.txt
check "no connection-specific field leaks into the h2 response" nogrep -qiE '^(connection|keep-alive|transfer-encoding):' hdrs.txt
check "the backend got HTTP/1.1 with X-Forwarded-For 127.0.0.2" \
    grep -q '^127.0.0.1|-|-|127.0.0.2|127.0.0.2|GET / HTTP/1.1|200|.*|https|app.test' nginx-be/logs/plain.log
body=$(get app.test /echo --http2 --interface 127.0.0.3 -H 'X-Forwarded-For: 6.6.6.6' -H 'Cookie: a=1' -H 'Cookie: b=2')
check "forwarded fields replaced, cookies joined ($body)" \
    [ "$body" = "xff=127.0.0.3 proto=https host=app.test proto1=HTTP/1.1 cookie=a=1; b=2" ]
body=$(get h1.test / --http2 -w '%{http_version}')
check "a domain with http2 false answers over HTTP/1.1" [ "$body" = "h2-backend
1.1" ]

get app.test /big.bin --http2 -o big.out
check "32 MiB download over h2 is byte-identical" cmp -s big.out www/big.bin
rm -f big.out
body=$(get app.test /upload --http2 --data-binary @www/big.bin -H 'Content-Type: application/octet-stream')
check "32 MiB upload over h2 arrives whole (Content-Length)" [ "$body" = "got 33554432" ]
start=$(now_ms)
body=$(head -c 1000000 www/big.bin >up1m.bin; get app.test /upload --http2 --data-binary @up1m.bin \
    -H 'Expect: 100-continue' --expect100-timeout 10)
took=$(( $(now_ms) - start ))
check "Expect: 100-continue gets the backend's 100 over h2 at once (${took} ms: $body)" \
    [ "$body" = "got 1000000" -a "$took" -lt 5000 ]
body=$(head -c 1000000 www/big.bin | get app.test /upload-nolength --http2 -T - -X POST)
check "upload without Content-Length goes chunked to the backend ($body)" [ "$body" = "got 1000000" ]

out=$(h2load -n 400 -c 1 -m 100 --connect-to=127.0.0.1:$HTTPS_PORT "https://app.test:$HTTPS_PORT/" 2>&1)
check "h2load: 400 requests, 100 concurrent streams on one connection" \
    grep -q 'requests: 400 total, 400 started, 400 done, 400 succeeded' <<<"$out"
check "... all on h2" grep -q 'Application protocol: h2' <<<"$out"

for i in 1 2 3 4 5 6; do get app.test "/pool-$i" --http2 -o /dev/null; done
conns=$(awk '$3 ~ /^\/pool-/ {print $1}' nginx-be/logs/conn.log | sort -u | wc -l)
check "h2 streams of six client connections use pooled backend connections ($conns)" \
    [ "$conns" -ge 1 -a "$conns" -le 2 ]

out=$(h2c app.test get /trailer)
check "response trailers are passed on ($out)" grep -q 'status 200 .*trailers=x-checksum=abc123' <<<"$out"
out=$(h2c app.test post-trailers)
check "a request with trailers is forwarded ($out)" grep -q '^status 200' <<<"$out"

out=$(h2c app.test authority other.app.test)
check "coalescing: :authority of another route on this connection -> 421 ($out)" grep -q '^status 421' <<<"$out"
code=$(get app.test / --http2 -o /dev/null -w '%{http_code}' -H 'Host: h1.test')
check "curl --http2 with the Host of another route -> 421" [ "$code" = 421 ]

for shape in cl-more cl-less connection te transfer-encoding crlf lf nul upper pseudo-after \
    pseudo-unknown no-path space-path host-mismatch; do
    out=$(h2c app.test smuggle $shape)
    check "smuggling shape '$shape' refused ($out)" grep -qE '^(reset 1|goaway 1|status 400)' <<<"$out"
done
check "no smuggling shape reached the backend" nogrep -qE 'smuggle|evil' nginx-be/logs/plain.log

# Floods: each ends with GOAWAY and the connection closed; meanwhile a
# client on another connection is served.
for f in rapid-reset continuation hpack-bomb big-headers settings ping priority empty-data streams; do
    out=$(h2c app.test $f)
    check "flood '$f' -> GOAWAY and close ($out)" grep -qE '^goaway (1|11)$|^closed$' <<<"$out"
    body=$(get app.test / --http2 --interface 127.0.0.4)
    check "... another client is served meanwhile" [ "$body" = h2-backend ]
done
out=$(h2c app.test zero-window /big.bin)
check "zero window stall: GOAWAY after --send-timeout ($out)" grep -qE '^goaway 11 after [3-9] s' <<<"$out"

for pid in $(worker_pids); do
    note "worker $pid RSS after the floods: $(awk '/VmRSS/ {print $2}' /proc/$pid/status) kB"
done

sleep 1.5 # the access log and the counters come once a second
api GET /metrics
check "/metrics counts h2 requests" grep -qE '^portier_http_requests_total\{worker="[01]",protocol="h2"\} [1-9]' <<<"$BODY"
check "/metrics counts h1 requests" grep -qE '^portier_http_requests_total\{worker="[01]",protocol="h1"\} [1-9]' <<<"$BODY"
check "the access log shows h2 per request" grep -q '"proto":"h2".*"result":"200"' portierd.log
check "and h1 for HTTP/1.1 requests" grep -q '"proto":"h1"' portierd.log
finish

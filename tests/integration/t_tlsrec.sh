#!/bin/bash
# The TLS 1.3 handover on offload (worker/tlsrec.c): after the handshake
# portier's own record layer carries the connection and OpenSSL's state is
# freed. Real clients through it: curl with many keep-alive requests and
# bodies both ways on one connection, `openssl s_client` sending KeyUpdates
# ('k': not requested, 'K': requested, which portier must answer) between
# requests, HTTP/2 by curl, and a TLS 1.2 client that stays on OpenSSL.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r PB <<<"$(free_ports 1)"
make_cert front "DNS:app.test"
mkdir -p www
echo "tlsrec-backend" >www/index.html
head -c $((6 * 1024 * 1024 + 123)) /dev/urandom >www/big.bin
head -c $((3 * 1024 * 1024 + 7)) /dev/urandom >up.bin
start_nginx be "
server {
    listen 127.0.0.1:$PB;
    access_log $T/nginx-be/logs/plain.log pt; root $T/www;
    keepalive_requests 1000;
    client_max_body_size 100m;
    location = /upload { proxy_pass http://127.0.0.1:$PB/sink; }
    location = /sink { return 200 \"got \$content_length\n\"; }
}" || bail "nginx backend starts"
start_portierd --workers 1 || bail "portierd starts"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PB\"]}"
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual"}'
check "offload domain created" is_status 201
upload_cert front
check "certificate upload -> 201" is_status 201

URL="https://app.test:$HTTPS_PORT"
CO=(--max-time 30 --cacert "$T/ca.pem" --resolve "app.test:$HTTPS_PORT:127.0.0.1")
cl() { curl -sS "${CO[@]}" "$@"; }
metric() { # NAME: its value in /metrics (0 when absent)
    api GET /metrics
    awk -v k="$1" '$1 == k {print $2; found = 1} END {if (!found) print 0}' <<<"$BODY"
}
ready() { cl -o /dev/null "$URL/" 2>/dev/null; }
wait_until 10 ready || bail "the domain answers"
sleep 1.2 # workers report once a second
H0=$(metric portier_tls_handovers_total)
K0=$(metric 'portier_tls_handshakes_total{result="ok"}')

# 60 requests on one TLS 1.3 connection, then a download and an upload on it.
urls=()
for i in $(seq 60); do urls+=("$URL/?n=$i"); done
cl --http1.1 --tlsv1.3 -o /dev/null -w '%{http_code} %{num_connects}\n' "${urls[@]}" >ka.out 2>ka.err
check "60 keep-alive requests: all 200" eval '[ "$(grep -c "^200 " ka.out)" = 60 ]'
check "... on one connection" eval '[ "$(awk "{s += \$2} END {print s}" ka.out)" = 1 ]'
cl --http1.1 --tlsv1.3 -o big.got "$URL/big.bin" --next "${CO[@]}" --http1.1 -o /dev/null "$URL/" \
    --next "${CO[@]}" --http1.1 --data-binary @up.bin "$URL/upload" -w '\n%{num_connects}\n' >bulk.out 2>bulk.err
check "6 MiB download intact through the record layer" cmp -s big.got www/big.bin
check "3 MiB upload counted by the backend" grep -q "got $((3 * 1024 * 1024 + 7))" bulk.out
check "... all on the first connection" grep -qx 0 bulk.out
grep -q "got $((3 * 1024 * 1024 + 7))" bulk.out || note "$(cat bulk.out bulk.err)"

# KeyUpdates between requests. s_client turns a line "k" or "K" into
# SSL_key_update; the request after 'K' is answered under portier's new key.
req() { printf 'GET /?%s HTTP/1.1\nHost: app.test\n\n' "$1"; }
{
    req one; sleep 0.5
    echo k; sleep 0.3
    req two; sleep 0.5
    echo K; sleep 0.3
    req three; sleep 0.5
    echo K; sleep 0.3
    echo k; sleep 0.3
    req four; sleep 1
} | openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername app.test -tls1_3 \
    -CAfile "$T/ca.pem" -crlf >ku.out 2>ku.err
check "s_client sent the key updates" eval '[ "$(grep -c KEYUPDATE ku.err)" = 4 ]'
check "four answers on one connection across the key updates" \
    eval '[ "$(grep -c "^HTTP/1.1 200" ku.out)" = 4 ] && [ "$(grep -c "^tlsrec-backend" ku.out)" = 4 ]'

# A resumed handshake (the ticket of a first connection) and one after a
# HelloRetryRequest (the client's first key share is for a group portier
# does not offer) are handed over too.
sc() { # NAME [s_client args]: one request, the answer in NAME.out
    local name=$1; shift
    { req "$name"; sleep 0.8; } | openssl s_client -connect "127.0.0.1:$HTTPS_PORT" \
        -servername app.test -tls1_3 -CAfile "$T/ca.pem" -crlf "$@" >"$name.out" 2>"$name.err"
}
sc first -sess_out sess.pem
sc resumed -sess_in sess.pem
check "a resumed TLS 1.3 connection is answered" \
    eval 'grep -q "^Reused, TLSv1.3" resumed.out && grep -q "^HTTP/1.1 200" resumed.out'
sc hrr -groups X448:X25519
check "a handshake after a HelloRetryRequest is answered" grep -q "^HTTP/1.1 200" hrr.out

# HTTP/2 (ALPN read before OpenSSL's state goes).
cl --http2 -w '%{http_version} %{http_code}\n' -o /dev/null "$URL/" -o /dev/null "$URL/?2" \
    -o h2big.got "$URL/big.bin" >h2.out 2>h2.err
check "HTTP/2 requests answered" eval '[ "$(grep -c "^2 200" h2.out)" = 3 ]'
[ "$(grep -c "^2 200" h2.out)" = 3 ] || note "$(cat h2.out h2.err)"
check "HTTP/2 download intact" cmp -s h2big.got www/big.bin

sleep 1.2
H1=$(metric portier_tls_handovers_total)
K1=$(metric 'portier_tls_handshakes_total{result="ok"}')
check "every TLS 1.3 connection was handed over (handovers ${H0} -> ${H1}, handshakes ${K0} -> ${K1})" \
    eval '[ "$((H1 - H0))" -ge 7 ] && [ "$((H1 - H0))" = "$((K1 - K0))" ]'

# TLS 1.2 stays on OpenSSL, and works the same.
cl --tls-max 1.2 -o big12.got "$URL/big.bin" -o /dev/null "$URL/" >t12.out 2>t12.err
check "TLS 1.2: download intact" cmp -s big12.got www/big.bin
sleep 1.2
H2=$(metric portier_tls_handovers_total)
K2=$(metric 'portier_tls_handshakes_total{result="ok"}')
check "TLS 1.2 is not handed over" eval '[ "$H2" = "$H1" ] && [ "$K2" = "$((K1 + 1))" ]'
finish

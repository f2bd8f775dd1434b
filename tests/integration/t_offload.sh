#!/bin/bash
# TLS offload with real peers: portier terminates TLS with an uploaded
# certificate and proxies HTTP/1.1 to nginx (plain and https), on the same
# port as a passthrough domain.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r PB PS PP <<<"$(free_ports 3)"
make_cert front "DNS:app.test,DNS:*.app.test"
make_cert back "DNS:backend.internal,IP:127.0.0.1"
make_cert pass "DNS:pass.test"
mkdir -p www
echo "offload-backend" >www/index.html
head -c $((64 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
log_format conn '\$connection \$request';
server {
    listen 127.0.0.1:$PB;
    access_log $T/nginx-be/logs/plain.log pt; root $T/www;
    access_log $T/nginx-be/logs/conn.log conn;
    keepalive_timeout 75s;
    client_max_body_size 100m;
    location = /upload { proxy_pass http://127.0.0.1:$PB/sink; }
    location = /sink { return 200 \"got \$content_length\n\"; }
    location = /echo-headers { return 200 \"xff=\$http_x_forwarded_for real=\$http_x_real_ip proto=\$http_x_forwarded_proto host=\$http_x_forwarded_host\n\"; }
}
server {
    listen 127.0.0.1:$PS ssl;
    ssl_certificate $T/back.pem; ssl_certificate_key $T/back.key;
    access_log $T/nginx-be/logs/tls.log pt; root $T/www;
    access_log $T/nginx-be/logs/tlsconn.log conn;
}
server {
    listen 127.0.0.1:$PP ssl proxy_protocol;
    ssl_certificate $T/pass.pem; ssl_certificate_key $T/pass.key;
    set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
    access_log $T/nginx-be/logs/pass.log pt; root $T/www;
}" || bail "nginx backends start"
start_portierd --hello-timeout 3 --idle-timeout 6 || bail "portierd starts"

api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PB\"]}"
api PUT /api/v1/backends/webtls "{\"servers\":[\"127.0.0.1:$PS\"],\"tls\":true,\"tls_verify\":false}"
api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:$PP\"],\"proxy_protocol\":\"v2\"}"
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual","response_headers":{"Content-Security-Policy":"object-src '"'"'self'"'"'"},"hsts":true}'
check "offload domain created" is_status 201
api PUT /api/v1/domains/tls.app.test '{"mode":"offload","backend":"webtls","certificate":"manual"}'
api PUT /api/v1/domains/pass.test '{"mode":"passthrough","backend":"yuno"}'
check "passthrough domain on the same port" is_status 201

get() { # NAME PATH [curl args]
    local n=$1 p=$2; shift 2
    curl -sS --max-time 60 --cacert "$T/ca.pem" --resolve "$n:$HTTPS_PORT:127.0.0.1" "$@" "https://$n:$HTTPS_PORT$p"
}
out=$(get app.test / 2>&1)
check "before a certificate exists the handshake fails cleanly" grep -qiE 'alert|handshake|unrecognized' <<<"$out"

upload_cert front
check "certificate upload -> 201" is_status 201

body=$(get app.test / --interface 127.0.0.2 -D hdrs.txt)
check "offload: curl gets the page over TLS terminated by portier" [ "$body" = offload-backend ]
check "the configured CSP header is in the response" grep -qi "^Content-Security-Policy: object-src 'self'" hdrs.txt
check "HSTS is added" grep -qi '^Strict-Transport-Security: max-age=' hdrs.txt
check "backend logs the client 127.0.0.2 in X-Forwarded-For and X-Real-IP" \
    grep -q '^127.0.0.1|-|-|127.0.0.2|127.0.0.2|GET / HTTP/1.1|200|.*|https|app.test' nginx-be/logs/plain.log
body=$(get app.test /echo-headers --interface 127.0.0.3 -H 'X-Forwarded-For: 198.51.100.1' -H 'X-Real-IP: 6.6.6.6')
check "X-Forwarded-For and X-Real-IP replaced (untrusted client), proto https, host forwarded" \
    [ "$body" = "xff=127.0.0.3 real=127.0.0.3 proto=https host=app.test:$HTTPS_PORT" ]

body=$(get pass.test / --interface 127.0.0.4)
check "passthrough domain still works on the same port" [ "$body" = offload-backend ]
check "passthrough backend sees the real client" grep -q '^127.0.0.4|127.0.0.4|pass.test|' nginx-be/logs/pass.log

body=$(get tls.app.test /)
check "offload to an https backend (tls: true)" [ "$body" = offload-backend ]

get app.test /big.bin -o big.out
check "64 MiB download through offload is byte-identical" cmp -s big.out www/big.bin
rm -f big.out
body=$(get app.test /upload --data-binary @www/big.bin -H 'Content-Type: application/octet-stream')
check "64 MiB upload through offload arrives whole (Content-Length)" [ "$body" = "got 67108864" ]
body=$(get app.test /upload -H 'Transfer-Encoding: chunked' --data-binary @www/index.html)
check "chunked upload is forwarded" grep -q '^got' <<<"$body"

n=$(curl -sS --max-time 30 --cacert "$T/ca.pem" --resolve "app.test:$HTTPS_PORT:127.0.0.1" \
    -w '%{num_connects}\n' -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    "https://app.test:$HTTPS_PORT/" "https://app.test:$HTTPS_PORT/" "https://app.test:$HTTPS_PORT/" \
    "https://app.test:$HTTPS_PORT/" "https://app.test:$HTTPS_PORT/" | awk "{s+=\$1} END {print s}")
check "keep-alive: five requests over one client connection (connects: $n)" [ "$n" = 1 ]

# Session resumption: a ticket from one connection resumes on the next ones,
# whichever of the two workers the kernel hands them to (shared ticket key).
# (TLS 1.3 tickets come after the handshake: give s_client time to read them.)
sleep 1 | openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername app.test -tls1_3 \
    -sess_out sess.pem >/dev/null 2>&1
resumed=0
for i in 1 2 3 4 5 6; do
    sleep 0.2 | openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername app.test -tls1_3 \
        -sess_in sess.pem 2>/dev/null | grep -q '^Reused, TLSv1.3' && resumed=$((resumed + 1))
done
check "TLS session tickets resume across workers ($resumed of 6 resumed)" [ "$resumed" = 6 ]

for i in 1 2 3 4 5 6; do get app.test "/pool-$i" -o /dev/null; done
conns=$(awk '$3 ~ /^\/pool-/ {print $1}' nginx-be/logs/conn.log | sort -u | wc -l)
check "six client connections use at most one pooled backend connection per worker ($conns)" \
    [ "$conns" -ge 1 -a "$conns" -le 2 ]
api PUT /api/v1/backends/webdns "{\"servers\":[\"localhost:$PB\"]}"
api PUT /api/v1/domains/dns.app.test '{"mode":"offload","backend":"webdns","certificate":"manual"}'
for i in 1 2 3 4 5 6; do get dns.app.test "/dnspool-$i" -o /dev/null; done
conns=$(awk '$3 ~ /^\/dnspool-/ {print $1}' nginx-be/logs/conn.log | sort -u | wc -l)
check "a server given by DNS name is pooled too ($conns backend connections for six clients)" \
    [ "$conns" -ge 1 -a "$conns" -le 2 ]
for i in 1 2 3 4 5 6; do get tls.app.test "/tlspool-$i" -o /dev/null; done
conns=$(awk '$3 ~ /^\/tlspool-/ {print $1}' nginx-be/logs/tlsconn.log | sort -u | wc -l)
check "a TLS backend's connections are pooled with their TLS state ($conns for six clients)" \
    [ "$conns" -ge 1 -a "$conns" -le 2 ]

code=$(get app.test / -o /dev/null -w '%{http_code}' -H 'Host: pass.test')
check "Host of another route than the SNI -> 421" [ "$code" = 421 ]
code=$(get app.test / --http1.1 -o /dev/null -w '%{http_code}' -H 'Content-Length: 1' -H 'Transfer-Encoding: chunked' -d x)
check "smuggling shape (CL + TE) over HTTP/1.1 -> 400" [ "$code" = 400 ]

out=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername app.test -tls1_1 \
    -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1)
check "TLS 1.1 is refused" grep -q 'Cipher is (NONE)\|no protocols available\|alert protocol version\|unsupported protocol' <<<"$out"
out=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername app.test -alpn h2,http/1.1 </dev/null 2>&1)
check "ALPN negotiates h2 (http2 on by default; t_h2.sh tests it)" grep -q 'ALPN protocol: h2' <<<"$out"
out=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername tls.app.test -alpn h2,http/1.1 </dev/null 2>&1)
check "ALPN negotiates http/1.1 for a TLS backend (no h2 towards it yet)" grep -q 'ALPN protocol: http/1.1' <<<"$out"

# The keep-alive race: a backend that closes a kept-alive connection when the
# next request arrives. An idempotent request is sent once more on a new
# connection instead of failing with 502.
read -r ONESHOT <<<"$(free_ports 1)"
"$PY" - "$ONESHOT" <<'PYEOF' &
import socket, sys, threading, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)
srv.settimeout(1)
def serve(conn):
    data, served = b"", 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        while b"\r\n\r\n" in data:
            head, _, data = data.partition(b"\r\n\r\n")
            if served:
                conn.close()  # promised keep-alive, then drops the next request
                return
            body = b"oneshot-ok"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            served = 1
    conn.close()
end = time.time() + 60
while time.time() < end:
    try:
        c, _ = srv.accept()
    except OSError:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PYEOF
track_pid $!
wait_until 5 port_listening "$ONESHOT"
api PUT /api/v1/backends/oneshot "{\"servers\":[\"127.0.0.1:$ONESHOT\"]}"
api PUT /api/v1/domains/one.app.test '{"mode":"offload","backend":"oneshot","certificate":"manual"}'
out=$(curl -sS --max-time 20 --cacert "$T/ca.pem" --resolve "one.app.test:$HTTPS_PORT:127.0.0.1" \
    -w ' %{http_code}\n' "https://one.app.test:$HTTPS_PORT/a" "https://one.app.test:$HTTPS_PORT/b" 2>&1)
check "a GET on a kept-alive backend connection that the backend drops is retried once, not 502" \
    [ "$out" = "oneshot-ok 200
oneshot-ok 200" ]

# Slow heads get 408 after --hello-timeout; a backend that accepts but never
# answers gets 504 after --idle-timeout.
start=$(now_ms)
got=$("$PY" - "$HTTPS_PORT" "$T/ca.pem" <<'PYEOF'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="app.test")
s.settimeout(20)
s.sendall(b"GET / HTTP/1.1\r\nHost: app")
print(s.recv(100).split(b"\r\n")[0].decode())
PYEOF
)
check "a request head that stalls gets 408 after --hello-timeout ($(( $(now_ms) - start )) ms)" \
    [ "$got" = "HTTP/1.1 408 Request Timeout" ]
read -r SILENT <<<"$(free_ports 1)"
"$PY" -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); c=[]
end=time.time()+30
while time.time() < end:
    s.settimeout(1)
    try: c.append(s.accept()[0])
    except OSError: pass' "$SILENT" &
track_pid $!
wait_until 5 port_listening "$SILENT"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$SILENT\"]}"
start=$(now_ms)
code=$(get app.test /slow -o /dev/null -w '%{http_code}')
ms=$(( $(now_ms) - start ))
check "a backend that never answers -> 504 after --idle-timeout (${ms} ms)" [ "$code" = 504 -a "$ms" -ge 5000 ]

api PUT /api/v1/backends/web '{"servers":["127.0.0.1:1"]}'
code=$(get app.test / -o /dev/null -w '%{http_code}')
check "unreachable backend -> 502" [ "$code" = 502 ]

finish

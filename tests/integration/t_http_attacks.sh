#!/bin/bash
# The four holes of issue 10, tried through TLS offload and port 80 against a
# real nginx (realip on X-Real-IP, a vhost "hidden.test" that only 127.0.0.9
# may reach), plus the memory bound and the slow-peer timeouts:
#   1. a chunked body framed leniently (pooled case: client B's request must
#      not be eaten by what client A left on a pooled backend connection);
#   2. bytes after an Upgrade request that got no 101 are the next request;
#   3. a connection cannot make the worker buffer without bound;
#   4. an absolute-form target is checked like Host, sent in origin-form.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"
# ASan's quarantine keeps freed blocks resident: keep it small here, the RSS
# of the worker is what this test measures.
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8:malloc_context_size=5"

read -r PB PH <<<"$(free_ports 2)"
make_cert front "DNS:a.test,DNS:other.test,DNS:slow.test"
mkdir -p www
echo "backend-page" >www/index.html
head -c $((64 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
log_format len '\$request_length';
server {
    listen 127.0.0.1:$PB default_server;
    set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;
    access_log $T/nginx-be/logs/be.log pt; root $T/www;
    keepalive_timeout 75s;
    location = /sink { return 200 \"sink\n\"; }
    location = /upload { proxy_pass http://127.0.0.1:$PB/sink; }
    location = /len { access_log $T/nginx-be/logs/len.log len; proxy_pass http://127.0.0.1:$PB/sink; }
    location = /echo-headers { return 200 \"xff=\$http_x_forwarded_for real=\$http_x_real_ip\n\"; }
}
server {
    listen 127.0.0.1:$PB;
    server_name hidden.test;
    set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;
    access_log $T/nginx-be/logs/hidden.log pt;
    allow 127.0.0.9; deny all;
    location / { return 200 \"hidden-admin\n\"; }
}" || bail "nginx backend starts"
# A backend that takes requests and never answers: a response stays pending.
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); held = []
while True:
    c, _ = s.accept(); held.append(c)' "$PH" &
track_pid $!
wait_until 5 port_listening "$PH" || bail "silent backend listens"

start_portierd --workers 1 --hello-timeout 5 --idle-timeout 30 --body-timeout 2 \
    --send-timeout 3 --trusted-proxy 127.0.0.5/32 || bail "portierd starts"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PB\"],\"http_servers\":[\"127.0.0.1:$PB\"]}"
api PUT /api/v1/backends/hole "{\"servers\":[\"127.0.0.1:$PH\"],\"http_servers\":[\"127.0.0.1:$PH\"]}"
api PUT /api/v1/domains/a.test '{"mode":"offload","backend":"web","certificate":"manual"}'
api PUT /api/v1/domains/other.test '{"mode":"offload","backend":"web","certificate":"manual"}'
api PUT /api/v1/domains/slow.test '{"mode":"offload","backend":"hole","certificate":"manual"}'
api PUT /api/v1/domains/yuno.test '{"mode":"passthrough","backend":"web"}'
api PUT /api/v1/domains/slow80.test '{"mode":"passthrough","backend":"hole"}'
check "domains created" is_status 201
upload_cert front
check "certificate uploaded" is_status 201
WPID=$(worker_pids)

# tls NAME ARGS... / p80 ARGS...: h1client.py through offload or port 80.
tls() { local n=$1; shift; "$PY" "$HERE/tools/h1client.py" --tls "$n" --ca "$T/ca.pem" "$@"; }
tls_to() { tls "$1" 127.0.0.1 "$HTTPS_PORT" "${@:2}"; }
p80_to() { "$PY" "$HERE/tools/h1client.py" 127.0.0.1 "$HTTP_PORT" "$@"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$WPID/status"; }
status_of() { head -1 <<<"$1" | tr -d '\r'; }
smuggled_seen() { grep -q "$1" nginx-be/logs/be.log nginx-be/logs/hidden.log; }

check "offload serves a plain request" grep -q backend-page <<<"$(tls_to a.test send 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')"
check "port 80 serves a plain request" grep -q backend-page <<<"$(p80_to send 'GET / HTTP/1.1\r\nHost: yuno.test\r\nConnection: close\r\n\r\n')"

# ---- 1. chunked framing -------------------------------------------------------
# portier used to take "\nF" as the CRLF after the chunk data and "00" as the
# last chunk; nginx reads a chunk of 0xF00 bytes and answers /sink at once.
BAD='POST /sink HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\nF00\r\n\r\n'
SMUG='GET /smuggled-NAME HTTP/1.1\r\nHost: hidden.test\r\nX-Real-IP: 127.0.0.9\r\n\r\n'
for via in offload port80; do
    if [ $via = offload ]; then host=a.test; to() { tls_to a.test "$@"; }
    else host=yuno.test; to() { p80_to "$@"; }; fi
    bad=${BAD//HOST/$host}
    out=$(to send "$bad" 3)
    check "$via: a chunk not followed by CRLF -> 400" [ "$(status_of "$out")" = "HTTP/1.1 400 Bad Request" ]
    # The follow-up request whose body carries, at the offset where nginx's
    # 0xF00-byte chunk would end, the end of that body and a request to the
    # hidden vhost with a forged X-Real-IP. Its rewritten head length comes
    # from nginx itself ($request_length of the same request sent alone,
    # with a Content-Length of as many digits).
    smug=${SMUG//NAME/$via}
    smug_len=$("$PY" -c 'import sys; print(len(sys.argv[1].encode().decode("unicode_escape")))' "$smug")
    pad() { "$PY" -c 'import sys; print("x" * int(sys.argv[1]), end="")' "$1"; }
    req2() { printf 'POST /len HTTP/1.1\\r\\nHost: %s\\r\\nContent-Length: %d\\r\\n\\r\\n%s\\r\\n0\\r\\n\\r\\n%s' \
        "$host" $(($1 + 7 + smug_len)) "$(pad "$1")" "$smug"; }
    : >nginx-be/logs/len.log
    to send "$(req2 3000)" 3 >/dev/null
    total=$(tail -1 nginx-be/logs/len.log)
    head_len=$(( ${total:-0} - 3000 - 7 - smug_len ))
    k=$(( 0xF00 - head_len ))
    check "$via: calibration (head of $head_len bytes as nginx sees it)" [ "$head_len" -gt 0 ] && [ "$k" -gt 0 ]
    out=$(to send "$bad$(req2 $k)" 3)
    check "$via: the smuggling pair is refused (400), nothing of the hidden vhost comes back" \
        eval '[ "$(status_of "$out")" = "HTTP/1.1 400 Bad Request" ] && ! grep -q hidden-admin <<<"$out"'
    check "$via: the hidden request never reached nginx as a request" eval '! smuggled_seen smuggled-$via'
    # Pooled case: A leaves, B comes on a fresh connection to the same backend.
    to send "$bad" 2 >/dev/null
    if [ $via = offload ]; then
        out=$(tls a.test --src 127.0.0.3 127.0.0.1 "$HTTPS_PORT" send 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n' 5)
    else
        out=$("$PY" "$HERE/tools/h1client.py" --src 127.0.0.3 127.0.0.1 "$HTTP_PORT" send 'GET / HTTP/1.1\r\nHost: yuno.test\r\nConnection: close\r\n\r\n' 5)
    fi
    check "$via: client B after A's broken body gets its own page" grep -q backend-page <<<"$out"
    for shape in '0x5\r\nhello\r\n0\r\n\r\n' '5\nhello\r\n0\r\n\r\n' '10000000000000005\r\nhello\r\n0\r\n\r\n'; do
        out=$(to send "POST /sink HTTP/1.1\\r\\nHost: $host\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n$shape" 3)
        check "$via: chunk size '${shape%%\\*}...' -> 400" [ "$(status_of "$out")" = "HTTP/1.1 400 Bad Request" ]
    done
done

# ---- 2. Upgrade without 101 ---------------------------------------------------
out=$(p80_to send 'GET / HTTP/1.1\r\nHost: yuno.test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET /smuggled-upgrade HTTP/1.1\r\nHost: hidden.test\r\nX-Real-IP: 127.0.0.9\r\n\r\n' 3)
check "port 80: an Upgrade answered 200 is a plain response" grep -q backend-page <<<"$out"
check "port 80: the bytes after it are parsed as the next request (unknown host -> 404)" \
    grep -q '^HTTP/1.1 404 ' <<<"$out"
check "port 80: they never reach nginx unparsed" eval '! smuggled_seen smuggled-upgrade'
out=$(tls_to a.test send 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET /smuggled-upgrade2 HTTP/1.1\r\nHost: hidden.test\r\nX-Real-IP: 127.0.0.9\r\n\r\n' 3)
check "offload: the same pair: 200 then 421" eval 'grep -q backend-page <<<"$out" && grep -q "^HTTP/1.1 421 " <<<"$out"'
check "offload: nothing reached the hidden vhost" eval '! smuggled_seen smuggled-upgrade2'

# ---- 4. absolute-form and forwarded headers -------------------------------------
out=$(tls_to a.test send 'GET http://other.test/smuggled-abs HTTP/1.1\r\nHost: a.test\r\n\r\n' 3)
check "offload: absolute-form naming another route -> 421" [ "$(status_of "$out")" = "HTTP/1.1 421 Misdirected Request" ]
out=$(p80_to send 'GET http://hidden.test/smuggled-abs80 HTTP/1.1\r\nHost: yuno.test\r\n\r\n' 3)
check "port 80: absolute-form disagreeing with Host -> 421" [ "$(status_of "$out")" = "HTTP/1.1 421 Misdirected Request" ]
check "neither reached nginx" eval '! smuggled_seen smuggled-abs'
out=$(tls_to a.test send 'GET http://a.test/index.html?abs=1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n' 3)
check "offload: absolute-form for the right host is served" grep -q backend-page <<<"$out"
check "... and reaches nginx in origin-form" wait_until 5 grep -q '|GET /index.html?abs=1 HTTP/1.1|200|' nginx-be/logs/be.log
for via in offload port80; do
    r='GET /echo-headers HTTP/1.1\r\nHost: HOST\r\nX-Forwarded-For: 127.0.0.9\r\nX-Real-IP: 127.0.0.9\r\nForwarded: for=127.0.0.9\r\nConnection: close\r\n\r\n'
    if [ $via = offload ]; then out=$(tls a.test --src 127.0.0.4 127.0.0.1 "$HTTPS_PORT" send "${r//HOST/a.test}" 3)
    else out=$("$PY" "$HERE/tools/h1client.py" --src 127.0.0.4 127.0.0.1 "$HTTP_PORT" send "${r//HOST/yuno.test}" 3); fi
    check "$via: an untrusted client cannot choose X-Forwarded-For / X-Real-IP" grep -q '^xff=127.0.0.4 real=127.0.0.4$' <<<"$(tr -d '\r' <<<"$out")"
    # A --trusted-proxy (here without a PROXY header) is a front whose own
    # X-Forwarded-For is appended to.
    if [ $via = offload ]; then out=$(tls a.test --src 127.0.0.5 127.0.0.1 "$HTTPS_PORT" send "${r//HOST/a.test}" 3)
    else out=$("$PY" "$HERE/tools/h1client.py" --src 127.0.0.5 127.0.0.1 "$HTTP_PORT" send "${r//HOST/yuno.test}" 3); fi
    check "$via: a trusted proxy's X-Forwarded-For is appended to" grep -q '^xff=127.0.0.9, 127.0.0.5 real=127.0.0.5$' <<<"$(tr -d '\r' <<<"$out")"
done

# ---- 3. memory bound ---------------------------------------------------------------
# Documented in docs/operations.md: under 1 MiB of buffers per connection;
# the check allows 24 MiB of RSS growth for one connection (ASan's allocator
# and its shadow memory), against the hundreds of MiB of the unbounded case.
BOUND_KB=$((24 * 1024))
for via in offload port80; do
    rss0=$(rss_kb)
    if [ $via = offload ]; then
        tls slow.test 127.0.0.1 "$HTTPS_PORT" flood 'GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n' 256 4 >flood.out &
    else
        "$PY" "$HERE/tools/h1client.py" 127.0.0.1 "$HTTP_PORT" flood 'GET / HTTP/1.1\r\nHost: slow80.test\r\n\r\n' 256 4 >flood.out &
    fi
    fp=$!
    wait_until 20 grep -q sent flood.out
    rss1=$(rss_kb)
    wait $fp
    note "$via flood: $(cat flood.out), worker RSS ${rss0} kB -> ${rss1} kB"
    check "$via: streaming 256 MiB behind a pending response: worker RSS grows < $BOUND_KB kB ($((rss1 - rss0)))" \
        [ $((rss1 - rss0)) -lt $BOUND_KB ]

    rss0=$(rss_kb)
    if [ $via = offload ]; then
        tls a.test 127.0.0.1 "$HTTPS_PORT" noread 'GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n' 7 >noread.out &
    else
        "$PY" "$HERE/tools/h1client.py" 127.0.0.1 "$HTTP_PORT" noread 'GET /big.bin HTTP/1.1\r\nHost: yuno.test\r\n\r\n' 7 >noread.out &
    fi
    fp=$!
    wait_until 5 grep -q held noread.out
    sleep 2
    rss1=$(rss_kb)
    wait $fp
    note "$via never-read 64 MiB: $(tail -1 noread.out), worker RSS ${rss0} kB -> ${rss1} kB"
    check "$via: a client that never reads a 64 MiB response: RSS grows < $BOUND_KB kB ($((rss1 - rss0)))" \
        [ $((rss1 - rss0)) -lt $BOUND_KB ]
    read -r _ got state < <(tail -1 noread.out)
    check "$via: ... and it is cut after --send-timeout (got $got bytes, $state)" \
        eval '[ "$state" = closed ] && [ "$got" -lt $((64 * 1024 * 1024)) ]'
done

# ---- slow body -------------------------------------------------------------------------
start=$(now_ms)
out=$(tls_to a.test send 'POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\n0123456789' 10)
took=$(( $(now_ms) - start ))
check "offload: a body that stops coming -> 408 after --body-timeout 2 s ($took ms)" \
    eval '[ "$(status_of "$out")" = "HTTP/1.1 408 Request Timeout" ] && [ $took -lt 8000 ]'
start=$(now_ms)
out=$(p80_to send 'POST /upload HTTP/1.1\r\nHost: yuno.test\r\nContent-Length: 100\r\n\r\n0123456789' 10)
took=$(( $(now_ms) - start ))
check "port 80: the same -> 408 ($took ms)" \
    eval '[ "$(status_of "$out")" = "HTTP/1.1 408 Request Timeout" ] && [ $took -lt 8000 ]'

# ---- keep-alive on port 80 -----------------------------------------------------------------
out=$(p80_to send 'GET / HTTP/1.1\r\nHost: yuno.test\r\n\r\nGET /index.html HTTP/1.1\r\nHost: yuno.test\r\nConnection: close\r\n\r\n' 3)
check "port 80 keeps the connection: two pipelined requests, two answers" [ "$(grep -c backend-page <<<"$out")" = 2 ]

finish

#!/bin/bash
# Active health checks (a backend's "health_check"): HTTP, TLS and TCP checks
# with rise/fall thresholds mark servers down and up without any client
# traffic, and an offload domain whose only server fails its check answers
# 502 at once without sending the request there.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P_OK P_BAD P_TLS P_PLAIN DEAD <<<"$(free_ports 5)"
make_cert a "DNS:app.test"
start_nginx be "
server {
    listen 127.0.0.1:$P_OK; access_log $T/nginx-be/logs/ok.log pt;
    location = /ok { return 200 'fine'; }
    location / { return 404; }
}
server { listen 127.0.0.1:$P_BAD; access_log $T/nginx-be/logs/bad.log combined; return 503; }
server {
    listen 127.0.0.1:$P_TLS ssl; ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    return 200;
}
server { listen 127.0.0.1:$P_PLAIN; return 200; }" || bail "nginx backends start"

start_portierd --workers 2 || bail "portierd starts"
hc() { printf '"health_check":{"type":"%s","interval_s":1,"timeout_s":1,"rise":2,"fall":2%s}' "$1" "${2:+,\"path\":\"$2\"}"; }
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$P_OK\"],$(hc http /ok)}"
check "backend with an HTTP check created" is_status 201
check "GET shows the check" json_true 'd["health_check"] == {"type":"http","interval_s":1,"timeout_s":1,"rise":2,"fall":2,"path":"/ok"}'
api PUT /api/v1/backends/bad "{\"servers\":[\"127.0.0.1:$P_BAD\"],$(hc http /)}"
check "backend whose server answers 503 created" is_status 201
api PUT /api/v1/backends/tlsok "{\"servers\":[\"127.0.0.1:$P_TLS\"],$(hc tls)}"
check "backend with a TLS check created" is_status 201
api PUT /api/v1/backends/tlsbad "{\"servers\":[\"127.0.0.1:$P_PLAIN\"],$(hc tls)}"
check "backend with a TLS check on a plain server created" is_status 201
api PUT /api/v1/backends/gone "{\"servers\":[\"127.0.0.1:$DEAD\"],$(hc tcp)}"
check "backend with a TCP check on a closed port created" is_status 201
api PUT /api/v1/backends/x '{"servers":["127.0.0.1:1"],"health_check":{"type":"tcp","path":"/"}}'
check "a path on a TCP check is refused" is_status 400
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"bad","certificate":"manual"}'
check "offload domain on the failing backend" is_status 201
upload_cert a
check "certificate uploaded" is_status 201

check "HTTP check 503: down, without any client" wait_until 8 server_is bad "127.0.0.1:$P_BAD" down
check "TLS check on a plain server: down" wait_until 8 server_is tlsbad "127.0.0.1:$P_PLAIN" down
check "TCP check on a closed port: down" wait_until 8 server_is gone "127.0.0.1:$DEAD" down
sleep 3
check "HTTP check 200 on its path: still up" server_is web "127.0.0.1:$P_OK" up
check "TLS check on a TLS server: still up" server_is tlsok "127.0.0.1:$P_TLS" up
check "the HTTP check asked for its path" grep -q 'GET /ok HTTP/1.1' nginx-be/logs/ok.log
api GET /api/v1/backends/bad
check "failures are counted" json_true 'd["health"][0]["failures"] >= 2'

t0=$(now_ms)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert ca.pem \
    --resolve "app.test:$HTTPS_PORT:127.0.0.1" "https://app.test:$HTTPS_PORT/page")
el=$(( $(now_ms) - t0 ))
check "its only server down: 502 at once (${el} ms)" eval '[ "$code" = 502 ] && [ "$el" -lt 1000 ]'
check "the request never reached the failing server" eval '! grep -q "GET /page" nginx-be/logs/bad.log'

# The closed port opens: two checks in a row pass, the server is up.
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True: s.accept()[0].close()' "$DEAD" &
track_pid $!
check "TCP check: the server that opened is up after rise checks" wait_until 10 server_is gone "127.0.0.1:$DEAD" up

api PUT /api/v1/backends/gone "{\"servers\":[\"127.0.0.1:$DEAD\"]}"
check "check removed" is_status 200
check "GET shows no check" json_true 'd["health_check"] is None'

stop_portierd
finish

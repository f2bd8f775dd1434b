#!/bin/bash
# Backend health (passive): a black-holed first server (connects hang) and a
# refused one cost one failure, after which connections go straight to the
# next server; a backend whose every server is down answers at once; a server
# that comes back is found by the background probe. One worker, so every
# connection meets the same health memory.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 BH DEAD <<<"$(free_ports 3)"
make_cert a "DNS:bh.test,DNS:rf.test,DNS:down.test"
mkdir -p www1 www2
echo "backend-one" >www1/index.html
echo "recovered" >www2/index.html
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key; root $T/www1;
}" || bail "nginx backend starts"

"$PY" "$HERE/tools/blackhole.py" "$BH" >bh.out 2>&1 &
BH_PID=$!
track_pid "$BH_PID"
check "the black hole is one (a connect to it times out)" wait_until 5 grep -q ready bh.out

start_portierd --workers 1 --connect-timeout 2 || bail "portierd starts"
api PUT /api/v1/backends/bh "{\"servers\":[\"127.0.0.1:$BH\",\"127.0.0.1:$P1\"]}"
check "backend bh (black hole first) created" is_status 201
api PUT /api/v1/backends/rf "{\"servers\":[\"127.0.0.1:$DEAD\",\"127.0.0.1:$P1\"]}"
check "backend rf (refused server first) created" is_status 201
api PUT /api/v1/backends/down "{\"servers\":[\"127.0.0.1:$BH\"]}"
check "backend down (only the black hole) created" is_status 201
for d in bh rf down; do
    api PUT "/api/v1/domains/$d.test" "{\"mode\":\"passthrough\",\"backend\":\"$d\"}"
    check "domain $d.test created" is_status 201
done

# fetch NAME: prints "BODY TIME_TOTAL"
fetch() {
    curl -sS --max-time 20 --cacert "$T/ca.pem" --resolve "$1:$HTTPS_PORT:127.0.0.1" \
        -w ' %{time_total}' "https://$1:$HTTPS_PORT/" 2>/dev/null | tr -d '\n'
}
ms() { "$PY" -c 'import sys; print(int(float(sys.argv[1]) * 1000))' "$1"; }

out=$(fetch bh.test)
first=$(ms "${out##* }")
check "first connection through the black hole pays one connect timeout (${first} ms)" \
    eval '[ "${out% *}" = backend-one ] && [ "$first" -ge 1900 ]'
slow=0 bad=0 times=""
for i in 1 2 3 4 5 6; do
    out=$(fetch bh.test)
    t=$(ms "${out##* }"); times="$times $t"
    [ "${out% *}" = backend-one ] || bad=$((bad + 1))
    [ "$t" -lt 1000 ] || slow=$((slow + 1))
done
note "six later connections took (ms):$times"
check "later connections all served by the next server" [ "$bad" = 0 ]
check "later connections skip the black hole (none waits for the connect timeout)" [ "$slow" = 0 ]

out=$(fetch rf.test)
check "refused first server: served by the next" [ "${out% *}" = backend-one ]
for i in 1 2 3 4 5; do fetch rf.test >/dev/null; done

check "API: the refused server is down" wait_until 5 server_is rf "127.0.0.1:$DEAD" down
check "API: the black hole is down" wait_until 5 server_is bh "127.0.0.1:$BH" down
check "API: the good server is up" server_is bh "127.0.0.1:$P1" up
api GET /api/v1/status
check "status lists the servers' health" \
    json_true 'any(s["server"] == a[0] and s["state"] == "down" for s in d["servers"])' "127.0.0.1:$DEAD"
api GET /api/v1/backends/rf
api PUT /api/v1/backends/rf "$BODY"
check "a backend as GET shows it (health included) can be PUT back" is_status 200
check "health memory survives a new configuration" server_is rf "127.0.0.1:$DEAD" down
api GET /metrics
printf '%s\n' "$BODY" >metrics.txt
fails=$(grep -F "portier_backend_server_failures_total{backend=\"rf\",server=\"127.0.0.1:$DEAD\"}" metrics.txt | awk '{print $2}')
note "failures counted for the refused server after 6 connections: $fails"
check "refused server tried once, not per connection (failures $fails < 4)" \
    eval '[ -n "$fails" ] && [ "$fails" -lt 4 ]'
check "/metrics: black hole server_up 0" \
    grep -qF "portier_backend_server_up{backend=\"bh\",server=\"127.0.0.1:$BH\"} 0" metrics.txt

t0=$(now_ms)
out=$(curl -sS --max-time 20 --cacert "$T/ca.pem" --resolve "down.test:$HTTPS_PORT:127.0.0.1" \
    "https://down.test:$HTTPS_PORT/" 2>&1)
el=$(( $(now_ms) - t0 ))
check "every server down: the handshake fails at once (${el} ms), not after a timeout" \
    [ "$el" -lt 1000 ]
check "every server down: a TLS alert, not a hang" grep -qi 'alert' <<<"$out"

# The refused server comes back: the background probe finds it.
start_nginx back "
server {
    listen 127.0.0.1:$DEAD ssl;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key; root $T/www2;
}" || bail "the refused server comes back"
check "API: the server that came back is up again (background probe)" \
    wait_until 20 server_is rf "127.0.0.1:$DEAD" up
out=$(fetch rf.test)
check "traffic goes to the first server again" [ "${out% *}" = recovered ]

stop_portierd
finish

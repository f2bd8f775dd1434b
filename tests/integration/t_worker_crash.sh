#!/bin/bash
# A worker killed mid-transfer (issue 16): only the connections it was relaying
# fail, every other download completes byte for byte, the slot is respawned and
# on the current configuration (500 domains) in under a second and a half
# (the figure is printed), and /api/v1/status answers promptly meanwhile.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r PT <<<"$(free_ports 1)"
make_cert pass "DNS:pass.test"
mkdir -p www
head -c $((8 * 1024 * 1024)) /dev/urandom >www/big.bin
start_nginx be "
server {
    listen 127.0.0.1:$PT ssl;
    ssl_certificate $T/pass.pem; ssl_certificate_key $T/pass.key;
    root $T/www; limit_rate 2m;
}" || bail "nginx backend starts"
start_portierd --workers 2 || bail "portierd starts"
api PUT /api/v1/backends/tls "{\"servers\":[\"127.0.0.1:$PT\"]}"
api PUT /api/v1/domains/pass.test '{"mode":"passthrough","backend":"tls"}'
# A configuration of some size, so that "current" means a real snapshot.
"$PY" - "$API_PORT" "$TOKEN" <<'PYEOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(500):
    c.request("PUT", "/api/v1/domains/d%d.bulk.test" % i, '{"mode":"passthrough","backend":"tls"}',
              {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
    c.getresponse().read()
PYEOF
CV=$(cfg_version)
check "500 more domains configured (version $CV)" workers_at "$CV" 2

N=8
for i in $(seq 1 $N); do
    curl -sS --max-time 30 --cacert ca.pem --resolve "pass.test:$HTTPS_PORT:127.0.0.1" \
        -o "dl.$i" "https://pass.test:$HTTPS_PORT/big.bin" 2>"dl.$i.err" &
    echo $! >"dl.$i.pid"
done
sleep 2 # let both workers report their connections (once a second)
api GET /api/v1/status
VICTIM=$(json_get 'd["workers"][0]["pid"]')
HELD=$(json_get 'd["workers"][0]["connections"]')
note "worker 0 (pid $VICTIM) holds $HELD of the $N downloads"
T0=$(now_ms)
kill -9 "$VICTIM"
slow=0 back=""
current_again() {
    local t0 t; t0=$(now_ms)
    api GET /api/v1/status
    t=$(( $(now_ms) - t0 ))
    [ $t -gt $slow ] && slow=$t
    json_true 'd["workers"][0]["pid"] not in (None, int(a[0])) and d["workers"][0]["serving"]
               and d["workers"][0]["config_version"] == int(a[1])' "$VICTIM" "$CV"
}
check "worker 0 respawned and current again within 5 s" wait_until 5 current_again
back=$(( $(now_ms) - T0 ))
note "respawned and on version $CV ${back} ms after the kill; slowest status answer meanwhile ${slow} ms"
check "respawned and current in under 1.5 s (${back} ms)" [ "$back" -lt 1500 ]
check "/api/v1/status answered within 300 ms throughout (${slow} ms)" [ "$slow" -lt 300 ]

ok=0 failed=0
for i in $(seq 1 $N); do
    wait "$(cat dl.$i.pid)"
    if cmp -s "dl.$i" www/big.bin; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
done
note "downloads: $ok complete, $failed cut"
check "exactly the victim's $HELD downloads were cut ($failed), the other $((N - HELD)) complete ($ok)" \
    eval '[ "$failed" = "$HELD" ] && [ "$ok" = $((N - HELD)) ]'
check "the other worker was untouched" eval '[ "$(json_get "d[\"workers\"][1][\"pid\"]")" != "$VICTIM" ]'
finish

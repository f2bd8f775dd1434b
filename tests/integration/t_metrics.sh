#!/bin/bash
# /metrics an operator can alert on (issue 16): after traffic, a certificate
# upload, a failing ACME certificate and a ban, `promtool check metrics` (the
# Prometheus project's own linter, Debian's prometheus package) finds nothing
# to say, every family has HELP and TYPE, and the values are the real ones:
# the certificate's expiry timestamp is its notAfter, the configuration apply
# histogram counts the changes, a worker's up gauge follows a kill.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"
command -v promtool >/dev/null || { echo "# promtool not installed: skipping"; exit 77; }

read -r PB <<<"$(free_ports 1)"
make_cert front "DNS:app.test"
mkdir -p www
echo hello >www/index.html
start_nginx be "
server {
    listen 127.0.0.1:$PB;
    root $T/www;
}" || bail "nginx backend starts"
start_portierd || bail "portierd starts"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PB\"]}"
api PUT /api/v1/domains/app.test '{"mode":"offload","backend":"web","certificate":"manual"}'
upload_cert front
check "certificate uploaded" is_status 201
CERT_ID=$(json_get 'd["id"]')
NOT_AFTER=$(date -d "$(openssl x509 -in front.pem -noout -enddate | cut -d= -f2)" +%s)
for i in 1 2 3; do
    curl -s -o /dev/null --cacert ca.pem --resolve "app.test:$HTTPS_PORT:127.0.0.1" "https://app.test:$HTTPS_PORT/"
done
# A smuggling shape (Content-Length and chunked together): the engine answers 400.
"$PY" - "$HTTPS_PORT" "$T/ca.pem" >smuggle.out 2>&1 <<'PYEOF'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                    server_hostname="app.test")
s.sendall(b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
PYEOF
check "the smuggling shape gets a 400" grep -q ' 400 ' smuggle.out
api POST /api/v1/bans '{"ip":"127.0.0.9","reason":"metrics test"}'
check "ban posted" is_status 201
curl -s -o /dev/null --max-time 3 --interface 127.0.0.9 --cacert ca.pem \
    --resolve "app.test:$HTTPS_PORT:127.0.0.1" "https://app.test:$HTTPS_PORT/"
sleep 1.5 # workers report once a second

api GET /metrics
printf '%s\n' "$BODY" >metrics.txt
check "/metrics answers 200" is_status 200
promtool check metrics <metrics.txt >promtool.out 2>&1
rc=$?
check "promtool check metrics: rc 0, nothing to say" eval '[ $rc = 0 ] && [ ! -s promtool.out ]'
[ -s promtool.out ] && note "$(head -20 promtool.out)"
fams_ok() {
    "$PY" - metrics.txt <<'PYEOF'
import re, sys
help, typ, samples = set(), set(), set()
for line in open(sys.argv[1]):
    if line.startswith("# HELP "):
        help.add(line.split()[2])
    elif line.startswith("# TYPE "):
        typ.add(line.split()[2])
    elif line.strip():
        samples.add(re.split(r"[{ ]", line)[0])
fams = {re.sub(r"_(bucket|sum|count)$", "", s) if s not in typ else s for s in samples}
missing = [f for f in fams if f not in help or f not in typ]
bad = [f for f in fams if not f.startswith("portier_")]
print("families:", len(typ), "missing HELP/TYPE:", missing, "no prefix:", bad)
sys.exit(1 if missing or bad or len(typ) < 10 else 0)
PYEOF
}
check "every family has HELP and TYPE and the portier_ prefix" fams_ok
check "certificate expiry = the certificate's notAfter ($NOT_AFTER)" \
    grep -q "^portier_certificate_expiry_timestamp_seconds{certificate=\"$CERT_ID\",domains=\"app.test\"} $NOT_AFTER\$" metrics.txt
check "config apply histogram counted the changes" \
    eval '[ "$(awk "/^portier_config_apply_seconds_count/ {print \$2}" metrics.txt)" -ge 3 ]'
check "the ban refused 127.0.0.9 under its reason" \
    grep -q '^portier_banned_connections_total{reason="metrics test"} [1-9]' metrics.txt
sample() { # NAME{LABELS}: its value
    awk -v k="$1" 'index($0, k " ") == 1 {print $2}' metrics.txt
}
ge() { local v; v=$(sample "$1"); WHY="$1 = ${v:-absent}"; [ -n "$v" ] && [ "${v%.*}" -ge "$2" ]; }
check "requests per route and backend server" \
    ge "portier_route_total{route=\"app.test\",mode=\"offload\",backend=\"web\",server=\"127.0.0.1:$PB\"}" 3
check "bytes sent per route (at least the three 6-byte bodies)" \
    ge "portier_route_sent_bytes_total{route=\"app.test\",mode=\"offload\",backend=\"web\",server=\"127.0.0.1:$PB\"}" 18
check "request latency histogram per route counts the requests" \
    ge 'portier_http_request_duration_seconds_count{route="app.test",mode="offload"}' 3
check "results by reason: the 200s" ge 'portier_results_total{mode="offload",result="200"}' 3
check "results by reason: the smuggling shape's 400" ge 'portier_results_total{mode="offload",result="400"}' 1
check "results by reason: the ban" ge 'portier_results_total{mode="passthrough",result="banned"}' 1
check "TLS handshakes counted" ge 'portier_tls_handshakes_total{result="ok"}' 4
check "backend server up" ge "portier_backend_server_up{backend=\"web\",server=\"127.0.0.1:$PB\"}" 1
check "access log drops exposed (none here)" \
    eval '[ "$(awk "/^portier_access_log_dropped_total/ {s += \$2} END {print s + 0}" metrics.txt)" = 0 ]'
check "both workers up" eval '[ "$(grep -c "^portier_worker_up{worker=\"[01]\"} 1" metrics.txt)" = 2 ]'

# The alert rules docs/operations.md suggests are valid rules for these names.
"$PY" - "$HERE/../../docs/operations.md" >rules.yml <<'PYEOF'
import re, sys
s = open(sys.argv[1]).read()
print(re.search(r"```yaml\n(.*?)```", s[s.index("### Alerts"):], re.S).group(1))
PYEOF
check "promtool check rules accepts the alert rules of docs/operations.md" \
    eval 'promtool check rules rules.yml >rules.out 2>&1'
rules_exposed() {
    local m
    for m in $(grep -o "portier_[a-z_]*" rules.yml | sort -u); do
        grep -q "^# TYPE $m " metrics.txt || { WHY="$m not exposed"; return 1; }
    done
}
check "every metric the rules use is exposed" rules_exposed

finish

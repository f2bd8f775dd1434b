#!/bin/bash
# ACME HTTP-01 against a real ACME server on loopback: pebble (issuing CA,
# real HTTP-01 validation against portier's --http port) and
# pebble-challtestsrv (its DNS: every name is 127.0.0.1, one name 127.0.0.2).
# See shared notes acme-pebble.md for the set-up and its pitfalls.
#
# Pebble rejects a share of good nonces (PEBBLE_WFE_NONCEREJECT, default 5,
# here 10): the client must retry badNonce. Authorization reuse is left at
# pebble's default (50%), so the "authz already valid" path runs too.
#
# ACME_RESPONDER=worker|sidecar (default: worker when worker/*.c answers
# /.well-known/acme-challenge/, else sidecar): with "sidecar", pebble's VA
# talks to a small responder that serves the store's acme_challenges table,
# which tests the client end to end before the worker's port-80 module exists.
# The TLS checks (served certificate, curl through the offload, no failed
# request during a renewal) run when the worker serves the stored
# certificate, and are skipped with a note otherwise.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
for tool in pebble pebble-challtestsrv openssl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "# $tool not installed (Debian: apt-get install pebble): skipping"; exit 77; }
done
REPO=$(cd "$HERE/../.." && pwd)
cd "$T"

read -r ACME_PORT MGMT_PORT DNS_PORT CTS_PORT BE_PORT SIDE_PORT <<<"$(free_ports 6)"
DB="$STATE_DIR/portier.db"

if [ -z "${ACME_RESPONDER:-}" ]; then
    if grep -qs 'acme-challenge' "$REPO"/worker/*.c; then ACME_RESPONDER=worker; else ACME_RESPONDER=sidecar; fi
fi
if [ "$ACME_RESPONDER" = sidecar ]; then
    note "ACME_RESPONDER=sidecar: HTTP-01 answers come from a sidecar reading the store," \
         "so the worker's port-80 path is NOT tested in this run"
    VA_PORT=$SIDE_PORT
else
    VA_PORT=$HTTP_PORT
fi

# ---- the store, read behind the daemon's back (WAL: readers never block it) ---
cat >db.py <<'EOF'
import json, sqlite3, sys, time
db, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def connect(rw=False):
    return sqlite3.connect(db if rw else 'file:%s?mode=ro' % db, uri=not rw, timeout=10)
def row(con, name):
    con.row_factory = sqlite3.Row
    for r in con.execute("SELECT * FROM certificates WHERE source = 'acme'"):
        try:
            if json.loads(r['domains']) == [name]:
                return r
        except ValueError:
            pass
    return None
if cmd == 'field':            # NAME COLUMN -> value ("" when no row or NULL)
    r = row(connect(), args[0])
    v = r[args[1]] if r is not None else None
    print('' if v is None else v)
elif cmd == 'rows':           # NAME -> number of ACME rows for NAME
    con = connect()
    print(sum(1 for (d,) in con.execute("SELECT domains FROM certificates WHERE source='acme'")
              if json.loads(d) == [args[0]]))
elif cmd == 'tokens':         # -> number of HTTP-01 answers in the store
    print(connect().execute("SELECT count(*) FROM acme_challenges").fetchone()[0])
elif cmd == 'wait-token':     # SECONDS: poll every 10 ms until an answer is stored
    end = time.time() + float(args[0])
    while time.time() < end:
        try:
            if connect().execute("SELECT count(*) FROM acme_challenges").fetchone()[0]:
                sys.exit(0)
        except sqlite3.Error:
            pass
        time.sleep(0.01)
    sys.exit(1)
elif cmd == 'renew-now':      # NAME: renew_after in the past, as if time had passed
    con = connect(rw=True)
    r = row(con, args[0])
    con.execute("UPDATE certificates SET renew_after = ? WHERE id = ?",
                (int(time.time()) - 1, r['id']))
    con.commit()
elif cmd == 'state':          # PREFIX -> values of acme_state keys starting with it
    for (v,) in connect().execute("SELECT value FROM acme_state WHERE key LIKE ? || '%'",
                                  (args[0],)):
        print(v)
EOF
dbq() { "$PY" "$T/db.py" "$DB" "$@" 2>/dev/null; }

# ---- pebble ---------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout tls-ca.key -out tls-ca.pem -days 2 -subj "/CN=pebble-test TLS CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout tls-key.pem -out tls.csr -subj "/CN=localhost" 2>/dev/null
printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' >tls-ext.cnf
openssl x509 -req -in tls.csr -CA tls-ca.pem -CAkey tls-ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 2 -extfile tls-ext.cnf -out tls-cert.pem 2>/dev/null
cat >pebble-config.json <<EOF
{ "pebble": {
    "listenAddress": "127.0.0.1:$ACME_PORT",
    "managementListenAddress": "127.0.0.1:$MGMT_PORT",
    "certificate": "$T/tls-cert.pem",
    "privateKey": "$T/tls-key.pem",
    "httpPort": $VA_PORT,
    "tlsPort": $(free_port),
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "certificateValidityPeriod": 3600
} }
EOF
env "$MARK" pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    -dns01 "127.0.0.1:$DNS_PORT" -management "127.0.0.1:$CTS_PORT" \
    -http01 "" -https01 "" -tlsalpn01 "" >challtestsrv.log 2>&1 &
track_pid $!
env -u PEBBLE_VA_ALWAYS_VALID "$MARK" PEBBLE_VA_NOSLEEP=1 \
    PEBBLE_WFE_NONCEREJECT="${PEBBLE_WFE_NONCEREJECT:-10}" \
    pebble -config pebble-config.json -dnsserver "127.0.0.1:$DNS_PORT" -strict=false >pebble.log 2>&1 &
track_pid $!
pebble_up() { curl -sf --max-time 2 --cacert tls-ca.pem "https://127.0.0.1:$ACME_PORT/dir" >/dev/null; }
cts_up() { curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$CTS_PORT/"; }
wait_until 20 pebble_up || { tail -n 20 pebble.log | sed 's/^/#   /'; bail "pebble answers on its directory"; }
wait_until 10 cts_up || bail "pebble-challtestsrv management answers"
check "pebble rejects nonces (badNonce path exercised)" grep -q 'reject' pebble.log
curl -sf --cacert tls-ca.pem "https://127.0.0.1:$MGMT_PORT/roots/0" >pebble-root.pem
curl -sf --cacert tls-ca.pem "https://127.0.0.1:$MGMT_PORT/intermediates/0" >pebble-int.pem
check "pebble's root and intermediate fetched" grep -q 'BEGIN CERTIFICATE' pebble-root.pem pebble-int.pem

if [ "$ACME_RESPONDER" = sidecar ]; then
    cat >sidecar.py <<'EOF'
import sqlite3, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
db, port = sys.argv[1], int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        pre = '/.well-known/acme-challenge/'
        ka = None
        if self.path.startswith(pre):
            con = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=5)
            r = con.execute("SELECT key_authorization FROM acme_challenges WHERE token = ?",
                            (self.path[len(pre):],)).fetchone()
            con.close()
            ka = r[0] if r else None
        body = (ka or 'not found').encode()
        self.send_response(200 if ka else 404)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        sys.stderr.write('sidecar: %s %s\n' % (self.path, a[1] if len(a) > 1 else ''))
ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
EOF
    env "$MARK" "$PY" sidecar.py "$DB" "$SIDE_PORT" >sidecar.log 2>&1 &
    track_pid $!
    wait_until 10 port_listening "$SIDE_PORT" || bail "sidecar responder listens"
fi

# ---- backend and portier --------------------------------------------------------
mkdir -p www
echo "hello from the backend" >www/index.html
start_nginx be "
server {
    listen 127.0.0.1:$BE_PORT;
    access_log $T/nginx-be/logs/access.log pt; root $T/www;
}" || bail "nginx backend starts"

ACME_FLAGS=(--acme-directory "https://127.0.0.1:$ACME_PORT/dir" --acme-email test@example.org
            --acme-ca-bundle "$T/tls-ca.pem")
start_portierd "${ACME_FLAGS[@]}" || bail "portierd starts with ACME on"
check "account key created in the state dir, mode 0600" \
    wait_until 10 eval '[ "$(stat -c %a "$STATE_DIR/acme-account.pem" 2>/dev/null)" = 600 ]'
ACCOUNT_KEY_SUM=$(sha256sum <"$STATE_DIR/acme-account.pem")

api GET /api/v1/certificates
if [ "$STATUS" = 200 ]; then CERT_API=1; else
    CERT_API=0; note "GET /api/v1/certificates answers $STATUS: certificate states read from the store"; fi

# cert_field NAME FIELD: from the API when it exists (id, status, last_error,
# not_after...), else from the store.
cert_field() {
    if [ "$CERT_API" = 1 ] && [ "$2" != cert_pem ] && [ "$2" != key_pem ] &&
       [ "$2" != retry_at ] && [ "$2" != failures ]; then
        ( api GET /api/v1/certificates
          json_get '([c.get(a[1]) for c in d["certificates"] if c.get("domains") == [a[0]]] + [None])[0] or ""' "$1" "$2" )
    else
        dbq field "$1" "$2"
    fi
}
status_is() { [ "$(cert_field "$1" status)" = "$2" ]; }
# wait_status NAME STATUS SECONDS (notes the state on failure)
wait_status() {
    wait_until "$3" status_is "$1" "$2" && return 0
    WHY="$1: status '$(cert_field "$1" status)', last_error '$(cert_field "$1" last_error)'"
    return 1
}
serial_of() { openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'; }
stored_serial() { dbq field "$1" cert_pem | serial_of; }
# served_serial NAME: serial of the certificate portier presents for SNI NAME
served_serial() {
    openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername "$1" </dev/null 2>/dev/null | serial_of
}
# verify_stored NAME: the stored chain verifies against pebble's root for NAME
verify_stored() {
    dbq field "$1" cert_pem >"$T/$1.chain.pem"
    awk '/BEGIN CERT/{n++} n==1' "$T/$1.chain.pem" >"$T/$1.leaf.pem"
    awk '/BEGIN CERT/{n++} n>=2' "$T/$1.chain.pem" >"$T/$1.rest.pem"
    local out; out=$(openssl verify -CAfile pebble-root.pem -untrusted "$T/$1.rest.pem" \
        -verify_hostname "$1" "$T/$1.leaf.pem" 2>&1)
    [ "$out" = "$T/$1.leaf.pem: OK" ] || { WHY="openssl verify: $out"; return 1; }
    # the stored key is the certificate's
    [ "$(openssl x509 -noout -pubkey -in "$T/$1.leaf.pem" | openssl sha256)" = \
      "$(dbq field "$1" key_pem | openssl pkey -pubout 2>/dev/null | openssl sha256)" ] ||
        { WHY="key_pem does not match the certificate"; return 1; }
}
fetch() { # NAME: GET / through portier's TLS offload, trusting pebble's root only
    curl -sS --max-time 10 --cacert pebble-root.pem --resolve "$1:$HTTPS_PORT:127.0.0.1" \
        "https://$1:$HTTPS_PORT/"
}

# ---- one domain -----------------------------------------------------------------
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$BE_PORT\"]}"
check "backend created" is_status 201
t0=$(now_ms)
api PUT /api/v1/domains/app1.example.test '{"mode":"offload","backend":"web"}'
check "offload domain app1.example.test (certificate acme by default) created" is_status 201
check "a certificate row (pending or already valid) appears for app1" \
    wait_until 15 eval '[ -n "$(cert_field app1.example.test status)" ]'
check "app1: certificate valid within 60 s" wait_status app1.example.test valid 60
note "app1 issued in $(( ($(now_ms) - t0) / 1000 )) s"
check "app1: one row, source acme, no last_error" \
    eval '[ "$(dbq rows app1.example.test)" = 1 ] && [ "$(dbq field app1.example.test source)" = acme ] &&
          [ -z "$(dbq field app1.example.test last_error)" ]'
check "app1: chain verifies against pebble's root, for the name, with the stored key" \
    verify_stored app1.example.test
check "app1: renew_after is 2/3 into the validity" eval '
    nb=$(dbq field app1.example.test not_before); na=$(dbq field app1.example.test not_after)
    ra=$(dbq field app1.example.test renew_after)
    [ -n "$ra" ] && [ "$ra" = $(( nb + (na - nb) * 2 / 3 )) ]'
check "HTTP-01 answers removed from the store after issuance" eval '[ "$(dbq tokens)" = 0 ]'
check "the account URL is kept in acme_state" eval '[ -n "$(dbq state account:)" ]'
ACCOUNT_URL=$(dbq state account:)
check "the key was not reused for the certificate (fresh key per certificate)" \
    eval '! dbq field app1.example.test key_pem | grep -q "$(sed -n 2p "$STATE_DIR/acme-account.pem")"'

SERIAL1=$(stored_serial app1.example.test)
TLS=0
if [ -n "$SERIAL1" ] && [ "$(served_serial app1.example.test)" = "$SERIAL1" ]; then
    TLS=1
    check "portier serves the stored certificate for app1" true
    body=$(fetch app1.example.test)
    check "curl https://app1.example.test through the offload, trusting pebble's root" \
        [ "$body" = "hello from the backend" ]
else
    note "the served certificate for app1 is not the stored one (serial '$(served_serial app1.example.test)'" \
         "vs '$SERIAL1'): worker TLS offload not there yet, TLS checks skipped"
fi

# ---- several at once, a wildcard, a failing challenge ---------------------------
for n in 2 3 4; do
    api PUT "/api/v1/domains/app$n.example.test" '{"mode":"offload","backend":"web","certificate":"acme"}'
done
api PUT '/api/v1/domains/*.wild.example.test' '{"mode":"offload","backend":"web"}'
check "wildcard offload domain created" is_status 201
curl -s -X POST -d '{"host":"bad.example.test","addresses":["127.0.0.2"]}' \
    "http://127.0.0.1:$CTS_PORT/add-a" >/dev/null
api PUT /api/v1/domains/bad.example.test '{"mode":"offload","backend":"web"}'
for n in 2 3 4; do
    check "app$n: valid within 60 s (three orders at once)" wait_status "app$n.example.test" valid 60
    check "app$n: its own certificate verifies for its name" verify_stored "app$n.example.test"
done
check "wildcard: failed, with a reason" wait_status '*.wild.example.test' failed 20
check "wildcard: last_error says HTTP-01 cannot do wildcards" \
    eval 'cert_field "*.wild.example.test" last_error | grep -qi wildcard'
check "bad.example.test (DNS -> 127.0.0.2, nothing listens): failed within 60 s" \
    wait_status bad.example.test failed 60
err=$(cert_field bad.example.test last_error)
check "bad.example.test: last_error is the CA's problem (connection refused)" \
    eval 'grep -q "urn:ietf:params:acme:error:connection" <<<"$err" && grep -qi "refused" <<<"$err"'
note "bad.example.test last_error: $err"
check "bad.example.test: failures counted and a retry scheduled a minute ahead (backoff)" eval '
    [ "$(dbq field bad.example.test failures)" -ge 1 ] &&
    [ "$(dbq field bad.example.test retry_at)" -gt "$(date +%s)" ]'
check "never two rows for one domain" eval '
    for n in app1 app2 app3 app4 bad; do [ "$(dbq rows $n.example.test)" = 1 ] || exit 1; done'

# ---- /metrics after ACME issuance and a failure (issue 16) ----------------------
if command -v promtool >/dev/null; then
    api GET /metrics
    printf '%s\n' "$BODY" >metrics.txt
    promtool check metrics <metrics.txt >promtool.out 2>&1
    rc=$?
    check "promtool check metrics after ACME issuance: clean" eval '[ $rc = 0 ] && [ ! -s promtool.out ]'
    APP1_ID=$(cert_field app1.example.test id)
    APP1_NA=$(dbq field app1.example.test not_after)
    check "the issued certificate's expiry is in /metrics (notAfter $APP1_NA)" \
        grep -q "^portier_certificate_expiry_timestamp_seconds{certificate=\"$APP1_ID\",domains=\"app1.example.test\"} $APP1_NA\$" metrics.txt
    check "the failing order is counted in portier_acme_consecutive_failures" \
        grep -q '^portier_acme_consecutive_failures{certificate="[^"]*",domains="bad.example.test"} [1-9]' metrics.txt
else
    note "promtool not installed: /metrics not checked after issuance"
fi

# ---- renewal: scheduled, then forced through the API ----------------------------
LOOP_PID=""
start_loop() {
    [ "$TLS" = 1 ] || return 0
    ( ok=0 bad=0
      while [ ! -f "$T/stop-loop" ]; do
          if [ "$(fetch app1.example.test 2>>"$T/loop.err")" = "hello from the backend" ]; then
              ok=$((ok + 1)); else bad=$((bad + 1)); fi
      done
      echo "$ok $bad" >"$T/loop.result" ) &
    LOOP_PID=$!
    track_pid "$LOOP_PID"
}
stop_loop() {
    [ -n "$LOOP_PID" ] || return 0
    touch "$T/stop-loop"; wait "$LOOP_PID"; rm -f "$T/stop-loop"; LOOP_PID=""
    read -r LOOP_OK LOOP_BAD <"$T/loop.result"
    check "curl loop during the renewal: $LOOP_OK requests, none failed" \
        eval '[ "$LOOP_BAD" = 0 ] && [ "$LOOP_OK" -gt 0 ]'
}
serial_changed() { local s; s=$(stored_serial app1.example.test); [ -n "$s" ] && [ "$s" != "$1" ] && status_is app1.example.test valid; }

start_loop
dbq renew-now app1.example.test
check "scheduled renewal: renew_after in the past -> a new certificate within 30 s" \
    wait_until 30 serial_changed "$SERIAL1"
SERIAL2=$(stored_serial app1.example.test)
check "renewed app1 verifies; same row id" verify_stored app1.example.test
if [ "$TLS" = 1 ]; then
    check "portier serves the renewed certificate" wait_until 5 eval '[ "$(served_serial app1.example.test)" = "$SERIAL2" ]'
fi
stop_loop

ID1=$(cert_field app1.example.test id)
api POST "/api/v1/certificates/$ID1/renew"
if [ "$STATUS" = 202 ]; then
    start_loop
    check "POST .../renew -> a new certificate within 30 s" wait_until 30 serial_changed "$SERIAL2"
    check "renewed (forced) app1 verifies" verify_stored app1.example.test
    [ "$TLS" = 1 ] && check "portier serves the force-renewed certificate" \
        wait_until 5 eval '[ "$(served_serial app1.example.test)" = "$(stored_serial app1.example.test)" ]'
    stop_loop
else
    note "POST /api/v1/certificates/ID/renew answers $STATUS (certificates API not there yet): forced renewal skipped"
fi
check "renewals kept the certificate id (stable across renewals)" \
    eval '[ "$(dbq field app1.example.test id)" = "$ID1" ]'

# ---- restart in the middle of an order ------------------------------------------
SERIAL_BEFORE_KILL=$(stored_serial app1.example.test)
api PUT /api/v1/domains/app5.example.test '{"mode":"offload","backend":"web"}'
if dbq wait-token 30; then
    kill9_portierd
    check "killed mid-order: app5 not valid yet, its HTTP-01 answer still stored" \
        eval '[ "$(dbq field app5.example.test status)" != valid ] && [ "$(dbq tokens)" != 0 ]'
else
    kill9_portierd
    note "no HTTP-01 answer seen for app5 before the kill (order too fast?)"
fi
check "workers of the killed daemon exit (ports free for the restart)" \
    wait_until 30 all_gone $KILLED_WORKERS
start_portierd "${ACME_FLAGS[@]}" || bail "portierd restarts"
check "app5: valid within 60 s after the restart (new order)" wait_status app5.example.test valid 60
check "app5 verifies" verify_stored app5.example.test
check "stale HTTP-01 answers gone after the restart" wait_until 10 eval '[ "$(dbq tokens)" = 0 ]'
check "the account key and URL were reused across the restart" eval '
    [ "$(sha256sum <"$STATE_DIR/acme-account.pem")" = "$ACCOUNT_KEY_SUM" ] &&
    [ "$(dbq state account:)" = "$ACCOUNT_URL" ]'
check "app1 was not re-ordered by the restart" eval '[ "$(stored_serial app1.example.test)" = "$SERIAL_BEFORE_KILL" ] &&
    [ "$(dbq field app1.example.test status)" = valid ]'
[ "$TLS" = 1 ] && check "after the restart, app1 is still served over TLS" \
    eval '[ "$(fetch app1.example.test)" = "hello from the backend" ]'

# ---- removed domains ------------------------------------------------------------
api DELETE /api/v1/domains/bad.example.test
check "bad.example.test deleted" is_status 204
api DELETE /api/v1/domains/app4.example.test
check "app4.example.test deleted" is_status 204
check "a removed domain's failed row goes (nothing to serve, no more orders)" \
    wait_until 15 eval '[ "$(dbq rows bad.example.test)" = 0 ]'
check "a removed domain's valid certificate is left to expire, not renewed" eval '
    [ "$(dbq rows app4.example.test)" = 1 ] && [ "$(dbq field app4.example.test status)" = valid ]'

stop_portierd
finish

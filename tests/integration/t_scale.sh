#!/bin/bash
# Configuration at scale: 20,000 domains onboarded in one POST /api/v1/batch,
# routed by every worker (real TLS through the proxy to two nginx backends);
# single writes after it travel as deltas and the workers follow; a killed
# worker comes back with everything; hostile or invalid batches and batches
# outside a token's scope change nothing. Certificates travel as deltas too:
# after an upload, a renewal and a delete every worker serves the right
# certificate, a connection made before keeps working, and a respawned worker
# replays them. Stream route writes and a session ticket key rotation
# (SIGUSR1) are deltas as well: no whole snapshot is published after the
# start (portier_config_publishes_total), every worker follows, and a stream
# connection made before a stream change keeps its backend.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

N=20000
read -r P1 P2 <<<"$(free_ports 2)"
make_cert s "DNS:*.scale.test"
mkdir -p www1 www2
echo "backend-one" >www1/index.html
echo "backend-two" >www2/index.html
start_nginx be "
server { listen 127.0.0.1:$P1 ssl; ssl_certificate $T/s.pem; ssl_certificate_key $T/s.key;
         access_log off; root $T/www1; }
server { listen 127.0.0.1:$P2 ssl; ssl_certificate $T/s.pem; ssl_certificate_key $T/s.key;
         access_log off; root $T/www2; }" || bail "nginx backends start"

# Every write stays a delta (no whole snapshot when the deltas outweigh the
# last one): a worker that starts replays them all.
PORTIER_BAN_DELTA_LIMIT=$((256 << 20)) start_portierd --workers 2 || bail "portierd starts"
api PUT /api/v1/backends/one "{\"servers\":[\"127.0.0.1:$P1\"]}"
check "backend one created" is_status 201
api PUT /api/v1/backends/two "{\"servers\":[\"127.0.0.1:$P2\"]}"
check "backend two created" is_status 201

# batch FILE KIND OP FIRST LAST [BACKEND]: a body of changes d<FIRST>..d<LAST>.
batch() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
out, kind, op, first, last = sys.argv[1:6]
be = sys.argv[6] if len(sys.argv) > 6 else "one"
ch = []
for i in range(int(first), int(last) + 1):
    c = {"op": op, "kind": kind, "name": "d%d.scale.test" % i}
    if op == "put":
        # Bulky on purpose (about 5 MB of deltas for 20,000): a respawned
        # worker then needs many reads to catch up (see the respawn below).
        c["body"] = {"mode": "passthrough", "backend": be,
                     "response_headers": {"X-Scale": "x" * 200}}
    ch.append(c)
json.dump({"changes": ch}, open(out, "w"))
PYEOF
}

# fetch NAME: the page NAME routes to (through portier's passthrough).
fetch() {
    curl -sS --max-time 10 --cacert "$T/ca.pem" --resolve "$1:$HTTPS_PORT:127.0.0.1" \
        "https://$1:$HTTPS_PORT/" 2>"$T/curl.err"
}

# routes_all EXPECT NAME...: EXPECT ("backend-one", "backend-two" or "none")
# for every NAME, over 12 connections each: the kernel spreads connections
# over both workers' sockets (SO_REUSEPORT), so every worker answers some.
routes_all() {
    local want=$1 name i got; shift
    for name in "$@"; do
        for i in $(seq 12); do
            got=$(fetch "$name")
            [ -n "$got" ] || got=none
            if [ "$got" != "$want" ]; then
                WHY="$name answered '$got' (try $i), expected $want; curl: $(cat "$T/curl.err")"
                return 1
            fi
        done
    done
}

# accepted_per_worker: "n1 n2" from /metrics.
accepted_per_worker() {
    api GET /metrics
    printf '%s\n' "$BODY" | awk '/^portier_worker_accepted_total\{/ { printf "%s ", $2 }'
}

# publishes FORM: portier_config_publishes_total{form="FORM"} ("snapshot", "delta").
publishes() {
    api GET /metrics
    printf '%s\n' "$BODY" | awk -v k="portier_config_publishes_total{form=\"$1\"}" '$1 == k { print $2 }'
}

# held_start TAG NAME PORT: a TLS connection to NAME on PORT that sends one
# request now (answer in held.TAG.out, then held.TAG.ready) and another once
# held.TAG.go exists; its pid in HELD.
held_start() {
    "$PY" - "$T" "$@" <<'PYEOF' >"$T/held.$1.out" 2>&1 &
import socket, ssl, sys, os, time
t, tag, name, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=t + "/ca.pem")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                    server_hostname=name)
def get():
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(4096)
    return body.decode().strip()
print("first", get(), flush=True)
open("%s/held.%s.ready" % (t, tag), "w").close()
for _ in range(300):
    if os.path.exists("%s/held.%s.go" % (t, tag)):
        break
    time.sleep(0.1)
print("second", get(), flush=True)
PYEOF
    HELD=$!
}

CV0=$(cfg_version)
SNAP0=$(publishes snapshot)
batch "$T/b1.json" domain put 0 $((N - 1))
T0=$(now_ms)
api_file POST /api/v1/batch "$T/b1.json"
note "POST /api/v1/batch of $N domains answered in $(( $(now_ms) - T0 )) ms"
check "batch of $N -> 200" is_status 200
check 'batch answer: applied true, changes $N' json_true 'd["applied"] is True and d["changes"] == int(a[0])' "$N"
CV1=$(json_get 'd["config_version"]')
check "one config version for the whole batch ($CV0 -> $CV1)" [ "$CV1" = $((CV0 + 1)) ]
check "both workers at $CV1" workers_at "$CV1" 2
api GET /api/v1/domains
check "GET lists $N domains" json_true 'len(d["domains"]) == int(a[0])' "$N"

SAMPLE="d0.scale.test d1.scale.test d7777.scale.test d$((N - 1)).scale.test"
A0=$(accepted_per_worker)
check "every worker routes a sample of the batch to backend one" routes_all backend-one $SAMPLE
check "a name outside the batch routes nowhere" routes_all none "d$N.scale.test"
sleep 1.2 # the workers report their counters every second
A1=$(accepted_per_worker)
note "accepted per worker before/after: $A0/ $A1"
check "both workers accepted some of those connections" \
    bash -c 'set -- $1 $2; [ "$3" -gt "$1" ] && [ "$4" -gt "$2" ]' _ "$A0" "$A1"

# ---- single writes after the bulk: deltas -------------------------------------------
api PUT /api/v1/domains/d5.scale.test '{"mode":"passthrough","backend":"two"}'
check "PUT d5 -> two: 200, applied" json_true 'd["applied"] is True'
api DELETE /api/v1/domains/d6.scale.test
check "DELETE d6: 204" is_status 204
check "DELETE d6: X-Config-Applied true" [ "$(header X-Config-Applied)" = true ]
api PUT /api/v1/domains/new.scale.test '{"mode":"passthrough","backend":"two"}'
check "PUT new: 201, applied" json_true 'd["applied"] is True'
CV2=$(json_get 'd["config_version"]')
check "d5 and new route to backend two in every worker" routes_all backend-two d5.scale.test new.scale.test
check "d6 routes nowhere" routes_all none d6.scale.test
check "the others still route to backend one" routes_all backend-one d4.scale.test d7.scale.test

batch "$T/b2.json" domain delete 100 199
api_file POST /api/v1/batch "$T/b2.json"
check "batch delete of 100 -> 200" is_status 200
CV2=$(json_get 'd["config_version"]')
check "d100 and d199 route nowhere" routes_all none d100.scale.test d199.scale.test

# ---- stream routes: deltas as well --------------------------------------------------
# stream_all EXPECT PORT: 12 connections through the tcp stream on PORT reach
# EXPECT ("none": refused). The stream's socket is shared by the workers.
stream_all() {
    local i got
    for i in $(seq 12); do
        got=$(curl -sS --max-time 10 --cacert "$T/ca.pem" --resolve "st.scale.test:$2:127.0.0.1" \
                  "https://st.scale.test:$2/" 2>"$T/curl.err")
        [ -n "$got" ] || got=none
        [ "$got" = "$1" ] || { WHY="try $i answered '$got', expected $1; $(cat "$T/curl.err")"; return 1; }
    done
}
read -r SP1 SP2 <<<"$(free_ports 2)"
api PUT /api/v1/streams/s1 "{\"listen\":[\"127.0.0.1:$SP1\"],\"mode\":\"tcp\",\"backend\":\"one\"}"
check "PUT stream s1 -> 201, applied" json_true 'd["applied"] is True'
check "both workers at its version" workers_at "$(json_get 'd["config_version"]')" 2
check "stream s1 relays to backend one" stream_all backend-one "$SP1"
held_start stream st.scale.test "$SP1"
HELD_STREAM=$HELD
check "a connection through s1 got its first answer" wait_until 10 test -e "$T/held.stream.ready"
T0=$(now_ms)
api PUT /api/v1/streams/s1 "{\"listen\":[\"127.0.0.1:$SP1\"],\"mode\":\"tcp\",\"backend\":\"two\"}"
note "PUT stream s1 -> two with $N domains: $(( $(now_ms) - T0 )) ms"
check "PUT stream s1 -> two: 200, applied" json_true 'd["applied"] is True'
check "stream s1 now relays to backend two" stream_all backend-two "$SP1"
touch "$T/held.stream.go"
wait "$HELD_STREAM"
check "the connection made before the change still reaches backend one" \
    grep -qx "second backend-one" "$T/held.stream.out"
check "after it: d5 and new -> two" routes_all backend-two d5.scale.test new.scale.test
check "after it: d6, d100, d199 -> none" routes_all none d6.scale.test d100.scale.test d199.scale.test
check "after it: d4, d200 -> one" routes_all backend-one d4.scale.test d200.scale.test
printf '{"changes":[{"op":"put","kind":"stream","name":"s2","body":{"listen":["127.0.0.1:%s"],"mode":"tcp","backend":"one"}},
 {"op":"put","kind":"domain","name":"d7.scale.test","body":{"mode":"passthrough","backend":"two"}}]}' "$SP2" >"$T/mixed3.json"
api_file POST /api/v1/batch "$T/mixed3.json"
check "a batch with a stream and a domain -> 200, applied" json_true 'd["applied"] is True'
api DELETE /api/v1/streams/s2
check "DELETE stream s2 -> 204" is_status 204
check "d7 moved to two by the batch, and stays there" routes_all backend-two d7.scale.test
check "port $SP2 closed with s2" wait_until 5 port_free "$SP2"
check "no whole snapshot published since the start (streams too)" [ "$(publishes snapshot)" = "$SNAP0" ]
CV2=$(cfg_version)

# ---- a killed worker comes back with all of it ------------------------------------------
VICTIM=$(worker_pids | awk '{print $1}')
kill -9 "$VICTIM"
# Connections made while the slot has no worker queue on its listening socket
# (SO_REUSEPORT spreads them over both): the new worker must take them only
# once it has the snapshot and every delta since, not the snapshot alone.
DURING=()
for i in $(seq 16); do fetch d5.scale.test >"$T/during.$i" & DURING+=($!); done
back() {
    workers_at "$CV2" 2 && [ "$(worker_pids | wc -w)" = 2 ] && ! worker_pids | grep -qw "$VICTIM"
}
check "the respawned worker is at $CV2 within 10 s" wait_until 10 back
wait "${DURING[@]}"
check "the 16 connections made during the respawn all reached backend two" \
    bash -c '[ "$(cat "$1"/during.* | grep -cx backend-two)" = 16 ]' _ "$T"
track_pid $(worker_pids)
check "after the respawn: d5 -> two" routes_all backend-two d5.scale.test
check "after the respawn: d6, d150 -> none" routes_all none d6.scale.test d150.scale.test
check "after the respawn: d$((N - 1)) -> one" routes_all backend-one "d$((N - 1)).scale.test"

# ---- hostile and invalid batches change nothing -----------------------------------------
nothing_changed() {
    [ "$(cfg_version)" = "$CV2" ] || { WHY="config_version moved from $CV2"; return 1; }
    api GET /api/v1/domains/x1.scale.test
    is_status 404
}
"$PY" -c 'import json; json.dump({"changes": [{"op": "delete", "kind": "domain", "name": "d%d.scale.test" % i} for i in range(100001)]}, open("'"$T"'/huge.json", "w"))'
api_file POST /api/v1/batch "$T/huge.json"
check "100,001 changes -> 400 on changes" is_error 400 changes
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"put","kind":"domain","name":"X1.Scale.Test","body":{"mode":"passthrough","backend":"two"}}]}' >"$T/dup.json"
api_file POST /api/v1/batch "$T/dup.json"
check "the same name twice (after normalising) -> 400 on changes[1].name" is_error 400 'changes[1].name'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"put","kind":"domain","name":"x2.scale.test","body":{"mode":"passthrough","backend":"nope"}}]}' >"$T/mixed.json"
api_file POST /api/v1/batch "$T/mixed.json"
check "valid then a missing backend -> 400 on changes[1].backend" is_error 400 'changes[1].backend'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"put","kind":"domain","name":"x3.scale.test","body":{"mode":"passthrough","backend":"one","port":1}}]}' >"$T/mixed2.json"
api_file POST /api/v1/batch "$T/mixed2.json"
check "valid then an unknown member -> 400 on changes[1].port" is_error 400 'changes[1].port'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"delete","kind":"backend","name":"one"}]}' >"$T/inuse.json"
api_file POST /api/v1/batch "$T/inuse.json"
check "valid then deleting a backend in use -> 409" is_error 409 'changes[1]'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"frob","kind":"domain","name":"x4.scale.test"}]}' >"$T/op.json"
api_file POST /api/v1/batch "$T/op.json"
check "an unknown op -> 400 on changes[1].op" is_error 400 'changes[1].op'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test"' >"$T/cut.json"
api_file POST /api/v1/batch "$T/cut.json"
check "truncated JSON -> 400" is_error 400
api GET /api/v1/batch
check "GET /api/v1/batch -> 405" is_status 405
check "none of those changed anything" nothing_changed
check "x1 routes nowhere" routes_all none x1.scale.test

# ---- scopes -------------------------------------------------------------------------
api POST /api/v1/tokens '{"name":"one-onboarding","scope":"backend:one"}'
BT=$(json_get 'd["token"]')
api POST /api/v1/tokens '{"name":"f2b","scope":"bans"}'
FT=$(json_get 'd["token"]')
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}}]}' >"$T/mine.json"
_req "$FT" POST /api/v1/batch "$T/mine.json"
check "a bans token may not use the batch -> 403" is_error 403
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"put","kind":"backend","name":"evil","body":{"servers":["127.0.0.1:1"]}}]}' >"$T/be.json"
_req "$BT" POST /api/v1/batch "$T/be.json"
check "backend:one token changing a backend in a batch -> 403 on changes[1].kind" is_error 403 'changes[1].kind'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"one"}},
 {"op":"delete","kind":"domain","name":"d5.scale.test"}]}' >"$T/other.json"
_req "$BT" POST /api/v1/batch "$T/other.json"
check "backend:one token deleting a domain of backend two -> 403" is_error 403 'changes[1].backend'
printf '{"changes":[{"op":"put","kind":"domain","name":"x1.scale.test","body":{"mode":"passthrough","backend":"two"}}]}' >"$T/to2.json"
_req "$BT" POST /api/v1/batch "$T/to2.json"
check "backend:one token routing to backend two -> 403" is_error 403 'changes[0].backend'
api GET /api/v1/backends/evil
check "no backend evil" is_status 404
check "still nothing changed" nothing_changed
_req "$BT" POST /api/v1/batch "$T/mine.json"
check "backend:one token, its own passthrough domain -> 200" is_status 200
check "x1 now routes to backend one" routes_all backend-one x1.scale.test

# ---- certificates: deltas among 20,000 domains ---------------------------------------
make_cert k1 "DNS:off.scale.test"
sleep 1.1 # k2 expires a second later: it wins over k1 while both are there
make_cert k2 "DNS:off.scale.test"
FP1=$(openssl x509 -in "$T/k1.pem" -noout -fingerprint -sha256)
FP2=$(openssl x509 -in "$T/k2.pem" -noout -fingerprint -sha256)

# serves_all FINGERPRINT: 12 handshakes for off.scale.test, spread over the
# workers by the kernel, all present that certificate.
serves_all() {
    local i got
    for i in $(seq 12); do
        got=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername off.scale.test \
                  </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
        [ "$got" = "$1" ] || { WHY="try $i presented '${got:-nothing}', expected $1"; return 1; }
    done
}

api PUT /api/v1/backends/onetls "{\"servers\":[\"127.0.0.1:$P1\"],\"tls\":true,\"tls_verify\":false}"
check "backend onetls created" is_status 201
api PUT /api/v1/domains/off.scale.test '{"mode":"offload","backend":"onetls","certificate":"manual"}'
check "offload domain created" is_status 201
upload_cert k1
check "upload k1 -> 201, applied" json_true 'd["applied"] is True'
K1=$(json_get 'd["id"]')
check "every worker presents k1" serves_all "$FP1"

# A connection made now (two requests on it: one before, one after the next
# uploads) must keep working: SSL objects hold their own context.
held_start cert off.scale.test "$HTTPS_PORT"
check "the held connection got its first answer" wait_until 10 test -e "$T/held.cert.ready"

upload_cert k2
check "upload k2 (a renewal: same name, later expiry) -> 201, applied" json_true 'd["applied"] is True'
K2=$(json_get 'd["id"]')
check "every worker presents k2" serves_all "$FP2"
touch "$T/held.cert.go"
wait "$HELD"
check "the connection made before the renewal still works" \
    grep -qx "second backend-one" "$T/held.cert.out"
api DELETE "/api/v1/certificates/$K2"
check "DELETE k2 -> 204" is_status 204
check "DELETE k2: X-Config-Applied true" [ "$(header X-Config-Applied)" = true ]
check "every worker presents k1 again" serves_all "$FP1"
api GET /api/v1/domains/off.scale.test
check "the domain shows k1 (certificate_names index)" \
    json_true 'd["certificate_id"] == a[0] and d["certificate_status"] == "valid"' "$K1"
check "passthrough routes are untouched by certificate deltas" routes_all backend-one x1.scale.test

CV3=$(cfg_version)
VICTIM=$(worker_pids | awk '{print $1}')
kill -9 "$VICTIM"
back3() {
    workers_at "$CV3" 2 && [ "$(worker_pids | wc -w)" = 2 ] && ! worker_pids | grep -qw "$VICTIM"
}
check "a worker killed after the certificate deltas is back at $CV3" wait_until 10 back3
track_pid $(worker_pids)
check "after the respawn every worker presents k1" serves_all "$FP1"

# ---- session ticket key rotation: a delta -------------------------------------------
# resumes_all WANT: 8 TLS 1.2 handshakes offering the session in $T/sess all
# end WANT ("Reused" or "New"), over both workers.
resumes_all() {
    local i got
    for i in $(seq 8); do
        got=$(openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername off.scale.test -tls1_2 \
                  -sess_in "$T/sess" </dev/null 2>/dev/null | awk -F, '/^(New|Reused),/ { print $1; exit }')
        [ "$got" = "$1" ] || { WHY="try $i: '${got:-no handshake}', expected $1"; return 1; }
    done
}
new_session() {
    openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername off.scale.test -tls1_2 \
        -sess_out "$T/sess" </dev/null >/dev/null 2>&1 && [ -s "$T/sess" ]
}
check "a TLS 1.2 session with a ticket" new_session
check "every worker resumes it" resumes_all Reused
CV4=$(cfg_version)
DELTAS=$(publishes delta)
kill -USR1 "$PID"
rotated() { [ "$(cfg_version)" = "$((CV4 + 1))" ]; }
check "the rotation is a new config version" wait_until 10 rotated
check "both workers at it" wait_until 10 workers_at "$((CV4 + 1))" 2
check "no worker resumes a ticket of the old key" resumes_all New
check "a session after the rotation" new_session
check "every worker resumes a ticket of the new key" resumes_all Reused
check "the rotation was a delta" [ "$(publishes delta)" -gt "$DELTAS" ]
check "still no whole snapshot since the start" [ "$(publishes snapshot)" = "$SNAP0" ]

stop_portierd
check "portierd exits 0" [ "$STOP_RC" = 0 ]
check "no sanitizer report in portierd.log" sanitizer_clean
finish

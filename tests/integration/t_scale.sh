#!/bin/bash
# Configuration at scale: 20,000 domains onboarded in one POST /api/v1/batch,
# routed by every worker (real TLS through the proxy to two nginx backends);
# single writes after it travel as deltas and the workers follow; a killed
# worker comes back with everything; hostile or invalid batches and batches
# outside a token's scope change nothing.
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

CV0=$(cfg_version)
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

# ---- whole snapshots after deltas -----------------------------------------------------
# A stream change publishes a whole snapshot, compiled from the daemon's own copy
# of the backends and domains (kept current by the deltas, not re-read from the
# store): the workers must end up with exactly what the deltas made.
read -r SP1 SP2 <<<"$(free_ports 2)"
api PUT /api/v1/streams/s1 "{\"listen\":[\"127.0.0.1:$SP1\"],\"mode\":\"tcp\",\"backend\":\"one\"}"
check "PUT stream s1 (a whole snapshot) -> 201, applied" json_true 'd["applied"] is True'
check "after it: d5 and new -> two" routes_all backend-two d5.scale.test new.scale.test
check "after it: d6, d100, d199 -> none" routes_all none d6.scale.test d100.scale.test d199.scale.test
check "after it: d4, d200 -> one" routes_all backend-one d4.scale.test d200.scale.test
printf '{"changes":[{"op":"put","kind":"stream","name":"s2","body":{"listen":["127.0.0.1:%s"],"mode":"tcp","backend":"one"}},
 {"op":"put","kind":"domain","name":"d7.scale.test","body":{"mode":"passthrough","backend":"two"}}]}' "$SP2" >"$T/mixed3.json"
api_file POST /api/v1/batch "$T/mixed3.json"
check "a batch with a stream and a domain -> 200, applied" json_true 'd["applied"] is True'
api DELETE /api/v1/streams/s2
check "DELETE stream s2 (another whole snapshot) -> 204" is_status 204
check "d7 moved to two by the batch, and stays there" routes_all backend-two d7.scale.test
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

stop_portierd
check "portierd exits 0" [ "$STOP_RC" = 0 ]
check "no sanitizer report in portierd.log" sanitizer_clean
finish

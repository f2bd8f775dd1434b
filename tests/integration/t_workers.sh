#!/bin/bash
# Workers: every worker applies each new config_version ("applied": true), a killed
# worker is respawned at the current version, and 1,000 domain PUTs reach all workers.
. "$(dirname "$0")/lib.sh"

start_portierd --workers 3 || bail "portierd starts with --workers 3"
api GET /api/v1/status
check "status lists 3 workers" json_true 'len(d["workers"]) == 3'
W0=$(worker_pids)
check "3 distinct worker pids ($W0), none is the daemon" \
    bash -c '[ "$(tr " " "\n" <<<"$1" | sort -u | wc -l)" = 3 ] && ! grep -qw "$2" <<<"$1"' _ "$W0" "$PID"
for w in $W0; do
    check "worker $w is a child of the daemon" [ "$(awk '{print $4}' "/proc/$w/stat" 2>/dev/null)" = "$PID" ]
done

api PUT /api/v1/backends/bk '{"servers":["127.0.0.1:9"]}'
check "PUT backend -> 201" is_status 201
check 'PUT response has "applied": true' json_true 'd.get("applied") is True'
CV=$(json_get 'd["config_version"]')
check "all 3 workers at config_version $CV right after the answer" workers_at "$CV" 3

# ---- kill -9 one worker -----------------------------------------------------------
VICTIM=${W0%% *}
kill -9 "$VICTIM"
note "killed worker $VICTIM"
SEEN=""
respawned() {
    api GET /api/v1/status
    local now; now=$(json_get '" ".join(str(w.get("pid")) for w in d["workers"])') || return 1
    case " $SEEN " in *" [$now] "*) ;; *) SEEN="$SEEN [$now]" ;; esac
    [ "$(wc -w <<<"$now")" = 3 ] && ! grep -qw "$VICTIM" <<<"$now" &&
        json_true 'all(type(w.get("pid")) is int for w in d["workers"])'
}
T0=$(now_ms)
check "within 5 s status lists 3 workers again, without $VICTIM" wait_until 5 respawned
note "respawn seen after $(( $(now_ms) - T0 )) ms; workers now: $(worker_pids)"
note "worker pids listed by status meanwhile:$SEEN"
W1=$(worker_pids)
track_pid $W1
NEW=$(for p in $W1; do grep -qw "$p" <<<"$W0" || echo "$p"; done)
check "exactly one new worker pid ($NEW)" [ "$(wc -w <<<"$NEW")" = 1 ]
check "the two other workers kept their pids" \
    bash -c 'for p in $1; do [ "$p" = "$3" ] && continue; grep -qw "$p" <<<"$2" || exit 1; done' _ "$W0" "$W1" "$VICTIM"
check "respawned worker is at config_version $CV within 5 s" wait_until 5 workers_at "$CV" 3
LAST_REQ=""
check "/healthz 200 after the respawn" wait_until 5 healthz_ok

api PUT /api/v1/domains/w.example.org '{"mode":"passthrough","backend":"bk"}'
check "PUT after respawn -> 201" is_status 201
check 'PUT after respawn: "applied": true' json_true 'd.get("applied") is True'
CV=$(json_get 'd["config_version"]')
check "all 3 workers (incl. the new one) at config_version $CV" workers_at "$CV" 3

# ---- 1,000 domains ------------------------------------------------------------------
N=1000
CV_BEFORE=$(cfg_version)
cat >"$T/put1.sh" <<EOF
#!/bin/bash
curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -X PUT \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"mode":"passthrough","backend":"bk"}' \
    "http://127.0.0.1:$API_PORT/api/v1/domains/d\$1.bulk.example.org"
EOF
chmod +x "$T/put1.sh"
T0=$(now_ms)
seq 1 $N | xargs -P 4 -n 1 "$T/put1.sh" >"$T/codes" 2>&1
T_PUT=$(( $(now_ms) - T0 ))
CODES=$(sort "$T/codes" | uniq -c | awk '{printf "%s x%s ", $2, $1}')
note "$N PUTs (4 parallel) answered in $T_PUT ms: $CODES"
check "all $N domain PUTs answered 201" [ "$(grep -cx 201 "$T/codes")" = $N ]
CV_FINAL=$(cfg_version)
note "config_version $CV_BEFORE -> $CV_FINAL"
# Concurrent writes share versions (group commit, docs/API.md): at most N.
check "config_version grew, by at most $N ($CV_BEFORE -> $CV_FINAL)" \
    bash -c '[ "$1" != "?" ] && [ "$1" -gt "$2" ] && [ "$1" -le "$3" ]' _ "$CV_FINAL" \
    "$CV_BEFORE" $((CV_BEFORE + N))
check "every worker reaches config_version $CV_FINAL within 60 s" wait_until 60 workers_at "$CV_FINAL" 3
T_ALL=$(( $(now_ms) - T0 ))
echo "# $N domains: $T_ALL ms"
api GET /api/v1/domains
check "GET /api/v1/domains lists $N bulk domains" \
    json_true 'sum(1 for x in d["domains"] if x["name"].endswith(".bulk.example.org")) == int(a[0])' "$N"
W2=$(worker_pids)
check "no worker died during the bulk load ($W1 -> $W2)" \
    [ "$(tr ' ' '\n' <<<"$W1" | sort | tr '\n' ' ')" = "$(tr ' ' '\n' <<<"$W2" | sort | tr '\n' ' ')" ]

# One more change on top of 1,000 domains is still applied within the 2 s bound.
T0=$(now_ms)
api PUT /api/v1/domains/last.bulk.example.org '{"mode":"passthrough","backend":"bk"}'
note "PUT on top of $N domains answered in $(( $(now_ms) - T0 )) ms"
check 'PUT on top of 1,000 domains -> 201 with "applied": true' json_true 'd.get("applied") is True'
CV=$(json_get 'd["config_version"]')
check "all 3 workers at $CV" workers_at "$CV" 3

stop_portierd
finish

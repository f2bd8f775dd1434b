#!/bin/bash
# Group commit (issue 15): writes fired at once from several API
# connections share transactions and publishes. Every answer is its own
# (the two that fail inside the shared transaction - a delete of a domain
# that does not exist, a delete of a backend still in use - fail alone and
# undo nothing of the others), every good write is stored, there are fewer
# publishes than writes, answers share config versions, and the version an
# answer names is live in every worker when the answer arrives.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
cd "$T"

start_portierd || bail "portierd starts"
api PUT /api/v1/backends/web '{"servers":["127.0.0.1:9"]}'
check "backend created" is_status 201
metric() { awk -v n="$1" '$1 == n {print $2}' <<<"$BODY"; }
api GET /metrics
PUB0=$(metric portier_config_commits_total)
frames() { awk '$1 ~ /^portier_config_publishes_total[{]/ {n += $2} END {print n + 0}' <<<"$BODY"; }
FR0=$(frames)
WR0=$(metric portier_config_writes_total)
check "/metrics has the commit and write counters" eval '[ -n "$PUB0" ] && [ -n "$WR0" ]'

"$PY" - "$API_PORT" "$TOKEN" >burst.out 2>&1 <<'PYEOF'
import http.client, json, sys, threading
port, token = int(sys.argv[1]), sys.argv[2]
K, PER = 6, 10  # connections, writes each
bad = {(2, 4): ("DELETE", "/api/v1/domains/nosuch.test", None, 404),
       (4, 6): ("DELETE", "/api/v1/backends/web", None, 409)}
results, errors = [], []
barrier = threading.Barrier(K)

def writes(k):
    for i in range(PER):
        if (k, i) in bad:
            yield bad[(k, i)]
        elif i % 2:
            yield ("POST", "/api/v1/bans", {"ip": "10.%d.%d.1" % (k, i)}, 201)
        else:
            yield ("PUT", "/api/v1/domains/d%d-%d.test" % (k, i),
                   {"mode": "passthrough", "backend": "web"}, 201)

def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    barrier.wait()
    for method, path, body, want in writes(k):
        c.request(method, path, json.dumps(body) if body else None, h)
        r = c.getresponse()
        data = r.read()
        if r.status != want:
            errors.append("%s %s: %d, wanted %d: %s" % (method, path, r.status, want, data))
            continue
        if want >= 400:
            results.append((method, path, None))
            continue
        if r.status == 204:
            v, applied = int(r.getheader("X-Config-Version")), r.getheader("X-Config-Applied") == "true"
        else:
            d = json.loads(data)
            v, applied = d["config_version"], d["applied"]
        # What the supervisor knows the workers acked, asked right after.
        c.request("GET", "/api/v1/status", None, h)
        s = json.loads(c.getresponse().read())
        acked = min(w["config_version"] for w in s["workers"])
        if not applied or acked < v:
            errors.append("%s %s: version %d applied %s, workers at %d" % (method, path, v, applied, acked))
        results.append((method, path, v))

ts = [threading.Thread(target=run, args=(k,)) for k in range(K)]
for t in ts: t.start()
for t in ts: t.join()
good = [v for m, p, v in results if v is not None]
print("answers", len(results), "good", len(good), "versions", len(set(good)))
for e in errors: print("ERROR", e)
sys.exit(1 if errors or len(results) != K * PER else 0)
PYEOF
rc=$?
note "$(cat burst.out)"
check "60 writes from 6 connections: every answer right, every version live when answered" \
    eval '[ $rc = 0 ]'
check "the 58 good writes share fewer than 58 config versions" \
    eval '[ "$(awk "/^answers/ {print \$6}" burst.out)" -lt 58 ]'
api GET /metrics
PUB=$(( $(metric portier_config_commits_total) - PUB0 ))
WR=$(( $(metric portier_config_writes_total) - WR0 ))
FR=$(( $(frames) - FR0 ))
note "group commits: $PUB for $WR writes; frames sent: $FR"
check "58 writes committed" eval '[ "$WR" = 58 ]'
check "fewer group commits (publishes) than writes" eval '[ "$PUB" -lt 58 ] && [ "$PUB" -ge 1 ]'
check "fewer frames sent to the workers than writes" eval '[ "$FR" -lt 58 ] && [ "$FR" -ge "$PUB" ]'
api GET /api/v1/domains
check "every domain written is stored (30 less the two failed deletes)" \
    eval '[ "$(json_get "len(d if isinstance(d, list) else d[\"domains\"])")" = 28 ]'
api GET /api/v1/bans
check "every ban written is stored (30)" \
    eval '[ "$(json_get "len(d if isinstance(d, list) else d[\"bans\"])")" = 30 ]'
api GET /api/v1/backends/web
check "the backend a failed delete named is still there" is_status 200
# A lone write after the burst is its own publish, at once.
api GET /metrics
P1=$(metric portier_config_commits_total)
api PUT /api/v1/domains/lone.test '{"mode":"passthrough","backend":"web"}'
check "a lone write answers applied" json_true 'd["applied"]'
api GET /metrics
check "a lone write is one commit" eval '[ $(( $(metric portier_config_commits_total) - P1 )) = 1 ]'
finish

#!/bin/bash
# The commit trace (issue 15, the write tail): with PORTIER_COMMIT_TRACE=1 the
# daemon logs one line per group commit with the time of each phase, one per
# write request with its whole time in the API, and one per WAL checkpoint;
# the phases of a lone write are parts of its total and each is known; a
# store-only write has no worker phases; without the variable nothing is
# logged.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
cd "$T"

export PORTIER_COMMIT_TRACE=1
start_portierd || bail "portierd starts"
api PUT /api/v1/backends/web '{"servers":["127.0.0.1:9"]}'
check "backend created" is_status 201
api PUT /api/v1/domains/one.test '{"mode":"passthrough","backend":"web"}'
check "domain created" is_status 201
V=$(json_get 'd["config_version"]')

# commit trace: version V writers N lock_us . sql_us . encode_us . commit_us .
# handoff_us . workers_us . wakeup_us . relock_us . total_us . lead_at_us .
line_of() { grep -a "commit trace: version $1 " "$T/portierd.log" | tail -n 1; }
field() { awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}' <<<"$1"; }
wait_until 5 eval '[ -n "$(line_of "$V")" ]'
L=$(line_of "$V")
check "a commit trace line for the domain write (version $V)" [ -n "$L" ]
phases_known() {
    local k v
    for k in lock_us sql_us encode_us commit_us handoff_us workers_us wakeup_us relock_us total_us; do
        v=$(field "$L" "$k")
        [[ $v =~ ^[0-9]+$ ]] || { WHY="$k is '$v' in: $L"; return 1; }
    done
}
check "every phase of a lone write is known" phases_known
check "one writer in its group" [ "$(field "$L" writers)" = 1 ]
parts_within_total() {
    local sum=0 k
    for k in lock_us sql_us encode_us commit_us handoff_us workers_us wakeup_us relock_us; do
        sum=$((sum + $(field "$L" "$k")))
    done
    [ "$sum" -le "$(field "$L" total_us)" ] || { WHY="phases sum to $sum: $L"; return 1; }
}
check "the phases are parts of the total" parts_within_total
check "a request trace line for the PUT" \
    eval 'grep -aq "request trace: PUT body_us [0-9]* total_us [0-9]*" "$T/portierd.log"'

# A token is stored and nothing is sent to the workers: no worker phases.
api POST /api/v1/tokens '{"name":"t1","scope":"bans"}'
check "token created" is_status 201
L=$(grep -a "commit trace: version 0 " "$T/portierd.log" | tail -n 1)
check "a store-only write is traced with no worker phases" \
    eval '[ -n "$L" ] && [ "$(field "$L" handoff_us)" = -1 ] && [ "$(field "$L" workers_us)" = -1 ]'

# Two batches take the WAL past the checkpoint's 1,000 pages.
for k in 0 1; do
    "$PY" - "$k" >batch.json <<'PYEOF'
import json, sys
k = int(sys.argv[1])
print(json.dumps({"changes": [{"op": "put", "kind": "domain", "name": "b%d-%d.test" % (k, i),
                               "body": {"mode": "passthrough", "backend": "web"}}
                              for i in range(10000)]}))
PYEOF
    api_file POST /api/v1/batch batch.json
    check "batch $k of 10,000 domains" is_status 200
done
check "the checkpointer logs its checkpoint" wait_until 10 \
    eval 'grep -aq "checkpoint trace: pages [0-9]* copied [0-9]* start_us [0-9]* took_us [0-9]*" "$T/portierd.log"'
stop_portierd

unset PORTIER_COMMIT_TRACE
N0=$(grep -ac "trace: " "$T/portierd.log")
start_portierd || bail "portierd starts again"
api PUT /api/v1/domains/two.test '{"mode":"passthrough","backend":"web"}'
check "domain created without the trace" is_status 201
check "without PORTIER_COMMIT_TRACE nothing is traced" \
    [ "$(grep -ac "trace: " "$T/portierd.log")" = "$N0" ]
stop_portierd
finish

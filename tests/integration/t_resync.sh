#!/bin/bash
# A worker that cannot apply a configuration delta asks for the whole
# configuration (PT_IPC_RESYNC) and catches up: every answer still says
# applied, the routes, backend changes, deletions and bans written while it
# was behind are all in force afterwards, and /metrics counts the resyncs.
# PORTIER_REFUSE_DELTAS=N makes each worker refuse, once, every delta whose
# version is a multiple of N (the only way to reach this path from outside:
# the daemon never sends a delta that does not fit on purpose).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 P2 P3 <<<"$(free_ports 3)"
start_nginx be "
server { listen 127.0.0.1:$P1; location / { return 200 \"b1\n\"; } }
server { listen 127.0.0.1:$P2; location / { return 200 \"b2\n\"; } }
server { listen 127.0.0.1:$P3; location / { return 200 \"b3\n\"; } }" || bail "nginx backends start"
export PORTIER_REFUSE_DELTAS=2
start_portierd --workers 2 || bail "portierd starts"
unset PORTIER_REFUSE_DELTAS

applied() { # the last answer says the write is live in every worker
    if [ "$STATUS" = 204 ]; then [ "$(header X-Config-Applied)" = true ]
    else json_true 'd.get("applied") is True'; fi
}
ALL_APPLIED=yes
write() {
    api "$@"
    case "$STATUS" in 2??) applied || { ALL_APPLIED="no: $* -> $STATUS $BODY"; } ;;
        *) ALL_APPLIED="no: $* -> $STATUS $BODY" ;; esac
}
for b in 1 2 3; do
    p=P$b
    write PUT /api/v1/backends/b$b "{\"servers\":[\"127.0.0.1:1\"],\"http_servers\":[\"127.0.0.1:${!p}\"]}"
done
for d in 1 2 3 4 5 6; do
    write PUT /api/v1/domains/d$d.test "{\"mode\":\"passthrough\",\"backend\":\"b$(( (d - 1) % 3 + 1 ))\"}"
done
write PUT /api/v1/domains/d1.test '{"mode":"passthrough","backend":"b3"}'
write DELETE /api/v1/domains/d2.test
write POST /api/v1/bans '{"ip":"127.0.0.5","reason":"resync-test"}'
write PUT /api/v1/domains/d7.test '{"mode":"passthrough","backend":"b2"}'
check "every write answered 2xx and applied in every worker ($ALL_APPLIED)" [ "$ALL_APPLIED" = yes ]

V=$(cfg_version)
check "both workers at the last version $V" wait_until 5 workers_at "$V" 2

h80() { curl -sS --max-time 5 --interface "${2:-127.0.0.2}" --resolve "$1:$HTTP_PORT:127.0.0.1" \
    "http://$1:$HTTP_PORT/" -o - -w ' %{http_code}' 2>/dev/null; }
# Several requests per name: the two workers share the listener.
routes_right() {
    local i got want d
    for i in 1 2 3 4; do
        for d in d1:b3 d3:b3 d4:b1 d5:b2 d6:b3 d7:b2; do
            got=$(h80 "${d%%:*}.test" | tr -d '\n') want="${d#*:} 200"
            [ "$got" = "$want" ] || { WHY="${d%%:*}.test: '$got', wanted '$want'"; return 1; }
        done
        got=$(h80 d2.test | tr -d '\n')
        [ "${got##* }" = 404 ] && [ "${got#b}" = "$got" ] ||
            { WHY="deleted d2.test: '$got'"; return 1; }
    done
}
check "every route, change and deletion written while behind is in force" routes_right
banned=$(h80 d4.test 127.0.0.5)
check "the ban written while a worker resynced is in force (got '$banned')" \
    eval '[ "${banned% *}" = "" ] && [ "${banned##* }" != 200 ]'

api GET /metrics
n=$(awk '$1 == "portier_worker_resyncs_total" {print $2}' <<<"$BODY")
# Versions 2, 4, ... 14 were deltas: each refused once by each worker.
check "portier_worker_resyncs_total counts the resyncs ($n, at least 2 per worker)" \
    eval '[ -n "$n" ] && [ "$n" -ge 4 ]'
check "the worker logs why it asked" \
    grep -q 'does not apply (at version [0-9]*): asking the daemon for the whole configuration' \
    "$T/portierd.log"

stop_portierd
sanitizer_clean
finish

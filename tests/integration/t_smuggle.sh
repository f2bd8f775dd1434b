#!/bin/bash
# Request smuggling corpus (issue 10): every shape of
# tests/integration/data/smuggle_corpus.py is sent raw through TLS offload and
# through port 80 to a strict origin (tools/strict_origin.py). Each is either
# refused (400, 421 for an authority naming another host) with nothing of it
# completed at the origin, or reaches the origin in the canonical form, head
# compared byte for byte. The origin refusing anything means portier forwarded
# what it should not have. Cases run one after the other on fresh client
# connections, so a backend connection left in a bad state by one case
# (pooled, or reused) shows in the next.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh" # make_cert, upload_cert
cd "$T"

read -r PO <<<"$(free_ports 1)"
mkdir -p origin
"$PY" "$HERE/tools/strict_origin.py" "$PO" "$T/origin" >origin.log 2>&1 &
track_pid $!
wait_until 10 port_listening "$PO" || bail "strict origin listens"
make_cert front "DNS:s.test"
start_portierd --hello-timeout 3 --idle-timeout 10 || bail "portierd starts"

api PUT /api/v1/backends/origin "{\"servers\":[\"127.0.0.1:$PO\"]}"
check "offload backend" is_status 201
api PUT /api/v1/backends/origin80 "{\"servers\":[\"127.0.0.1:1\"],\"http_servers\":[\"127.0.0.1:$PO\"]}"
check "port 80 backend with http_servers" is_status 201
api PUT /api/v1/domains/s.test '{"mode":"offload","backend":"origin","certificate":"manual"}'
check "offload domain s.test" is_status 201
api PUT /api/v1/domains/p.test '{"mode":"passthrough","backend":"origin80"}'
check "port 80 domain p.test" is_status 201
upload_cert front
check "certificate for s.test" is_status 201
wait_until 10 eval 'curl -s -o /dev/null --cacert "$T/ca.pem" --resolve "s.test:$HTTPS_PORT:127.0.0.1" "https://s.test:$HTTPS_PORT/"' ||
    bail "offload answers"

fail_with() { WHY=$1; return 1; }

# run_corpus tls|plain HOST PORT NET: one check per case.
run_corpus() {
    local mode=$1 host=$2 port=$3 net=$4 n=0 verdict name why
    while IFS=$'\t' read -r tag verdict name why; do
        [ "$tag" = RESULT ] || continue
        n=$((n + 1))
        if [ "$verdict" = pass ]; then
            check "$mode: $name" true
        else
            check "$mode: $name" fail_with "$why"
        fi
    done < <("$PY" "$HERE/tools/smuggle_run.py" "$mode" "$host" "$port" "$T/ca.pem" \
                "$T/origin" "$net" "$HERE/data/smuggle_corpus.py" 2>"$T/run-$mode.err")
    check "$mode: the whole corpus ran ($n cases)" [ "$n" -ge 40 ]
    [ -s "$T/run-$mode.err" ] && note "$(tail -5 "$T/run-$mode.err")"
}

run_corpus tls s.test "$HTTPS_PORT" 0
run_corpus plain p.test "$HTTP_PORT" 1

check "portierd still runs" eval '! pid_gone "$PID"'
finish

#!/bin/bash
# Persistence: objects survive SIGTERM + restart with the same config_version;
# a 201 answered just before kill -9 survives too; after kill -9 of the daemon the
# workers keep the listening ports for --grace (for a new daemon to take over,
# see t_daemon_crash.sh), then release them and exit by themselves, so a new
# daemon started later binds the same ports.
. "$(dirname "$0")/lib.sh"

start_portierd || bail "portierd starts"
api PUT /api/v1/backends/keep '{"servers":["127.0.0.1:9","[::1]:443"],"proxy_protocol":"v2"}'
check "PUT backend keep -> 201" is_status 201
api PUT /api/v1/domains/keep.example.org '{"mode":"passthrough","backend":"keep"}'
check "PUT domain keep.example.org -> 201" is_status 201
api PUT '/api/v1/domains/*.keep.example.org' '{"mode":"passthrough","backend":"keep"}'
check "PUT domain *.keep.example.org -> 201" is_status 201
CV1=$(cfg_version)
TOKEN1=$TOKEN
stop_portierd

start_portierd --grace 2 || bail "portierd restarts after SIGTERM"
check "token unchanged across restart" [ "$TOKEN" = "$TOKEN1" ]
api GET /api/v1/backends/keep
check "backend keep survives a restart with its fields" \
    json_true 'd["servers"] == ["127.0.0.1:9","[::1]:443"] and d["proxy_protocol"] == "v2"'
api GET /api/v1/domains/keep.example.org
check "domain keep.example.org survives a restart" json_true 'd["backend"] == "keep" and d["mode"] == "passthrough"'
api GET '/api/v1/domains/*.keep.example.org'
check "domain *.keep.example.org survives a restart" is_status 200
CV2=$(cfg_version)
check "config_version unchanged across restart ($CV1 -> $CV2)" [ "$CV1" = "$CV2" ]
check "workers start at the stored config_version $CV2" wait_until 5 workers_at "$CV2" 2

# ---- kill -9 right after a 201 ------------------------------------------------------
api PUT /api/v1/domains/lastgasp.example.org '{"mode":"passthrough","backend":"keep"}'
check "PUT lastgasp.example.org -> 201" is_status 201
CV3=$(json_get 'd["config_version"]')
kill9_portierd
note "killed portierd with SIGKILL; its workers were: $KILLED_WORKERS"
check "workers were listed before the kill" [ -n "$KILLED_WORKERS" ]
check "https port $HTTPS_PORT still listening right after the kill (orphans wait for a new daemon)" \
    port_listening "$HTTPS_PORT"
check "https port $HTTPS_PORT not listening within 5 s of the kill (--grace 2)" wait_until 5 port_free "$HTTPS_PORT"
check "http port $HTTP_PORT not listening within 5 s of the kill" wait_until 5 port_free "$HTTP_PORT"
check "api port $API_PORT not listening within 5 s of the kill" wait_until 5 port_free "$API_PORT"
check "workers ($KILLED_WORKERS) exit by themselves within 5 s" wait_until 5 all_gone $KILLED_WORKERS
left=$(marked_pids | tr '\n' ' ')
check "no portierd process left 5 s after kill -9 ($left)" [ -z "$left" ]
if [ -n "$left" ]; then
    ss -Hltnp 2>/dev/null | grep -E ":($HTTPS_PORT|$HTTP_PORT|$API_PORT) " | sed 's/^/# listening: /'
    for p in $left; do kill -9 "$p" 2>/dev/null; done
fi

start_portierd --grace 2 || bail "portierd restarts on the same ports after kill -9"
api GET /api/v1/domains/lastgasp.example.org
check "domain PUT just before kill -9 is there after restart" json_true 'd["backend"] == "keep"'
CV4=$(cfg_version)
check "config_version after restart is the one the last PUT returned ($CV3 -> $CV4)" [ "$CV3" = "$CV4" ]
api GET /api/v1/domains
check "all three domains listed after restart" \
    json_true '{"keep.example.org","*.keep.example.org","lastgasp.example.org"} <= {x["name"] for x in d["domains"]}'
check "https port listening again" port_listening "$HTTPS_PORT"

# A DELETE acknowledged just before kill -9 must stick as well.
api DELETE /api/v1/domains/lastgasp.example.org
check "DELETE lastgasp.example.org -> 204" is_status 204
kill9_portierd
wait_until 5 all_gone $KILLED_WORKERS
for p in $(marked_pids); do kill -9 "$p" 2>/dev/null; done
wait_until 5 port_free "$HTTPS_PORT"
start_portierd || bail "portierd restarts after the second kill -9"
api GET /api/v1/domains/lastgasp.example.org
check "domain DELETEd just before kill -9 stays deleted" is_error 404

stop_portierd
finish

#!/bin/bash
# REST API v1: auth, error shape, backends and domains validation, status codes,
# and "a request that fails changes nothing, config_version included".
. "$(dirname "$0")/lib.sh"

start_portierd || bail "portierd starts"

# expect_fail "desc" STATUS FIELD METHOD PATH [BODY]
# One check: status + error shape (+ error.field when FIELD is not empty; several
# accepted fields may be given as "a|b") + config_version unchanged.
expect_fail() {
    local desc=$1 st=$2 field=$3; shift 3
    local before after s b h fields=()
    [ -z "$field" ] || IFS='|' read -r -a fields <<<"$field"
    before=$(cfg_version)
    api "$@"
    s=$STATUS b=$BODY h=$HEADERS
    after=$(cfg_version)
    STATUS=$s BODY=$b HEADERS=$h
    check "$desc -> $st${field:+ field=$field}, config_version unchanged" \
        _fail_ok "$st" "$before" "$after" "${fields[@]}"
}
_fail_ok() {
    local st=$1 before=$2 after=$3; shift 3
    is_error "$st" "$@" || return 1
    if [ "$before" != "$after" ] || [ "$before" = "?" ]; then
        WHY="config_version $before -> $after"
        return 1
    fi
}

# expect_ok "desc" STATUS METHOD PATH [BODY]: success with config_version > before
# and "applied": true (mutations only).
expect_ok() {
    local desc=$1 st=$2; shift 2
    local before; before=$(cfg_version)
    api "$@"
    check "$desc -> $st" _ok_mut "$st" "$before"
}
_ok_mut() {
    is_status "$1" || return 1
    [ "$STATUS" = 204 ] && return 0
    if ! json_true 'isinstance(d.get("config_version"), int) and d["config_version"] > int(a[0])' "$2"; then
        WHY="config_version not > $2 in the response"
        return 1
    fi
    json_true 'd.get("applied") is True' || { WHY='"applied" is not true'; return 1; }
}

# ---- auth, health, error shape -----------------------------------------------------
api_as "" GET /api/v1/backends
check "no token -> 401 with error shape" is_error 401
check "401 body is application/json" is_json_ct
api_as "0000000000000000000000000000000000000000000000000000000000000000" GET /api/v1/backends
check "wrong token -> 401 with error shape" is_error 401
api_as "" GET /api/v1/status
check "no token on /api/v1/status -> 401" is_error 401
LAST_REQ="GET /healthz (no token)"
_req "" GET /healthz
check "/healthz without token -> 200" is_status 200
check '/healthz body: ok, every worker serving' json_true 'd["ok"] is True and d["serving"] == d["workers"] > 0'
LAST_REQ="GET /api/v1/status with 'Authorization: Basic'"
STATUS=$(curl -s -o "$T/.resp" -w '%{http_code}' -H "Authorization: Basic $TOKEN" \
    "http://127.0.0.1:$API_PORT/api/v1/status"); BODY=$(cat "$T/.resp")
check "Basic instead of Bearer -> 401" is_error 401

api GET /api/v1/status
check "status -> 200" is_status 200
check "status is application/json" is_json_ct
check "status has version, uptime_s, config_version, workers[pid,config_version,connections]" \
    json_true 'isinstance(d["version"], str) and isinstance(d["uptime_s"], int)
               and isinstance(d["config_version"], int) and len(d["workers"]) == 2
               and all(isinstance(w["pid"], int) and isinstance(w["config_version"], int)
                       and isinstance(w["connections"], int) for w in d["workers"])'

expect_fail "unknown path GET /api/v1/nope" 404 "" GET /api/v1/nope
expect_fail "unknown path GET /api/v2/backends" 404 "" GET /api/v2/backends
expect_fail "unknown sub-path GET /api/v1/backends/x/y" 404 "" GET /api/v1/backends/x/y
expect_fail "POST /api/v1/backends/x (method not allowed)" 405 "" POST /api/v1/backends/x '{"servers":["127.0.0.1:1"]}'
check "405 carries an Allow header" test -n "$(header Allow)"
note "Allow on /api/v1/backends/x: $(header Allow)"
expect_fail "DELETE /api/v1/backends (collection)" 405 "" DELETE /api/v1/backends
expect_fail "PATCH /api/v1/domains/a.example.org" 405 "" PATCH /api/v1/domains/a.example.org '{}'

# ---- backends ---------------------------------------------------------------------
expect_ok "PUT new backend b1" 201 PUT /api/v1/backends/b1 '{"servers":["127.0.0.1:9"]}'
check "PUT response is application/json" is_json_ct
CV=$(json_get 'd["config_version"]')
api GET /api/v1/status
check "status config_version equals the one the PUT returned ($CV)" json_true 'd["config_version"] == int(a[0])' "$CV"
api GET /api/v1/backends/b1
check "GET b1 -> 200" is_status 200
check "GET b1: name b1, servers as given, proxy_protocol defaults to none" \
    json_true 'd["name"] == "b1" and d["servers"] == ["127.0.0.1:9"] and d.get("proxy_protocol", "none") == "none"'
expect_ok "PUT b1 again (replace)" 200 PUT /api/v1/backends/b1 \
    '{"name":"b1","servers":["127.0.0.1:9","[::1]:443","backend.example.org:8443"],"proxy_protocol":"v2","http_servers":["127.0.0.1:80"]}'
api GET /api/v1/backends/b1
check "GET b1 after replace shows the new servers and proxy_protocol v2" \
    json_true 'd["servers"] == ["127.0.0.1:9","[::1]:443","backend.example.org:8443"] and d["proxy_protocol"] == "v2" and d["http_servers"] == ["127.0.0.1:80"]'
expect_ok "PUT b1 with proxy_protocol v1" 200 PUT /api/v1/backends/b1 '{"servers":["127.0.0.1:9"],"proxy_protocol":"v1"}'
api GET /api/v1/backends/b1
check "replace is a full replace (http_servers gone, v1)" \
    json_true 'd["proxy_protocol"] == "v1" and not d.get("http_servers")'
expect_ok "PUT backend b2 with 16 servers" 201 PUT /api/v1/backends/b2 \
    "{\"servers\":[$(for i in $(seq 1 16); do printf '"127.0.0.%d:80"' "$i"; [ $i = 16 ] || printf ,; done)]}"
expect_ok "PUT backend with offload fields tls/tls_verify" 201 PUT /api/v1/backends/tlsb \
    '{"servers":["127.0.0.1:8443"],"tls":true,"tls_verify":false}'
api GET /api/v1/backends/tlsb
check "GET tlsb: tls true, tls_verify false" json_true 'd["tls"] is True and d["tls_verify"] is False'
for n in 0 a_b-c "$(printf 'a%.0s' $(seq 1 63))"; do
    expect_ok "PUT backend with valid name '${n:0:20}' (${#n} chars)" 201 PUT "/api/v1/backends/$n" '{"servers":["127.0.0.1:1"]}'
done
api GET /api/v1/backends
check "GET /api/v1/backends -> 200 {\"backends\":[...]} with b1, b2, tlsb" \
    json_true 'isinstance(d["backends"], list) and {"b1","b2","tlsb"} <= {b["name"] for b in d["backends"]}'
check "GET /api/v1/backends lists 6 backends" json_true 'len(d["backends"]) == 6'

expect_fail "PUT backend b1%00x (NUL in the name)" 400 name PUT '/api/v1/backends/b1%00x' '{"servers":["127.0.0.1:9"]}'
expect_fail "PUT backend b1%00 (trailing NUL)" 400 name PUT '/api/v1/backends/b1%00' '{"servers":["127.0.0.1:9"]}'
expect_fail "DELETE backend tlsb%00x (NUL in the name)" "400|404" "" DELETE '/api/v1/backends/tlsb%00x'
api GET /api/v1/backends/tlsb
check "backend tlsb still exists after DELETE tlsb%00x" is_status 200
expect_fail "PUT b1 with name b2 in the body" 400 name PUT /api/v1/backends/b1 '{"name":"b2","servers":["127.0.0.1:9"]}'
for n in Bad -x _x a.b "$(printf 'a%.0s' $(seq 1 64))"; do
    expect_fail "PUT backend with invalid name '${n:0:20}' (${#n} chars)" 400 name PUT "/api/v1/backends/$n" '{"servers":["127.0.0.1:1"]}'
done
expect_fail "backend without servers" 400 servers PUT /api/v1/backends/bx '{}'
expect_fail "backend with servers: []" 400 servers PUT /api/v1/backends/bx '{"servers":[]}'
expect_fail "backend with 17 servers" 400 "servers|servers[16]" PUT /api/v1/backends/bx \
    "{\"servers\":[$(for i in $(seq 1 17); do printf '"127.0.0.%d:80"' "$i"; [ $i = 17 ] || printf ,; done)]}"
expect_fail "servers is a string" 400 servers PUT /api/v1/backends/bx '{"servers":"127.0.0.1:80"}'
expect_fail "servers[0] is a number" 400 "servers[0]" PUT /api/v1/backends/bx '{"servers":[80]}'
i=0
for s in "host" "127.0.0.1:0" "127.0.0.1:65536" "[zz::1]:443" "a..b:80" "127.0.0.1:" ":80" \
         "127.0.0.1:80x" "127.0.0.1:-1" "::1:443" "[::1]" "256.1.1.1:80" "-bad.example.org:80" \
         "a b:80" ""; do
    expect_fail "servers[1] = '$s'" 400 "servers[1]" PUT /api/v1/backends/bx \
        "{\"servers\":[\"127.0.0.1:80\",\"$s\"]}"
    i=$((i + 1))
done
expect_fail "proxy_protocol v3" 400 proxy_protocol PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"],"proxy_protocol":"v3"}'
expect_fail "proxy_protocol true" 400 proxy_protocol PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"],"proxy_protocol":true}'
expect_fail "tls \"yes\"" 400 tls PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"],"tls":"yes"}'
expect_fail "http_servers[0] port 0" 400 "http_servers[0]" PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"],"http_servers":["127.0.0.1:0"]}'
expect_fail "name in body is a number" 400 name PUT /api/v1/backends/bx '{"name":5,"servers":["127.0.0.1:80"]}'

# Unknown fields: the contract does not say; a typo silently ignored is noted.
before=$(cfg_version)
api PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"],"proxy_protcol":"v2"}'
case $STATUS in
    400) note "unknown field 'proxy_protcol': refused 400 (field $(json_get 'd["error"].get("field")'))"
         check "unknown field refused with error shape, config_version unchanged" \
             _fail_ok 400 "$before" "$(cfg_version)" ;;
    200|201) note "unknown field 'proxy_protcol': accepted and ignored ($STATUS)"
         api DELETE /api/v1/backends/bx ;;
    *) check "unknown field: 400 or 2xx" false ;;
esac

expect_fail "bad JSON" 400 "" PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"'
expect_fail "empty body" 400 "" PUT /api/v1/backends/bx ''
expect_fail "JSON array body" 400 "" PUT /api/v1/backends/bx '["127.0.0.1:80"]'
expect_fail "JSON with a NUL escape in a server" 400 "" PUT /api/v1/backends/bx '{"servers":["127.0.0.1\u0000:80"]}'
api PUT /api/v1/backends/bx '{"servers":["127.0.0.1:80"],"servers":["127.0.0.1:81"]}'
note "duplicate key in a JSON object (not in the contract): $STATUS ${BODY:0:200}"
[ "$STATUS" = 400 ] || api DELETE /api/v1/backends/bx
expect_fail "invalid UTF-8 in the body" 400 "" PUT /api/v1/backends/bx "$(printf '{"servers":["127.0.0.1:80"],"name":"\xff"}')"

# Body size: exactly 1 MiB is allowed, one byte more gets 413.
"$PY" - "$T/1mib.json" "$T/big.json" <<'EOF'
import sys
obj = b'{"servers":["127.0.0.1:80"]}'
limit = 1024 * 1024
open(sys.argv[1], 'wb').write(obj + b' ' * (limit - len(obj)))
open(sys.argv[2], 'wb').write(obj + b' ' * (limit + 1 - len(obj)))
EOF
api_file PUT /api/v1/backends/exactly1mib "$T/1mib.json"
check "body of exactly 1 MiB (valid JSON + spaces) is accepted (201)" is_status 201
before=$(cfg_version)
api_file PUT /api/v1/backends/toobig "$T/big.json"
s=$STATUS b=$BODY
after=$(cfg_version); STATUS=$s BODY=$b
check "body of 1 MiB + 1 byte -> 413 with error shape, config_version unchanged" _fail_ok 413 "$before" "$after"
"$PY" -c 'import sys; open(sys.argv[1], "wb").write(b"{\"servers\":[\"127.0.0.1:80\"],\"x\":\"" + b"a" * (8 << 20) + b"\"}")' "$T/huge.json"
api_file PUT /api/v1/backends/toobig "$T/huge.json"
check "body of 8 MiB -> 413 with error shape" is_error 413
api GET /api/v1/backends/toobig
check "no backend 'toobig' was created" is_error 404

expect_fail "GET unknown backend" 404 "" GET /api/v1/backends/nosuch
expect_fail "DELETE unknown backend" 404 "" DELETE /api/v1/backends/nosuch

# ---- domains ----------------------------------------------------------------------
expect_fail "domain with unknown backend" 400 backend PUT /api/v1/domains/a.example.org '{"mode":"passthrough","backend":"nosuch"}'
expect_fail "domain without backend" 400 backend PUT /api/v1/domains/a.example.org '{"mode":"passthrough"}'
expect_fail "domain with invalid mode" 400 mode PUT /api/v1/domains/a.example.org '{"mode":"bogus","backend":"b1"}'
expect_fail "domain with mode 5" 400 mode PUT /api/v1/domains/a.example.org '{"mode":5,"backend":"b1"}'
expect_fail "offload domain with certificate \"maybe\"" 400 certificate PUT /api/v1/domains/a.example.org \
    '{"mode":"offload","backend":"b1","certificate":"maybe"}'
expect_fail "offload domain with response_headers not an object" 400 response_headers PUT /api/v1/domains/a.example.org \
    '{"mode":"offload","backend":"b1","response_headers":["x"]}'
expect_fail "offload domain with a CRLF in a response header value" 400 "response_headers|response_headers.X-A|response_headers[X-A]|response_headers[\"X-A\"]" \
    PUT /api/v1/domains/a.example.org '{"mode":"offload","backend":"b1","response_headers":{"X-A":"a\r\nSet-Cookie: x=1"}}'
api GET /api/v1/domains/a.example.org
check "no domain was created by the failed requests" is_error 404

expect_ok "PUT domain a.example.org" 201 PUT /api/v1/domains/a.example.org '{"mode":"passthrough","backend":"b1"}'
api GET /api/v1/domains/a.example.org
check "GET a.example.org: name, mode, backend" \
    json_true 'd["name"] == "a.example.org" and d["mode"] == "passthrough" and d["backend"] == "b1"'
expect_ok "PUT a.example.org again (replace, name in body)" 200 PUT /api/v1/domains/a.example.org \
    '{"name":"a.example.org","mode":"passthrough","backend":"b2"}'
api GET /api/v1/domains/a.example.org
check "GET a.example.org after replace: backend b2" json_true 'd["backend"] == "b2"'
expect_fail "domain name mismatch in body" 400 name PUT /api/v1/domains/a.example.org \
    '{"name":"b.example.org","mode":"passthrough","backend":"b1"}'

expect_ok "PUT wildcard *.example.org (literal in URL)" 201 PUT '/api/v1/domains/*.example.org' '{"mode":"passthrough","backend":"b1"}'
api GET '/api/v1/domains/%2A.example.org'
check "GET %2A.example.org finds *.example.org" json_true 'd["name"] == "*.example.org"'
api GET '/api/v1/domains/%2a.example.org'
check "GET %2a.example.org (lowercase hex) finds *.example.org" json_true 'd["name"] == "*.example.org"'
expect_ok "PUT wildcard %2A.wild.example.org (percent-encoded)" 201 PUT '/api/v1/domains/%2A.wild.example.org' '{"mode":"passthrough","backend":"b1"}'
api GET '/api/v1/domains/*.wild.example.org'
check "GET *.wild.example.org literally" json_true 'd["name"] == "*.wild.example.org"'
expect_ok "PUT %2A.example.org with name in body (replace)" 200 PUT '/api/v1/domains/%2A.example.org' \
    '{"name":"*.example.org","mode":"passthrough","backend":"b1"}'
expect_ok "PUT catch-all *" 201 PUT '/api/v1/domains/*' '{"mode":"passthrough","backend":"b1"}'
api GET '/api/v1/domains/%2A'
check "GET %2A finds *" json_true 'd["name"] == "*"'
expect_ok "PUT punycode xn--caf-dma.example.org" 201 PUT /api/v1/domains/xn--caf-dma.example.org '{"mode":"passthrough","backend":"b1"}'
expect_ok "PUT percent-encoded plain name a%2Dz.example.org" 201 PUT '/api/v1/domains/a%2Dz.example.org' '{"mode":"passthrough","backend":"b1"}'
api GET /api/v1/domains/a-z.example.org
check "GET a-z.example.org (created as a%2Dz) -> 200" is_status 200

# Mixed case: normalised to lowercase or refused; either is fine if well-formed.
before=$(cfg_version)
api PUT /api/v1/domains/Cloud.Example.ORG '{"mode":"passthrough","backend":"b1"}'
case $STATUS in
    201)
        note "Cloud.Example.ORG: accepted (201), normalised as $(json_get 'd.get("name")')"
        api GET /api/v1/domains/cloud.example.org
        check "Cloud.Example.ORG created: GET cloud.example.org -> 200 with lowercase name" \
            json_true 'd["name"] == "cloud.example.org"'
        api GET /api/v1/domains
        check "only the lowercase name is listed" \
            json_true '"cloud.example.org" in [x["name"] for x in d["domains"]] and "Cloud.Example.ORG" not in [x["name"] for x in d["domains"]]'
        api PUT /api/v1/domains/CLOUD.example.org '{"mode":"passthrough","backend":"b1"}'
        check "PUT CLOUD.example.org afterwards replaces it (200)" is_status 200
        ;;
    400)
        note "Cloud.Example.ORG: refused (400, field $(json_get 'd["error"].get("field")'))"
        check "Cloud.Example.ORG refused with error shape, config_version unchanged" \
            _fail_ok 400 "$before" "$(cfg_version)"
        ;;
    *) check "Cloud.Example.ORG: 201 (normalised) or 400 (refused), got $STATUS" false ;;
esac

for n in 'caf%C3%A9.example.org' 'a..b.example.org' '-a.example.org' 'a-.example.org' \
         'foo.*.example.org' '*example.org' '**.example.org' 'a%20b.example.org' \
         "$(printf 'a%.0s' $(seq 1 64)).example.org" \
         "$(for i in $(seq 1 4); do printf '%s.' "$(printf 'a%.0s' $(seq 1 63))"; done)org" \
         '1.2.3.4:443' '%2E' '%ZZ.example.org' 'a.example.org%00' 'a.example.org%00.evil.org'; do
    expect_fail "domain with invalid name '${n:0:40}'" 400 name PUT "/api/v1/domains/$n" '{"mode":"passthrough","backend":"b1"}'
done
# An encoded slash is part of the name (the bans API relies on this for CIDRs):
# 400 (invalid name) is right; 404 means the path was split at the decoded '/'.
expect_fail "domain name with an encoded slash a.example.org%2Fx" "400|404" "" PUT '/api/v1/domains/a.example.org%2Fx' '{"mode":"passthrough","backend":"b1"}'
note "PUT /api/v1/domains/a.example.org%2Fx -> $STATUS ${BODY:0:200}"
expect_fail "domain name as raw UTF-8 bytes in the URL" 400 name PUT "/api/v1/domains/$(printf 'caf\xc3\xa9').example.org" \
    '{"mode":"passthrough","backend":"b1"}'

expect_ok "PUT offload domain with certificate manual" 201 PUT /api/v1/domains/off.example.org \
    '{"mode":"offload","backend":"b1","certificate":"manual","redirect_http":true,"hsts":true,"response_headers":{"Content-Security-Policy":"object-src '"'"'self'"'"'"}}'
api GET /api/v1/domains/off.example.org
check "offload domain GET has certificate_status and the response_headers" \
    json_true 'd["mode"] == "offload" and d.get("certificate_status") in ("none","pending","valid","renewing","failed","expired")
               and d["response_headers"] == {"Content-Security-Policy": "object-src '"'"'self'"'"'"}'

api GET /api/v1/domains
check "GET /api/v1/domains lists the domains" \
    json_true '{"a.example.org","*.example.org","*.wild.example.org","*","xn--caf-dma.example.org","off.example.org"} <= {x["name"] for x in d["domains"]}'

expect_fail "GET unknown domain" 404 "" GET /api/v1/domains/nosuch.example.org
expect_fail "DELETE unknown domain" 404 "" DELETE /api/v1/domains/nosuch.example.org

# Backend in use: 409 until its domain is gone.
expect_ok "PUT backend inuse" 201 PUT /api/v1/backends/inuse '{"servers":["127.0.0.1:7"]}'
expect_ok "PUT domain u.example.org on backend inuse" 201 PUT /api/v1/domains/u.example.org '{"mode":"passthrough","backend":"inuse"}'
expect_fail "DELETE backend used by a domain" 409 "" DELETE /api/v1/backends/inuse
api GET /api/v1/backends/inuse
check "backend inuse still there after the 409" is_status 200
expect_ok "DELETE domain u.example.org" 204 DELETE /api/v1/domains/u.example.org
check "DELETE returns an empty body" [ -z "$BODY" ]
api GET /api/v1/domains/u.example.org
check "GET deleted domain -> 404" is_error 404
expect_ok "DELETE backend inuse once unused" 204 DELETE /api/v1/backends/inuse
api GET /api/v1/backends/inuse
check "GET deleted backend -> 404" is_error 404
expect_ok "DELETE wildcard via %2A.wild.example.org" 204 DELETE '/api/v1/domains/%2A.wild.example.org'
api GET '/api/v1/domains/*.wild.example.org'
check "*.wild.example.org is gone" is_error 404

# Everything applied everywhere.
CV=$(cfg_version)
check "all workers at config_version $CV" wait_until 5 workers_at "$CV" 2

stop_portierd
finish

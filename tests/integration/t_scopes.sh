#!/bin/bash
# Token scopes, least privilege (issue 12): a "backend:NAME" token (what a
# YunoHost server's portier-domain uses) creates, replaces and deletes the
# passthrough domains routed to backend NAME and reads that backend and its
# snippet; nothing else: not another backend's domains (not even re-pointing
# one to its own backend), not backends, bans, tokens, certificates, metrics.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
cd "$T"

read -r P1 P2 <<<"$(free_ports 2)"
start_portierd || bail "portierd starts"

for b in yuno1 yuno2 yuno1x; do
    api PUT "/api/v1/backends/$b" "{\"servers\":[\"127.0.0.1:$P1\"],\"proxy_protocol\":\"v2\"}"
    check "admin: backend $b created" is_status 201
done
api PUT /api/v1/domains/d1.test '{"mode":"passthrough","backend":"yuno1"}'
check "admin: d1.test -> yuno1" is_status 201
api PUT /api/v1/domains/d2.test '{"mode":"passthrough","backend":"yuno2"}'
check "admin: d2.test -> yuno2" is_status 201

# ---- minting ----------------------------------------------------------------------------
api POST /api/v1/tokens '{"name":"yuno1-onboarding","scope":"backend:yuno1"}'
check "admin mints a backend:yuno1 token (201, scope echoed)" \
    eval 'is_status 201 && json_true "d[\"scope\"] == \"backend:yuno1\" and len(d[\"token\"]) == 64"'
BT=$(json_get 'd["token"]')
for bad in 'backend:' 'backend:Bad!' 'backend:-x' 'backends:yuno1' 'Backend:yuno1'; do
    api POST /api/v1/tokens "{\"name\":\"bad\",\"scope\":\"$bad\"}"
    check "scope '$bad' -> 400 field scope" is_error 400 scope
done
api GET /api/v1/tokens
check "the token list shows the scope" \
    json_true '[t["scope"] for t in d["tokens"] if t["name"] == "yuno1-onboarding"] == ["backend:yuno1"]'

# ---- what it may do ---------------------------------------------------------------------
api_as "$BT" GET /api/v1/domains
check "backend token: GET /domains lists only its backend's domains" \
    eval 'is_status 200 && json_true "[x[\"name\"] for x in d[\"domains\"]] == [\"d1.test\"]"'
api_as "$BT" PUT /api/v1/domains/new1.test '{"mode":"passthrough","backend":"yuno1"}'
check "backend token: creates a passthrough domain of its backend (201)" is_status 201
api_as "$BT" PUT /api/v1/domains/new1.test '{"mode":"passthrough","backend":"yuno1"}'
check "backend token: replaces it (200)" is_status 200
api_as "$BT" GET /api/v1/domains/d1.test
check "backend token: reads its domain" is_status 200
api_as "$BT" GET "/api/v1/backends/yuno1/snippet?for=yunohost&from=127.0.0.1"
check "backend token: reads its backend's snippet" is_status 200
api_as "$BT" GET /api/v1/backends/yuno1
check "backend token: reads its backend" is_status 200
api_as "$BT" GET /api/v1/status
check "backend token: reads the status (to wait until a change is live)" is_status 200
api_as "$BT" DELETE /api/v1/domains/new1.test
check "backend token: deletes its domain (204)" is_status 204

# ---- what it may not do -----------------------------------------------------------------
api_as "$BT" PUT /api/v1/domains/new2.test '{"mode":"passthrough","backend":"yuno2"}'
check "backend token: a domain routed to another backend -> 403 field backend" is_error 403 backend
api_as "$BT" PUT /api/v1/domains/d2.test '{"mode":"passthrough","backend":"yuno1"}'
check "backend token: re-pointing another backend's domain to its own -> 403" is_error 403
api_as "$BT" DELETE /api/v1/domains/d2.test
check "backend token: deleting another backend's domain -> 403" is_error 403
api_as "$BT" GET /api/v1/domains/d2.test
check "backend token: reading another backend's domain -> 403" is_error 403
api GET /api/v1/domains/d2.test
check "d2.test is still routed to yuno2" json_true 'd["backend"] == "yuno2"'
api_as "$BT" PUT /api/v1/domains/off.test '{"mode":"offload","backend":"yuno1"}'
check "backend token: offload domain (portier's certificates) -> 403 field mode" is_error 403 mode
api_as "$BT" PUT '/api/v1/domains/*.w.test' '{"mode":"passthrough","backend":"yuno1"}'
check "backend token: wildcard domain -> 403 field name" is_error 403 name
api GET /api/v1/domains
check "none of the refused domains exists" \
    json_true 'sorted(x["name"] for x in d["domains"]) == ["d1.test", "d2.test"]'

deny() { # METHOD PATH [BODY]
    api_as "$BT" "$@"
    check "backend token: $1 $2 -> 403" is_error 403
}
deny GET /api/v1/backends
deny PUT /api/v1/backends/yuno1 "{\"servers\":[\"127.0.0.1:$P2\"],\"proxy_protocol\":\"v2\"}"
deny DELETE /api/v1/backends/yuno1
deny GET /api/v1/backends/yuno2
deny GET "/api/v1/backends/yuno2/snippet?for=yunohost"
deny GET "/api/v1/backends/yuno1x/snippet?for=yunohost"
deny GET "/api/v1/backends/yuno1x"
deny GET "/api/v1/backends/yuno%31x/snippet?for=yunohost"
deny GET "/api/v1/backends/yuno1/../yuno2/snippet?for=yunohost"
deny GET /api/v1/bans
deny POST /api/v1/bans '{"ip":"203.0.113.9"}'
deny GET /api/v1/tokens
deny POST /api/v1/tokens '{"name":"escalate","scope":"admin"}'
deny DELETE /api/v1/tokens/yuno1-onboarding
deny GET /api/v1/certificates
deny GET /metrics
api GET /api/v1/backends/yuno1
check "yuno1's servers are unchanged" json_true "d['servers'] == ['127.0.0.1:$P1']"

# ---- a bans token cannot touch domains ----------------------------------------------------
api POST /api/v1/tokens '{"name":"f2b","scope":"bans"}'
FT=$(json_get 'd["token"]')
api_as "$FT" PUT /api/v1/domains/x.test '{"mode":"passthrough","backend":"yuno1"}'
check "bans token: PUT a domain -> 403" is_error 403
api_as "$FT" GET "/api/v1/backends/yuno1/snippet?for=yunohost"
check "bans token: snippet -> 403" is_error 403

# ---- survives a restart, and revocation -------------------------------------------------
stop_portierd
start_portierd || bail "portierd restarts"
api_as "$BT" GET /api/v1/domains
check "after a restart the backend token still works, still scoped" \
    eval 'is_status 200 && json_true "[x[\"name\"] for x in d[\"domains\"]] == [\"d1.test\"]"'
api DELETE /api/v1/tokens/yuno1-onboarding
check "admin revokes the backend token" is_status 204
api_as "$BT" GET /api/v1/domains
check "a revoked backend token -> 401" is_status 401

finish

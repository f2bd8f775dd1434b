#!/bin/bash
# contrib/yunohost/portier-domain against the daemon, run by /bin/sh: the first
# run creates the backend (PROXY v2, http_servers) and the passthrough domain
# and prints the conf_regen hook, a second run is idempotent, --install writes
# the hook, API errors are reported with portier's message and a non-zero
# exit; the same again with JSON read by sed instead of python3.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
SCRIPT="$HERE/../../contrib/yunohost/portier-domain"
cd "$T"

[ -f "$SCRIPT" ] || bail "contrib/yunohost/portier-domain exists"
start_portierd || bail "portierd starts"

URL="http://127.0.0.1:$API_PORT"
cp "$TOKEN_FILE" admin.token

# pd ARGS...: run the script with sh; sets RC, OUT (stdout), ERR (stderr)
pd() {
    env -u PORTIER_TOKEN PORTIER_DOMAIN_CONF= PATH="$PATH" sh "$SCRIPT" "$@" >pd.out 2>pd.err
    RC=$?
    OUT=$(cat pd.out) ERR=$(cat pd.err)
}
ran_ok() { [ "$RC" = 0 ] || { WHY="exit $RC; stderr: $ERR"; return 1; }; }
ran_failed() { # EXIT PATTERN
    [ "$RC" = "$1" ] || { WHY="exit $RC, expected $1; stderr: $ERR"; return 1; }
    grep -qE -- "$2" <<<"$ERR" || { WHY="stderr lacks /$2/: $ERR"; return 1; }
}
out_has() { grep -qF -- "$1" <<<"$OUT" || { WHY="stdout lacks '$1': ${OUT:0:300}"; return 1; }; }
err_has() { grep -qE -- "$1" <<<"$ERR" || { WHY="stderr lacks /$1/: $ERR"; return 1; }; }

BASE=(--url "$URL" --token-file "$T/admin.token" --backend yuno1
      --server 192.0.2.10:443 --http-server 192.0.2.10:80)

if command -v shellcheck >/dev/null 2>&1; then
    out=$(shellcheck -s sh "$SCRIPT" 2>&1)
    check "shellcheck -s sh finds nothing in portier-domain" [ -z "$out" ]
    [ -z "$out" ] || note "$out"
fi
check "portier-domain passes sh -n" sh -n "$SCRIPT"

v0=$(cfg_version)
pd "${BASE[@]}" cloud.example.org
check "first run exits 0" ran_ok
check "first run: backend created" err_has 'backend yuno1: created'
check "first run: domain created" err_has 'domain cloud.example.org: created'
check "first run: waited until live" err_has 'live: every portier worker runs config_version'
check "first run prints the YunoHost conf_regen hook on stdout" \
    eval 'out_has "#!/bin/bash" && out_has "99-nginx_portier" && out_has "conf_regen"'
api GET /api/v1/backends/yuno1
check "backend yuno1: PROXY v2, servers and http_servers as given" \
    json_true 'd["proxy_protocol"] == "v2" and d["servers"] == ["192.0.2.10:443"] and d["http_servers"] == ["192.0.2.10:80"]'
api GET /api/v1/domains/cloud.example.org
check "domain cloud.example.org: passthrough to yuno1" \
    json_true 'd["mode"] == "passthrough" and d["backend"] == "yuno1"'
check "every worker runs the new configuration" workers_at "$(cfg_version)"
[ "$(cfg_version)" -gt "$v0" ] 2>/dev/null
check "config_version moved" [ $? = 0 ]

pd "${BASE[@]}" cloud.example.org
check "second run exits 0 (idempotent)" ran_ok
check "second run: backend and domain exist and are updated, no error" \
    eval 'err_has "backend yuno1: exists, updated" && err_has "domain cloud.example.org: exists, updated" && ! grep -qi error <<<"$ERR"'
check "second run prints the hook again" out_has "#!/bin/bash"
api GET /api/v1/backends
check "still one backend yuno1" json_true '[b["name"] for b in d["backends"]] == ["yuno1"]'
api GET /api/v1/domains
check "still one domain" json_true '[x["name"] for x in d["domains"]] == ["cloud.example.org"]'

# a second domain on the same backend, settings from a config file, from=
cat >pd.conf <<EOF
PORTIER_URL=$URL
PORTIER_TOKEN_FILE=$T/admin.token
PORTIER_BACKEND=yuno1
PORTIER_SERVER=192.0.2.10:443
PORTIER_HTTP_SERVER=192.0.2.10:80
PORTIER_FROM=192.0.2.1
EOF
pd --config "$T/pd.conf" Blog.Example.org.
check "config file run for Blog.Example.org. exits 0" ran_ok
api GET /api/v1/domains/blog.example.org
check "domain name lowercased, trailing dot dropped: blog.example.org -> yuno1" json_true 'd["backend"] == "yuno1"'
check "from= reaches the snippet (PORTIER_FROM=\"192.0.2.1\")" out_has 'PORTIER_FROM="192.0.2.1"'

PORTIER_POLL=1 pd "${BASE[@]}" --snippet none cloud.example.org
check "polling /api/v1/status (python3) finds the change live" \
    eval 'ran_ok && err_has "waiting .* config_version" && err_has "live: every portier worker"'

pd "${BASE[@]}" --snippet nginx cloud.example.org
check "--snippet nginx prints the nginx lines" out_has "listen 192.0.2.10:443 ssl proxy_protocol;"
pd "${BASE[@]}" --snippet none cloud.example.org
check "--snippet none prints nothing" eval '[ "$RC" = 0 ] && [ -z "$OUT" ]'

# --install (into a test directory; no yunohost command here)
pd "${BASE[@]}" --install --hook-dir "$T/hooks" cloud.example.org
check "--install exits 0" ran_ok
check "--install wrote an executable 99-nginx_portier" test -x "$T/hooks/99-nginx_portier"
check "the installed hook is the snippet" grep -q 'portier conf_regen hook' "$T/hooks/99-nginx_portier"
check "--install says how to apply it without the yunohost command" err_has "regen-conf nginx"
check "--install prints no snippet" [ -z "$OUT" ]
ls "$T/hooks" >hooks.ls
check "no temporary file left in the hook directory" [ "$(cat hooks.ls)" = 99-nginx_portier ]
pd "${BASE[@]}" --install --hook-dir "$T/hooks" cloud.example.org
check "--install again: up to date" err_has "is up to date"

# ---- errors -----------------------------------------------------------------------------
echo 0000000000000000000000000000000000000000000000000000000000000000 >bad.token
pd --url "$URL" --token-file "$T/bad.token" --backend yuno1 --server 192.0.2.10:443 x.example.org
check "wrong token: exit 1 with portier's 401 message" ran_failed 1 'answered 401: missing or wrong bearer token'
api POST /api/v1/tokens '{"name":"bans-only","scope":"bans"}'
echo "$(json_get 'd["token"]')" >bans.token
pd --url "$URL" --token-file "$T/bans.token" --backend yuno1 --server 192.0.2.10:443 x.example.org
check "bans-scope token: exit 1, 403 and a hint about scope admin" ran_failed 1 'answered 403: .*scope admin'
pd "${BASE[@]}" 'bad..example.org'
check "a domain portier refuses: exit 1 with the API message and field" ran_failed 1 'domain bad\.\.example\.org: portier answered 400: name: .*\(field: name\)'
pd --url "$URL" --token-file "$T/admin.token" --backend yuno1 --server 192.0.2.10:99999 y.example.org
check "a bad server: exit 1 with the API message about servers[0]" ran_failed 1 'answered 400: servers\[0\]: .*port'
dead=$(free_port)
pd --url "http://127.0.0.1:$dead" --token-file "$T/admin.token" --backend yuno1 --server 192.0.2.10:443 z.example.org
check "portier unreachable: exit 1, says so" ran_failed 1 'cannot reach portier'
pd --token-file "$T/admin.token" --backend yuno1 --server 192.0.2.10:443 z.example.org
check "no URL: exit 2" ran_failed 2 'URL is not set'
pd --url "$URL" --backend yuno1 --server 192.0.2.10:443 z.example.org
check "no token: exit 2" ran_failed 2 'no API token'
pd "${BASE[@]}"
check "no domain: exit 2" ran_failed 2 'which domain'
pd "${BASE[@]}" --bogus z.example.org
check "unknown option: exit 2" ran_failed 2 'unknown option'
pd "${BASE[@]}" --from 'x;y' z.example.org
check "bad --from: exit 2" ran_failed 2 'from'
api GET /api/v1/domains
check "failed runs created no domain" \
    json_true 'sorted(x["name"] for x in d["domains"]) == ["blog.example.org", "cloud.example.org"]'

# ---- the same without python3 (JSON read by sed) ------------------------------------------
export PORTIER_NO_PYTHON=1
pd "${BASE[@]}" --backend yuno2 --server 192.0.2.20:443 --http-server none sed.example.org
check "without python3: first run exits 0" ran_ok
check "without python3: created and live" \
    eval 'err_has "backend yuno2: created" && err_has "domain sed.example.org: created" && err_has "live: every portier worker runs config_version [0-9]+"'
api GET /api/v1/backends/yuno2
check "--http-server none: no http_servers" json_true 'd["http_servers"] == []'
check "without python3: hook printed" out_has "#!/bin/bash"
PORTIER_POLL=1 pd "${BASE[@]}" --backend yuno2 --server 192.0.2.20:443 --http-server none sed.example.org
check "without python3: second run exits 0" ran_ok
check "without python3: polling /api/v1/status (sed) finds the change live" \
    eval 'err_has "waiting .* config_version" && err_has "live: every portier worker"'
pd "${BASE[@]}" 'bad..example.org'
check "without python3: the API's message and field are still printed" \
    ran_failed 1 'answered 400: name: .*\(field: name\)'
unset PORTIER_NO_PYTHON

finish

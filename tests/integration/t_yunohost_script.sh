#!/bin/bash
# contrib/yunohost/portier-domain against the daemon, run by /bin/sh, with a
# token of scope backend:NAME: domains one by one, `sync` (YunoHost's domain
# list, XMPP subdomains, removal of gone domains, --dry-run, idempotence),
# `remove`, --install (conf_regen hook, post_domain_add/remove hooks that keep
# the routes in step, fail2ban with the bans token and portier in ignoreip,
# checked with a real fail2ban-server), the refusals (YunoHost's own TLS
# passthrough, PROXY on port 443, plain HTTP across the network), and the API
# over TLS with the certificate or its public key pinned.
#
# The yunohost command cannot run here: a stand-in on PATH answers from
# fixtures in YunoHost's own output format:
#   domain list --output-as json -> {"domains": [...], "main": "..."}: what
#       domain_list() returns without --tree (src/domain.py in
#       ../shared/data/yunohost-12.1.25), printed as JSON by moulinette;
#   domain config get D feature.xmpp.xmpp --output-as json -> 1 or 0: the
#       option YunoHost's certificate code reads (src/certificate.py,
#       domain_config_get(domain, key="feature.xmpp.xmpp") == 1) to add
#       xmpp-upload.D and muc.D to D's certificate;
#   tools regen-conf nginx -> recorded (the hook itself runs in t_yunohost_nginx.sh).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/fail2ban.sh"
SCRIPT="$HERE/../../contrib/yunohost/portier-domain"
F2B_ACTION="$HERE/../../contrib/fail2ban/action.d/portier.conf"
YH=${YUNOHOST_DATA:-$(cd "$HERE/../.." && pwd)/../shared/data/yunohost-12.1.25}
cd "$T"

[ -f "$SCRIPT" ] || bail "contrib/yunohost/portier-domain exists"
read -r PX P80 <<<"$(free_ports 2)"
start_portierd || bail "portierd starts"

URL="http://127.0.0.1:$API_PORT"
cp "$TOKEN_FILE" admin.token

# ---- the stand-in yunohost ----------------------------------------------------------------
mkdir -p bin fix
cat >bin/yunohost <<EOF
#!/bin/sh
echo "\$*" >>"$T/fix/calls"
case "\$*" in
    "domain list --output-as json") cat "$T/fix/domain_list.json" ;;
    "domain config get "*" feature.xmpp.xmpp --output-as json")
        if grep -qxF "\$4" "$T/fix/xmpp_on"; then echo 1; else echo 0; fi ;;
    "tools regen-conf nginx") echo "Success! The configuration has been updated for 'nginx'" ;;
    *) echo "stand-in yunohost: not a fixture: \$*" >&2; exit 1 ;;
esac
EOF
chmod +x bin/yunohost
: >fix/xmpp_on
domains() { # NAME...: the fixture for yunohost domain list (first = main)
    "$PY" -c 'import json, sys; print(json.dumps({"domains": sys.argv[1:], "main": sys.argv[1]}))' "$@" \
        >fix/domain_list.json
}

# pd ARGS...: run the script with sh; sets RC, OUT (stdout), ERR (stderr)
pd() {
    env -u PORTIER_TOKEN PORTIER_DOMAIN_CONF= PATH="$T/bin:$PATH" sh "$SCRIPT" "$@" >pd.out 2>pd.err
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
routed() { # BACKEND: the names routed to BACKEND, sorted, one line
    ( api GET /api/v1/domains
      json_get '" ".join(sorted(x["name"] for x in d["domains"] if x["backend"] == a[0]))' "$1" )
}
routed_is() { # BACKEND NAMES...
    local b=$1 got; shift
    got=$(routed "$b")
    [ "$got" = "$*" ] || { WHY="routed to $b: '$got', expected '$*'"; return 1; }
}

if command -v shellcheck >/dev/null 2>&1; then
    out=$(shellcheck -s sh "$SCRIPT" 2>&1)
    check "shellcheck -s sh finds nothing in portier-domain" [ -z "$out" ]
    [ -z "$out" ] || note "$out"
fi
check "portier-domain passes sh -n" sh -n "$SCRIPT"

# ---- the backend: once, by an admin --------------------------------------------------------
pd --url "$URL" --token-file admin.token --backend yuno1 --server "127.0.0.1:$PX" \
    --http-server "127.0.0.1:$P80" --create-backend cloud.example.org
check "--create-backend with an admin token: backend created, domain added" \
    eval 'ran_ok && err_has "backend yuno1: created" && err_has "domain cloud.example.org: created"'
api GET /api/v1/backends/yuno1
check "backend yuno1: PROXY v2 to its own port, port 80 as given" \
    json_true "d['proxy_protocol'] == 'v2' and d['servers'] == ['127.0.0.1:$PX'] and d['http_servers'] == ['127.0.0.1:$P80']"
api PUT /api/v1/backends/yuno2 "{\"servers\":[\"127.0.0.1:$PX\"],\"proxy_protocol\":\"v2\"}"
api PUT /api/v1/domains/other.example.net '{"mode":"passthrough","backend":"yuno2"}'
api PUT '/api/v1/domains/*.wild.example.org' '{"mode":"passthrough","backend":"yuno1"}'
check "admin: a wildcard route on yuno1 (sync must leave it)" is_status 201
api POST /api/v1/tokens '{"name":"yuno1-domains","scope":"backend:yuno1"}'
json_get 'd["token"]' >bt.token
BASE=(--url "$URL" --token-file "$T/bt.token" --backend yuno1)

# ---- one domain at a time, with the backend token ----------------------------------------------
v0=$(cfg_version)
pd "${BASE[@]}" blog.example.org
check "backend token: a domain is added" eval 'ran_ok && err_has "domain blog.example.org: created: passthrough to yuno1"'
check "... and the run waited until it was live" err_has 'live: every portier worker runs config_version'
check "... and printed the conf_regen hook" eval 'out_has "#!/bin/bash" && out_has "99-nginx_portier" && out_has "PORTIER_LISTEN=\"127.0.0.1:$PX\""'
[ "$(cfg_version)" -gt "$v0" ] 2>/dev/null
check "config_version moved" [ $? = 0 ]
pd "${BASE[@]}" Blog.Example.org.
check "again (upper case, trailing dot): exists, no error" \
    eval 'ran_ok && err_has "domain blog.example.org: exists, updated" && ! grep -qi error <<<"$ERR"'
PORTIER_POLL=1 pd "${BASE[@]}" --snippet none blog.example.org
check "polling /api/v1/status finds the change live" \
    eval 'ran_ok && err_has "waiting .* config_version" && err_has "live: every portier worker" && [ -z "$OUT" ]'
pd "${BASE[@]}" --snippet nginx blog.example.org
check "--snippet nginx prints the nginx lines" out_has "listen 127.0.0.1:$PX ssl proxy_protocol;"
pd "${BASE[@]}" other.example.net
check "another backend's domain: exit 1 with portier's 403" ran_failed 1 'other.example.net: portier answered 403'
check "other.example.net is still yuno2's" routed_is yuno2 other.example.net

# ---- sync ------------------------------------------------------------------------------------
api PUT /api/v1/domains/old.example.org '{"mode":"passthrough","backend":"yuno1"}'
domains cloud.example.org blog.example.org chat.example.org
echo chat.example.org >fix/xmpp_on
before=$(routed yuno1) v1=$(cfg_version)
pd "${BASE[@]}" sync --dry-run
check "sync --dry-run exits 0 and says nothing changed" eval 'ran_ok && err_has "dry run: nothing changed"'
check "sync --dry-run prints the additions (XMPP subdomains of chat.example.org too) and the removal" \
    eval '[ "$OUT" = "$(printf "add %s\n" chat.example.org muc.chat.example.org xmpp-upload.chat.example.org; echo "remove old.example.org")" ]'
[ "$(routed yuno1)" = "$before" ] && [ "$(cfg_version)" = "$v1" ]
check "sync --dry-run changed nothing at portier" [ $? = 0 ]
pd "${BASE[@]}" sync
check "sync exits 0" ran_ok
check "sync: yunohost's domains + XMPP subdomains routed, old.example.org removed, the wildcard left" \
    routed_is yuno1 '*.wild.example.org' blog.example.org chat.example.org cloud.example.org muc.chat.example.org xmpp-upload.chat.example.org
check "sync: another backend's domain untouched" routed_is yuno2 other.example.net
v2=$(cfg_version)
pd "${BASE[@]}" sync
check "sync again: in sync, nothing to change, config_version unchanged" \
    eval 'ran_ok && err_has "in sync: 5 domain" && [ "$(cfg_version)" = "$v2" ]'
: >fix/xmpp_on
domains cloud.example.org chat.example.org
pd "${BASE[@]}" sync
check "XMPP off and blog.example.org gone: sync removes their routes" \
    eval 'ran_ok && routed_is yuno1 "*.wild.example.org" chat.example.org cloud.example.org'
domains cloud.example.org chat.example.org other.example.net
pd "${BASE[@]}" sync
check "a domain another backend owns: sync exits 1, says which" ran_failed 1 'other.example.net: portier answered 403'
check "... and it stays with its backend" routed_is yuno2 other.example.net
domains cloud.example.org chat.example.org
pd "${BASE[@]}" remove chat.example.org
check "remove: the route is gone" eval 'ran_ok && err_has "domain chat.example.org: removed" && routed_is yuno1 "*.wild.example.org" cloud.example.org'
pd "${BASE[@]}" remove chat.example.org
check "remove again: not routed, exit 0" eval 'ran_ok && err_has "not routed"'

# ---- --install: hooks, and the domain hooks keep portier in step ----------------------------------
api POST /api/v1/tokens '{"name":"yuno1-fail2ban","scope":"bans"}'
json_get 'd["token"]' >bans.token
cat >pd.conf <<EOF
PORTIER_URL=$URL
PORTIER_TOKEN_FILE=$T/bt.token
PORTIER_BACKEND=yuno1
PORTIER_FROM=192.0.2.2
PORTIER_HOOKS_DIR=$T/hooks
PORTIER_BANS_TOKEN_FILE=$T/bans.token
PORTIER_FAIL2BAN_DIR=$T/f2b
PORTIER_F2B_ACTION=$F2B_ACTION
EOF
: >fix/calls
pd --config "$T/pd.conf" --install sync
check "--install sync exits 0" ran_ok
check "conf_regen/99-nginx_portier installed, executable, with from=" \
    eval 'test -x hooks/conf_regen/99-nginx_portier && grep -qxF "PORTIER_FROM=\"192.0.2.2\"" hooks/conf_regen/99-nginx_portier'
check "post_domain_add and post_domain_remove hooks installed, running sync with the config" \
    eval 'for h in post_domain_add post_domain_remove; do test -x hooks/$h/50-portier &&
          grep -q -- "--config $T/pd.conf sync" hooks/$h/50-portier || exit 1; done'
check "regen-conf nginx was run" grep -qxF "tools regen-conf nginx" fix/calls
ls -R hooks | grep -c tmp >tmpcount
check "no temporary file left in the hooks directory" [ "$(cat tmpcount)" = 0 ]
pd --config "$T/pd.conf" --install sync
check "--install again: every file up to date" \
    eval 'ran_ok && [ "$(grep -c "is up to date" <<<"$ERR")" = 6 ] && ! err_has "wrote"'
sed -i 's/^PORTIER_FROM=192.0.2.2$/PORTIER_FROM=192.0.2.3/' pd.conf
pd --config "$T/pd.conf" --install --no-regen sync
check "--install with a changed hook: the change is shown as a diff" \
    eval 'ran_ok && err_has "99-nginx_portier changes:" && err_has "^-PORTIER_FROM=\"192.0.2.2\"" && err_has "^\+PORTIER_FROM=\"192.0.2.3\""'
sed -i 's/^PORTIER_FROM=192.0.2.3$/PORTIER_FROM=192.0.2.2/' pd.conf
pd --config "$T/pd.conf" --install --no-regen sync
# YunoHost runs the hooks as "hook_exec(path, args=[domain])"
domains cloud.example.org chat.example.org new.example.org
PATH="$T/bin:$PATH" bash hooks/post_domain_add/50-portier new.example.org >hook.out 2>&1
check "post_domain_add hook: the new domain is routed" routed_is yuno1 '*.wild.example.org' chat.example.org cloud.example.org new.example.org
domains cloud.example.org
PATH="$T/bin:$PATH" bash hooks/post_domain_remove/50-portier chat.example.org >hook.out 2>&1
check "post_domain_remove hook: the removed domains' routes are gone" \
    routed_is yuno1 '*.wild.example.org' cloud.example.org

# ---- fail2ban -----------------------------------------------------------------------------
J="$T/f2b/jail.d/portier.local"
check "fail2ban: action and the bans token installed (token mode 0600)" \
    eval 'cmp -s "$F2B_ACTION" f2b/action.d/portier.conf && [ "$(stat -c %a f2b/portier.token)" = 600 ] &&
          cmp -s <(tr -d "\n" <bans.token) <(tr -d "\n" <f2b/portier.token)'
check "fail2ban: portier's address in ignoreip" grep -qxE 'ignoreip = 127\.0\.0\.1/8 ::1 192\.0\.2\.2' "$J"
check "fail2ban: YunoHost's nginx jails (52-fail2ban's yunohost, yunohost-portal) ban at portier" \
    eval 'grep -qxF "[yunohost]" "$J" && grep -qxF "[yunohost-portal]" "$J" && grep -q "portier\[portier_url=\"$URL\"" "$J"'
ban_entry() { ( api GET /api/v1/bans; json_get 'next((b for b in d["bans"] if b["ip"] == a[0]), "")' "$1" ); }
if command -v fail2ban-client >/dev/null 2>&1; then
    F="$T/f2b"
    mkdir -p "$F/filter.d"
    : >"$T/portal-access.log"
    # YunoHost's jail names (52-fail2ban copies filter.d/yunohost.conf and
    # yunohost-portal.conf and renders jail.d/yunohost-jails.conf); the filter
    # here is a stand-in for the portal's failed logins in nginx's access log
    cat >"$F/filter.d/yunohost-portal.conf" <<'EOF'
[Definition]
failregex = ^<HOST> - \S+ \[[^]]*\] "POST /yunohost/portalapi/login HTTP/\d\.\d" 401
datepattern = {NONE}
EOF
    cat >"$F/jail.conf" <<EOF
[DEFAULT]
backend = polling
bantime = 600
banaction = noop
action_ = %(banaction)s
[yunohost-portal]
enabled = true
port = http,https
filter = yunohost-portal
logpath = $T/portal-access.log
maxretry = 3
findtime = 600
EOF
    # the local ban (iptables on a real server) does nothing here
    mkdir -p "$F/action.d"
    printf '[Definition]\nactionban = true\nactionunban = true\n' >"$F/action.d/noop.conf"
    check "fail2ban starts with jail.d/portier.local" f2b_start "$F"
    line() { echo "$1 - - [05/Dec/2026:10:00:00 +0000] \"POST /yunohost/portalapi/login HTTP/1.1\" 401 12 \"-\" \"curl\""; }
    # documentation addresses: fail2ban ignores all of 127.0.0.0/8 (YunoHost too)
    for i in 1 2 3 4; do line 192.0.2.2; line 203.0.113.5; done >>"$T/portal-access.log"
    banned() { [ -n "$(ban_entry "$1")" ]; }
    check "fail2ban: a client failing the portal login is banned at portier" wait_until 15 banned 203.0.113.5
    check "fail2ban: portier's own address (ignoreip) is never banned" eval '! banned 192.0.2.2 && grep -q "Ignore 192.0.2.2 by ip" "$F/fail2ban.log"'
    api GET /api/v1/bans
    check "the ban at portier names the jail" \
        json_true '[b["reason"] for b in d["bans"] if b["ip"] == "203.0.113.5"] == ["fail2ban yunohost-portal"]'
    f2b stop >/dev/null 2>&1
    check "fail2ban logged no action error" eval '! grep -q "ERROR" "$F/fail2ban.log"'
    grep -q ERROR "$F/fail2ban.log" && note "$(grep ERROR "$F/fail2ban.log" | head -n 5)"
else
    note "fail2ban-client not installed: real fail2ban run skipped"
fi

# ---- refusals ---------------------------------------------------------------------------------
mkdir -p nginx/modules-enabled
if [ -f "$YH/conf/nginx/tls_passthrough.conf" ]; then
    tls_passthrough_list="x.example.org;192.0.2.7;443" "$PY" -c \
        'import os, sys, jinja2; sys.stdout.write(jinja2.Template(sys.stdin.read()).render(os.environ))' \
        <"$YH/conf/nginx/tls_passthrough.conf" >nginx/modules-enabled/tls_passthrough.conf 2>/dev/null ||
        printf 'stream {\n    server {\n        listen 443;\n    }\n}\n' >nginx/modules-enabled/tls_passthrough.conf
else
    note "YunoHost's files not at $YH: a minimal stream block stands in for tls_passthrough.conf"
    printf 'stream {\n    server {\n        listen 443;\n    }\n}\n' >nginx/modules-enabled/tls_passthrough.conf
fi
v3=$(cfg_version)
pd "${BASE[@]}" --nginx-dir "$T/nginx" z1.example.org
check "YunoHost's own TLS passthrough on: exit 1 with an explanation, nothing sent" \
    eval 'ran_failed 1 "TLS passthrough is on" && [ "$(cfg_version)" = "$v3" ]'
: >nginx/modules-enabled/tls_passthrough.conf
pd "${BASE[@]}" --nginx-dir "$T/nginx" --snippet none z1.example.org
check "... off (15-nginx leaves the file empty): runs" ran_ok
api PUT /api/v1/backends/yuno443 '{"servers":["192.0.2.10:443"],"proxy_protocol":"v2"}'
pd --url "$URL" --token-file admin.token --backend yuno443 z2.example.org
check "a backend whose PROXY connections land on 443: exit 1, points to a port of its own" \
    ran_failed 1 'a port YunoHost.s$'
pd --url "$URL" --token-file admin.token --backend nope z2.example.org
check "a backend portier does not have: exit 1, says who creates it" ran_failed 1 "no backend 'nope'"
pd --url "$URL" --token-file "$T/bt.token" --backend yuno2 z2.example.org
check "the backend token for another backend: exit 1, 403 with a hint" ran_failed 1 '403: .*scope backend:yuno2'
pd --url "http://192.0.2.1:9180" --token-file "$T/bt.token" --backend yuno1 z2.example.org
check "plain http:// across the network: exit 2 (the token would travel unencrypted)" ran_failed 2 'unencrypted'
api GET /api/v1/domains/z2.example.org
check "no refused run created its domain" is_status 404

# ---- errors ----------------------------------------------------------------------------------
echo 0000000000000000000000000000000000000000000000000000000000000000 >bad.token
pd --url "$URL" --token-file "$T/bad.token" --backend yuno1 x.example.org
check "wrong token: exit 1 with portier's 401 message" ran_failed 1 'answered 401: missing or wrong bearer token'
pd "${BASE[@]}" 'bad..example.org'
check "a domain portier refuses: exit 1 with the API message and field" ran_failed 1 'domain bad\.\.example\.org: portier answered 400: name: .*\(field: name\)'
dead=$(free_port)
pd --url "http://127.0.0.1:$dead" --token-file "$T/bt.token" --backend yuno1 z.example.org
check "portier unreachable: exit 1, says so" ran_failed 1 'cannot reach portier'
pd --token-file "$T/bt.token" --backend yuno1 z.example.org
check "no URL: exit 2" ran_failed 2 'URL is not set'
pd --url "$URL" --backend yuno1 z.example.org
check "no token: exit 2" ran_failed 2 'no API token'
pd "${BASE[@]}"
check "no domain: exit 2" ran_failed 2 'which domain'
pd "${BASE[@]}" sync extra.example.org
check "sync with a domain: exit 2" ran_failed 2 'sync takes no domain'
pd "${BASE[@]}" --dry-run z.example.org
check "--dry-run without sync: exit 2" ran_failed 2 'dry-run goes with sync'
pd "${BASE[@]}" --bogus z.example.org
check "unknown option: exit 2" ran_failed 2 'unknown option'
pd "${BASE[@]}" --from 'x;y' z.example.org
check "bad --from: exit 2" ran_failed 2 'from'
pd "${BASE[@]}" 'a;b.example.org'
check "a name with shell characters: exit 2" ran_failed 2 'not a domain name'

# ---- mail: stream routes (admin token) -----------------------------------------------------------
read -r PM PMS <<<"$(free_ports 2)"
"$PY" "$HERE/tools/stream_peers.py" server "$PMS" smtp --pp >>"$T/peers.err" 2>&1 &
track_pid $!
disown $!
wait_until 10 port_listening "$PMS" || bail "stand-in mail server on $PMS"
pd --url "$URL" --token-file "$T/bt.token" --backend yuno1 --server 127.0.0.1:4443 \
    --mail-listen 127.0.0.1 --mail-ports "$PM:$PMS" mail
check "mail with a backend:NAME token: refused (exit 1), saying an admin token is needed" \
    ran_failed 1 'admin token'
pd --url "$URL" --token-file admin.token --backend yuno1 --server 127.0.0.1:4443 \
    --mail-listen 127.0.0.1 --mail-ports "$PM:$PMS" mail
check "mail with the admin token: the stream route yuno1-$PM is created" ran_ok
api GET "/api/v1/streams/yuno1-$PM"
check "  listening on 127.0.0.1:$PM, backend yuno1-$PM (PROXY v2 to 127.0.0.1:$PMS)" json_true \
    'd["mode"] == "tcp" and d["listen"] == [a[0]] and d["backend"] == a[1]' "127.0.0.1:$PM" "yuno1-$PM"
check "  it names the snippets to apply" err_has 'for=postfix'
RES=$("$PY" "$HERE/tools/stream_peers.py" client "$PM" --src 127.0.0.6)
check "  a client reaches the mail server through it, with its own address" \
    grep -q '"greeting": "HELLO smtp from 127.0.0.6"' <<<"$RES"
pd --url "$URL" --token-file admin.token --backend yuno1 --mail-ports "25:x" mail
check "a bad --mail-ports pair: exit 2" ran_failed 2 'mail-ports'

# ---- the API over TLS, pinned ----------------------------------------------------------------------
stop_portierd
API_SCHEME=https API_CACERT="$T/api.crt"
start_portierd --api-tls-cert "$T/api.crt" --api-tls-key "$T/api.key" || bail "portierd restarts with API TLS"
PIN=$(grep -o 'public key pin sha256//[A-Za-z0-9+/=]*' "$T/portierd.log" | tail -n 1 | sed 's/.* //')
check "portierd made its API certificate and logged its fingerprint and pin" \
    eval '[ -s api.crt ] && [ "$(stat -c %a api.key)" = 600 ] && [ -n "$PIN" ] &&
          grep -q "SHA-256 fingerprint [0-9A-F:]\{95\}" "$T/portierd.log"'
TURL="https://127.0.0.1:$API_PORT"
pd --url "$TURL" --cacert "$T/api.crt" --token-file "$T/bt.token" --backend yuno1 --snippet none tls1.example.org
check "https with --cacert (the certificate itself): works" ran_ok
pd --url "$TURL" --pin "$PIN" --token-file "$T/bt.token" --backend yuno1 --snippet none tls2.example.org
check "https with --pin (public key pin from the log): works" ran_ok
pd --url "$TURL" --pin "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" --token-file "$T/bt.token" --backend yuno1 tls3.example.org
check "https with a wrong pin: refused (exit 1), nothing sent" ran_failed 1 'cannot reach portier.*(pinned|public key)'
pd --url "$TURL" --token-file "$T/bt.token" --backend yuno1 tls3.example.org
check "https without --cacert or --pin: the self-made certificate is not trusted (exit 1)" ran_failed 1 'cannot reach portier'
check "over TLS: the pinned runs routed their domains, the refused ones did not" \
    routed_is yuno1 '*.wild.example.org' cloud.example.org tls1.example.org tls2.example.org z1.example.org
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$API_PORT/healthz")
check "the TLS API does not answer plain HTTP" [ "$code" != 200 ]

finish

#!/bin/bash
# GET /api/v1/backends/NAME/snippet?for=nginx|apache|yunohost: the nginx lines
# are put into a real nginx (nginx -t, then run as the backend behind portier,
# whose log must show the real client); the YunoHost conf_regen hook is run on
# a pending directory laid out like YunoHost's and its output passes nginx -t;
# Apache lines, from=, proxy_protocol "none", errors.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 P2 <<<"$(free_ports 2)"
make_cert a "DNS:a.test"
mkdir -p www
echo "snippet-backend" >www/index.html

start_portierd || bail "portierd starts"

api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:$P1\"],\"proxy_protocol\":\"v2\",\"http_servers\":[\"127.0.0.1:$P2\"]}"
check "backend yuno (PROXY v2, http_servers) created" is_status 201

# snippet FOR [QUERY...]: GET the snippet into $BODY
snippet() { api GET "/api/v1/backends/${SNIP_BACKEND:-yuno}/snippet?for=$1${2:+&$2}"; }
is_text() {
    is_status 200 || return 1
    local ct; ct=$(header Content-Type)
    case "$ct" in text/plain*) return 0 ;; esac
    WHY="Content-Type: '$ct'"
    return 1
}
# has LINE...: every LINE is a whole line of $BODY
has() {
    local l
    for l in "$@"; do
        grep -qxF -- "$l" <<<"$BODY" || { WHY="no line '$l' in: ${BODY:0:1500}"; return 1; }
    done
}
hasnt() {
    local l
    for l in "$@"; do
        ! grep -qxF -- "$l" <<<"$BODY" || { WHY="unexpected line '$l'"; return 1; }
    done
}
# section NAME: the lines of $BODY after the "[NAME]" marker up to the next marker
section() { awk -v m="[$1]" 'index($0, "# ---- [") == 1 { on = index($0, m) > 0; next } on' <<<"$BODY"; }

# ---- nginx -------------------------------------------------------------------------
snippet nginx
check "for=nginx -> 200 text/plain" is_text
check "nginx: listen on the server portier connects to, with proxy_protocol" \
    has "listen 127.0.0.1:$P1 ssl proxy_protocol;"
check "nginx: real_ip_header proxy_protocol, default set_real_ip_from 127.0.0.1 and ::1" \
    has "real_ip_header proxy_protocol;" "set_real_ip_from 127.0.0.1;" "set_real_ip_from ::1;"
check "nginx: X-Real-IP / X-Forwarded-For for its own proxying" \
    has 'proxy_set_header X-Real-IP $remote_addr;' \
        'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;'
check "nginx: port 80 section uses real_ip_header X-Real-IP" \
    grep -qxF "real_ip_header X-Real-IP;" <<<"$(section http)"
check "nginx: without from= a comment asks for portier's LAN address" \
    grep -qi "portier's LAN address" <<<"$BODY"
NGINX_SNIP=$BODY
HTTPS_LINES=$(BODY=$NGINX_SNIP section https)
HTTP_LINES=$(BODY=$NGINX_SNIP section http)
check "nginx: the https section has the PROXY lines, the http one does not" \
    eval 'grep -q "real_ip_header proxy_protocol;" <<<"$HTTPS_LINES" && ! grep -q proxy_protocol <<<"$HTTP_LINES"'

SERVERS="
server {
$HTTPS_LINES
    server_name a.test;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    access_log $T/nginx-be/logs/https.log pt; root $T/www;
}
server {
    listen 127.0.0.1:$P2;
$HTTP_LINES
    server_name a.test;
    access_log $T/nginx-be/logs/http.log pt; root $T/www;
}"

# nginx -t on a whole configuration built around the snippet
mkdir -p nginx-t/logs nginx-be/logs
cat >nginx-t/nginx.conf <<CONF
user root;
pid $T/nginx-t/nginx.pid;
error_log $T/nginx-t/logs/error.log warn;
events { worker_connections 64; }
http {
    log_format pt '\$remote_addr|\$proxy_protocol_addr|\$ssl_server_name|\$http_x_forwarded_for|\$http_x_real_ip|\$request|\$status';
    $SERVERS
}
CONF
out=$("$NGINX" -t -p "$T/nginx-t" -c "$T/nginx-t/nginx.conf" 2>&1)
check "nginx -t accepts the snippet wrapped in server blocks" \
    eval 'grep -q "test is successful" <<<"$out"'
grep -q "test is successful" <<<"$out" || note "$out"

# (comment lines dropped for start_nginx, which takes every "listen N" it sees,
# comments included, as a port to wait for)
start_nginx be "$(grep -v '^[[:space:]]*#' <<<"$SERVERS")" || bail "nginx configured with the snippet starts"

api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"yuno"}'
check "passthrough domain a.test -> yuno" is_status 201

body=$(curl -sS --max-time 30 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:127.0.0.1" \
    --interface 127.0.0.2 "https://a.test:$HTTPS_PORT/" 2>&1)
check "a.test through portier reaches the nginx built from the snippet" [ "$body" = snippet-backend ]
check "the backend's log shows the real client 127.0.0.2" \
    grep -q '^127\.0\.0\.2|127\.0\.0\.2|a\.test|' nginx-be/logs/https.log
[ -f nginx-be/logs/https.log ] && note "https.log: $(tail -n 2 nginx-be/logs/https.log)"

# Port 80: portier proxies plain HTTP to http_servers with X-Real-IP; the
# snippet's real_ip_header X-Real-IP must turn it into $remote_addr.
code=$(curl -s --max-time 10 -o http.out -w '%{http_code}' --interface 127.0.0.3 \
    -H 'Host: a.test' "http://127.0.0.1:$HTTP_PORT/")
if [ "$code" = 000 ]; then
    note "port 80 closed the connection without an answer: portier's HTTP proxy is not there yet, port-80 check skipped"
else
    check "port 80 of a.test reaches the snippet's port-80 server" \
        eval '[ "$code" = 200 ] && [ "$(cat http.out)" = snippet-backend ]'
    check "port 80: the backend's log shows the real client 127.0.0.3 (X-Real-IP)" \
        grep -q '^127\.0\.0\.3|' nginx-be/logs/http.log
fi

# from= replaces the loopback default; IPv6 and CIDR are kept, %2F decoded
snippet nginx "from=192.168.99.1,fd00::/64+10.0.0.0%2F8"
check "from= list -> 200" is_text
check "from=: one set_real_ip_from per entry, normalised" \
    has "set_real_ip_from 192.168.99.1;" "set_real_ip_from fd00::/64;" "set_real_ip_from 10.0.0.0/8;"
check "from=: no loopback default left" hasnt "set_real_ip_from 127.0.0.1;" "set_real_ip_from ::1;"
snippet nginx "from=192.168.99.300"
check "from=192.168.99.300 -> 400 field from" is_error 400 from
snippet nginx "from=1.2.3.4;rm"
check "from= with junk -> 400 field from" is_error 400 from
snippet nginx "from="
check "empty from= -> 400 field from" is_error 400 from

# servers given as IPv6 literal and DNS name
api PUT /api/v1/backends/multi "{\"servers\":[\"[::1]:$P1\",\"localhost:$P1\"],\"proxy_protocol\":\"v1\"}"
check "backend multi ([::1] and a DNS name, PROXY v1) created" is_status 201
SNIP_BACKEND=multi snippet nginx
check "IPv6 server -> listen [::1]:port; DNS name -> listen on the port (v4 and v6)" \
    has "listen [::1]:$P1 ssl proxy_protocol;" "listen $P1 ssl proxy_protocol;" "listen [::]:$P1 ssl proxy_protocol;"
check "no http_servers: the port-80 section says so" grep -q 'no "http_servers"' <<<"$BODY"

# proxy_protocol "none": say so, recommend v2, no PROXY lines
api PUT /api/v1/backends/plain "{\"servers\":[\"127.0.0.1:$P1\"]}"
check "backend plain (no PROXY header) created" is_status 201
SNIP_BACKEND=plain snippet nginx
check "proxy_protocol none -> 200 text/plain" is_text
check "proxy_protocol none: the snippet says so and recommends v2" \
    eval 'grep -q "\"proxy_protocol\": \"none\"" <<<"$BODY" && grep -q "\"proxy_protocol\": \"v2\"" <<<"$BODY"'
check "proxy_protocol none: no proxy_protocol listen or real_ip_header line" \
    eval '! grep -Eq "^(listen|real_ip_header)" <<<"$BODY"'

# ---- Apache ------------------------------------------------------------------------
snippet apache
check "for=apache -> 200 text/plain" is_text
check "apache: RemoteIPProxyProtocol On in the https section" \
    grep -qxF "RemoteIPProxyProtocol On" <<<"$(section https)"
check "apache: RemoteIPHeader X-Real-IP + RemoteIPInternalProxy in the http section" \
    eval 'grep -qxF "RemoteIPHeader X-Real-IP" <<<"$(section http)" &&
          grep -qxF "RemoteIPInternalProxy 127.0.0.1 ::1" <<<"$(section http)"'
snippet apache "from=192.168.99.1"
check "apache with from=: RemoteIPInternalProxy 192.168.99.1" has "RemoteIPInternalProxy 192.168.99.1"
SNIP_BACKEND=plain snippet apache
check "apache, proxy_protocol none: no RemoteIPProxyProtocol, v2 recommended" \
    eval '! grep -q "^RemoteIPProxyProtocol" <<<"$BODY" && grep -q "\"v2\"" <<<"$BODY"'

# ---- YunoHost conf_regen hook ------------------------------------------------------
snippet yunohost "from=127.0.0.1"
check "for=yunohost -> 200 text/plain" is_text
printf '%s\n' "$BODY" >hook.sh
check "yunohost: a bash script" eval '[ "$(head -n1 hook.sh)" = "#!/bin/bash" ] && bash -n hook.sh'
check "yunohost: conf_regen hook with pre/post, PORTIER_FROM from from=, PORTIER_LISTEN = servers" \
    eval 'grep -q conf_regen hook.sh && grep -q "^    pre)" hook.sh && grep -qxF "PORTIER_FROM=\"127.0.0.1\"" hook.sh &&
          grep -qxF "PORTIER_LISTEN=\"127.0.0.1:$P1\"" hook.sh && grep -qxF "PORTIER_HTTP=1" hook.sh'
if command -v shellcheck >/dev/null 2>&1; then
    out=$(shellcheck -s bash hook.sh 2>&1)
    check "yunohost: shellcheck finds nothing" [ -z "$out" ]
    [ -z "$out" ] || note "$out"
fi

# A pending directory as YunoHost lays it out: 15-nginx has rendered the
# domain and admin configuration into pending/nginx; the hook (name
# 99-nginx_portier, category nginx_portier) gets pending/nginx_portier as $4.
PEND="$T/regenconf/pending"
CONFD="$PEND/nginx/etc/nginx/conf.d"
mkdir -p "$CONFD" "$PEND/nginx_portier"
yunohost_domain_conf() { # DOMAIN: server.tpl.conf's structure (lua/more_set_headers left out)
    cat <<EOF
map \$http_upgrade \$connection_upgrade_$2 {
    default upgrade;
    ''      close;
}

server {
    listen 80;
    listen [::]:80;
    server_name $1;

    location ^~ '/.well-known/acme-challenge/' {
        default_type "text/plain";
        alias /var/www/.well-known/acme-challenge-public/;
    }

    location / {
        return 301 https://\$host\$request_uri;
    }

    access_log $T/yh-logs/$1-access.log;
    error_log $T/yh-logs/$1-error.log;
}

server {
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name $1;

    ssl_certificate $T/a.pem;
    ssl_certificate_key $T/a.key;

    access_log $T/yh-logs/$1-access.log;
    error_log $T/yh-logs/$1-error.log;
}
EOF
}
mkdir -p yh-logs
yunohost_domain_conf a.test a >"$CONFD/a.test.conf"
yunohost_domain_conf b.test b >"$CONFD/b.test.conf"
cat >"$CONFD/yunohost_admin.conf" <<EOF
server {
    listen 80 default_server;
    listen [::]:80 default_server;

    location / {
        return 301 https://\$host\$request_uri;
    }
}

server {
    listen 443 ssl http2 default_server;
    listen [::]:443 ssl http2 default_server;

    ssl_certificate $T/a.pem;
    ssl_certificate_key $T/a.key;

    location / {
        return 404;
    }
}
EOF
# YunoHost's own SNI passthrough variant: already has real_ip_header
cat >"$CONFD/c.test.conf" <<EOF
server {
    listen 127.0.0.1:444 ssl proxy_protocol;
    server_name c.test;
    set_real_ip_from 127.0.0.1/32;
    real_ip_header proxy_protocol;
    ssl_certificate $T/a.pem;
    ssl_certificate_key $T/a.key;
}
EOF
: >"$CONFD/removed.test.conf"   # empty pending file = "remove this file"
cp "$CONFD/c.test.conf" c.orig

bash hook.sh pre "" "" "$PEND/nginx_portier" >hook.out 2>&1
rc=$?
check "hook pre exits 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || note "$(cat hook.out)"
count() { grep -cxF -- "$1" "$2"; }
A="$CONFD/a.test.conf"
check "hook: YunoHost's listen 443 lines stay as they are (v4 and v6)" \
    eval '[ "$(count "    listen 443 ssl http2;" "$A")" = 1 ] &&
          [ "$(count "    listen [::]:443 ssl http2;" "$A")" = 1 ] && ! grep -q "443.*proxy_protocol" "$A"'
check "hook: portier's own listener (the backend's server) with proxy_protocol, once per block" \
    eval '[ "$(count "    listen 127.0.0.1:$P1 ssl http2 proxy_protocol;" "$A")" = 1 ]'
check "hook: port-443 block gets set_real_ip_from + real_ip_header proxy_protocol once" \
    eval '[ "$(count "    real_ip_header proxy_protocol;" "$A")" = 1 ] &&
          [ "$(count "    set_real_ip_from 127.0.0.1;" "$A")" = 2 ]'
check "hook: port-80 block gets real_ip_header X-Real-IP once, port 80 without proxy_protocol" \
    eval '[ "$(count "    real_ip_header X-Real-IP;" "$A")" = 1 ] &&
          [ "$(count "    listen 80;" "$A")" = 1 ] && [ "$(count "    listen [::]:80;" "$A")" = 1 ]'
check "hook: the admin configuration (default_server) gets the listener as default_server" \
    eval '[ "$(count "    listen 127.0.0.1:$P1 ssl http2 default_server proxy_protocol;" "$CONFD/yunohost_admin.conf")" = 1 ] &&
          [ "$(count "    listen 443 ssl http2 default_server;" "$CONFD/yunohost_admin.conf")" = 1 ] &&
          [ "$(count "    real_ip_header X-Real-IP;" "$CONFD/yunohost_admin.conf")" = 1 ]'
check "hook: a block that already sets real_ip_header is left alone" cmp -s c.orig "$CONFD/c.test.conf"
check "hook: an empty pending file (removal) stays empty" [ ! -s "$CONFD/removed.test.conf" ]
check "hook: no stray file left in the pending directories" \
    eval '[ "$(find "$PEND" -type f | wc -l)" = 5 ]'
cp "$A" a.once
bash hook.sh pre "" "" "$PEND/nginx_portier" >/dev/null 2>&1
check "hook: running pre again changes nothing" cmp -s a.once "$A"
bash hook.sh post "" "" "" >/dev/null 2>&1
check "hook post exits 0" [ $? = 0 ]
bash hook.sh bogus >/dev/null 2>&1
check "hook with an unknown argument exits non-zero" [ $? != 0 ]
# the old calling convention (pre FORCE PENDING_DIR) still finds the files
mkdir -p old/pending/nginx/etc/nginx/conf.d old/pending/nginx_portier
yunohost_domain_conf d.test d >old/pending/nginx/etc/nginx/conf.d/d.test.conf
bash hook.sh pre 0 "$T/old/pending/nginx_portier" >/dev/null 2>&1
check "hook: pre FORCE PENDING_DIR (older YunoHost) works too" \
    grep -qxF "    real_ip_header proxy_protocol;" old/pending/nginx/etc/nginx/conf.d/d.test.conf

mkdir -p nginx-yh/logs
cat >nginx-yh/nginx.conf <<CONF
user root;
pid $T/nginx-yh/nginx.pid;
error_log $T/nginx-yh/logs/error.log warn;
events { worker_connections 64; }
http {
    include $CONFD/*.conf;
}
CONF
rm -f "$CONFD/removed.test.conf"
out=$("$NGINX" -t -p "$T/nginx-yh" -c "$T/nginx-yh/nginx.conf" 2>&1)
check "nginx -t accepts the YunoHost-like configuration after the hook" \
    eval 'grep -q "test is successful" <<<"$out"'
grep -q "test is successful" <<<"$out" || note "$out"

SNIP_BACKEND=plain snippet yunohost
check "yunohost, proxy_protocol none: port 443 left alone, port 80 too (no http_servers), v2 recommended" \
    eval 'grep -qxF "PORTIER_LISTEN=\"\"" <<<"$BODY" && grep -qxF "PORTIER_HTTP=0" <<<"$BODY" &&
          grep -q "\"proxy_protocol\": \"v2\"" <<<"$BODY"'
snippet yunohost
check "yunohost without from=: PORTIER_FROM defaults to loopback, with the LAN comment" \
    eval 'grep -qxF "PORTIER_FROM=\"127.0.0.1 ::1\"" <<<"$BODY" && grep -qi "LAN address" <<<"$BODY"'

# ---- errors ------------------------------------------------------------------------
api GET "/api/v1/backends/nope/snippet?for=nginx"
check "unknown backend -> 404" is_error 404
api GET "/api/v1/backends/yuno/snippet?for=bogus"
check "for=bogus -> 400 field for" is_error 400 for
api GET "/api/v1/backends/yuno/snippet"
check "missing for -> 400 field for" is_error 400 for
api GET "/api/v1/backends/yuno/snippet?for="
check "empty for -> 400 field for" is_error 400 for
api GET "/api/v1/backends/yuno/snippet?for=%zz"
check "badly encoded for -> 400 field for" is_error 400 for
api GET "/api/v1/backends/yuno/snippet?for=%FF%C3"
check "for= that is not UTF-8 -> 400 field for (not an empty reply)" is_error 400 for
api GET "/api/v1/backends/yuno/snippet?for=nginx&from=%FF"
check "from= that is not UTF-8 -> 400 field from (not an empty reply)" is_error 400 from
api GET "/api/v1/backends/yuno/snippet?for=ngin%78"
check "percent-encoded for=ngin%78 is decoded (nginx)" is_text
api GET "/api/v1/backends/Bad!/snippet?for=nginx"
check "invalid backend name -> 400" is_error 400
api POST "/api/v1/backends/yuno/snippet?for=nginx" '{}'
check "POST on a snippet -> 405" is_status 405

finish

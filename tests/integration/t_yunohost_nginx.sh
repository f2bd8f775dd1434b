#!/bin/bash
# YunoHost 12's real nginx configuration behind portier (issue 12).
#
# The templates are YunoHost's own files (AGPL), read at run time from
# ../shared/data/yunohost-12.1.25 next to the repository (YUNOHOST_DATA to
# point elsewhere); never copied here. The test renders them with jinja2 the
# way regen-conf does (15-nginx: ynh_render_template, i.e. jinja2 over the
# environment) for two domains into a pending directory laid out as
# regenconf.py lays it out, runs the conf_regen hook that portier serves on
# it (arguments "pre" "" "" PENDING/nginx_portier, as _pre_call builds them),
# then runs that nginx and shows:
#   - direct TLS to the normal listener, without PROXY, still works (IPv4, ::1);
#   - through portier, the backend sees the real client address;
#   - the admin default_server answers directly (https://IP/yunohost/admin/);
#   - HTTP-01 for YunoHost's own certificates passes through portier's port 80,
#     and X-Real-IP counts only when portier sends it;
#   - with YunoHost's own TLS passthrough on, the hook refuses and edits nothing.
#
# What is changed in the rendered copy, after the hook ran, and why:
#   - ports: "listen 443" / "[::]:443" become 127.0.0.1:P / [::1]:P and 80 the
#     same with another port: a test may not take the machine's 80/443 (other
#     tests and services run at the same time) and stays on loopback;
#   - absolute paths (/etc/nginx/conf.d, /etc/yunohost/certs, /var/log/nginx,
#     /var/www, /usr/share/yunohost, /usr/share/ssowat) point into the test
#     directory;
#   - SSOwat (YunoHost's SSO, Lua, needs its own service and LDAP) becomes two
#     empty Lua files: the lua module itself is real (libnginx-mod-http-lua), as
#     is headers-more (more_set_headers).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"

YH=${YUNOHOST_DATA:-$(cd "$HERE/../.." && pwd)/../shared/data/yunohost-12.1.25}
if [ ! -f "$YH/conf/nginx/server.tpl.conf" ]; then
    echo "# SKIP: YunoHost's files are not at $YH (they are test data outside the repository)"
    exit 77
fi
"$PY" -c 'import jinja2' 2>/dev/null || { echo "# SKIP: python3-jinja2 not installed"; exit 77; }
MODS=/usr/lib/nginx/modules
for m in ndk_http_module ngx_http_lua_module ngx_http_headers_more_filter_module; do
    [ -f "$MODS/$m.so" ] || { echo "# SKIP: nginx module $m not installed (libnginx-mod-http-lua, libnginx-mod-http-headers-more-filter)"; exit 77; }
done
cd "$T"

read -r P443 P80 PPX <<<"$(free_ports 3)"
make_cert a "DNS:a.test"
make_cert b "DNS:b.test"
make_cert admin "DNS:yunohost.org,IP:127.0.0.1,IP:::1"

start_portierd || bail "portierd starts"
api PUT /api/v1/backends/yuno "{\"servers\":[\"127.0.0.1:$PPX\"],\"proxy_protocol\":\"v2\",\"http_servers\":[\"127.0.0.1:$P80\"]}"
check "backend yuno: PROXY v2 to a port of its own, port 80 to nginx's" is_status 201
for d in a.test b.test; do
    api PUT "/api/v1/domains/$d" '{"mode":"passthrough","backend":"yuno"}'
    check "domain $d: passthrough to yuno" is_status 201
done

# ---- render as 15-nginx does ----------------------------------------------------------
PEND="$T/regenconf/pending"
NGX="$PEND/nginx/etc/nginx"
CONFD="$NGX/conf.d"
mkdir -p "$CONFD/default.d" "$NGX/modules-enabled" "$PEND/nginx_portier"

render() { # TEMPLATE OUT: jinja2 over the environment, like ynh_render_template
    "$PY" -c 'import os, sys, jinja2; sys.stdout.write(jinja2.Template(sys.stdin.read()).render(os.environ))' \
        <"$YH/conf/nginx/$1" >"$2"
}
render_all() { # TLS_PASSTHROUGH(True|False)
    local N="$YH/conf/nginx" d
    rm -rf "$CONFD" && mkdir -p "$CONFD/default.d"
    for f in acme-challenge.conf.inc global.conf ssowat.conf yunohost_http_errors.conf.inc yunohost_sso.conf.inc; do
        cp "$N/$f" "$CONFD/"
    done
    export compatibility=intermediate experimental=False redirect_to_https=True \
        webadmin_allowlist_enabled=False tls_passthrough_enabled=$1 \
        tls_passthrough_list="c.test;192.0.2.7;443"
    render security.conf.inc "$CONFD/security.conf.inc"
    render yunohost_admin.conf "$CONFD/yunohost_admin.conf"
    render yunohost_admin.conf.inc "$CONFD/yunohost_admin.conf.inc"
    render yunohost_api.conf.inc "$CONFD/yunohost_api.conf.inc"
    cp "$N/redirect_to_admin.conf" "$CONFD/default.d/"
    if [ "$1" = True ]; then
        render tls_passthrough.conf "$NGX/modules-enabled/tls_passthrough.conf"
    else
        : >"$NGX/modules-enabled/tls_passthrough.conf"
    fi
    for d in a.test b.test; do
        mkdir -p "$CONFD/$d.d"
        # a: Let's Encrypt-like certificate (HSTS lines), b: mail on (autoconfig location)
        if [ "$d" = a.test ]; then export domain_cert_ca=letsencrypt mail_enabled=False
        else export domain_cert_ca=selfsigned mail_enabled=True; fi
        domain=$d render server.tpl.conf "$CONFD/$d.conf"
    done
}
render_all False
check "rendered: two domain server blocks with YunoHost's listen 443 ssl http2" \
    eval '[ "$(grep -c "^    listen 443 ssl http2;" "$CONFD/a.test.conf")" = 1 ] &&
          [ "$(grep -c "^    listen \[::\]:443 ssl http2;" "$CONFD/b.test.conf")" = 1 ]'

api GET "/api/v1/backends/yuno/snippet?for=yunohost&from=127.0.0.1"
check "the hook is served" is_status 200
printf '%s\n' "$BODY" >99-nginx_portier
cp -r "$CONFD" confd.before
bash 99-nginx_portier pre "" "" "$PEND/nginx_portier" >hook.out 2>&1
rc=$?
check "hook pre on YunoHost's pending directory exits 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || note "$(cat hook.out)"

# every line YunoHost wrote is still there, in order: the hook only adds lines
# (templates end without a newline, the edited file with one: sed '$a\' adds it)
only_adds() {
    local f
    for f in confd.before/*.conf; do
        diff <(sed '$a\' "$f") "$CONFD/$(basename "$f")" | grep -q '^<' &&
            { WHY="$f: lines removed or changed"; return 1; }
    done
    return 0
}
check "hook: YunoHost's own lines all stay (listen 443/80 untouched)" only_adds
check "hook: each 443 block gets portier's listener with proxy_protocol (+ http2, default_server for admin)" \
    eval 'grep -qxF "    listen 127.0.0.1:$PPX ssl http2 proxy_protocol;" "$CONFD/a.test.conf" &&
          grep -qxF "    listen 127.0.0.1:$PPX ssl http2 proxy_protocol;" "$CONFD/b.test.conf" &&
          grep -qxF "    listen 127.0.0.1:$PPX ssl http2 default_server proxy_protocol;" "$CONFD/yunohost_admin.conf"'
check "hook: real_ip_header proxy_protocol and X-Real-IP, trusted from portier only" \
    eval '[ "$(grep -c "real_ip_header proxy_protocol;" "$CONFD/a.test.conf")" = 1 ] &&
          [ "$(grep -c "real_ip_header X-Real-IP;" "$CONFD/a.test.conf")" = 1 ] &&
          [ "$(grep -c "set_real_ip_from 127.0.0.1;" "$CONFD/a.test.conf")" = 2 ] &&
          ! grep -q "set_real_ip_from 0\|set_real_ip_from ::/0" "$CONFD/a.test.conf"'

# ---- run that nginx --------------------------------------------------------------------
R="$T/root"
mkdir -p "$R/certs/yunohost.org" "$R/logs" "$R/ssowat" "$R/share/admin" "$R/share/html" \
    "$R/www/.well-known/acme-challenge-public"
for d in a b; do mkdir -p "$R/certs/$d.test"; cp "$d.pem" "$R/certs/$d.test/crt.pem"; cp "$d.key" "$R/certs/$d.test/key.pem"; done
cp admin.pem "$R/certs/yunohost.org/crt.pem"; cp admin.key "$R/certs/yunohost.org/key.pem"
: >"$R/ssowat/init.lua"; : >"$R/ssowat/access.lua"
echo "yunohost-admin-page" >"$R/share/admin/index.html"
openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$R/share/ffdhe2048.pem" 2>/dev/null
# an app on each domain, as YunoHost installs them (conf.d/DOMAIN.d/APP.conf)
for d in a.test b.test; do
    printf 'location / {\n    return 200 "app %s client=$remote_addr\\n";\n}\n' "$d" >"$CONFD/$d.d/app.conf"
done
TOKEN_HTTP01=Zm9vYmFyLXRva2VuLWZvci1odHRwMDE
echo "$TOKEN_HTTP01.thumbprint" >"$R/www/.well-known/acme-challenge-public/$TOKEN_HTTP01"

localize() { # the rendered+hooked files, pointed at the test's ports and directories
    find "$CONFD" -type f -name '*.conf*' -print0 | xargs -0 sed -i \
        -e "s#^\( *listen \)443\([ ;]\)#\1127.0.0.1:$P443\2#" \
        -e "s#^\( *listen \)\[::\]:443\([ ;]\)#\1[::1]:$P443\2#" \
        -e "s#^\( *listen \)80\([ ;]\)#\1127.0.0.1:$P80\2#" \
        -e "s#^\( *listen \)\[::\]:80\([ ;]\)#\1[::1]:$P80\2#" \
        -e "s#/etc/nginx/conf.d/#$CONFD/#g" \
        -e "s#/etc/yunohost/certs/#$R/certs/#g" \
        -e "s#/var/log/nginx/#$R/logs/#g" \
        -e "s#/var/www/#$R/www/#g" \
        -e "s#/usr/share/yunohost/admin/#$R/share/admin/#g" \
        -e "s#/usr/share/yunohost/html/#$R/share/html/#g" \
        -e "s#/usr/share/yunohost/ffdhe2048.pem#$R/share/ffdhe2048.pem#g" \
        -e "s#/usr/share/ssowat/#$R/ssowat/#g"
}
localize
NGINX_MAIN="load_module $MODS/ndk_http_module.so;
load_module $MODS/ngx_http_lua_module.so;
load_module $MODS/ngx_http_headers_more_filter_module.so;"
nginx_conf yh "include $CONFD/*.conf;"
out=$("$NGINX" -t -p "$T/nginx-yh" -c "$T/nginx-yh/nginx.conf" 2>&1)
check "nginx -t accepts YunoHost's configuration after the hook" eval 'grep -q "test is successful" <<<"$out"'
grep -q "test is successful" <<<"$out" || bail "nginx -t: $out"
start_nginx yh "include $CONFD/*.conf;" || bail "nginx starts"
for p in $P443 $P80 $PPX; do
    wait_until 10 port_listening "$p" || bail "nginx listens on $p: $(cat "$T/nginx-yh/logs/"*)"
done

CURL=(curl -sS --max-time 10 --cacert "$T/ca.pem")
# direct: what dnsmasq sends the server's own apps to, and IPv6 clients
out=$("${CURL[@]}" --interface 127.0.0.3 --resolve "a.test:$P443:127.0.0.1" "https://a.test:$P443/" 2>&1)
check "direct TLS to the normal listener over IPv4, no PROXY header: the app answers" \
    eval '[ "$out" = "app a.test client=127.0.0.3" ]'
[ "$out" = "app a.test client=127.0.0.3" ] || note "got: $out"
out=$("${CURL[@]}" --resolve "b.test:$P443:[::1]" "https://b.test:$P443/" 2>&1)
check "direct TLS over IPv6 (::1): the app answers, client ::1" eval '[ "$out" = "app b.test client=::1" ]'
[ "$out" = "app b.test client=::1" ] || note "got: $out"
out=$("${CURL[@]}" "https://127.0.0.1:$P443/yunohost/admin/" 2>&1)
check "the admin default_server answers directly on https://IP/yunohost/admin/" \
    eval '[ "$out" = "yunohost-admin-page" ]'
[ "$out" = "yunohost-admin-page" ] || note "got: $out"
out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{redirect_url}' "https://127.0.0.1:$P443/" 2>&1)
check "the admin default_server's redirect_to_admin works (302 to /yunohost/admin)" \
    eval '[[ "$out" == "302 https://127.0.0.1/yunohost/admin" ]]'

# through portier: PROXY v2 to the dedicated listener
for c in 127.0.0.2 127.0.0.4; do
    out=$("${CURL[@]}" --interface $c --resolve "a.test:$HTTPS_PORT:127.0.0.1" "https://a.test:$HTTPS_PORT/" 2>&1)
    check "through portier from $c: the backend sees $c" eval '[ "$out" = "app a.test client=$c" ]'
    [ "$out" = "app a.test client=$c" ] || note "got: $out"
done
out=$("${CURL[@]}" --interface 127.0.0.2 --resolve "b.test:$HTTPS_PORT:127.0.0.1" "https://b.test:$HTTPS_PORT/" 2>&1)
check "through portier, second domain (SNI picks b.test on the PROXY listener)" \
    eval '[ "$out" = "app b.test client=127.0.0.2" ]'
check "YunoHost's access log has the real client address" \
    wait_until 5 grep -q "^127.0.0.2 .*GET / HTTP" "$R/logs/a.test-access.log"
# without PROXY on portier's listener: refused (only portier talks there)
out=$("${CURL[@]}" --resolve "a.test:$PPX:127.0.0.1" "https://a.test:$PPX/" 2>&1)
check "portier's listener refuses a connection without PROXY header" eval '[ "${out#app}" = "$out" ]'

# port 80: YunoHost's HTTP-01 answer through portier, and X-Real-IP trust
out=$(curl -sS --max-time 10 --interface 127.0.0.2 -H "Host: a.test" \
    "http://127.0.0.1:$HTTP_PORT/.well-known/acme-challenge/$TOKEN_HTTP01" 2>&1)
check "HTTP-01 for YunoHost's own certificate passes through portier's port 80" \
    eval '[ "$out" = "$TOKEN_HTTP01.thumbprint" ]'
[ "$out" = "$TOKEN_HTTP01.thumbprint" ] || note "got: $out"
# nginx writes its access log line after the answer has left: wait for it.
check "port 80 through portier: logged with the client's address (X-Real-IP from portier)" \
    wait_until 5 grep -q "^127.0.0.2 .*acme-challenge/$TOKEN_HTTP01" "$R/logs/a.test-access.log"
curl -sS --max-time 10 --interface 127.0.0.3 -H "Host: b.test" -H "X-Real-IP: 203.0.113.66" \
    -o /dev/null "http://127.0.0.1:$P80/.well-known/acme-challenge/forged" 2>/dev/null
wait_until 5 grep -q "acme-challenge/forged" "$R/logs/b.test-access.log"
check "port 80 direct: a forged X-Real-IP from another peer is ignored" \
    eval 'grep -q "^127.0.0.3 .*acme-challenge/forged" "$R/logs/b.test-access.log" &&
          ! grep -q "203.0.113.66" "$R/logs/b.test-access.log"'

# ---- YunoHost's own TLS passthrough: refused -----------------------------------------
render_all True
cp -r "$CONFD" confd.tp
bash 99-nginx_portier pre "" "" "$PEND/nginx_portier" >hook.tp 2>&1
rc=$?
check "tls_passthrough on: the hook refuses (exit 1) with an explanation" \
    eval '[ "$rc" = 1 ] && grep -q "TLS passthrough" hook.tp'
check "tls_passthrough on: no file edited" diff -r confd.tp "$CONFD"

# ---- a backend whose PROXY traffic would land on 443: refused ------------------------
render_all False
api PUT /api/v1/backends/yuno443 '{"servers":["127.0.0.1:443"],"proxy_protocol":"v2"}'
api GET "/api/v1/backends/yuno443/snippet?for=yunohost&from=127.0.0.1"
printf '%s\n' "$BODY" >hook443
cp -r "$CONFD" confd.443
bash hook443 pre "" "" "$PEND/nginx_portier" >hook.443 2>&1
rc=$?
check "PROXY traffic on port 443: the hook refuses and edits nothing" \
    eval '[ "$rc" = 1 ] && grep -q "a port YunoHost" hook.443 && diff -r confd.443 "$CONFD" >/dev/null'

# ---- a backend listing another machine's server too: only this machine's listener ----
render_all False
api PUT /api/v1/backends/yuno2m "{\"servers\":[\"192.0.2.99:$PPX\",\"127.0.0.1:$PPX\"],\"proxy_protocol\":\"v2\"}"
api GET "/api/v1/backends/yuno2m/snippet?for=yunohost&from=127.0.0.1"
printf '%s\n' "$BODY" >hook2m
bash hook2m pre "" "" "$PEND/nginx_portier" >hook.2m 2>&1
rc=$?
check "servers of two machines: only the local address gets a listen line (nginx could not bind the other)" \
    eval '[ "$rc" = 0 ] && grep -q "192.0.2.99:$PPX is not an address of this machine" hook.2m &&
          grep -qxF "    listen 127.0.0.1:$PPX ssl http2 proxy_protocol;" "$CONFD/a.test.conf" &&
          ! grep -q "192.0.2.99" "$CONFD/a.test.conf"'
render_all False
api PUT /api/v1/backends/yunofar "{\"servers\":[\"192.0.2.99:$PPX\"],\"proxy_protocol\":\"v2\"}"
api GET "/api/v1/backends/yunofar/snippet?for=yunohost&from=127.0.0.1"
printf '%s\n' "$BODY" >hookfar
cp -r "$CONFD" confd.far
bash hookfar pre "" "" "$PEND/nginx_portier" >hook.far 2>&1
rc=$?
check "no server of the backend is this machine's: the hook refuses and edits nothing" \
    eval '[ "$rc" = 1 ] && grep -q "none of it is an address of this" hook.far && diff -r confd.far "$CONFD" >/dev/null'

finish

#!/bin/bash
# The bundled web admin page: how it is served (content types, CSP, caching),
# static checks of its rules (no inline script/style, no innerHTML), then an
# end-to-end run in headless Chromium (Debian's chromium driven by playwright-core
# from npm, tests/browser/e2e.mjs): log in with the token, create a backend and a
# passthrough domain through the forms and see the route work through portier to
# an nginx TLS backend, API validation errors next to their fields, add/remove a
# ban, markup in a ban reason shown as text. Screenshots of the views go to
# $SHOTS (default build/screenshots; `SHOTS=docs bash tests/integration/t_web.sh`
# refreshes the ones in docs/).
#
# What is missing is installed when we are root: chromium (apt-get), node/npm
# (apt-get), playwright-core (npm ci in tests/browser, from package-lock.json).
# Not root and something missing: skipped (exit 77) with a note.
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHOTS=$(realpath -m "${SHOTS:-$ROOT/build/screenshots}")
. "$HERE/lib.sh"
. "$HERE/nginx.sh"

BROWSER_DIR="$ROOT/tests/browser"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
WEB_DIR="$ROOT/web"

# ---- tools -------------------------------------------------------------------

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@" >>"$T/apt.log" 2>&1 && return 0
    apt-get update -qq >>"$T/apt.log" 2>&1 &&
        apt-get install -y -qq --no-install-recommends "$@" >>"$T/apt.log" 2>&1
}

need_pkgs=()
[ -x "$CHROMIUM" ] || need_pkgs+=(chromium)
# Fonts only matter for readable screenshots; DejaVu is what Debian's chromium falls back to.
dpkg-query -W -f='${db:Status-Status}' fonts-dejavu-core 2>/dev/null | grep -q '^installed$' ||
    need_pkgs+=(fonts-dejavu-core)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing ${need_pkgs[*]} with apt-get"
        apt_install "${need_pkgs[@]}" || { tail -n 20 "$T/apt.log" | sed 's/^/#   /'; bail "apt-get install ${need_pkgs[*]}"; }
    else
        echo "# missing ${need_pkgs[*]} and not root to install them: skipping"
        exit 77
    fi
fi
[ -x "$CHROMIUM" ] || bail "chromium at $CHROMIUM"

# playwright-core, exactly as locked; reinstalled when the lock file changes.
if [ ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ] ||
   [ "$BROWSER_DIR/package-lock.json" -nt "$BROWSER_DIR/node_modules/.package-lock.json" ]; then
    note "installing playwright-core into tests/browser/node_modules (npm ci)"
    ( cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error ) >"$T/npm.log" 2>&1 ||
        ( cd "$BROWSER_DIR" && npm install --no-audit --no-fund --loglevel=error ) >>"$T/npm.log" 2>&1 ||
        { tail -n 20 "$T/npm.log" | sed 's/^/#   /'; bail "npm ci in tests/browser (playwright-core)"; }
fi
note "node $(node --version), $("$CHROMIUM" --version 2>/dev/null | head -n1)"

cd "$T"

# ---- the page's own rules, read from the source ----------------------------------

check "web/ holds index.html, app.js and style.css" \
    test -f "$WEB_DIR/index.html" -a -f "$WEB_DIR/app.js" -a -f "$WEB_DIR/style.css"
no_inline() { ! grep -nEi '<script>|<script[^>]*>[^<]|<style|[[:space:]]style=|[[:space:]]on[a-z]+=' "$WEB_DIR/index.html"; }
check "index.html has no inline script, style or event handler (CSP)" no_inline
no_html_sinks() { # comments may name them
    ! grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function' "$WEB_DIR/app.js" |
        grep -vE '^[0-9]+:[[:space:]]*//'
}
check "app.js never inserts HTML (textContent only)" no_html_sinks

# ---- backend and daemon -----------------------------------------------------------

read -r P1 PSTREAM <<<"$(free_ports 2)"
make_cert web "DNS:app.web.test,DNS:*.web.test"
make_cert upload "DNS:photos.example.org"
mkdir -p www
echo "web-backend-ok" >www/index.html
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl;
    ssl_certificate $T/web.pem; ssl_certificate_key $T/web.key;
    root $T/www;
}" || bail "nginx TLS backend starts"

start_portierd || bail "portierd starts"

# ---- how the page is served ---------------------------------------------------------

page() { # PATH: sets STATUS, BODY, HEADERS (no token)
    rm -f "$T/.resp" "$T/.hdrs"
    STATUS=$(curl -sS --max-time 10 -o "$T/.resp" -D "$T/.hdrs" -w '%{http_code}' \
        "http://127.0.0.1:$API_PORT$1" 2>/dev/null)
    BODY=$(cat "$T/.resp" 2>/dev/null)
    HEADERS=$(tr -d '\r' <"$T/.hdrs" 2>/dev/null)
}
has_header() { # NAME REGEX
    local v; v=$(header "$1")
    [[ $v =~ $2 ]] && return 0
    WHY="$1: '$v'"
    return 1
}
page /
check "GET / answers 200 without a token" is_status 200
check "GET / is text/html" has_header Content-Type '^text/html'
check "GET / carries the strict CSP" has_header Content-Security-Policy "default-src 'self'.*script-src 'self'.*style-src 'self'"
check "GET / has a Cache-Control header" has_header Cache-Control '.'
check "GET / has X-Content-Type-Options: nosniff" has_header X-Content-Type-Options '^nosniff$'
check "GET / is the admin page (links app.js and style.css)" \
    grep -q 'src="app.js"' <<<"$BODY"
page /app.js
check "GET /app.js is text/javascript" has_header Content-Type '^text/javascript'
check "GET /app.js is web/app.js byte for byte" cmp -s "$T/.resp" "$WEB_DIR/app.js"
page /style.css
check "GET /style.css is text/css" has_header Content-Type '^text/css'
page /nope.js
check "an unknown file answers 404" is_status 404

# ---- the browser ------------------------------------------------------------------------

note "screenshots go to $SHOTS"
env "$MARK" PORTIER_URL="http://127.0.0.1:$API_PORT" PORTIER_TOKEN="$TOKEN" \
    BACKEND_SERVER="127.0.0.1:$P1" BACKEND_BODY="web-backend-ok" \
    HTTPS_PORT="$HTTPS_PORT" CA_FILE="$T/ca.pem" CERT_FILE="$T/upload.pem" KEY_FILE="$T/upload.key" \
    SHOTS="$SHOTS" CHROMIUM="$CHROMIUM" STREAM_PORT="$PSTREAM" \
    timeout 300 node "$BROWSER_DIR/e2e.mjs" >"$T/e2e.out" 2>&1
E2E_RC=$?
cat "$T/e2e.out"
check "browser end-to-end test passes (node tests/browser/e2e.mjs, rc $E2E_RC)" [ "$E2E_RC" = 0 ]

# ---- what the browser did, seen from the API and the data plane ---------------------------

api GET /api/v1/backends/web1
check "backend web1 made by the form has the nginx server" \
    json_true 'd["servers"] == [a[0]] and d["proxy_protocol"] == "none"' "127.0.0.1:$P1"
api GET /api/v1/domains/app.web.test
check "domain app.web.test made by the form is passthrough to web1" \
    json_true 'd["mode"] == "passthrough" and d["backend"] == "web1"'
api GET /api/v1/bans
check "the ban added then removed in the browser is gone" \
    json_true 'not any(b["ip"] == "203.0.113.7" for b in d["bans"])'
body=$(curl -sS --max-time 10 --cacert "$T/ca.pem" --resolve "app.web.test:$HTTPS_PORT:127.0.0.1" \
    "https://app.web.test:$HTTPS_PORT/")
check "curl through portier to app.web.test reaches the nginx backend" [ "$body" = web-backend-ok ]

finish

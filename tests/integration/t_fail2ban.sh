#!/bin/bash
# contrib/fail2ban/action.d/portier.conf against the daemon: the actionban /
# actionunban commands are read the way fail2ban reads them (configparser with
# %-interpolation and ";" inline comments), their <tags> substituted, and run
# with /bin/sh like fail2ban does, using a token of scope "bans". Then a real
# fail2ban-server bans through it from a real log file, and the ban cuts the
# offender's open connections.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
. "$HERE/fail2ban.sh"
ACTION="$HERE/../../contrib/fail2ban/action.d/portier.conf"
cd "$T"

[ -f "$ACTION" ] || bail "contrib/fail2ban/action.d/portier.conf exists"
start_portierd || bail "portierd starts"

api POST /api/v1/tokens '{"name":"yuno-fail2ban","scope":"bans"}'
check "bans token created" is_status 201
BANS_TOKEN=$(json_get 'd["token"]')
( umask 077; printf '%s\n' "$BANS_TOKEN" >"$T/portier.token" )

# f2b_cmd ACTION KEY=VALUE...: the shell command fail2ban would run for
# [Definition] ACTION, with the [Init] values overridden by KEY=VALUE (the
# jail's action[...] options) and the ticket tags (ip, bantime, name) given
# the same way.
f2b_cmd() {
    "$PY" - "$ACTION" "$@" <<'EOF'
import configparser, re, sys
path, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
# as fail2ban's SafeConfigParserWithIncludes: %(x)s interpolation, ";" inline comments
cp = configparser.ConfigParser(interpolation=configparser.BasicInterpolation(),
                               inline_comment_prefixes=";")
cp.read(path)
tags = {}
for sec in ("Definition", "Init"):
    for k in cp.options(sec):
        tags[k] = cp.get(sec, k)
for a in args:
    k, v = a.split("=", 1)
    tags[k] = v
tags.setdefault("name", "test-jail")
cmd = tags[action]
# fail2ban's CommandAction.replaceTag: <tag> -> value, recursively
pat = re.compile(r"<([^ <>]+)>")
for _ in range(20):
    new = pat.sub(lambda m: tags.get(m.group(1), m.group(0)), cmd)
    if new == cmd:
        break
    cmd = new
left = [t for t in pat.findall(cmd) if t in tags]
if left:
    sys.exit("tags left unreplaced: %s" % left)
print(cmd)
EOF
}

URL="http://127.0.0.1:$API_PORT"
# run_action ACTION KEY=VALUE...: sets RC and OUT (stdout+stderr)
run_action() {
    local cmd
    if ! cmd=$(f2b_cmd "$@" portier_url="$URL" portier_token_file="$T/portier.token"); then
        RC=99 OUT="could not build the command: $cmd"
        return
    fi
    OUT=$(/bin/sh -c "$cmd" 2>&1)
    RC=$?
}
action_ok() { [ "$RC" = 0 ] || { WHY="exit $RC: $OUT"; return 1; }; }
action_failed() { # PATTERN: non-zero exit, output matches
    [ "$RC" != 0 ] || { WHY="exit 0: $OUT"; return 1; }
    grep -qE -- "$1" <<<"$OUT" || { WHY="output lacks /$1/: $OUT"; return 1; }
}

# ban IP: the ban entry as JSON ("" when absent), with the admin token
ban_entry() {
    ( api GET /api/v1/bans
      json_get 'next((b for b in d["bans"] if b["ip"] == a[0]), "")' "$1" )
}
# ban_lasts IP SECONDS: banned, expires - created == SECONDS (null for 0)
ban_lasts() {
    local e; e=$(ban_entry "$1")
    [ -n "$e" ] || { WHY="$1 not in GET /api/v1/bans"; return 1; }
    BODY=$e json_true '(d["expires"] is None) if a[0] == "0" else (d["expires"] is not None and
        __import__("calendar").timegm(__import__("time").strptime(d["expires"], "%Y-%m-%dT%H:%M:%SZ")) -
        __import__("calendar").timegm(__import__("time").strptime(d["created"], "%Y-%m-%dT%H:%M:%SZ")) == int(a[0]))' "$2" ||
        { WHY="ban entry $e, expected a duration of $2 s"; return 1; }
}
not_banned() { [ -z "$(ban_entry "$1")" ] || { WHY="$1 still banned: $(ban_entry "$1")"; return 1; }; }
reason_is() { BODY=$(ban_entry "$1") json_true 'd["reason"] == a[0]' "$2" || { WHY="entry: $(ban_entry "$1")"; return 1; }; }

# ---- the action file as fail2ban reads it --------------------------------------------
for a in actionban actionunban; do
    cmd=$(f2b_cmd "$a" ip=203.0.113.7 bantime=600 2>&1)
    check "$a parses like fail2ban does and leaves no <tag>" [ $? = 0 ]
    check "$a passes sh -n" sh -n -c "$cmd"
    check "$a keeps the token off command lines (curl -K -)" eval 'grep -q -- "-K -" <<<"$cmd"'
done

# ---- ban / unban ---------------------------------------------------------------------
run_action actionban ip=203.0.113.7 bantime=600 name=nginx-http-auth
check "actionban 203.0.113.7 bantime=600 exits 0" action_ok
check "GET /api/v1/bans (admin) shows 203.0.113.7 for 600 s" ban_lasts 203.0.113.7 600
check "the reason is 'fail2ban <jail name>'" reason_is 203.0.113.7 "fail2ban nginx-http-auth"
run_action actionban ip=203.0.113.7 bantime=1200.0 name=nginx-http-auth
check "a re-ban of the same address (bantime 1200.0, as bantime.increment may give) exits 0" action_ok
check "the re-ban replaced the duration (1200 s)" ban_lasts 203.0.113.7 1200
run_action actionunban ip=203.0.113.7 bantime=1200 name=nginx-http-auth
check "actionunban 203.0.113.7 exits 0" action_ok
check "203.0.113.7 no longer banned" not_banned 203.0.113.7
run_action actionunban ip=203.0.113.7 bantime=1200
check "unban of an address portier no longer bans (404) still exits 0" action_ok

run_action actionban ip=2001:db8::7 bantime=-1 name=recidive
check "actionban IPv6 with bantime=-1 (permanent) exits 0" action_ok
check "2001:db8::7 banned permanently (expires null)" ban_lasts 2001:db8::7 0
run_action actionunban ip=2001:db8::7 bantime=-1 name=recidive
check "actionunban 2001:db8::7 exits 0" action_ok
check "2001:db8::7 no longer banned" not_banned 2001:db8::7

# the token inline instead of in a file
cmd=$(f2b_cmd actionban ip=198.51.100.9 bantime=60 portier_url="$URL" portier_token="$BANS_TOKEN" \
      portier_token_file=/nonexistent)
OUT=$(/bin/sh -c "$cmd" 2>&1); RC=$?
check "portier_token given inline (token file not read) works" action_ok
check "198.51.100.9 banned for 60 s" ban_lasts 198.51.100.9 60

# failures are loud
cmd=$(f2b_cmd actionban ip=198.51.100.10 bantime=60 portier_url="$URL" \
      portier_token=0000000000000000000000000000000000000000000000000000000000000000)
OUT=$(/bin/sh -c "$cmd" 2>&1); RC=$?
check "a wrong token: non-zero exit, portier's 401 and message printed" action_failed '401: .*bearer token'
run_action actionban ip=not-an-ip bantime=60
check "an address portier refuses: non-zero exit with the API's message" action_failed '400: .*ip'
dead=$(free_port)
cmd=$(f2b_cmd actionban ip=198.51.100.11 bantime=60 portier_url="http://127.0.0.1:$dead" \
      portier_token_file="$T/portier.token" portier_timeout=3)
OUT=$(/bin/sh -c "$cmd" 2>&1); RC=$?
check "portier unreachable: non-zero exit, says so" action_failed 'no answer from'
cmd=$(f2b_cmd actionban ip=198.51.100.12 bantime=60 portier_url="$URL" portier_token_file="$T/missing.token")
OUT=$(/bin/sh -c "$cmd" 2>&1); RC=$?
check "token file missing: non-zero exit" action_failed 'missing.token'

# ---- the bans token can do nothing else ----------------------------------------------
api_as "$BANS_TOKEN" GET /api/v1/domains
check "bans token: GET /api/v1/domains -> 403" is_error 403
api_as "$BANS_TOKEN" PUT /api/v1/backends/x '{"servers":["127.0.0.1:1"]}'
check "bans token: PUT /api/v1/backends/x -> 403" is_error 403
api_as "$BANS_TOKEN" GET /api/v1/tokens
check "bans token: GET /api/v1/tokens -> 403" is_error 403
api_as "$BANS_TOKEN" GET /api/v1/bans
check "bans token: GET /api/v1/bans -> 200" is_status 200

# ---- a real fail2ban-server -----------------------------------------------------------
# A real jail reads a real log file and bans through the action with the bans
# token: portier refuses the address and cuts its open connections (passthrough
# and offload keep-alive), another client keeps its own; the unban lifts it.
command -v fail2ban-server >/dev/null 2>&1 ||
    bail "fail2ban-server is installed (make deps installs Debian's fail2ban)"
. "$HERE/bans_fixture.sh"
bans_backends
bans_routes
F="$T/f2b"
mkdir -p "$F/action.d" "$F/filter.d"
cp "$ACTION" "$F/action.d/portier.conf"
: >"$F/test.log"
cat >"$F/filter.d/portier-test.conf" <<'EOF'
[Definition]
failregex = ^auth failure from <HOST>$
datepattern = {NONE}
EOF
cat >"$F/jail.conf" <<EOF
[DEFAULT]
backend = polling
bantime = 900

[portier-test]
enabled = true
filter = portier-test
logpath = $F/test.log
maxretry = 3
findtime = 600
action = portier[portier_url="$URL", portier_token_file="$T/portier.token"]
EOF
check "fail2ban-server runs the jail with the portier action" f2b_start "$F"
f2b set portier-test banip 192.0.2.55 >/dev/null 2>&1
check "fail2ban banip: 192.0.2.55 banned at portier for the jail's bantime (900 s)" \
    wait_until 10 ban_lasts 192.0.2.55 900
check "fail2ban's reason names the jail" reason_is 192.0.2.55 "fail2ban portier-test"

hold f2b-pass keepalive 127.0.0.41 "${tls_a[@]}"
hold f2b-offload keepalive 127.0.0.41 "${tls_b[@]}"
hold f2b-other keepalive 127.0.0.42 "${tls_b[@]}"
check "127.0.0.41 (passthrough, offload) and 127.0.0.42 connected before any failure" \
    wait_until 20 all_ready f2b-pass f2b-offload f2b-other
for i in 1 2 3; do echo "auth failure from 127.0.0.41" >>"$F/test.log"; done
check "fail2ban bans from the log (3 failures of 127.0.0.41) at portier" \
    wait_until 15 ban_lasts 127.0.0.41 900
touch "$TRIGGER"
for p in "${HELD_PIDS[@]}"; do wait "$p"; done
check "the open passthrough connection of 127.0.0.41 is cut (RST)" verdict f2b-pass RESET
check "the open offload keep-alive connection of 127.0.0.41 is cut (RST)" verdict f2b-offload RESET
check "127.0.0.42's keep-alive connection keeps working" verdict f2b-other OK
get_as() { curl -sS --max-time 10 --cacert "$T/ca.pem" --resolve "a.test:$HTTPS_PORT:127.0.0.1" \
    --interface "$1" "https://a.test:$HTTPS_PORT/" 2>/dev/null || echo REFUSED; }
check "a new connection from 127.0.0.41 is refused" [ "$(get_as 127.0.0.41)" = REFUSED ]
f2b set portier-test unbanip 127.0.0.41 >/dev/null 2>&1
check "fail2ban unbanip: 127.0.0.41 lifted at portier" wait_until 10 not_banned 127.0.0.41
check "127.0.0.41 is served again" [ "$(get_as 127.0.0.41)" = backend-one ]

# An address the admin banned by hand: the action's ban leaves it as it is
# (409, counted as done) and its unban does not lift it (404, counted as done).
api POST /api/v1/bans '{"ip":"192.0.2.77","reason":"by hand"}'
f2b set portier-test banip 192.0.2.77 >/dev/null 2>&1
f2b set portier-test unbanip 192.0.2.77 >/dev/null 2>&1
sleep 1
check "the admin's ban of 192.0.2.77 survives fail2ban's ban and unban" reason_is 192.0.2.77 "by hand"
f2b stop >/dev/null 2>&1
check "fail2ban stop unbans the rest at portier" wait_until 15 not_banned 192.0.2.55
if grep -q 'ERROR' "$F/fail2ban.log" 2>/dev/null; then
    note "fail2ban.log errors: $(grep ERROR "$F/fail2ban.log" | head -n 5)"
fi
check "fail2ban logged no action error" eval '! grep -q "ERROR" "$F/fail2ban.log"'

finish

#!/bin/bash
# Command line: bad flags and unusable settings (exit 2, one line on stderr),
# --config files, file modes of the state dir, the API token, SIGTERM.
. "$(dirname "$0")/lib.sh"

# run_bad "desc" flags... : the daemon must exit 2 with exactly one non-empty line
# on stderr, and leave no process behind.
run_bad() {
    local desc=$1; shift
    timeout -k 2 15 env "$MARK" "$PORTIERD" "$@" >"$T/bad.out" 2>"$T/bad.err"
    BAD_RC=$?
    BAD_ERR=$(cat "$T/bad.err")
    local lines; lines=$(awk 'END { print NR }' "$T/bad.err")
    note "$desc: exit $BAD_RC, stderr: ${BAD_ERR:0:300}"
    LAST_REQ=""
    check "$desc: exit status 2 (got $BAD_RC)" [ "$BAD_RC" = 2 ]
    check "$desc: exactly one non-empty line on stderr (got $lines)" \
        bash -c '[ "$1" = 1 ] && grep -q "[^[:space:]]" "$2"' _ "$lines" "$T/bad.err"
    local left; left=$(marked_pids | tr '\n' ' ')
    check "$desc: no process left behind" [ -z "$left" ]
    [ -z "$left" ] || for p in $left; do kill -9 "$p" 2>/dev/null; done
}

read -r P1 P2 P3 <<<"$(free_ports 3)"
base() { # base STATE_DIR: valid flags except workers
    BASE=(--state-dir "$1" --api "127.0.0.1:$P1" --https "127.0.0.1:$P2" --http "127.0.0.1:$P3")
}
base "$T/bad-state"

# ---- bad flags ----------------------------------------------------------------
run_bad "unknown flag --bogus"          "${BASE[@]}" --workers 1 --bogus
run_bad "positional argument"           "${BASE[@]}" --workers 1 extra
run_bad "--workers 0"                   "${BASE[@]}" --workers 0
run_bad "--workers abc"                 "${BASE[@]}" --workers abc
run_bad "--workers 3x"                  "${BASE[@]}" --workers 3x
run_bad "--workers -1"                  "${BASE[@]}" --workers -1
run_bad "--workers without value"       "${BASE[@]}" --workers
run_bad "--api not-an-address"          --state-dir "$T/bad-state" --api not-an-address \
                                        --https "127.0.0.1:$P2" --http "127.0.0.1:$P3" --workers 1
run_bad "--https 127.0.0.1:99999"       --state-dir "$T/bad-state" --api "127.0.0.1:$P1" \
                                        --https 127.0.0.1:99999 --http "127.0.0.1:$P3" --workers 1
run_bad "--http 127.0.0.1: (no port)"   --state-dir "$T/bad-state" --api "127.0.0.1:$P1" \
                                        --https "127.0.0.1:$P2" --http "127.0.0.1:" --workers 1
run_bad "--https 999.1.1.1:443"         --state-dir "$T/bad-state" --api "127.0.0.1:$P1" \
                                        --https 999.1.1.1:443 --http "127.0.0.1:$P3" --workers 1
run_bad "--trusted-proxy 10.0.0.0/33"   "${BASE[@]}" --workers 1 --trusted-proxy 10.0.0.0/33
run_bad "--config missing file"         "${BASE[@]}" --workers 1 --config "$T/no-such.conf"

# ---- addresses already in use -------------------------------------------------
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
time.sleep(300)' >"$T/holder.port" &
HOLDER=$!
track_pid "$HOLDER"
wait_until 10 test -s "$T/holder.port" || bail "python port holder did not start"
HP=$(cat "$T/holder.port")
run_bad "--https on a port in use" --state-dir "$T/bad-state" --api "127.0.0.1:$P1" \
    --https "127.0.0.1:$HP" --http "127.0.0.1:$P3" --workers 1
check "--https in use: the message names 127.0.0.1:$HP" grep -q "127.0.0.1:$HP" "$T/bad.err"
run_bad "--http on a port in use" --state-dir "$T/bad-state" --api "127.0.0.1:$P1" \
    --https "127.0.0.1:$P2" --http "127.0.0.1:$HP" --workers 1
check "--http in use: the message names 127.0.0.1:$HP" grep -q "127.0.0.1:$HP" "$T/bad.err"
run_bad "--api on a port in use" --state-dir "$T/bad-state" --api "127.0.0.1:$HP" \
    --https "127.0.0.1:$P2" --http "127.0.0.1:$P3" --workers 1
check "--api in use: the message names 127.0.0.1:$HP" grep -q "127.0.0.1:$HP" "$T/bad.err"
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null

# ---- unusable state dir (tests run as root: chmod would not stop us) -----------
echo "not a directory" >"$T/file"
base "$T/file/state"
run_bad "--state-dir below a regular file" "${BASE[@]}" --workers 1
base "$T/file"
run_bad "--state-dir is a regular file" "${BASE[@]}" --workers 1

# ---- --config ---------------------------------------------------------------------
read -r C1 C2 C3 <<<"$(free_ports 3)"
cat >"$T/good.conf" <<EOF
state-dir = $T/cstate
api = 127.0.0.1:$C1
https = 127.0.0.1:$C2
http = 127.0.0.1:$C3
workers = 1
EOF
SAVED_API=$API_PORT
if NO_DEFAULTS=1 STATE_DIR="$T/cstate" API_PORT=$C1 start_portierd --config "$T/good.conf"; then
    API_PORT=$C1 STATE_DIR="$T/cstate"
    check "--config: API answers on the configured address 127.0.0.1:$C1" healthz_ok
    api GET /api/v1/status
    check "--config: token from the configured state-dir works (200)" is_status 200
    check "--config: workers = 1 gives one worker" json_true 'len(d["workers"]) == 1'
    check "--config: https listener on 127.0.0.1:$C2" port_listening "$C2"
    check "--config: http listener on 127.0.0.1:$C3" port_listening "$C3"
    stop_portierd
else
    check "--config FILE with key = value lines starts the daemon" false
fi
API_PORT=$SAVED_API STATE_DIR="$T/state"

{ cat "$T/good.conf"; echo "nonsense = 1"; } >"$T/badkey.conf"
run_bad "--config with an unknown key" --config "$T/badkey.conf"
sed 's/^workers = 1$/workers = zero/' "$T/good.conf" >"$T/badval.conf"
run_bad "--config with a bad value (workers = zero)" --config "$T/badval.conf"
{ cat "$T/good.conf"; echo "this line has no equals sign"; } >"$T/badline.conf"
run_bad "--config with a line without '='" --config "$T/badline.conf"

# Comments and blank lines are not in the contract: only noted.
{ echo "# a comment"; echo; cat "$T/good.conf"; } >"$T/comment.conf"
rm -rf "$T/cstate"
env "$MARK" setsid "$PORTIERD" --config "$T/comment.conf" >"$T/comment.out" 2>&1 &
CPID=$!
track_pid "$CPID"
comment_done() { pid_gone "$CPID" || API_PORT=$C1 healthz_ok; }
wait_until 20 comment_done
if pid_gone "$CPID"; then
    wait "$CPID"
    note "config file with '# comment' and blank lines: refused, exit $?: $(head -c 200 "$T/comment.out")"
else
    note "config file with '# comment' and blank lines: accepted"
    kill -TERM "$CPID"
    wait_until 20 pid_gone "$CPID" || kill -9 -- "-$CPID"
    wait "$CPID"
fi
for p in $(marked_pids); do kill -9 "$p" 2>/dev/null; done
wait_until 5 port_free "$C2"

# ---- state dir, db, token modes -------------------------------------------------
start_portierd || bail "portierd starts with default test flags"
check "state dir created with mode 0700 (got $(stat -c %a "$STATE_DIR"))" \
    [ "$(stat -c %a "$STATE_DIR")" = 700 ]
check "api.token has mode 0600 (got $(stat -c %a "$STATE_DIR/api.token" 2>/dev/null))" \
    [ "$(stat -c %a "$STATE_DIR/api.token" 2>/dev/null)" = 600 ]
note "state dir files: $(cd "$STATE_DIR" && stat -c '%n=%a' * 2>/dev/null | tr '\n' ' ')"
DBFILES=$(cd "$STATE_DIR" && ls -1 | grep -v '^api\.token$' | tr '\n' ' ')
check "state dir holds a database file besides api.token ($DBFILES)" [ -n "$DBFILES" ]
bad_modes=""
for f in $DBFILES; do
    [ -f "$STATE_DIR/$f" ] || continue
    m=$(stat -c %a "$STATE_DIR/$f")
    [ "$m" = 600 ] || bad_modes="$bad_modes $f=$m"
done
check "database files have mode 0600 (wrong:${bad_modes:- none})" [ -z "$bad_modes" ]
check "token is 64 hex chars" grep -Eqx '[0-9a-fA-F]{64}' <<<"$TOKEN"
check "token file holds only the token (and an optional newline)" \
    bash -c '[ "$(tr -d "\n" <"$1")" = "$2" ]' _ "$STATE_DIR/api.token" "$TOKEN"
api GET /api/v1/status
check "the generated token is accepted (200)" is_status 200
check "--workers 2 gives two workers" json_true 'len(d["workers"]) == 2'
OLD_TOKEN=$TOKEN
stop_portierd

start_portierd || bail "portierd restarts on the same state dir"
check "restart keeps the token" [ "$TOKEN" = "$OLD_TOKEN" ]
stop_portierd

# ---- --api-token-file -------------------------------------------------------------
MYTOK=$(printf 'c0ffee%.0s' 1 2 3 4 5 6 7 8 9 10)
printf '  \n\t %s \t\n\n' "$MYTOK" >"$T/tok.txt"
rm -rf "$T/state2"
start_portierd --state-dir "$T/state2" --api-token-file "$T/tok.txt" \
    || bail "portierd starts with --api-token-file"
api_as "$MYTOK" GET /api/v1/status
check "--api-token-file: token with surrounding whitespace is accepted (200)" is_status 200
api_as "  $MYTOK" GET /api/v1/backends
note "Authorization: 'Bearer   TOKEN' (extra spaces) -> $STATUS"
api_as "${MYTOK}x" GET /api/v1/status
check "--api-token-file: token plus a character is refused (401)" is_error 401
api_as "${MYTOK:0:59}" GET /api/v1/status
check "--api-token-file: a prefix of the token is refused (401)" is_error 401
check "--api-token-file: an existing file is left as it was" \
    bash -c '[ "$(cat "$1")" = "$(printf "  \n\t %s \t\n\n" "$2")" ]' _ "$T/tok.txt" "$MYTOK"
stop_portierd

rm -rf "$T/state3"
start_portierd --state-dir "$T/state3" --api-token-file "$T/newtok.txt" \
    || bail "portierd starts with a missing --api-token-file"
check "--api-token-file missing: created with mode 0600 (got $(stat -c %a "$T/newtok.txt" 2>/dev/null))" \
    [ "$(stat -c %a "$T/newtok.txt" 2>/dev/null)" = 600 ]
check "--api-token-file missing: created with 64 hex chars" grep -Eqx '[0-9a-fA-F]{64}' <<<"$TOKEN"
api GET /api/v1/status
check "--api-token-file missing: the new token works (200)" is_status 200
stop_portierd

# ---- --user: the state directory is handed over without following links ------
# A link planted in the state dir (or the state dir itself a link) would make
# root chown its target on the next start.
touch "$T/victim"
mkdir -p "$T/planted"
ln -s "$T/victim" "$T/planted/evil"
base "$T/planted"
run_bad "--user with a symlink planted in the state dir" "${BASE[@]}" --workers 1 --user nobody
check "--user refusal names the link" grep -q "planted/evil is a symbolic link" "$T/bad.err"
check "--user did not chown the link's target" [ "$(stat -c %U "$T/victim")" = root ]
check "--user did not chown the link itself" [ "$(stat -c %U "$T/planted/evil")" = root ]
mkdir -p "$T/real-state"
ln -s "$T/real-state" "$T/linked-state"
base "$T/linked-state"
run_bad "--user with the state dir itself a symlink" "${BASE[@]}" --workers 1 --user nobody
check "--user refusal names the state dir link" grep -q "linked-state is a symbolic link" "$T/bad.err"
check "the linked directory was not handed over" [ "$(stat -c %U "$T/real-state")" = root ]
# Without links the hand-over still works (in a directory nobody may enter).
mkdir -p "$T/pub" && chmod 755 "$T" "$T/pub"
base "$T/pub/state"
timeout -k 2 15 env "$MARK" "$PORTIERD" "${BASE[@]}" --workers 1 --user nobody \
    >"$T/user.out" 2>"$T/user.err" &
upid=$!
user_up() { [ "$(stat -c %U "$T/pub/state/portier.db" 2>/dev/null)" = nobody ]; }
check "--user without links: the state files go to the user" wait_until 10 user_up
check "--user without links: the token file too" \
    [ "$(stat -c %U "$T/pub/state/api.token" 2>/dev/null)" = nobody ]
kill "$upid" 2>/dev/null; wait "$upid" 2>/dev/null
base "$T/bad-state"

# ---- SIGTERM with workers -------------------------------------------------------
start_portierd --workers 3 || bail "portierd starts with --workers 3"
W=$(worker_pids)
check "three worker pids before SIGTERM ($W)" [ "$(wc -w <<<"$W")" = 3 ]
stop_portierd
check "https port free after SIGTERM" wait_until 5 port_free "$HTTPS_PORT"
check "http port free after SIGTERM" wait_until 5 port_free "$HTTP_PORT"
check "api port free after SIGTERM" wait_until 5 port_free "$API_PORT"
left=$(marked_pids | tr '\n' ' ')
check "no portierd process left after SIGTERM ($left)" [ -z "$left" ]

finish

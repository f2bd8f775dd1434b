# Shared fixture for the black-box integration tests (sourced by every t_*.sh).
#
# Each test gets its own temp dir $T (removed on exit unless KEEP=1), three free
# loopback ports, and helpers to start/stop portierd, call the REST API and
# record TAP-like results:
#
#   start_portierd [flags]   start "$PORTIERD" (defaults for --state-dir/--api/
#                            --https/--http/--workers unless given), wait for
#                            /healthz 200, read the token; NO_DEFAULTS=1 passes
#                            only the given flags (for --config tests)
#   stop_portierd            SIGTERM, check exit 0 and that the workers are gone
#   kill9_portierd           SIGKILL the daemon (workers are left to exit alone)
#   api METHOD PATH [BODY]   sets STATUS, BODY, HEADERS (token from $TOKEN)
#   api_as TOKEN ...         same with another token ("" = no Authorization)
#   json_get EXPR [ARGS]     evaluate a python expression on d = json($BODY),
#                            extra args as list a; strings printed raw
#   json_true EXPR [ARGS]    exit status of bool(EXPR)
#   check "desc" cmd...      print ok/not ok, count failures
#   finish                   exit 1 if any check failed (0 otherwise)
#
# The daemon runs in its own process group (setsid) with PORTIER_TEST_MARK=$T in
# its environment, which its workers inherit: the exit trap kills the group, every
# pid we recorded and every process carrying the mark, so nothing survives a test.
# Tests that check "workers exit by themselves" do so before the trap runs.

set -u
umask 022

: "${PORTIERD:=$PWD/build/asan/portierd}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ ! -x "$PORTIERD" ]; then
    echo "# portierd binary not found at $PORTIERD: skipping"
    exit 77
fi
# Debian's python3 directly: a pyenv shim first in PATH costs ~150 ms per call.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
for tool in curl "$PY" setsid ss; do
    command -v "$tool" >/dev/null 2>&1 || { echo "# $tool not installed: skipping"; exit 77; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/portier-it.XXXXXX")
MARK="PORTIER_TEST_MARK=$T"
FAILS=0
CHECKS=0
FAILED_LIST=()
PID=""               # current daemon pid
PIDS_ALL=""          # every daemon pid, worker pid and helper pid we saw
STATUS="" BODY="" HEADERS="" LAST_REQ="" WHY=""
TOKEN=""

# ---- processes ---------------------------------------------------------------

# Pids of every live process whose environment carries this test's mark.
marked_pids() {
    "$PY" - "$MARK" <<'EOF'
import os, sys
mark = sys.argv[1].encode()
for p in os.listdir('/proc'):
    if not p.isdigit():
        continue
    try:
        with open('/proc/%s/environ' % p, 'rb') as f:
            env = f.read().split(b'\0')
    except OSError:
        continue
    if mark in env:
        print(p)
EOF
}

track_pid() { PIDS_ALL="$PIDS_ALL $*"; }

# True when PID no longer runs (absent, or a zombie waiting for its parent).
pid_gone() {
    local st
    [ -e "/proc/$1" ] || return 0
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

all_gone() { local p; for p in "$@"; do pid_gone "$p" || return 1; done; return 0; }

# wait_until SECONDS cmd... : poll cmd every 0.1 s; true as soon as it succeeds.
wait_until() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
    while :; do
        "$@" && return 0
        [ $(( $(date +%s%N) / 1000000 )) -ge $end ] && return 1
        sleep 0.1
    done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    if [ -n "$PID" ]; then kill -9 -- "-$PID" 2>/dev/null; kill -9 "$PID" 2>/dev/null; fi
    for p in $PIDS_ALL; do
        kill -9 -- "-$p" 2>/dev/null
        kill -9 "$p" 2>/dev/null
    done
    for p in $(marked_pids); do kill -9 "$p" 2>/dev/null; done
    for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
    # reap our own children (daemons, helpers); bounded because all were SIGKILLed
    wait 2>/dev/null
    local left; left=$(marked_pids | tr '\n' ' ')
    [ -z "$left" ] || echo "# WARNING: processes still alive after cleanup: $left"
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# kept $T"
    else
        rm -rf "$T"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- ports -------------------------------------------------------------------

# free_ports N: N distinct free TCP ports on 127.0.0.1 (held together while chosen).
free_ports() {
    "$PY" - "${1:-1}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
EOF
}
free_port() { free_ports 1; }

port_listening() { [ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]; }
port_free() { ! port_listening "$1"; }

read -r API_PORT HTTPS_PORT HTTP_PORT <<<"$(free_ports 3)"
# a test that starts the API over TLS sets API_SCHEME=https and API_CACERT=FILE
API_SCHEME=http API_CACERT=""
STATE_DIR="$T/state"
TOKEN_FILE=""

# ---- results -----------------------------------------------------------------

note() { local l; while IFS= read -r l; do printf '# %s\n' "$l"; done <<<"$*"; }

check() {
    local desc=$1; shift
    WHY=""
    CHECKS=$((CHECKS + 1))
    if "$@"; then
        echo "ok - $desc"
    else
        echo "not ok - $desc"
        FAILS=$((FAILS + 1))
        FAILED_LIST+=("$desc")
        [ -z "$WHY" ] || note "  $WHY"
        case "$1" in # the last request is evidence only for checks about a response
            is_*|json_*|_fail_ok|_ok_mut)
                [ -z "$LAST_REQ" ] || note "  last request: $LAST_REQ -> ${STATUS:-?} ${BODY:0:400}" ;;
        esac
    fi
}

# bail "desc": record a failure and stop the test (the trap cleans up).
bail() {
    echo "not ok - $1"
    FAILS=$((FAILS + 1))
    FAILED_LIST+=("$1")
    finish
}

show_log() {
    [ -f "$T/portierd.log" ] || return 0
    note "last lines of portierd.log:"
    tail -n "${1:-25}" "$T/portierd.log" | sed 's/^/#   | /'
}

sanitizer_clean() {
    [ -f "$T/portierd.log" ] || return 0
    if grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|Sanitizer:DEADLYSIGNAL' "$T/portierd.log"; then
        WHY=$(grep -Em3 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|DEADLYSIGNAL' "$T/portierd.log" | tr '\n' ' ')
        return 1
    fi
}

finish() {
    check "no sanitizer report in portierd.log" sanitizer_clean
    if [ "$FAILS" -gt 0 ]; then
        show_log 30
        note "$FAILS of $CHECKS checks failed:"
        local f; for f in "${FAILED_LIST[@]}"; do note "  FAILED: $f"; done
        exit 1
    fi
    note "all $CHECKS checks passed"
    exit 0
}

# ---- HTTP / JSON -------------------------------------------------------------

# _req TOKEN METHOD PATH [BODYFILE]
_req() {
    local tok=$1 method=$2 path=$3 file=${4-}
    local args=(-sS -g --path-as-is --max-time 30 -o "$T/.resp" -D "$T/.hdrs"
                -w '%{http_code}' -X "$method" -H 'Expect:')
    [ -z "$tok" ] || args+=(-H "Authorization: Bearer $tok")
    [ -z "$file" ] || args+=(-H 'Content-Type: application/json' --data-binary "@$file")
    rm -f "$T/.resp" "$T/.hdrs"
    [ -z "$API_CACERT" ] || args+=(--cacert "$API_CACERT")
    STATUS=$(curl "${args[@]}" "$API_SCHEME://127.0.0.1:$API_PORT$path" 2>"$T/.curlerr")
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(cat "$T/.resp" 2>/dev/null)
    HEADERS=$(tr -d '\r' <"$T/.hdrs" 2>/dev/null)
}

# api METHOD PATH [BODY]
api() {
    local method=$1 path=$2
    if [ $# -ge 3 ]; then
        printf '%s' "$3" >"$T/.req"
        LAST_REQ="$method $path ${3:0:200}"
        _req "$TOKEN" "$method" "$path" "$T/.req"
    else
        LAST_REQ="$method $path"
        _req "$TOKEN" "$method" "$path"
    fi
}

# api_file METHOD PATH FILE (large bodies)
api_file() {
    LAST_REQ="$1 $2 <$(stat -c %s "$3") bytes from file>"
    _req "$TOKEN" "$1" "$2" "$3"
}

# api_as TOKEN METHOD PATH [BODY]
api_as() {
    local tok=$1; shift
    local saved=$TOKEN
    TOKEN=$tok
    api "$@"
    TOKEN=$saved
}

# Header value (case-insensitive name) of the last response.
header() { printf '%s\n' "$HEADERS" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$1")" -F': *' \
    'tolower($1)==n { sub(/^[^:]*: */, ""); print; exit }'; }

_json_eval() { # mode expr args...
    printf '%s' "$BODY" | "$PY" -c '
import json, sys
mode, expr, a = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    d = json.loads(sys.stdin.read())
    v = eval("(" + expr + "\n)")
except Exception:
    sys.exit(1)
if mode == "get":
    print(v if isinstance(v, str) else json.dumps(v))
else:
    sys.exit(0 if v else 1)' "$@"
}
json_get() { _json_eval get "$@"; }
json_true() { _json_eval true "$@"; }

# is_status CODE[|CODE...]
is_status() {
    [[ "|$1|" == *"|$STATUS|"* ]] && return 0
    WHY="status $STATUS, expected $1"
    return 1
}

# is_error STATUS [FIELD]: status matches and body is {"error":{"code","message"[,"field"]}}
is_error() {
    is_status "$1" || return 1
    if ! json_true 'isinstance(d, dict) and isinstance(d.get("error"), dict)
            and isinstance(d["error"].get("code"), str) and d["error"]["code"] != ""
            and isinstance(d["error"].get("message"), str) and d["error"]["message"] != ""'; then
        WHY="body is not {\"error\":{\"code\":...,\"message\":...}}"
        return 1
    fi
    if [ -n "${2-}" ] && ! json_true 'd["error"].get("field") in a' "${@:2}"; then
        WHY="error.field is $(json_get 'd["error"].get("field")'), expected ${*:2}"
        return 1
    fi
    return 0
}

is_json_ct() {
    local ct; ct=$(header Content-Type)
    case "$ct" in application/json*) return 0 ;; esac
    WHY="Content-Type: '$ct'"
    return 1
}

# ---- daemon ------------------------------------------------------------------

# Current config_version from /api/v1/status (in a subshell: leaves STATUS/BODY alone).
# server_state BACKEND SERVER: "up" or "down" from GET /api/v1/backends/BACKEND's health;
# server_is BACKEND SERVER STATE: whether it is that (for wait_until).
server_state() {
    api GET "/api/v1/backends/$1"
    json_get '[s["state"] for s in d.get("health", []) if s["server"] == a[0]][0]' "$2" 2>/dev/null
}
server_is() { [ "$(server_state "$1" "$2")" = "$3" ]; }

cfg_version() { ( api GET /api/v1/status; json_get 'd["config_version"]' ) || echo "?"; }

# Worker pids from /api/v1/status, space separated (entries without an integer
# pid, e.g. a worker being respawned, are left out: count them to notice).
worker_pids() { ( api GET /api/v1/status
    json_get '" ".join(str(w["pid"]) for w in d["workers"] if type(w.get("pid")) is int)' ); }

# workers_at VERSION [COUNT]: status lists COUNT workers (any if omitted), all at VERSION.
workers_at() {
    local v=$1 n=${2:-}
    ( api GET /api/v1/status >/dev/null
      [ "$STATUS" = 200 ] &&
      json_true 'len(d["workers"]) >= 1 and (a[1] == "" or len(d["workers"]) == int(a[1]))
                 and all(str(w["config_version"]) == a[0] for w in d["workers"])' "$v" "$n" )
}

healthz_ok() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${API_CACERT:+--cacert "$API_CACERT"} \
        "$API_SCHEME://127.0.0.1:$API_PORT/healthz")" = 200 ]
}

# start_portierd [extra flags]: returns 1 (after printing the log) if the daemon
# exits or /healthz is not 200 within 20 s.
start_portierd() {
    local args=("$@") have=" $* " a i
    if [ "${NO_DEFAULTS:-0}" != 1 ]; then
        [[ $have == *" --state-dir "* ]] || args+=(--state-dir "$STATE_DIR")
        [[ $have == *" --api "* ]] || args+=(--api "127.0.0.1:$API_PORT")
        [[ $have == *" --https "* ]] || args+=(--https "127.0.0.1:$HTTPS_PORT")
        [[ $have == *" --http "* ]] || args+=(--http "127.0.0.1:$HTTP_PORT")
        [[ $have == *" --workers "* ]] || args+=(--workers 2)
    fi
    local sd=$STATE_DIR
    TOKEN_FILE=""
    for ((i = 0; i < ${#args[@]}; i++)); do
        a=${args[i]}
        case "$a" in
            --state-dir) sd=${args[i+1]} ;;
            --api) API_PORT=${args[i+1]##*:} ;;
            --api-token-file) TOKEN_FILE=${args[i+1]} ;;
        esac
    done
    CUR_STATE_DIR=$sd
    [ -n "$TOKEN_FILE" ] || TOKEN_FILE="$sd/api.token"
    echo "=== start $(date +%T.%N) ${args[*]}" >>"$T/portierd.log"
    # PORTIERD_WRAP: a command the daemon runs under (prlimit ...); it execs,
    # so $! stays the daemon's pid.
    env "$MARK" setsid ${PORTIERD_WRAP:-} "$PORTIERD" "${args[@]}" >>"$T/portierd.log" 2>&1 &
    PID=$!
    track_pid "$PID"
    if ! wait_until 20 _started; then
        if pid_gone "$PID"; then
            wait "$PID" 2>/dev/null
            note "portierd exited with status $? during start-up"
        else
            note "/healthz did not answer 200 within 20 s"
        fi
        show_log
        return 1
    fi
    TOKEN=$(tr -d ' \t\r\n' <"$TOKEN_FILE" 2>/dev/null)
    track_pid $(worker_pids 2>/dev/null)
    return 0
}
_started() { pid_gone "$PID" && return 1; healthz_ok; }

# stop_portierd: SIGTERM; checks "exit 0" and "workers gone". Sets STOP_RC.
stop_portierd() {
    local workers; workers=$(worker_pids 2>/dev/null)
    track_pid $workers
    kill -TERM "$PID" 2>/dev/null
    if ! wait_until 30 pid_gone "$PID"; then
        note "portierd still running 30 s after SIGTERM: killing it"
        kill -9 -- "-$PID" 2>/dev/null; kill -9 "$PID" 2>/dev/null
    fi
    wait "$PID" 2>/dev/null
    STOP_RC=$?
    check "portierd exits 0 on SIGTERM (status $STOP_RC)" [ "$STOP_RC" = 0 ]
    check "workers ($workers) are gone after SIGTERM" wait_until 5 all_gone $workers
    PID=""
}

# kill9_portierd: SIGKILL the daemon only; sets KILLED_WORKERS to its workers.
kill9_portierd() {
    KILLED_WORKERS=$(worker_pids 2>/dev/null)
    track_pid $KILLED_WORKERS
    kill -9 "$PID"
    wait "$PID" 2>/dev/null
    PID=""
}

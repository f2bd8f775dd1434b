# A private fail2ban-server for integration tests (sourced after lib.sh).
#
#   f2b_start DIR   writes DIR/fail2ban.conf (log, socket, pid in DIR, database in
#                   memory), starts fail2ban-server on DIR's jail.conf / jail.d and
#                   waits for it; false (and a note) when it does not come up
#   f2b ARGS...     fail2ban-client on that server
#
# fail2ban runs unprivileged-style with its own config and socket, so nothing of
# the machine's fail2ban is used or touched.

f2b() { env "$MARK" fail2ban-client -c "$F2B_DIR" -s "$F2B_DIR/fail2ban.sock" -p "$F2B_DIR/fail2ban.pid" "$@"; }
f2b_up() { f2b ping >/dev/null 2>&1; }

f2b_start() {
    F2B_DIR=$1
    mkdir -p "$F2B_DIR"
    cat >"$F2B_DIR/fail2ban.conf" <<CONF
[Definition]
loglevel = INFO
logtarget = $F2B_DIR/fail2ban.log
socket = $F2B_DIR/fail2ban.sock
pidfile = $F2B_DIR/fail2ban.pid
dbfile = :memory:
syslogsocket = auto
CONF
    local out
    out=$(f2b -x start 2>&1)
    wait_until 15 f2b_up || { note "fail2ban-client start: $out"; return 1; }
    [ -f "$F2B_DIR/fail2ban.pid" ] && track_pid "$(cat "$F2B_DIR/fail2ban.pid")"
    return 0
}

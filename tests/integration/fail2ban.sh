# A private fail2ban-server for integration tests (sourced after lib.sh).
#
#   f2b_start DIR   writes DIR/fail2ban.conf (log, socket, pid in DIR, database in
#                   memory), runs `fail2ban-server -f -x -s SOCK -p PID -c DIR` on
#                   DIR's jail.conf / jail.d in the background and waits until it
#                   runs at least one jail; false (and a note) when it does not
#   f2b ARGS...     fail2ban-client on that server
#
# fail2ban runs unprivileged-style with its own config and socket, so nothing of
# the machine's fail2ban is used or touched.

f2b() { env "$MARK" fail2ban-client -c "$F2B_DIR" -s "$F2B_DIR/fail2ban.sock" -p "$F2B_DIR/fail2ban.pid" "$@"; }
# Its jails are loaded after it answers a ping; asking for a jail by name
# before that would make fail2ban log an ERROR, so the global status is read.
f2b_up() { f2b status 2>/dev/null | grep -qE "Number of jail:[[:space:]]*[1-9]"; }

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
    env "$MARK" fail2ban-server -f -x -s "$F2B_DIR/fail2ban.sock" -p "$F2B_DIR/fail2ban.pid" \
        -c "$F2B_DIR" >"$F2B_DIR/server.out" 2>&1 &
    track_pid $!
    wait_until 20 f2b_up ||
        { note "fail2ban-server: $(tail -n 5 "$F2B_DIR/server.out" "$F2B_DIR/fail2ban.log" 2>/dev/null)"; return 1; }
}

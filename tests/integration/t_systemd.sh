#!/bin/bash
# The systemd side of crash survival (issue 16): the shipped unit passes
# `systemd-analyze verify` (with ExecStart pointed at the built binary) and
# says KillMode=process + Type=notify; the daemon speaks the notification
# protocol to a real $NOTIFY_SOCKET: READY=1 only once /healthz is ok with
# every worker serving, WATCHDOG=1 at half of $WATCHDOG_USEC, STOPPING=1 on
# SIGTERM.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
REPO=$(cd "$HERE/../.." && pwd)
cd "$T"

if command -v systemd-analyze >/dev/null; then
    sed "s#/usr/local/sbin/portierd#$PORTIERD#" "$REPO/contrib/portierd.service" >portierd.service
    systemd-analyze verify "$T/portierd.service" >verify.out 2>&1
    rc=$?
    note "systemd-analyze verify: rc=$rc $(cat verify.out)"
    check "systemd-analyze verify: no error, no warning" eval '[ $rc = 0 ] && [ ! -s verify.out ]'
else
    note "systemd-analyze not installed: unit not verified"
fi
check "the unit is Type=notify with KillMode=process" \
    eval 'grep -q "^Type=notify" "$REPO/contrib/portierd.service" && grep -q "^KillMode=process" "$REPO/contrib/portierd.service"'

# A notify socket like systemd's: record every datagram with its arrival time
# and whether /healthz was ok when READY=1 came.
"$PY" - "$T/notify.sock" "$T/notify.log" "$API_PORT" <<'PYEOF' &
import json, socket, sys, time, urllib.request
path, log, port = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
with open(log, "a") as f:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        extra = ""
        if "READY=1" in msg:
            try:
                h = json.load(urllib.request.urlopen("http://127.0.0.1:%s/healthz" % port, timeout=2))
                extra = " healthz=%s serving=%s" % (h["ok"], h["serving"])
            except Exception as e:
                extra = " healthz=error:%s" % e
        f.write("%.3f %s%s\n" % (time.time(), msg.replace("\n", "|"), extra))
        f.flush()
PYEOF
NOTIFY=$!
track_pid "$NOTIFY"
wait_until 5 test -S "$T/notify.sock"
export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000
start_portierd --workers 2 || bail "portierd starts under a notify socket"
unset NOTIFY_SOCKET WATCHDOG_USEC
check "READY=1 arrived" wait_until 5 grep -q "READY=1" "$T/notify.log"
check "READY=1 came when /healthz was ok with both workers serving" \
    grep -q "READY=1.* healthz=True serving=2" "$T/notify.log"
check "READY=1 exactly once" eval '[ "$(grep -c READY=1 "$T/notify.log")" = 1 ]'
sleep 1.5
pings=$(grep -c "WATCHDOG=1" "$T/notify.log")
check "WATCHDOG=1 every ~200 ms ($pings in the first ~1.5 s)" eval '[ "$pings" -ge 4 ]'
stop_portierd
check "STOPPING=1 on SIGTERM" grep -q "STOPPING=1" "$T/notify.log"
kill "$NOTIFY" 2>/dev/null

# Without $NOTIFY_SOCKET nothing is sent and nothing breaks.
start_portierd || bail "portierd starts without a notify socket"
api GET /healthz
check "no notify socket: serves as usual" json_true 'd["ok"]'
stop_portierd
finish

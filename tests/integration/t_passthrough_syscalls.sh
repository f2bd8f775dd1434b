#!/bin/bash
# System calls of new passthrough connections (issue 15, bench/PROFILE.md "New
# connections"): strace the worker while 50 TLS connections, one request each
# (Connection: close), go through the SNI passthrough listener to an nginx
# backend with PROXY protocol. The relay's sockets are added once to the
# worker's edge-triggered epoll instance (worker/evq.h) and leave it with
# their close: two epoll_ctl ADD per connection, no MOD, no DEL, none failed;
# and the calls per connection stay within a budget. A silent client on the
# TLS listener (deferred accept) must still be closed at the hello timeout.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

N=50
# Per connection (this client: python's ssl, no close_notify), measured when
# it was written (etrelay, 2026-12-06): 26.3 calls besides epoll_wait
# (accept4 2, one of them EAGAIN; recvfrom 8, sendto 6, epoll_ctl 2,
# setsockopt 2, close 2, socket, connect, getsockopt, shutdown 1 each).
# Before, on libuv streams: 30 (epoll_ctl 5: ADD and MOD of the backend, ADD
# of the client, DEL of each at close; ioctl FIONBIO 1). epoll_wait is 15
# (7 before): each wakeup is libuv's epoll_wait and the relay instance's
# (bench/PROFILE.md, "The relay on raw descriptors"). The read/send counts
# move with how segments coalesce, hence the margin on the total.
MAX_CALLS=28
MAX_EPOLL_CTL=2.1

read -r P1 <<<"$(free_ports 1)"
make_cert a "DNS:a.test"
mkdir -p www
echo "backend-one" >www/index.html
start_nginx be "
server {
    listen 127.0.0.1:$P1 ssl proxy_protocol;
    ssl_certificate $T/a.pem; ssl_certificate_key $T/a.key;
    set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;
    access_log off; root $T/www;
}" || bail "nginx backend start"

HELLO_T=3
start_portierd --workers 1 --hello-timeout $HELLO_T --access-log off || bail "portierd starts"
api PUT /api/v1/backends/be "{\"servers\":[\"127.0.0.1:$P1\"],\"proxy_protocol\":\"v2\"}"
check "backend created" is_status 201
api PUT /api/v1/domains/a.test '{"mode":"passthrough","backend":"be"}'
check "passthrough domain created" is_status 201
W=$(worker_pids)
check "one worker" [ -n "$W" ] && [ "${W// /}" = "$W" ]

cat >client.py <<'EOF'
import socket, ssl, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(cafile="ca.pem")
ok = 0
for _ in range(n):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            ok += data.endswith(b"backend-one\n")
print(ok)
EOF
check "warm-up: a request goes through" [ "$(python3 client.py "$HTTPS_PORT" 1)" = 1 ]

strace -qq -f -p "$W" -o "$T/strace.txt" &
SP=$!
track_pid $SP
traced() { [ "$(awk '/^TracerPid/ {print $2}' /proc/"$W"/status)" != 0 ]; }
check "strace attached to the worker" wait_until 5 traced
got=$(python3 client.py "$HTTPS_PORT" $N)
check "$N connections, one request each, all answered" [ "$got" = $N ]
sleep 0.3 # the last connection's close
kill -INT $SP
wait $SP 2>/dev/null
[ -z "${KEEP_TRACE:-}" ] || cp "$T/strace.txt" "$KEEP_TRACE" # for bench/PROFILE.md

python3 - "$T/strace.txt" $N >calls.txt <<'EOF'
import collections, re, sys
calls, failed = collections.Counter(), collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"\d+\s+(\w+)\(.*\)\s+=\s+(-?\d+)(?:\s+(\w+))?", line)
    if not m:
        continue
    name, rc, err = m.groups()
    calls[name] += 1
    # (fd 3 is the daemon's socket: libuv's, its stats writes may MOD it)
    if name == "epoll_ctl" and "EPOLL_CTL_ADD" not in line and \
            not re.search(r"epoll_ctl\(\d+, EPOLL_CTL_\w+, 3,", line):
        calls["epoll_ctl_not_add"] += 1
    if name == "accept4" and rc != "-1":
        calls["accepted"] += 1
    if rc == "-1":
        failed["%s %s" % (name, err)] += 1
n = int(sys.argv[2])
total = sum(calls.values()) - calls["accepted"] - calls["epoll_ctl_not_add"]
print("total %.1f" % (total / n))
print("but_epoll_wait %.1f" % ((total - calls["epoll_wait"]) / n))
for k, v in calls.most_common():
    print("%s %.2f" % (k, v / n))
for k, v in failed.most_common():
    print("failed: %s %.2f" % (k, v / n))
EOF
note "$(cat calls.txt)"
per() { awk -v k="$1" '$1 == k {print $2}' calls.txt; }
# within NAME LOW HIGH: NAME's calls per connection are in [LOW, HIGH]
within() { python3 -c "import sys; sys.exit(not $2 <= float('${3:-0}') <= $4)" 2>/dev/null; }
no_failed_ctl() { ! grep -q '^failed: epoll_ctl' calls.txt; }
check "one accept per connection (all $N seen by the traced worker)" \
    within accepted 1 "$(per accepted)" 1.1
check "no epoll_ctl failed (EEXIST, ENOENT)" no_failed_ctl
check "no epoll_ctl but ADD (no MOD, no DEL: close(2) removes a socket)" \
    [ -z "$(per epoll_ctl_not_add)" ]
check "epoll_ctl calls per connection <= $MAX_EPOLL_CTL" \
    within x 0 "$(per epoll_ctl)" $MAX_EPOLL_CTL
check "system calls per connection, epoll_wait aside, <= $MAX_CALLS" \
    within x 1 "$(per but_epoll_wait)" $MAX_CALLS

# A client that connects and says nothing: the kernel holds it back (deferred
# accept) and hands it over after PT_WORKER_DEFER_ACCEPT_S; that wait counts
# against the hello timeout, so it is closed HELLO_T after connecting.
cat >silent.py <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
t0 = time.monotonic()
try:
    b = s.recv(100)
    how = "eof" if b == b"" else "data"
except ConnectionResetError:
    how = "reset"
except socket.timeout:
    how = "timeout"
print(how, "%.2f" % (time.monotonic() - t0))
EOF
read -r how secs <<<"$(python3 silent.py "$HTTPS_PORT")"
note "silent client: $how after $secs s"
check "a silent client on the TLS listener is closed ($how)" [ "$how" = eof ]
check "... at the hello timeout counted from its connect ($HELLO_T..$((HELLO_T + 1)) s)" \
    python3 -c "import sys; sys.exit(not $HELLO_T - 0.3 <= $secs <= $HELLO_T + 1)"

finish

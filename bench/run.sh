#!/bin/bash
# portier benchmark (`make bench`): SNI passthrough and TLS offload.
#
# Installs what it needs when missing (as root, apt-get: wrk, haproxy, nginx,
# libnginx-mod-stream, python3, curl, openssl, strace, gcc and libssl-dev for
# bench/hs_client.c), builds build/portierd if it is not there, then runs
# bench/bench.py: portier, nginx and HAProxy side by side in front of one
# nginx backend on loopback, first relaying TLS (passthrough, plus direct to
# the backend), then terminating it (offload), then the control plane (one
# domain write at 1,000 to 100,000 domains, bench/domains_bench.py, and a
# burst of bans, bench/bans_bench.py). Prints the tables and rewrites
# bench/README.md in about 25 minutes. Bounded (BENCH_LIMIT, 3600 s by
# default); everything it starts is killed on exit, error or Ctrl-C.
# Knobs: see the top of bench/bench.py; BENCH_QUICK=1 is a short
# development run (about 8 minutes).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have_cmd wrk || need+=(wrk)
have_cmd haproxy || need+=(haproxy)
have_cmd nginx || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
[ -x /usr/bin/python3 ] || need+=(python3)
have_cmd curl || need+=(curl)
have_cmd openssl || need+=(openssl)
have_cmd strace || need+=(strace)   # syscall counts (BENCH_SYSCALLS=0 skips them)
have_cmd gcc || need+=(gcc)         # bench/hs_client.c (full TLS handshakes)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bench: missing ${need[*]}; run as root on Debian, or: sudo apt-get install -y ${need[*]}" >&2
        exit 1
    fi
    echo "bench: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d 101 keeps the packaged nginx/haproxy services from starting
    # (the benchmark runs its own instances on free ports).
    prc=/usr/sbin/policy-rc.d
    if [ ! -e "$prc" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$prc"
        chmod 755 "$prc"
        trap 'rm -f "$prc"' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f "$prc"
    trap - EXIT
fi

if [ ! -x "${PORTIERD:-$ROOT/build/portierd}" ]; then
    make -C "$ROOT" all
fi

# 2,000 idle connections need ~6,000 descriptors across client, proxy and backend.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$HERE/bench.py" "$@"

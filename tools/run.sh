#!/bin/sh
# `make run`: start portierd in the foreground on its embedded defaults.
#
#   tools/run.sh [PORTIERD] [extra portierd flags...]
#
# State goes to ./var (database, admin token) in the repository root. The
# daemon replaces this shell (exec), so Ctrl-C and signals reach it directly;
# it then drains connections for up to --grace seconds (30) and exits.
set -eu

bin=${1:-build/portierd}
[ $# -gt 0 ] && shift
case $bin in
/*) ;;
*) bin=$PWD/$bin ;;
esac
cd "$(dirname "$0")/.."

if [ ! -x "$bin" ]; then
    echo "run: $bin is not built; run 'make' first" >&2
    exit 1
fi
mkdir -p -m 700 var

api=http://127.0.0.1:9180
cat <<EOF
portier: starting $bin on the defaults
  TLS (SNI) listeners   127.0.0.1:8443, [::1]:8443
  plain HTTP listeners  127.0.0.1:8080, [::1]:8080
  REST API, web page    $api/
  admin token           ./var/api.token (created on first start)
  Ctrl-C stops it.
EOF

# Once the daemon answers /healthz, show how to talk to it. Runs beside the
# daemon (which becomes this very PID through exec) and gives up as soon as
# that PID is gone or after 20 s.
self=$$
(
    i=0
    while [ $i -lt 100 ]; do
        sleep 0.2
        kill -0 "$self" 2>/dev/null || exit 0
        if [ -s var/api.token ] &&
            curl -fsS -o /dev/null --max-time 1 "$api/healthz" 2>/dev/null; then
            cat <<EOF

portier is up. In another terminal, from $PWD:
  TOKEN=\$(cat var/api.token)
  curl -H "Authorization: Bearer \$TOKEN" $api/api/v1/status

EOF
            exit 0
        fi
        i=$((i + 1))
    done
) &

exec "$bin" "$@"

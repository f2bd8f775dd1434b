#!/bin/sh
# Installs the Debian packages portier builds and tests with, when missing.
# As root on Debian/Ubuntu it runs apt-get; otherwise it prints the command.
set -eu
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "$@"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$st" = "installed" ] || missing="$missing $p"
    done
else
    echo "deps: not a Debian system; install the equivalents of: $*" >&2
    exit 0
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The nginx package starts a system service on port 80; tests run their
    # own instances on high ports, so that service is irrelevant but harmless.
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "deps: missing packages; run: sudo apt-get install -y$missing" >&2
    exit 1
fi

#!/bin/sh
# Runs each libFuzzer binary for SECONDS over its committed seed corpus
# (tests/fuzz/corpus/<name>/); new inputs go to build/fuzz/corpus/<name>/ so
# the committed corpus only changes when someone merges on purpose.
set -eu
secs=$1; shift
fail=0
for bin in "$@"; do
    name=$(basename "$bin" | sed 's/^fuzz_//')
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/corpus/$name
    mkdir -p "$work" "$seeds"
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=0 "$work" "$seeds" >build/fuzz/$name.log 2>&1; then
        echo "fuzz: $name FAILED, see build/fuzz/$name.log"; tail -40 build/fuzz/$name.log
        fail=1
    fi
done
exit $fail

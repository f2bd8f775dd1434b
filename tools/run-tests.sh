#!/bin/bash
# Runs the test suites and prints one closing line "N passed, N failed".
#   tools/run-tests.sh            everything (unit plain + ASan, integration, fuzz)
#   tools/run-tests.sh unit|integration|fuzz
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
pass=0 fail=0 failed=""

note() { printf '%s\n' "$*"; }
record() { # name rc
    if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $1"; fi
}

run_unit() { # dir label
    for t in "$1"/tests/test_*; do
        [ -x "$t" ] || continue
        note "== unit ($2) $(basename "$t")"
        "$t" --jobs 2 2>&1 | tail -n 3
        record "unit-$2:$(basename "$t")" "${PIPESTATUS[0]}"
    done
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    run_unit build plain
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_unit build/asan asan
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    export PORTIERD=${PORTIERD:-$PWD/build/asan/portierd}
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    for t in tests/integration/t_*.sh; do
        [ -f "$t" ] || continue
        note "== integration $(basename "$t")"
        start=$(date +%s)
        timeout 600 bash "$t" > "build/$(basename "$t" .sh).log" 2>&1
        rc=$?
        if [ $rc = 77 ]; then note "   skipped"; continue; fi
        grep -E '^(ok|not ok|#)' "build/$(basename "$t" .sh).log" | tail -n 60
        note "   rc=$rc ($(( $(date +%s) - start ))s)"
        [ $rc = 0 ] || tail -n 40 "build/$(basename "$t" .sh).log"
        record "integration:$(basename "$t")" $rc
    done
fi

if [ "$what" = all ] || [ "$what" = fuzz ]; then
    bins=$(ls build/fuzz/fuzz_* 2>/dev/null | grep -v '\.log$' || true)
    if [ -n "$bins" ]; then
        tools/fuzz.sh "${FUZZ_SECONDS:-15}" $bins
        record fuzz $?
    fi
fi

[ -z "$failed" ] || note "failed:$failed"
note "$pass passed, $fail failed"
[ "$fail" = 0 ]

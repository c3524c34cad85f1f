#!/bin/bash
# Builds the fuzz targets with clang, libFuzzer, ASan and UBSan in their own
# build directory, runs each target for SECONDS (default 30) on top of its
# committed corpus, then replays every committed input. New coverage goes to
# a scratch directory that is removed; a crash is copied to
# tests/fuzz/crashes/NAME/ so that it can be fixed and committed to
# tests/fuzz/corpus/NAME/ as a regression input.
# Usage: tests/fuzz/run.sh [SECONDS]      (env FUZZ_BUILD, FUZZ_JOBS)
set -uo pipefail

secs=${1:-30}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$src/build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=(config envfile etcd-json etcd-stream machines network-config subnet-record values)

if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" "$src" -Dfuzz=true -Db_sanitize=address,undefined \
                -Db_lundef=false -Dwerror=true >/dev/null || { echo "fuzz: meson setup failed"; exit 1; }
fi
ninja -C "$build" >/dev/null || { ninja -C "$build" | tail -30; echo "fuzz: build failed"; exit 1; }

tmp=$(mktemp -d /tmp/corekube-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

run_one() {
        local t=$1 bin="$build/tests/fuzz/fuzz-$1"
        mkdir -p "$tmp/$t/new" "$tmp/$t/crash"
        # The scratch corpus first: libFuzzer adds what it finds to the first directory.
        "$bin" "$tmp/$t/new" "$src/tests/fuzz/corpus/$t" -max_total_time="$secs" -timeout=10 \
                -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$tmp/$t/crash/" \
                -print_final_stats=1 >"$tmp/$t.log" 2>&1
        echo $? >"$tmp/$t.rc"
}

running=0
for t in "${targets[@]}"; do
        run_one "$t" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
                wait -n
                running=$((running - 1))
        fi
done
wait

failed=0
total_execs=0
for t in "${targets[@]}"; do
        rc=$(cat "$tmp/$t.rc")
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$tmp/$t.log" | tail -1)
        total_execs=$((total_execs + ${execs:-0}))
        if [ "$rc" != 0 ]; then
                failed=$((failed + 1))
                mkdir -p "$src/tests/fuzz/crashes/$t"
                cp "$tmp/$t/crash/"* "$src/tests/fuzz/crashes/$t/" 2>/dev/null
                echo "fuzz: $t FAILED (exit $rc); input kept in tests/fuzz/crashes/$t/; log:"
                grep -v '^#\|^INFO\|^MS:\|^base unit' "$tmp/$t.log" | head -60
        else
                printf 'fuzz: %-15s ok  %9s runs in %ss, %s\n' "$t" "${execs:-?}" "$secs" "${cov:-cov: ?}"
        fi
done

# Every committed input, once more, as the replay tests.
if ! meson test -C "$build" --suite fuzz --print-errorlogs >"$tmp/replay.log" 2>&1; then
        tail -40 "$tmp/replay.log"
        echo "fuzz: replay of the committed inputs FAILED"
        failed=$((failed + 1))
fi

echo "fuzz: ${#targets[@]} targets x ${secs}s, $total_execs runs, $failed failed"
[ "$failed" = 0 ]

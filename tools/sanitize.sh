#!/bin/bash
# The sanitizer build: ASan (with leak checking) and UBSan, every error
# fatal, running the unit, cli, netsetup, etcd and fuzz-replay suites; the
# pytest suites run the sanitized binaries, so their error paths are covered
# too. Usage: tools/sanitize.sh [BUILD_DIR] [SUITE...]   (default build-asan)
# The compiler is meson's choice (gcc); CC=clang for the clang build CI runs
# beside it (issue 15: the tree builds warning-free and passes with both).
set -uo pipefail
cd "$(dirname "$0")/.."

build=${1:-build-asan}
shift || true
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit cli netsetup etcd fuzz harden)

if [ ! -f "$build/build.ninja" ]; then
        # clang's sanitizer runtimes are resolved at link time, not with -z defs.
        lundef=()
        case "${CC:-}" in *clang*) lundef=(-Db_lundef=false) ;; esac
        meson setup "$build" --prefix=/usr -Dwerror=true -Db_sanitize=address,undefined "${lundef[@]}" >/dev/null ||
                { echo "sanitize: meson setup failed"; exit 1; }
fi
meson compile -C "$build" >/dev/null || { meson compile -C "$build" | tail -30; echo "sanitize: build failed"; exit 1; }

# meson test sets its own *SAN_OPTIONS only when these are unset.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:print_summary=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:print_summary=1
args=()
for s in "${suites[@]}"; do
        args+=(--suite "$s")
done
meson test -C "$build" --print-errorlogs --num-processes 1 "${args[@]}"
rc=$?
echo "sanitize: $(tools/test-summary.py "$build/meson-logs/testlog.json" | tail -1)"
exit $rc

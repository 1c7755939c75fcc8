#!/bin/bash
# The whole test suite, as README's Quick start gives it and CI runs it:
#   1. install build and test dependencies (idempotent)
#   2. build with warnings as errors and run the unit tests
#   3. the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   4. a bounded libFuzzer run of fuzz-protocol (clang, ASan + UBSan)
#   5. the Debian packages from a clean clone (tools/build-deb.sh) and the
#      docs' cloud-init snippet (tools/check-cloud-config.sh)
#   6. the end-to-end suite on real QEMU guests under libvirt
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
#
# Environment: FUZZ_SECONDS (default 60), SKIP_E2E=1 to leave out step 6,
# JOBS (default: number of CPUs).
set -uo pipefail

cd "$(dirname "$0")/.."
top=$PWD
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

passed=0
failed=0
failures=()

step() { printf '\n==== %s ====\n' "$*"; }

# Count the results of one `meson test` run from its JSON log.
count_meson() {
    local dir=$1 label=$2 log="$1/meson-logs/testlog.json"
    [ -f "$log" ] || return 0
    local p f
    p=$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$log")
    f=$(jq -s '[.[] | select(.result == "FAIL" or .result == "TIMEOUT" or .result == "ERROR" or .result == "UNEXPECTEDPASS")] | length' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        while IFS= read -r name; do failures+=("$label: $name"); done \
            < <(jq -r -s '.[] | select(.result == "FAIL" or .result == "TIMEOUT" or .result == "ERROR") | .name' "$log")
    fi
}

# One step that is not a meson test: counts as one test.
run_check() {
    local label=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$label")
    fi
}

setup() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

step "dependencies"
tools/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

step "build (warnings are errors)"
if ! { setup build -Dwerror=true && ninja -C build -j"$JOBS"; }; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

step "unit tests"
rm -f build/meson-logs/testlog.json
meson test -C build --no-suite e2e --print-errorlogs --num-processes "$JOBS"
count_meson build "plain"

step "unit tests under ASan + UBSan"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
if setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
    && ninja -C build-asan -j"$JOBS"; then
    rm -f build-asan/meson-logs/testlog.json
    meson test -C build-asan --no-suite e2e --print-errorlogs --num-processes "$JOBS" \
        --timeout-multiplier 3
    count_meson build-asan "asan"
else
    run_check "asan build" false
fi

step "fuzz-protocol for ${FUZZ_SECONDS}s (libFuzzer, ASan + UBSan)"
if CC=clang setup build-fuzz -Dfuzzing=true -Dbroker=false \
    -Db_sanitize=address,undefined -Db_lundef=false \
    && ninja -C build-fuzz -j"$JOBS" protocol/fuzz/fuzz-protocol; then
    run_check "fuzz-protocol" tools/fuzz-smoke.sh build-fuzz "$FUZZ_SECONDS"
else
    run_check "fuzz build" false
fi

step "Debian packages (clean clone, dpkg-buildpackage, lintian, unpacked checks) and the cloud-init snippet"
# build-deb/ is where tests/e2e/test-image.sh takes the ballast-agent .deb from.
run_check "debian packages" tools/build-deb.sh build-deb
run_check "cloud-config snippet" tools/check-cloud-config.sh

if [ "${SKIP_E2E:-0}" != 1 ]; then
    step "end-to-end suite (real QEMU guests under libvirt)"
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    if tools/libvirtd-up.sh; then
        rm -f build/meson-logs/testlog.json
        meson test -C build --suite e2e --print-errorlogs --num-processes 1
        count_meson build "e2e"
    else
        run_check "libvirtd start" false
    fi
fi

step "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

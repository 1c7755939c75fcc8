#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# fuzz-smoke.sh BUILD_DIR [SECONDS]: run fuzz-protocol for a bounded time (default 60 s)
# from a seed corpus of the protocol vectors. BUILD_DIR was configured with
#   CC=clang meson setup BUILD_DIR -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
# Exit status: 0 when nothing crashed; a crashing input is kept in BUILD_DIR/fuzz-artifacts/.
set -eu

usage() { echo "usage: $0 BUILD_DIR [SECONDS]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
build=$1
secs=${2:-60}
case $secs in '' | *[!0-9]*) echo "fuzz-smoke: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac

top=$(cd "$(dirname "$0")/.." && pwd)
vectors=$top/protocol/vectors
fuzzer=$build/protocol/fuzz/fuzz-protocol
if [ ! -x "$fuzzer" ]; then
    echo "fuzz-smoke: $fuzzer is not built (configure with CC=clang -Dfuzzing=true, then ninja -C $build protocol/fuzz/fuzz-protocol)" >&2
    exit 1
fi

corpus=$(mktemp -d "${TMPDIR:-/tmp}/ballast-fuzz-corpus.XXXXXX")
trap 'rm -rf "$corpus"' EXIT INT TERM
for f in "$vectors"/valid/*.json; do cp "$f" "$corpus/valid-${f##*/}"; done
for f in "$vectors"/invalid/*.json; do cp "$f" "$corpus/invalid-${f##*/}"; done
# The too-long vectors (64 KiB and more) are left out on purpose: each execution
# on them costs ~1 ms, which cut a 60 s run from ~700k to ~50k executions. The
# target frames every input with a 48-byte limit too, so small inputs reach the
# overlong paths; the decoder's length check is covered by tests/protocol.
# Two messages in one input, so that multi-line inputs are there from the start.
cat "$vectors/valid/hello-typical.json" "$vectors/valid/report-typical.json" >"$corpus/stream-hello-report"

artifacts=$(cd "$build" && pwd)/fuzz-artifacts
mkdir -p "$artifacts"
log=$artifacts/fuzz-smoke.log
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

echo "fuzz-smoke: $(ls "$corpus" | wc -l) seeds, ${secs}s, log in $log"
rc=0
"$fuzzer" -max_total_time="$secs" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
    -dict="$top/protocol/fuzz/protocol.dict" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" >"$log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
grep -E '^#[0-9]+ +DONE|cov:' "$log" | tail -n 1 || true
echo "fuzz-smoke: ${execs:-?} executions, exit status $rc"
if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
fi
exit "$rc"

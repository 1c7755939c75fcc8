#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The systemd units as built: `systemd-analyze verify` clean and
# `systemd-analyze security --offline=true` at 4.0 or below, for ballastd and
# (when built) ballast-agent; ballastd's ordering and conflicts; and every
# system call ballastd makes while it starts, decides, serves a scrape,
# reloads and stops (strace, against libvirt's test driver) is one its
# SystemCallFilter= allows, so the filter cannot kill it.
#
#   test-units.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
max_exposure=4.0
n=0
failed=0
ok() {
    n=$((n + 1))
    if [ "$2" = 1 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}
command -v systemd-analyze >/dev/null || { echo "1..0 # SKIP systemd-analyze is not installed"; exit 77; }
work=$(mktemp -d /tmp/ballast-units-XXXXXX)
trap 'rm -rf "$work"' EXIT

# verify runs `man` for Documentation=man: and checks that ExecStart= is
# executable: point both at the build, leave everything else as installed.
mkdir -p "$work/man/man8" "$work/man/man5" "$work/units"
for page in "$src/packaging/ballastd.8" "$src/guest-agent/ballast-agent.8"; do
    [ -f "$page" ] && ln -s "$page" "$work/man/man8/"
done
ln -s "$src/packaging/ballastd.conf.5" "$work/man/man5/"
export MANPATH=$work/man

check_unit() { # UNIT_FILE BINARY
    local unit=$1 bin=$2 name copy out rc score
    name=$(basename "$unit")
    copy=$work/units/$name
    sed -E "s|^ExecStart=[^ ]*/$(basename "$bin")|ExecStart=$bin|" "$unit" >"$copy"
    out=$(systemd-analyze verify "$copy" 2>&1)
    rc=$?
    [ -n "$out" ] && echo "$out" | sed 's/^/# /'
    ok "$name: systemd-analyze verify is clean" "$([ $rc = 0 ] && [ -z "$out" ] && echo 1)"
    out=$(systemd-analyze security --offline=true "$copy" 2>&1)
    score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "# $name: exposure $score (at most $max_exposure)"
    ok "$name: systemd-analyze security rates it ${score:-?} <= $max_exposure" \
        "$([ -n "$score" ] && awk -v s="$score" -v m="$max_exposure" 'BEGIN{exit !(s <= m)}' && echo 1)"
    [ "$failed" = 0 ] || echo "$out" | grep '✗' | sed 's/^/# /'
}

unit=$build/host-broker/ballastd.service
[ -f "$unit" ] || { echo "not ok 1 - $unit not built"; exit 1; }
check_unit "$unit" "$build/host-broker/ballastd"
agent_unit=$build/guest-agent/ballast-agent.service
if [ -f "$agent_unit" ]; then
    check_unit "$agent_unit" "$build/guest-agent/ballast-agent"
fi

# What the broker's unit promises (docs/rollout.md relies on it).
key() { sed -n "s/^$1=//p" "$unit" | tr '\n' ' '; }
ok "ballastd.service: Type=notify with WatchdogSec=" \
    "$([ "$(key Type)" = "notify " ] && [ -n "$(key WatchdogSec)" ] && echo 1)"
ok "ballastd.service: After= libvirtd.service and virtqemud.service" \
    "$(key After | grep -q 'libvirtd.service' && key After | grep -q 'virtqemud.service' && echo 1)"
ok "ballastd.service: pulls in no libvirt daemon (no Requires=/BindsTo=/Wants= on one)" \
    "$(! grep -Eq '^(Requires|BindsTo|Wants|Requisite)=.*(libvirtd|virtqemud)' "$unit" && echo 1)"
ok "ballastd.service: Conflicts=ksmtuned.service" "$(key Conflicts | grep -q ksmtuned.service && echo 1)"

# The system-call filter against what ballastd really does.
if ! command -v strace >/dev/null; then
    echo "# strace is not installed: system-call check skipped (tools/deps.sh)"
else
    expand() { # a @group, recursively, one syscall per line
        local g
        systemd-analyze syscall-filter "$1" | sed '1d; s/^ *//; /^#/d; /^$/d' |
            while read -r g; do
                case $g in @*) expand "$g" ;; *) echo "$g" ;; esac
            done
    }
    allowed=$work/allowed
    : >"$allowed"
    # The groups of SystemCallFilter= (an allow list), plus @default, which
    # systemd always allows.
    for g in $(sed -n 's/^SystemCallFilter=//p' "$unit" | grep -v '^~') @default; do
        case $g in @*) expand "$g" ;; *) echo "$g" ;; esac
    done | sort -u >"$allowed"
    port=
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { port=$p; break; }
    done
    printf '[broker]\ntick_ms = 100\n' >"$work/ballastd.conf"
    timeout 60 strace -f -qq -o "$work/trace" "$build/host-broker/ballastd" \
        --connect "test://$src/tests/data/broker/test-node.xml" \
        --host-root "$src/tests/data/broker/host-ok" --config "$work/ballastd.conf" \
        --control "$work/ctl.sock" --lock-file "$work/lock" --metrics-listen "127.0.0.1:$port" \
        >"$work/log" 2>&1 &
    tracer=$!
    for _ in $(seq 300); do grep -q 'would: bk-observe' "$work/log" && break; sleep 0.1; done
    curl -sf -m 10 "http://127.0.0.1:$port/metrics" >/dev/null
    scraped=$?
    # ballastd itself (a signal to strace or timeout would only detach it)
    pid=
    for p in $(pgrep -x ballastd); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$work/ctl.sock" && pid=$p
    done
    kill -HUP $pid
    for _ in $(seq 200); do grep -q 'configuration reloaded' "$work/log" && break; sleep 0.1; done
    kill -TERM $pid
    wait $tracer
    sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/; s/^([a-z0-9_]+)\(.*/\1/' \
        "$work/trace" | grep -E '^[a-z0-9_]+$' | sort -u >"$work/used"
    outside=$(comm -23 "$work/used" "$allowed" | tr '\n' ' ')
    echo "# ballastd made $(wc -l <"$work/used") distinct system calls; allowed by the filter: $(wc -l <"$allowed")"
    ok "ballastd ran (decided, served a scrape, reloaded, stopped) under strace" \
        "$([ $scraped = 0 ] && grep -q 'configuration reloaded' "$work/log" && grep -q 'stopping' "$work/log" && echo 1)"
    ok "every system call it made is in its SystemCallFilter= (outside: ${outside:-none})" \
        "$([ -z "$outside" ] && [ -s "$work/used" ] && echo 1)"
fi

echo "1..$n"
[ "$failed" = 0 ]

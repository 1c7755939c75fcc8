#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# ballast demo: README's first command. On a fresh Debian 12 machine, as root:
#
#   tools/demo.sh [--duration SECONDS] [--build DIR] [--no-deps]
#
# Installs what is missing (tools/deps.sh), builds with meson/ninja, builds the
# test guest, starts libvirtd and three guests, runs ballastd with an event log
# and shows its live view (`ballastctl watch` on a terminal; without one, the
# status table every few seconds) while it drives:
#   1. a workload in demo-busy (600 MiB at 100 MiB/s on a 256 MiB balloon)
#      -> the broker deflates it before the guest runs out of memory;
#   2. the host reserve raised above what the host has (config + SIGHUP)
#      -> the broker inflates the idle guest demo-idle toward its floor;
#   3. demo-tenant's metadata set to ksm="never" -> live KSM exclusion;
#   4. the host reserve lowered again -> memory given back.
# Stops after --duration (default 180 s) or on Ctrl-C; always destroys the
# guests, stops the broker and restores /sys/kernel/mm/ksm/{run,pages_to_scan}.
# Exits 0 when a deflate, an inflate and a KSM exclusion were all applied.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
duration=180
build=$top/build
deps=1
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --build) build=${2:?--build needs a value}; shift 2 ;;
    --build=*) build=${1#*=}; shift ;;
    --no-deps) deps=0; shift ;;
    -h | --help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case $duration in '' | *[!0-9]*) echo "demo: --duration must be a number of seconds" >&2; exit 2 ;; esac
[ "$duration" -ge 60 ] || { echo "demo: --duration must be at least 60 s" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "demo: run as root (libvirt qemu:///system, KSM sysfs)" >&2; exit 1; }

say() { printf '\033[1m[demo %3ds]\033[0m %s\n' "$((SECONDS - t_start))" "$*" >&2; }
[ -t 1 ] || say() { printf '[demo %3ds] %s\n' "$((SECONDS - t_start))" "$*" >&2; }
t_start=$SECONDS

# ---- build ----
if [ $deps = 1 ]; then
    say "checking dependencies (tools/deps.sh)"
    "$top/tools/deps.sh" || exit 1
fi
mkdir -p "$build"
build=$(realpath "$build")
say "building into $build"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$top" >/dev/null || exit 1
fi
ninja -C "$build" >/dev/null || { ninja -C "$build"; exit 1; }
guest_dir=$build/tests/e2e/guest
"$top/tests/e2e/build-guest.sh" "$guest_dir" "$build" || exit 1
"$top/tools/libvirtd-up.sh" || exit 1

# ---- harness (the e2e suite's helpers) ----
# shellcheck source=../tests/e2e/lib.sh
. "$top/tests/e2e/lib.sh"
E2E_NAME=demo
E2E_BUILD=$build
E2E_GUEST_DIR=$guest_dir
E2E_CHAN=$build/tests/e2e/e2e-chan
BALLASTD=$build/host-broker/ballastd
BALLASTCTL=$build/host-broker/ballastctl
E2E_WORK=$(mktemp -d /tmp/ballast-demo.XXXXXX)
chmod 0755 "$E2E_WORK"
E2E_KEEP=1
director=
demo_cleanup() {
    [ -n "$director" ] && kill "$director" 2>/dev/null
    say "cleaning up: destroying guests, stopping ballastd, restoring KSM"
    e2e_cleanup >/dev/null 2>&1
    echo "demo: logs in $E2E_WORK (ballastd.log, events.jsonl)" >&2
}
trap demo_cleanup EXIT
trap 'exit 130' INT TERM

busy=demo-busy
idle=demo-idle
tenant=demo-tenant
ksm_save
[ -f /sys/kernel/mm/ksm/advisor_mode ] && echo none >/sys/kernel/mm/ksm/advisor_mode
echo 1000 >/sys/kernel/mm/ksm/pages_to_scan
echo 1 >/sys/kernel/mm/ksm/run

write_config() { # write_config HOST_RESERVE
    cat >"$E2E_WORK/ballastd.conf" <<EOF
# ballastd.conf written by tools/demo.sh
[broker]
interval_ms=1000
allow_qemu_monitor=true

[ksm]
# the demo sets KSM running itself and restores it afterwards
manage=false

[policy]
host_reserve=$1
EOF
}
write_config 1GiB

say "starting 3 guests (TCG): $busy (256 MiB of 1 GiB), $idle (896 MiB of 1 GiB, floor 384 MiB), $tenant (512 MiB)"
guest_define "$busy" 1024 256 min=256MiB
guest_define "$idle" 1024 896 min=384MiB
guest_define "$tenant" 512 512 min=256MiB ksm=always
for g in "$busy" "$idle" "$tenant"; do guest_start "$g"; done
say "starting ballastd --event-log $E2E_WORK/events.jsonl"
broker_start

# The director drives the phases in the background while the view runs.
direct() {
    local g p1 p2 p3 p4
    for g in "$busy" "$idle" "$tenant"; do
        ev_wait 90 ".event==\"hello\" and .vm==\"$g\"" >/dev/null || say "no hello from $g yet"
    done
    say "all agents said hello"
    p1=$((duration * 10 / 100)) p2=$((duration * 30 / 100)) p3=$((duration * 55 / 100)) p4=$((duration * 75 / 100))
    wait_until() { while [ $((SECONDS - t_start)) -lt "$1" ]; do sleep 1; done; }

    wait_until $p1
    say "PHASE 1: workload in $busy: memhog 600 MiB at 100 MiB/s (its balloon leaves ~120 MiB free) -> watch for a deflate"
    guest_run "$busy" "(memhog --size 600 --rate 100 --hold 20 >/tmp/mh.log 2>&1; echo \$? >/tmp/mh.rc) &" 10 >/dev/null

    wait_until $p2
    local avail_mib reserve
    avail_mib=$(($(awk '/^MemAvailable:/{print $2}' /proc/meminfo) / 1024))
    reserve=$((avail_mib + 1024))MiB
    say "PHASE 2: $busy's memhog exit status: $(guest_run "$busy" 'cat /tmp/mh.rc 2>/dev/null || echo running' 10)"
    say "PHASE 2: host reserve raised to $reserve (host has $avail_mib MiB available), SIGHUP -> watch $idle inflate toward 384 MiB"
    write_config "$reserve"
    kill -HUP "$E2E_BROKER_PID"

    wait_until $p3
    say "PHASE 3: $tenant's metadata set to ksm=\"never\" (merging pages now: $(ksm_merging "$tenant")) -> watch the live KSM exclusion"
    virsh metadata "$tenant" https://ballast.dev/xmlns/policy/1 --key ballast \
        --set '<policy min="256MiB" ksm="never"/>' --live --config >/dev/null

    wait_until $p4
    say "PHASE 4: $tenant merging pages: $(ksm_merging "$tenant"); host reserve back to 1GiB, SIGHUP -> memory may be given back"
    write_config 1GiB
    kill -HUP "$E2E_BROKER_PID"
}
direct &
director=$!

remaining=$((duration - (SECONDS - t_start)))
[ $remaining -gt 10 ] || remaining=10
if [ -t 1 ] && [ -x "$BALLASTCTL" ]; then
    timeout --foreground "$remaining" "$BALLASTCTL" --control "$E2E_SOCK" watch
else
    # No terminal: print the table and the new decisions every 5 s.
    seen=0
    end=$((SECONDS + remaining))
    while [ $SECONDS -lt $end ]; do
        sleep 5
        echo "---- $(date -u +%T) ----"
        "$BALLASTCTL" --control "$E2E_SOCK" status 2>&1
        n=$(wc -l <"$E2E_EVENTS")
        tail -n +$((seen + 1)) "$E2E_EVENTS" | head -n $((n - seen)) |
            jq -r 'select(.event=="decision" or .event=="ksm-exclude" or .event=="ksm-include" or .event=="balloon-stuck")
                   | "  \(.event) \(.vm) \(.kind // "") \(if .target_kib then "-> \(.target_kib / 1024 | floor) MiB" else "" end) applied=\(.applied): \(.reason)"'
        seen=$n
    done
fi
kill "$director" 2>/dev/null
wait "$director" 2>/dev/null
director=

n_def=$(ev_count ".event==\"decision\" and .kind==\"deflate\" and .applied==true and .vm==\"$busy\"")
n_inf=$(ev_count ".event==\"decision\" and .kind==\"inflate\" and .applied==true and .vm==\"$idle\"")
n_ksm=$(ev_count ".event==\"ksm-exclude\" and .applied==true and .vm==\"$tenant\"")
echo
echo "demo: $busy deflated $n_def times, $idle inflated $n_inf times, $tenant KSM-excluded $n_ksm times"
ev '.event=="decision" or .event=="ksm-exclude"' |
    jq -r '"  \(.event) \(.vm) \(.kind // "") applied=\(.applied): \(.reason)"' | tail -n 12
[ "$n_def" -gt 0 ] && [ "$n_inf" -gt 0 ] && [ "$n_ksm" -gt 0 ]
